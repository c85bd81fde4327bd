// Test-only checks of what a safe status message is, shared by the unit tests and the fuzz
// targets (so it needs nothing but the standard library). Written differently from the
// sanitiser, by decoding code points, so one mistake is unlikely to hide in both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace daemonkit::core::testing {

// Decodes code point by code point and rejects overlongs, surrogates and values past
// U+10FFFF by value, not by byte ranges as the sanitiser does.
inline bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<std::uint8_t>(text[i]);
    std::size_t length = 0;
    std::uint32_t cp = 0;
    if ((lead & 0x80) == 0) {
      length = 1, cp = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, cp = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<std::uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

// True if any byte is a C0 control or DEL, or any character is a C1 control (U+0080-U+009F).
inline bool has_control(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<std::uint8_t>(text[i]);
    if (b < 0x20 || b == 0x7F) return true;
    if (b == 0xC2 && i + 1 < text.size() && static_cast<std::uint8_t>(text[i + 1]) <= 0x9F) {
      return true;
    }
  }
  return false;
}

// The Unicode bidirectional formatting characters, which reorder the text around them.
inline bool is_bidi_control(std::uint32_t cp) {
  switch (cp) {
    case 0x061C:
    case 0x200E:
    case 0x200F:
    case 0x202A:
    case 0x202B:
    case 0x202C:
    case 0x202D:
    case 0x202E:
    case 0x2066:
    case 0x2067:
    case 0x2068:
    case 0x2069:
      return true;
    default:
      return false;
  }
}

// True if any well-formed character of `text` is a bidi control (ill-formed bytes are skipped
// one at a time, so one cannot hide a control that follows it).
inline bool has_bidi_control(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto lead = static_cast<std::uint8_t>(text[i]);
    std::size_t length = 0;
    if ((lead & 0xE0) == 0xC0) {
      length = 2;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
    } else {
      continue;
    }
    if (i + length > text.size() || !is_valid_utf8(text.substr(i, length))) continue;
    std::uint32_t cp = lead & (length == 2 ? 0x1F : 0x0F);
    for (std::size_t k = 1; k < length; ++k) {
      cp = (cp << 6) | (static_cast<std::uint8_t>(text[i + k]) & 0x3F);
    }
    if (is_bidi_control(cp)) return true;
  }
  return false;
}

}  // namespace daemonkit::core::testing
