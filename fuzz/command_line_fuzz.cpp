// Fuzz target for the daemonkit command line: the bytes are the words after "daemonkit",
// separated by NUL as in /proc/PID/cmdline. Whatever the words: no crash; help and version
// exit 0 with text on stdout only; a usage error exits 2 with the command and the way to its
// help on stderr only; a run keeps PROGRAM's words exactly as given, at the end of the line;
// stop and status always have a PID file; reading the same line twice gives the same
// answer (getopt_long's state in libc is reset between reads); and what reaches the terminal
// (through terminal_text, as main prints it) has no control byte but '\n', no C1 or bidi
// control and no invalid UTF-8, and every line of the text is kept.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemonkit/cli/options.h"
#include "daemonkit/cli/terminal_text.h"
#include "fuzz_check.h"
#include "utf8_check.h"

namespace {

using namespace daemonkit::cli;

std::vector<std::string> words_of(std::string_view bytes) {
  std::vector<std::string> words{"daemonkit"};
  if (bytes.empty()) return words;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = bytes.find('\0', start);
    words.emplace_back(bytes.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return words;
}

bool same(const Parsed& a, const Parsed& b) {
  if (a.index() != b.index()) return false;
  if (const auto* early = std::get_if<EarlyExit>(&a)) {
    const auto& other = std::get<EarlyExit>(b);
    return early->code == other.code && early->out == other.out && early->err == other.err;
  }
  if (const auto* run = std::get_if<RunOptions>(&a)) return *run == std::get<RunOptions>(b);
  if (const auto* stop = std::get_if<StopOptions>(&a)) return *stop == std::get<StopOptions>(b);
  return std::get<StatusOptions>(a) == std::get<StatusOptions>(b);
}

void check_printable(const std::string& raw) {
  const std::string printed = terminal_text(raw);
  std::string lines_joined = printed;  // '\n' is the one control allowed through
  std::erase(lines_joined, '\n');
  FUZZ_CHECK(!daemonkit::core::testing::has_control(lines_joined));
  FUZZ_CHECK(!daemonkit::core::testing::has_bidi_control(printed));
  FUZZ_CHECK(daemonkit::core::testing::is_valid_utf8(printed));
  FUZZ_CHECK(std::count(printed.begin(), printed.end(), '\n') ==
             std::count(raw.begin(), raw.end(), '\n'));
  FUZZ_CHECK(terminal_text(printed) == printed);
}

void check_early_exit(const EarlyExit& early) {
  check_printable(early.out);
  check_printable(early.err);
  if (early.code == 0) {
    FUZZ_CHECK(!early.out.empty());
    FUZZ_CHECK(early.err.empty());
    return;
  }
  FUZZ_CHECK(early.code == kUsageExit);
  FUZZ_CHECK(early.out.empty());
  FUZZ_CHECK(early.err.starts_with("daemonkit"));
  const bool with_help = early.err.starts_with("daemonkit: a command is required\n");
  FUZZ_CHECK(with_help || early.err.ends_with(" --help' for more information.\n"));
}

void check_run(const RunOptions& run, const std::vector<std::string>& words) {
  FUZZ_CHECK(!run.command.empty());
  FUZZ_CHECK(!run.command.front().empty());
  FUZZ_CHECK(run.command.size() < words.size());
  // PROGRAM's words are the line's last ones, untouched.
  const std::size_t start = words.size() - run.command.size();
  for (std::size_t i = 0; i < run.command.size(); ++i)
    FUZZ_CHECK(run.command[i] == words[start + i]);
  FUZZ_CHECK(!run.rundir.empty());
  FUZZ_CHECK(!run.euid || run.uid || run.gid);
  FUZZ_CHECK(!run.nodaemon || (run.ready != ReadyMode::kPipe && !run.timeout));
  if (run.umask) FUZZ_CHECK(*run.umask <= 0777);
  if (run.timeout) FUZZ_CHECK(run.timeout->count() > 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> words =
      words_of(std::string_view(reinterpret_cast<const char*>(data), size));
  const Parsed parsed = parse_command_line(words);
  FUZZ_CHECK(same(parsed, parse_command_line(words)));

  if (const auto* early = std::get_if<EarlyExit>(&parsed)) {
    check_early_exit(*early);
  } else if (const auto* run = std::get_if<RunOptions>(&parsed)) {
    check_run(*run, words);
  } else if (const auto* stop = std::get_if<StopOptions>(&parsed)) {
    FUZZ_CHECK(!stop->pidfile.empty());
    FUZZ_CHECK(stop->timeout.count() > 0);
  } else {
    FUZZ_CHECK(!std::get<StatusOptions>(parsed).pidfile.empty());
  }
  return 0;
}
