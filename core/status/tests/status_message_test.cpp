// sanitize_message: what is escaped, what passes, and where a long message is cut.
#include "daemonkit/core/status/status_message.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <utility>

#include "status_test_support.h"

namespace daemonkit::core {
namespace {

using testing::has_bidi_control;
using testing::has_control;
using testing::is_bidi_control;
using testing::is_valid_utf8;
using testing::utf8;

constexpr std::size_t kRoomy = 1000;

TEST(SanitizeMessage, PassesPrintableAscii) {
  EXPECT_EQ(sanitize_message("setuid(65534): Operation not permitted (EPERM)", kRoomy),
            "setuid(65534): Operation not permitted (EPERM)");
}

TEST(SanitizeMessage, EscapesC0ControlsAndDelInLowercaseHex) {
  EXPECT_EQ(sanitize_message(std::string("a\nb\x1b[31mc\x7f\td\0e", 14), kRoomy),
            "a\\x0ab\\x1b[31mc\\x7f\\x09d\\x00e");
}

TEST(SanitizeMessage, PassesValidUtf8OfEveryLength) {
  const std::string text = "caf\xc3\xa9 \xe2\x80\xa2 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  EXPECT_EQ(sanitize_message(text, kRoomy), text);
}

TEST(SanitizeMessage, EscapesLatin1ByteAsTwistedDoes) {
  // Twisted pins "caf\\xe9" for "café"; a lone Latin-1 0xE9 is invalid UTF-8 and reads the same.
  EXPECT_EQ(sanitize_message("caf\xe9", kRoomy), "caf\\xe9");
}

TEST(SanitizeMessage, EscapesEachByteOfInvalidSequences) {
  EXPECT_EQ(sanitize_message("\xc0\xaf", kRoomy), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(sanitize_message("\xe0\x80\xaf", kRoomy), "\\xe0\\x80\\xaf");           // overlong
  EXPECT_EQ(sanitize_message("\xf0\x80\x80\xaf", kRoomy), "\\xf0\\x80\\x80\\xaf");  // overlong
  EXPECT_EQ(sanitize_message("\xed\xa0\x80", kRoomy), "\\xed\\xa0\\x80");           // surrogate
  EXPECT_EQ(sanitize_message("\xf4\x90\x80\x80", kRoomy), "\\xf4\\x90\\x80\\x80");  // > U+10FFFF
  EXPECT_EQ(sanitize_message("\xf5\xff\xfe", kRoomy), "\\xf5\\xff\\xfe");           // never valid
  EXPECT_EQ(sanitize_message("a\x80z", kRoomy), "a\\x80z");                         // stray
}

TEST(SanitizeMessage, TruncatedSequenceDoesNotSwallowWhatFollows) {
  // A 4-byte lead with only two continuation bytes, then a valid 'é'.
  EXPECT_EQ(sanitize_message("\xf0\x9f\x98\xc3\xa9", kRoomy), "\\xf0\\x9f\\x98\xc3\xa9");
  EXPECT_EQ(sanitize_message("x\xe2\x82", kRoomy), "x\\xe2\\x82");  // cut at the end
}

TEST(SanitizeMessage, EscapesC1ControlsThatTerminalsMayObey) {
  // U+009B is CSI: valid UTF-8, but an escape sequence to a terminal that honours C1.
  EXPECT_EQ(sanitize_message("a\xc2\x9b"
                             "31mb",
                             kRoomy),
            "a\\xc2\\x9b31mb");
  EXPECT_EQ(sanitize_message("\xc2\x80\xc2\x9f\xc2\xa0", kRoomy), "\\xc2\\x80\\xc2\\x9f\xc2\xa0");
}

TEST(SanitizeMessage, EscapesBidiControlsAsCodePoints) {
  // U+202E makes "exe.txt" read "txt.exe"; each of the twelve becomes a visible escape.
  EXPECT_EQ(sanitize_message("a\xe2\x80\xae"
                             "exe.txt",
                             kRoomy),
            "a\\u{202E}exe.txt");
  const std::pair<std::uint32_t, const char*> bidi[] = {
      {0x061C, "\\u{061C}"}, {0x200E, "\\u{200E}"}, {0x200F, "\\u{200F}"}, {0x202A, "\\u{202A}"},
      {0x202B, "\\u{202B}"}, {0x202C, "\\u{202C}"}, {0x202D, "\\u{202D}"}, {0x202E, "\\u{202E}"},
      {0x2066, "\\u{2066}"}, {0x2067, "\\u{2067}"}, {0x2068, "\\u{2068}"}, {0x2069, "\\u{2069}"}};
  for (const auto& [cp, escape] : bidi) EXPECT_EQ(sanitize_message(utf8(cp), kRoomy), escape) << cp;
}

TEST(SanitizeMessage, PassesTheNeighboursOfBidiControls) {
  // Zero-width joiner, line and paragraph separators, narrow no-break space, Arabic letters:
  // close in value, none reorders text.
  for (const std::uint32_t cp :
       {0x061BU, 0x061DU, 0x200DU, 0x2028U, 0x2029U, 0x202FU, 0x2065U, 0x206AU}) {
    EXPECT_EQ(sanitize_message(utf8(cp), kRoomy), utf8(cp)) << cp;
  }
}

TEST(SanitizeMessage, CutsBeforeABidiEscapeThatWouldNotFit) {
  EXPECT_EQ(sanitize_message("ab\xe2\x81\xa6", 9), "ab");
  EXPECT_EQ(sanitize_message("ab\xe2\x81\xa6", 10), "ab\\u{2066}");
}

TEST(SanitizeMessage, LeavesBackslashAlone) {
  // Not escaped, so the function is idempotent (see the header): "\x1b" typed by a human and
  // an escaped ESC read the same, which no reader of a diagnostic needs to tell apart.
  EXPECT_EQ(sanitize_message("C:\\dir \\x1b", kRoomy), "C:\\dir \\x1b");
}

TEST(SanitizeMessage, CutsBeforeAnEscapeThatWouldNotFit) {
  EXPECT_EQ(sanitize_message("abc\n", 6), "abc");
  EXPECT_EQ(sanitize_message("abc\n", 7), "abc\\x0a");
}

TEST(SanitizeMessage, CutsBeforeAUtf8SequenceThatWouldNotFit) {
  const std::string emoji = "\xf0\x9f\x98\x80";
  EXPECT_EQ(sanitize_message("ab" + emoji, 5), "ab");
  EXPECT_EQ(sanitize_message("ab" + emoji, 6), "ab" + emoji);
}

TEST(SanitizeMessage, KeepsBothEscapesOfAC1ControlTogether) {
  EXPECT_EQ(sanitize_message("a\xc2\x85", 8), "a");
  EXPECT_EQ(sanitize_message("a\xc2\x85", 9), "a\\xc2\\x85");
}

TEST(SanitizeMessage, ZeroRoomGivesEmpty) { EXPECT_EQ(sanitize_message("abc", 0), ""); }

RC_GTEST_PROP(SanitizeMessage, OutputIsBoundedValidUtf8WithoutControls, ()) {
  const std::string raw = *testing::hostile_message();
  const std::size_t max = *rc::gen::inRange<std::size_t>(0, 200);
  const std::string safe = sanitize_message(raw, max);
  RC_ASSERT(safe.size() <= max);
  RC_ASSERT(is_valid_utf8(safe));
  RC_ASSERT(!has_control(safe));
  RC_ASSERT(!has_bidi_control(safe));
}

RC_GTEST_PROP(SanitizeMessage, IsIdempotent, ()) {
  const std::string raw = *testing::hostile_message();
  const std::size_t max = *rc::gen::inRange<std::size_t>(0, 200);
  const std::string once = sanitize_message(raw, max);
  RC_ASSERT(sanitize_message(once, max) == once);
}

RC_GTEST_PROP(SanitizeMessage, ShorterLimitGivesAPrefixCutBetweenUnits, ()) {
  const std::string raw = *testing::hostile_message();
  const std::size_t max = *rc::gen::inRange<std::size_t>(0, 200);
  const std::string whole = sanitize_message(raw, kRoomy * 10);
  const std::string cut = sanitize_message(raw, max);
  RC_ASSERT(whole.substr(0, cut.size()) == cut);
  // The cut is as late as possible: the next unit (an escape of up to 8 bytes or a character
  // of up to 4) would not have fitted.
  if (cut.size() < whole.size()) RC_ASSERT(cut.size() + 8 > max);
}

RC_GTEST_PROP(SanitizeMessage, PassesValidTextUnchanged, ()) {
  const auto code_points = *rc::gen::container<std::vector<std::uint32_t>>(rc::gen::oneOf(
      rc::gen::inRange<std::uint32_t>(0x20, 0x7F), rc::gen::inRange<std::uint32_t>(0xA0, 0xD800),
      rc::gen::inRange<std::uint32_t>(0xE000, 0x110000)));
  std::string text;
  for (const auto cp : code_points) {
    if (!is_bidi_control(cp)) text += utf8(cp);
  }
  RC_ASSERT(sanitize_message(text, text.size()) == text);
}

}  // namespace
}  // namespace daemonkit::core
