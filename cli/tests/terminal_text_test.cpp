// terminal_text and print: the one way out to the user's terminal. Usage errors quote the
// user's words, so they are where an escape sequence, broken UTF-8 or a bidi override in argv
// would otherwise reach the terminal.
#include "daemonkit/cli/terminal_text.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "daemonkit/cli/options.h"
#include "daemonkit/cli/run_command.h"
#include "daemonkit/core/status/status_message.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "utf8_check.h"

namespace daemonkit::cli {
namespace {

using ::testing::HasSubstr;

std::string printed_usage_error(std::vector<std::string> words) {
  words.insert(words.begin(), "daemonkit");
  const Parsed parsed = parse_command_line(words);
  const auto* early = std::get_if<EarlyExit>(&parsed);
  if (early == nullptr) {
    ADD_FAILURE() << "parsed a command where a usage error was expected";
    return "";
  }
  EXPECT_EQ(early->code, kUsageExit);
  return terminal_text(early->err);
}

// No byte a terminal would act on: controls other than '\n', DEL, C1, bidi; valid UTF-8.
bool safe_to_print(std::string_view text) {
  for (const char c : text) {
    const auto b = static_cast<std::uint8_t>(c);
    if ((b < 0x20 && c != '\n') || b == 0x7F) return false;
  }
  std::string without_newlines(text);
  std::erase(without_newlines, '\n');
  return core::testing::is_valid_utf8(text) && !core::testing::has_control(without_newlines) &&
         !core::testing::has_bidi_control(text);
}

TEST(TerminalText, EscapeSequenceInAnOptionValueIsShownNotObeyed) {
  EXPECT_EQ(printed_usage_error({"run", "--umask", "\x1b[2J\x1b]0;pwned\x07", "--", "p"}),
            "daemonkit run: --umask: '\\x1b[2J\\x1b]0;pwned\\x07' is not an octal mode from 0 "
            "to 0777 (e.g. 022)\nRun 'daemonkit run --help' for more information.\n");
}

TEST(TerminalText, InvalidUtf8AndBidiOverrideInAnUnknownOptionAreEscaped) {
  const std::string printed =
      printed_usage_error({"run", "--bog\xff\xc3us\xe2\x80\xaegnp.exe", "--", "p"});
  EXPECT_THAT(printed, HasSubstr("--bog\\xff\\xc3us\\u{202E}gnp.exe"));
  EXPECT_TRUE(safe_to_print(printed)) << printed;
}

TEST(TerminalText, ControlsInAnUnknownCommandAreEscaped) {
  const std::string printed =
      printed_usage_error({"re\rstart\xc2\x9b"
                           "31m\t"});
  EXPECT_THAT(printed, HasSubstr("'re\\x0dstart\\xc2\\x9b31m\\x09' is not a command"));
  EXPECT_TRUE(safe_to_print(printed)) << printed;
}

TEST(TerminalText, KeepsTheNewlinesBetweenLinesAndTheTextAroundThem) {
  EXPECT_EQ(terminal_text("one\ntwo caf\xc3\xa9\n\nthree"), "one\ntwo caf\xc3\xa9\n\nthree");
  EXPECT_EQ(terminal_text(""), "");
  EXPECT_EQ(terminal_text("\n"), "\n");
}

// A daemon's report was sanitised when it crossed the status pipe; printing it again must not
// turn its escapes into escapes of escapes.
TEST(TerminalText, AnAlreadySanitisedReportPrintsAsItIs) {
  const std::string report = core::sanitize_message("bad \x1b[31m \xe2\x80\xae name\xff", 98);
  const std::string stderr_text = launch_failure_text(report);
  EXPECT_EQ(terminal_text(stderr_text), stderr_text);
}

RC_GTEST_PROP(TerminalText, OutputIsSafeKeepsEveryLineAndIsIdempotent, ()) {
  const auto pieces = *rc::gen::container<std::vector<std::string>>(rc::gen::oneOf(
      rc::gen::map(rc::gen::arbitrary<std::uint8_t>(),
                   [](std::uint8_t b) { return std::string(1, static_cast<char>(b)); }),
      rc::gen::element<std::string>("\n", "\x1b[31m", "\xe2\x80\xae", "\xe2\x81\xa9", "\xd8\x9c",
                                    "\xc2\x9b", "\\u{202E}", "\xc3\xa9", "\xf0\x9f\x98\x80")));
  std::string raw;
  for (const auto& piece : pieces) raw += piece;
  const std::string safe = terminal_text(raw);
  RC_ASSERT(safe_to_print(safe));
  RC_ASSERT(std::count(safe.begin(), safe.end(), '\n') == std::count(raw.begin(), raw.end(), '\n'));
  RC_ASSERT(terminal_text(safe) == safe);
}

TEST(Print, WritesTheSafeTextWholeAcrossEintr) {
  fake::FakeSyscalls os;
  auto pipe = os.pipe2(O_CLOEXEC);
  ASSERT_TRUE(pipe);
  os.fail_nth("write", 1, EINTR);
  print(os, pipe->write_end, "x\x1b\n");
  char buffer[16];
  auto n = os.read(pipe->read_end, buffer, sizeof buffer);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buffer, *n), "x\\x1b\n");
}

TEST(Print, GivesUpQuietlyWhenTheWriteFails) {
  fake::FakeSyscalls os;
  os.fail_nth("write", 1, EBADF);
  print(os, 1, "lost");
  EXPECT_EQ(std::count_if(os.transcript().begin(), os.transcript().end(),
                          [](const auto& call) { return call.name == "write"; }),
            1);
}

}  // namespace
}  // namespace daemonkit::cli
