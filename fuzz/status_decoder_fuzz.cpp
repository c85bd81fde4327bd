// Fuzz target for the status-pipe decoder, the parser that reads bytes from another process.
// Whatever the bytes: no crash; a Failed message is at most kMaxStatusMessageBytes, valid
// UTF-8 and free of control characters, bidi controls included; the verdict does not depend
// on how the bytes are chunked; and encoding the bytes as a failure message round-trips to
// their sanitised form.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemonkit/core/status/status_codec.h"
#include "daemonkit/core/status/status_message.h"
#include "fuzz_check.h"
#include "utf8_check.h"

namespace {

using namespace daemonkit::core;

StatusDecodeResult decode_in_chunks(std::string_view bytes, const std::vector<std::size_t>& cuts) {
  StatusDecoder decoder;
  std::size_t start = 0;
  for (const std::size_t cut : cuts) {
    const StatusDecodeResult verdict = decoder.feed(bytes.substr(start, cut - start));
    FUZZ_CHECK(std::holds_alternative<NeedMore>(verdict) ||
               std::holds_alternative<ProtocolError>(verdict));
    start = cut;
  }
  decoder.feed(bytes.substr(start));
  return decoder.finish();
}

void check_safe(const StatusDecodeResult& verdict) {
  FUZZ_CHECK(!std::holds_alternative<NeedMore>(verdict));
  if (const auto* failed = std::get_if<Failed>(&verdict)) {
    FUZZ_CHECK(failed->message.size() <= kMaxStatusMessageBytes);
    FUZZ_CHECK(testing::is_valid_utf8(failed->message));
    FUZZ_CHECK(!testing::has_control(failed->message));
    FUZZ_CHECK(!testing::has_bidi_control(failed->message));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  const StatusDecodeResult whole = decode_status(bytes);
  check_safe(whole);
  if (size > kMaxStatusBytes) FUZZ_CHECK(std::holds_alternative<ProtocolError>(whole));

  // The fuzzer chooses the cuts through the input itself: its last two bytes pick them.
  const std::size_t a = size == 0 ? 0 : data[size - 1] % (size + 1);
  const std::size_t b = size < 2 ? 0 : data[size - 2] % (size + 1);
  FUZZ_CHECK(decode_in_chunks(bytes, {a}) == whole);
  FUZZ_CHECK(decode_in_chunks(bytes, {a < b ? a : b, a < b ? b : a}) == whole);
  // And the cuts where the decoder's rules live: around the tag and around the limit.
  for (const std::size_t cut :
       {std::size_t{1}, std::size_t{2}, kMaxStatusBytes, kMaxStatusBytes + 1}) {
    if (cut <= size) FUZZ_CHECK(decode_in_chunks(bytes, {cut}) == whole);
  }

  // The daemon's side: any message encodes to a payload that decodes to its sanitised self.
  const std::string payload = encode_failure(bytes);
  FUZZ_CHECK(payload.size() <= kMaxStatusBytes);
  FUZZ_CHECK(decode_status(payload) ==
             StatusDecodeResult(Failed{sanitize_message(bytes, kMaxStatusMessageBytes)}));
  return 0;
}
