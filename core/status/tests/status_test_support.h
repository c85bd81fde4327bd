// Test-only helpers for the status-pipe tests: rapidcheck generators of hostile byte strings
// and of chunkings, and a driver that feeds a decoder chunk by chunk.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <rapidcheck.h>

#include "daemonkit/core/status/status_codec.h"
#include "status_printers.h"
#include "utf8_check.h"

namespace daemonkit::core::testing {

// The UTF-8 encoding of a code point (no validity check: tests use it to build bad input too).
inline std::string utf8(std::uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// Pieces a hostile or careless writer might produce: any single byte, valid characters of
// every length, C1 controls, bidi controls, surrogates, overlongs, things that look like
// escapes.
inline rc::Gen<std::string> message_piece() {
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::arbitrary<std::uint8_t>(),
                   [](std::uint8_t b) { return std::string(1, static_cast<char>(b)); }),
      rc::gen::map(rc::gen::inRange<std::uint32_t>(0x20, 0x7F), utf8),
      rc::gen::map(rc::gen::inRange<std::uint32_t>(0x80, 0x800), utf8),
      rc::gen::map(rc::gen::inRange<std::uint32_t>(0x800, 0x10000), utf8),
      rc::gen::map(rc::gen::inRange<std::uint32_t>(0x10000, 0x110000), utf8),
      rc::gen::element<std::string>("\\", "\\x1b", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                    "\xf4\x90\x80\x80", "\xf0\x9f\x98", "\x80", "\xc2\x9b",
                                    "\\u{202E}", "\xe2\x80\xae", "\xe2\x81\xa6", "\xd8\x9c",
                                    "\xe2\x80\x8f"));
}

// A message of arbitrary bytes, often longer than the limit.
inline rc::Gen<std::string> hostile_message() {
  return rc::gen::map(rc::gen::container<std::vector<std::string>>(message_piece()),
                      [](const std::vector<std::string>& pieces) {
                        std::string out;
                        for (const auto& piece : pieces) out += piece;
                        return out;
                      });
}

// Bytes a status pipe might carry: mostly well-tagged, sometimes not, sometimes too long.
inline rc::Gen<std::string> pipe_bytes() {
  return rc::gen::map(
      rc::gen::pair(rc::gen::element<std::string>("", "0", "1", "1 ", "1 ", "1 ", "1x", "00", "2"),
                    hostile_message()),
      [](const std::pair<std::string, std::string>& p) { return p.first + p.second; });
}

// Cuts `bytes` at the given offsets (taken modulo the length, sorted, duplicates allowed, so
// empty chunks occur too).
inline std::vector<std::string> split_at(const std::string& bytes, std::vector<std::size_t> cuts) {
  for (auto& cut : cuts) cut = bytes.empty() ? 0 : cut % (bytes.size() + 1);
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::string> chunks;
  std::size_t start = 0;
  for (const auto cut : cuts) {
    chunks.push_back(bytes.substr(start, cut - start));
    start = cut;
  }
  chunks.push_back(bytes.substr(start));
  return chunks;
}

// Feeds the chunks in order, stopping at the first verdict other than NeedMore as a reader
// would (feed should only ever give a ProtocolError), then finishes.
inline StatusDecodeResult decode_chunks(const std::vector<std::string>& chunks) {
  StatusDecoder decoder;
  for (const auto& chunk : chunks) {
    StatusDecodeResult verdict = decoder.feed(chunk);
    if (!std::holds_alternative<NeedMore>(verdict)) return verdict;
  }
  return decoder.finish();
}

}  // namespace daemonkit::core::testing
