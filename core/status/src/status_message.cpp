#include "daemonkit/core/status/status_message.h"

#include <cstdint>

namespace daemonkit::core {
namespace {

// The length of the well-formed UTF-8 sequence starting at `text[0]`, or 0 when there is none
// (Unicode 15, table 3-7). The second byte's range is what rules out overlongs (E0, F0),
// surrogates (ED) and code points above U+10FFFF (F4); leads C0, C1 and F5-FF never start one.
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const auto in = [](std::uint8_t b, std::uint8_t lo, std::uint8_t hi) {
    return b >= lo && b <= hi;
  };
  const std::uint8_t lead = byte(0);
  std::size_t length = 0;
  std::uint8_t second_lo = 0x80;
  std::uint8_t second_hi = 0xBF;
  if (lead < 0x80) {
    return 1;
  } else if (in(lead, 0xC2, 0xDF)) {
    length = 2;
  } else if (lead == 0xE0) {
    length = 3, second_lo = 0xA0;
  } else if (in(lead, 0xE1, 0xEC) || in(lead, 0xEE, 0xEF)) {
    length = 3;
  } else if (lead == 0xED) {
    length = 3, second_hi = 0x9F;
  } else if (lead == 0xF0) {
    length = 4, second_lo = 0x90;
  } else if (in(lead, 0xF1, 0xF3)) {
    length = 4;
  } else if (lead == 0xF4) {
    length = 4, second_hi = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length || !in(byte(1), second_lo, second_hi)) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (!in(byte(i), 0x80, 0xBF)) return 0;
  }
  return length;
}

bool is_c1_control(std::string_view sequence) {
  return sequence.size() == 2 && static_cast<std::uint8_t>(sequence[0]) == 0xC2 &&
         static_cast<std::uint8_t>(sequence[1]) <= 0x9F;
}

// The code point of a well-formed sequence of two or three bytes (the bidi controls' lengths).
std::uint32_t code_point(std::string_view sequence) {
  const auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<std::uint8_t>(sequence[i]));
  };
  if (sequence.size() == 2) return (byte(0) & 0x1F) << 6 | (byte(1) & 0x3F);
  return (byte(0) & 0x0F) << 12 | (byte(1) & 0x3F) << 6 | (byte(2) & 0x3F);
}

// The characters that reorder the text around them (Unicode's bidirectional formatting
// characters): embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, and the marks
// U+200E, U+200F and U+061C. Valid UTF-8, printable to a terminal, and able to make what
// follows them read backwards: "\u{202E}exe.txt" shows as "txt.exe".
bool is_bidi_control(std::string_view sequence) {
  if (sequence.size() != 2 && sequence.size() != 3) return false;
  const std::uint32_t cp = code_point(sequence);
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200E ||
         cp == 0x200F || cp == 0x061C;
}

void append_escape(std::string& out, std::uint8_t b) {
  constexpr char kHex[] = "0123456789abcdef";
  out += '\\';
  out += 'x';
  out += kHex[b >> 4];
  out += kHex[b & 0xF];
}

// `\u{XXXX}`, uppercase hex as Unicode writes code points; every bidi control's value has
// four digits.
void append_code_point_escape(std::string& out, std::uint32_t cp) {
  constexpr char kHex[] = "0123456789ABCDEF";
  out += "\\u{";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 0xF];
  out += '}';
}

constexpr std::size_t kEscapeBytes = 4;
constexpr std::size_t kCodePointEscapeBytes = 8;

}  // namespace

std::string sanitize_message(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  out.reserve(raw.size() < max_bytes ? raw.size() : max_bytes);
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::string_view rest = raw.substr(i);
    const std::size_t length = utf8_sequence_length(rest);
    const auto lead = static_cast<std::uint8_t>(rest[0]);
    const bool control = length == 1 && (lead < 0x20 || lead == 0x7F);
    if (length == 0 || control) {
      // One escape per offending byte; decoding resumes at the next byte, so a broken
      // sequence never swallows a valid character that follows it.
      if (out.size() + kEscapeBytes > max_bytes) break;
      append_escape(out, lead);
      i += 1;
    } else if (is_c1_control(rest.substr(0, length))) {
      if (out.size() + 2 * kEscapeBytes > max_bytes) break;
      append_escape(out, lead);
      append_escape(out, static_cast<std::uint8_t>(rest[1]));
      i += length;
    } else if (is_bidi_control(rest.substr(0, length))) {
      if (out.size() + kCodePointEscapeBytes > max_bytes) break;
      append_code_point_escape(out, code_point(rest.substr(0, length)));
      i += length;
    } else {
      if (out.size() + length > max_bytes) break;
      out.append(rest.substr(0, length));
      i += length;
    }
  }
  return out;
}

}  // namespace daemonkit::core
