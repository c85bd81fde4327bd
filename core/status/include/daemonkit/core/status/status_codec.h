// The status-pipe wire format, without I/O: the daemon encodes its one report into bytes, and
// the waiting parent feeds whatever it reads, in whatever chunks, to a decoder. The same codec
// serves the real pipe, the fake kernel's pipe and the fuzzer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace daemonkit::core {

// The whole payload, tag included, is at most this long: well under PIPE_BUF, so the daemon's
// single write is atomic and can never block on a pipe nobody reads.
inline constexpr std::size_t kMaxStatusBytes = 100;
// A failure is "1 " followed by the message, so the message gets what the tag leaves.
inline constexpr std::size_t kMaxStatusMessageBytes = kMaxStatusBytes - 2;

// The daemon started: the single byte '0'.
[[nodiscard]] std::string encode_ready();

// The daemon failed: "1 " then `message` made safe by sanitize_message and cut to fit, so the
// payload is never longer than kMaxStatusBytes. An empty message is allowed ("1 ").
[[nodiscard]] std::string encode_failure(std::string_view message);

// What the decoder has concluded so far.
struct NeedMore {
  friend bool operator==(const NeedMore&, const NeedMore&) = default;
};
struct Ready {
  friend bool operator==(const Ready&, const Ready&) = default;
};
// The daemon reported a failure. `message` is sanitised again on this side: valid UTF-8,
// no control bytes, at most kMaxStatusMessageBytes long. It may be empty: "1 " is a
// well-formed report of a failure that came without words, and calling it a protocol error
// would misname a real failure.
//
// `cause` says where the failure came from, so callers branch on it rather than on the words.
// The decoder only ever yields kReported; the waiter (status_waiter.h) sets the others.
enum class FailureCause {
  kReported,  // the daemon wrote "1 <message>"
  kNoReport,  // the pipe reached EOF empty: the daemon (or the intermediate) ended first
  kTimeout,   // the waiter's deadline passed; the daemon may still be alive
  kProtocol,  // the bytes were not a status report
  kIo,        // a call of the waiter's own failed (read, poll, close, clock_gettime)
};
struct Failed {
  std::string message;
  FailureCause cause = FailureCause::kReported;
  friend bool operator==(const Failed&, const Failed&) = default;
};

// Why bytes were not a status report.
enum class StatusProtocolError {
  kEmpty,             // end of input before any byte: the writer never reported
  kUnknownTag,        // the first byte is neither '0' nor '1'
  kMissingSeparator,  // '1' not followed by a space
  kTruncatedFailure,  // end of input right after the '1'
  kBytesAfterReady,   // anything after '0'
  kTooLong,           // more than kMaxStatusBytes bytes
};
struct ProtocolError {
  StatusProtocolError kind;
  friend bool operator==(const ProtocolError&, const ProtocolError&) = default;
};

// A short English description of a protocol error, e.g. "the report is longer than 100 bytes".
[[nodiscard]] std::string describe(StatusProtocolError kind);

using StatusDecodeResult = std::variant<NeedMore, Ready, Failed, ProtocolError>;

// Decodes one status report from bytes arriving in any chunking.
//   StatusDecoder decoder;
//   decoder.feed(chunk);   // NeedMore, or ProtocolError as soon as the bytes cannot be valid
//   decoder.finish();      // at end of input: Ready, Failed or ProtocolError, never NeedMore
// A protocol error is final: later calls keep returning it. The result depends only on the
// concatenation of the chunks, never on where they were split.
class StatusDecoder {
 public:
  StatusDecodeResult feed(std::string_view bytes);
  [[nodiscard]] StatusDecodeResult finish();

 private:
  StatusDecodeResult check_prefix();

  std::string buffer_;
  std::optional<ProtocolError> error_;
};

// Decodes a complete payload: one feed and finish.
[[nodiscard]] StatusDecodeResult decode_status(std::string_view payload);

}  // namespace daemonkit::core
