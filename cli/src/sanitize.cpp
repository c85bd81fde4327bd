#include "daemonkit/cli/sanitize.h"

#include <fmt/format.h>

namespace daemonkit::cli {
namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` that is printable (not C1),
// or 0 if it is not one.
std::size_t utf8_length(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  std::size_t len = 0;
  unsigned min = 0;
  unsigned cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, min = 0x80, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, min = 0x800, cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, min = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  if (cp >= 0x80 && cp <= 0x9F) return 0;  // C1 controls: U+009B is a terminal's CSI.
  return len;
}

}  // namespace

std::string sanitize_for_terminal(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  while (!raw.empty()) {
    const auto b = static_cast<unsigned char>(raw[0]);
    std::size_t take = 1;
    std::string unit;
    if (b >= 0x20 && b < 0x7F) {
      unit.assign(1, raw[0]);
    } else if (std::size_t len = b >= 0x80 ? utf8_length(raw) : 0; len > 0) {
      unit.assign(raw.substr(0, len));
      take = len;
    } else {
      unit = fmt::format("\\x{:02x}", b);
    }
    if (out.size() + unit.size() > max_bytes) break;
    out += unit;
    raw.remove_prefix(take);
  }
  return out;
}

}  // namespace daemonkit::cli
