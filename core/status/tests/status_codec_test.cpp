// The status-pipe codec: exact bytes on the wire, and a decoder that gives the same verdict
// however the bytes are chunked and never passes on anything unsafe.
#include "daemonkit/core/status/status_codec.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "daemonkit/core/status/status_message.h"
#include "status_test_support.h"

namespace daemonkit::core {
namespace {

using testing::decode_chunks;
using testing::has_control;
using testing::is_valid_utf8;
using testing::split_at;

const std::string kEmoji = "\xf0\x9f\x98\x80";  // U+1F600, four bytes

TEST(StatusEncoder, ReadyIsTheSingleByteZero) { EXPECT_EQ(encode_ready(), "0"); }

TEST(StatusEncoder, FailureIsOneSpaceMessage) {
  EXPECT_EQ(encode_failure("setuid(65534): Operation not permitted (EPERM)"),
            "1 setuid(65534): Operation not permitted (EPERM)");
}

TEST(StatusEncoder, EmptyFailureIsOneSpace) { EXPECT_EQ(encode_failure(""), "1 "); }

TEST(StatusEncoder, LongMessageIsCutToExactlyOneHundredBytes) {
  // Twisted's pinned case: RuntimeError("x" * 200) -> "1 RuntimeError: " + "x" * 84.
  const std::string payload = encode_failure("RuntimeError: " + std::string(200, 'x'));
  EXPECT_EQ(payload, "1 RuntimeError: " + std::string(84, 'x'));
  EXPECT_EQ(payload.size(), kMaxStatusBytes);
}

TEST(StatusEncoder, EscapesNewlineEscDelAndInvalidUtf8) {
  EXPECT_EQ(encode_failure("line1\nline2 \x1b[2J \x7f caf\xe9"),
            "1 line1\\x0aline2 \\x1b[2J \\x7f caf\\xe9");
}

TEST(StatusEncoder, EmojiStraddlingTheLimitIsDroppedWhole) {
  // 2 + 95 + 4 = 101 bytes would be needed; Twisted would send 3 bytes of the emoji.
  const std::string payload = encode_failure(std::string(95, 'a') + kEmoji);
  EXPECT_EQ(payload, "1 " + std::string(95, 'a'));
  EXPECT_TRUE(is_valid_utf8(payload));
}

TEST(StatusEncoder, EmojiEndingExactlyAtTheLimitIsKept) {
  const std::string payload = encode_failure(std::string(94, 'a') + kEmoji);
  EXPECT_EQ(payload, "1 " + std::string(94, 'a') + kEmoji);
  EXPECT_EQ(payload.size(), kMaxStatusBytes);
}

TEST(StatusEncoder, EscapeStraddlingTheLimitIsDroppedWhole) {
  // Twisted cuts "\\u2022" escapes in the middle; here "\x0a" goes whole or not at all.
  EXPECT_EQ(encode_failure(std::string(96, 'a') + "\n"), "1 " + std::string(96, 'a'));
  EXPECT_EQ(encode_failure(std::string(94, 'a') + "\n"), "1 " + std::string(94, 'a') + "\\x0a");
}

TEST(StatusDecoder, DecodesReady) { EXPECT_EQ(decode_status("0"), StatusDecodeResult(Ready{})); }

TEST(StatusDecoder, DecodesFailureMessage) {
  EXPECT_EQ(decode_status("1 bind(0.0.0.0:80): Address already in use (EADDRINUSE)"),
            StatusDecodeResult(Failed{"bind(0.0.0.0:80): Address already in use (EADDRINUSE)"}));
}

TEST(StatusDecoder, DecodesEmptyFailureAsFailedWithEmptyMessage) {
  EXPECT_EQ(decode_status("1 "), StatusDecodeResult(Failed{""}));
}

TEST(StatusDecoder, AcceptsExactlyOneHundredBytes) {
  const std::string payload = "1 " + std::string(98, 'x');
  EXPECT_EQ(decode_status(payload), StatusDecodeResult(Failed{std::string(98, 'x')}));
}

TEST(StatusDecoder, SanitisesWhatAnUntrustedWriterSent) {
  // Raw control bytes straight from a writer that did not use encode_failure.
  EXPECT_EQ(decode_status("1 \x1b]0;pwned\x07 \xff"),
            StatusDecodeResult(Failed{"\\x1b]0;pwned\\x07 \\xff"}));
}

TEST(StatusDecoder, CutsAnExpandedMessageBackToTheLimit) {
  // 98 raw NULs would become 392 bytes of escapes; the message keeps whole escapes only.
  const StatusDecodeResult verdict = decode_status("1 " + std::string(98, '\0'));
  ASSERT_TRUE(std::holds_alternative<Failed>(verdict));
  std::string expected;
  for (int i = 0; i < 24; ++i) expected += "\\x00";  // 24 * 4 = 96 <= 98 < 100
  EXPECT_EQ(std::get<Failed>(verdict).message, expected);
}

TEST(StatusDecoder, RejectsEverythingElseWithTheRightProtocolError) {
  struct Case {
    std::string bytes;
    StatusProtocolError kind;
  };
  const Case cases[] = {
      {"", StatusProtocolError::kEmpty},
      {"A", StatusProtocolError::kUnknownTag},
      {std::string(1, '\0'), StatusProtocolError::kUnknownTag},
      {" 0", StatusProtocolError::kUnknownTag},
      {"1", StatusProtocolError::kTruncatedFailure},
      {"1x", StatusProtocolError::kMissingSeparator},
      {"1\n", StatusProtocolError::kMissingSeparator},
      {"00", StatusProtocolError::kBytesAfterReady},
      {"0\n", StatusProtocolError::kBytesAfterReady},
      {"1 " + std::string(99, 'x'), StatusProtocolError::kTooLong},
      // The earliest violation wins: byte 1 breaks the report before byte 101 does.
      {"0" + std::string(200, '0'), StatusProtocolError::kBytesAfterReady},
      {"1x" + std::string(200, 'x'), StatusProtocolError::kMissingSeparator},
      {"x" + std::string(200, 'x'), StatusProtocolError::kUnknownTag},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(decode_status(c.bytes), StatusDecodeResult(ProtocolError{c.kind}))
        << "bytes: " << ::testing::PrintToString(c.bytes);
  }
}

TEST(StatusDecoder, RejectsAsSoonAsTheBytesCannotBeAReport) {
  StatusDecoder decoder;
  EXPECT_EQ(decoder.feed("1"), StatusDecodeResult(NeedMore{}));
  EXPECT_EQ(decoder.feed("x"),
            StatusDecodeResult(ProtocolError{StatusProtocolError::kMissingSeparator}));
  // Final: more input and the end of input change nothing.
  EXPECT_EQ(decoder.feed(" ok"),
            StatusDecodeResult(ProtocolError{StatusProtocolError::kMissingSeparator}));
  EXPECT_EQ(decoder.finish(),
            StatusDecodeResult(ProtocolError{StatusProtocolError::kMissingSeparator}));
}

TEST(StatusDecoder, RejectsTheHundredAndFirstByteWhenItArrives) {
  StatusDecoder decoder;
  EXPECT_EQ(decoder.feed("1 " + std::string(98, 'x')), StatusDecodeResult(NeedMore{}));
  EXPECT_EQ(decoder.feed("y"), StatusDecodeResult(ProtocolError{StatusProtocolError::kTooLong}));
}

TEST(StatusDecoder, ProtocolErrorsHaveDescriptions) {
  EXPECT_EQ(describe(StatusProtocolError::kTooLong), "the report is longer than 100 bytes");
  EXPECT_EQ(describe(StatusProtocolError::kUnknownTag),
            "the first byte is neither '0' (ready) nor '1' (failed)");
}

// Every way of cutting `bytes` into chunks (2^(n-1) of them, empty chunks aside).
std::vector<std::vector<std::string>> every_chunking(const std::string& bytes) {
  std::vector<std::vector<std::string>> all;
  const std::size_t gaps = bytes.empty() ? 0 : bytes.size() - 1;
  for (std::uint32_t mask = 0; mask < (1u << gaps); ++mask) {
    std::vector<std::size_t> cuts;
    for (std::size_t gap = 0; gap < gaps; ++gap) {
      if (mask & (1u << gap)) cuts.push_back(gap + 1);
    }
    all.push_back(split_at(bytes, cuts));
  }
  return all;
}

TEST(StatusDecoder, GivesTheSameVerdictForEveryChunkingOfShortInputs) {
  const std::vector<std::string> inputs = {"0",
                                           "00",
                                           "1",
                                           "1 ",
                                           "1x",
                                           "A",
                                           "1 a\nb",
                                           "1 caf\xc3\xa9",
                                           "1 \xf0\x9f\x98\x80!",
                                           "0 ready",
                                           "1 \xe2\x82",
                                           "1 \\x1b\x1b"};
  for (const auto& input : inputs) {
    const StatusDecodeResult whole = decode_status(input);
    for (const auto& chunks : every_chunking(input)) {
      EXPECT_EQ(decode_chunks(chunks), whole)
          << "input: " << ::testing::PrintToString(input) << " in " << chunks.size() << " chunks";
    }
  }
}

TEST(StatusDecoder, GivesTheSameVerdictWhateverSingleCutOfLongInputs) {
  const std::vector<std::string> inputs = {"1 " + std::string(98, 'x'), "1 " + std::string(99, 'x'),
                                           "1 " + std::string(80, 'x') + kEmoji + kEmoji + kEmoji};
  for (const auto& input : inputs) {
    const StatusDecodeResult whole = decode_status(input);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      EXPECT_EQ(decode_chunks(split_at(input, {cut})), whole) << "cut at " << cut;
    }
    std::vector<std::string> bytewise;
    for (const char c : input) bytewise.emplace_back(1, c);
    EXPECT_EQ(decode_chunks(bytewise), whole);
  }
}

RC_GTEST_PROP(StatusCodec, ReadyRoundTrips, ()) {
  RC_ASSERT(decode_status(encode_ready()) == StatusDecodeResult(Ready{}));
}

RC_GTEST_PROP(StatusCodec, FailureRoundTripsToTheSanitisedMessage, ()) {
  const std::string message = *testing::hostile_message();
  const std::string payload = encode_failure(message);
  RC_ASSERT(payload.size() <= kMaxStatusBytes);
  RC_ASSERT(payload.substr(0, 2) == "1 ");
  RC_ASSERT(decode_status(payload) ==
            StatusDecodeResult(Failed{sanitize_message(message, kMaxStatusMessageBytes)}));
}

RC_GTEST_PROP(StatusDecoder, VerdictDoesNotDependOnChunking, ()) {
  const std::string bytes = *testing::pipe_bytes();
  const auto cuts =
      *rc::gen::container<std::vector<std::size_t>>(rc::gen::arbitrary<std::size_t>());
  RC_ASSERT(decode_chunks(split_at(bytes, cuts)) == decode_status(bytes));
}

RC_GTEST_PROP(StatusDecoder, FeedNeverConcludesBeforeTheEnd, ()) {
  const std::string bytes = *testing::pipe_bytes();
  const auto cuts =
      *rc::gen::container<std::vector<std::size_t>>(rc::gen::arbitrary<std::size_t>());
  StatusDecoder decoder;
  for (const auto& chunk : split_at(bytes, cuts)) {
    const StatusDecodeResult verdict = decoder.feed(chunk);
    RC_ASSERT(std::holds_alternative<NeedMore>(verdict) ||
              std::holds_alternative<ProtocolError>(verdict));
  }
  RC_ASSERT(!std::holds_alternative<NeedMore>(decoder.finish()));
}

RC_GTEST_PROP(StatusDecoder, DecodedMessagesAreSafeAndBounded, ()) {
  const std::string bytes = *testing::pipe_bytes();
  const StatusDecodeResult verdict = decode_status(bytes);
  if (const auto* failed = std::get_if<Failed>(&verdict)) {
    RC_ASSERT(failed->message.size() <= kMaxStatusMessageBytes);
    RC_ASSERT(is_valid_utf8(failed->message));
    RC_ASSERT(!has_control(failed->message));
  }
  // Anything longer than the limit is never a report.
  if (bytes.size() > kMaxStatusBytes) RC_ASSERT(std::holds_alternative<ProtocolError>(verdict));
}

}  // namespace
}  // namespace daemonkit::core
