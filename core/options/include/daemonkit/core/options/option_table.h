// A command's options as one table, which both reads the command line and writes its --help,
// so the two cannot drift apart. The reading is glibc's getopt_long in its POSIX order ('+'):
// --name value, --name=value, -x value, -xvalue, bundled flags (-nd DIR), unambiguous
// prefixes of long names (--pid for --pidfile), and a stop at `--` or at the first word that
// is not an option, which is exactly where PROGRAM's own arguments begin. getopt_long costs
// nothing at start-up; CLI11, which this replaced, built its option objects and the C++
// stream and locale machinery on every launch (bench/launch, the launcher and the C reference
// alone: 1.16-1.19x the reference with CLI11, 0.99-1.01x without).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace daemonkit::core {

struct OptionSpec {
  const char* long_name;        // Without the dashes; getopt_long needs a C string.
  char short_name;              // 0: long form only.
  std::string_view value_name;  // What the value is, for help ("PATH"); empty for a flag.
  std::string_view help;
};

// A line of a help section other than the options: a command, or an operand such as PROGRAM.
struct HelpEntry {
  std::string_view term;
  std::string_view text;
};

struct CommandSpec {
  std::string_view name;     // As the user types it, e.g. "daemonkit run".
  std::string_view usage;    // What follows the name in the usage line.
  std::string_view summary;  // The help's first line.
  std::span<const OptionSpec> options;
  std::span<const HelpEntry> operands;  // Listed under "Arguments:".
  std::span<const HelpEntry> commands;  // Listed under "Commands:".
  std::string_view footer;
};

struct OptionValue {
  const OptionSpec* option;
  std::string value;  // Empty for a flag.
};

struct ReadOptions {
  std::vector<OptionValue> values;  // In the order given; each option at most once.
  // Index in `args` of the first word that is not an option; a `--` before it is consumed.
  std::size_t rest = 0;
};

// Reads the options of `spec` from args[first + 1] on (args[first] is the command's own
// name). A problem comes back as the sentence to show the user: an unknown or ambiguous
// option, a value missing or given to a flag, an option given twice.
//
// getopt_long keeps its position in libc's globals (optind, optarg, optopt, opterr); this
// resets them on entry, so calls may follow one another, but not run on two threads at once.
[[nodiscard]] tl::expected<ReadOptions, std::string> read_options(
    const CommandSpec& spec, const std::vector<std::string>& args, std::size_t first);

// The command's --help: summary, usage, arguments, options, commands, footer.
[[nodiscard]] std::string help_text(const CommandSpec& spec);

// How an option is named in messages: its long form, "--pidfile".
[[nodiscard]] std::string option_name(const OptionSpec& option);

}  // namespace daemonkit::core
