#include "daemonkit/cli/options.h"

#include <fmt/format.h>

#include <array>
#include <cstdlib>
#include <string_view>

#include "daemonkit/cli/option_table.h"
#include "daemonkit/cli/version.h"

namespace daemonkit::cli {
namespace {

constexpr OptionSpec kHelpOption{"help", 'h', "", "Print this help and exit."};

// run's options, in the order --help lists them: its own, the daemon options it shares with
// app::run (core/options), then its own again.
enum RunOption : std::size_t {
  kRunHelp,
  kFirstDaemonOption,
  kReady = kFirstDaemonOption + core::kDaemonOptionCount,
  kRunTimeout,
};

constexpr std::array kRunOptions = core::join_options(
    std::array{kHelpOption}, core::daemon_option_specs(core::DaemonSubject::kProgram),
    std::array{
        OptionSpec{"ready", 0, "MODE",
                   "When PROGRAM is ready: exec (once exec'd; the default), notify (READY=1 on "
                   "$NOTIFY_SOCKET), pipe (the status pipe on $DAEMONKIT_STATUS_FD)."},
        OptionSpec{"timeout", 0, "SECONDS",
                   "Give up if PROGRAM is not ready after SECONDS (it is then sent SIGTERM)."},
    });

constexpr std::array kRunOperands{
    HelpEntry{"PROGRAM [ARGS...]",
              "The program to run and its arguments: the first word that is not an option, or "
              "everything after --. Its arguments are passed on untouched, even ones that look "
              "like daemonkit's options."},
};

constexpr CommandSpec kRunCommand{
    "daemonkit run",
    "[OPTIONS] [--] PROGRAM [ARGS...]",
    "Start PROGRAM as a daemon and wait until it is ready.",
    kRunOptions,
    kRunOperands,
    {},
    R"(PROGRAM is started as a daemon once the options are applied: double fork, new
session, stdin on /dev/null, stdout and stderr appended to --logfile, umask,
chroot, chdir to --rundir, PID file (locked for PROGRAM's lifetime), privileges,
then exec. The launcher exits 0 once PROGRAM is ready (see --ready), or 1 with
the reason on stderr:
  An error has occurred: <step>: <cause>
  Please look at log file for more information.
Usage errors exit 2.)",
};

enum StopOption : std::size_t { kStopHelp, kStopPidfile, kStopTimeout };

constexpr std::array kStopOptions{
    kHelpOption,
    OptionSpec{"pidfile", 0, "PATH", "The daemon's PID file (required)."},
    OptionSpec{"timeout", 0, "SECONDS",
               "Seconds to wait after SIGTERM before SIGKILL (default 10)."},
};

constexpr CommandSpec kStopCommand{
    "daemonkit stop",
    "--pidfile PATH [--timeout SECONDS]",
    "Stop the daemon named by a PID file.",
    kStopOptions,
    {},
    {},
    R"(Sends SIGTERM through a pidfd, waits up to --timeout, then sends SIGKILL, and
removes the PID file. Exit 0 when it stopped the daemon, 1 when nothing was
running (a stale PID file is removed and reported), 2 on usage errors.)",
};

enum StatusOption : std::size_t { kStatusHelp, kStatusPidfile };

constexpr std::array kStatusOptions{
    kHelpOption,
    OptionSpec{"pidfile", 0, "PATH", "The daemon's PID file (required)."},
};

constexpr CommandSpec kStatusCommand{
    "daemonkit status",
    "--pidfile PATH",
    "Report whether the daemon of a PID file runs.",
    kStatusOptions,
    {},
    {},
    R"(Exit status as LSB init scripts report it: 0 running (the pid is printed),
1 dead but the PID file exists, 3 not running, 4 status unknown (the PID file
cannot be read), 2 usage error.)",
};

enum TopOption : std::size_t { kTopHelp, kTopVersion };

constexpr std::array kTopOptions{
    kHelpOption,
    OptionSpec{"version", 0, "", "Print the name and version and exit."},
};

constexpr std::array kTopCommands{
    HelpEntry{"run", kRunCommand.summary},
    HelpEntry{"stop", kStopCommand.summary},
    HelpEntry{"status", kStatusCommand.summary},
};

constexpr CommandSpec kTopCommand{
    "daemonkit",
    "[--help | --version] COMMAND [OPTIONS]",
    "Turns any program into a Unix daemon: readiness, PID file, privileges, log file.",
    kTopOptions,
    {},
    kTopCommands,
    "Run 'daemonkit COMMAND --help' for a command's options. See daemonkit(1).",
};

EarlyExit usage_error(std::string_view where, std::string_view problem) {
  return EarlyExit{
      kUsageExit, "",
      fmt::format("{}: {}\nRun '{} --help' for more information.\n", where, problem, where)};
}

// twistd's rule, for all three commands: an empty --pidfile means "no PID file". run can do
// without one; stop and status cannot, and say so in the rule's own words.
std::optional<EarlyExit> pidfile_required(std::string_view where, std::string_view command,
                                          const std::optional<std::string>& given) {
  if (!given) return usage_error(where, "--pidfile: a path is required");
  if (given->empty()) {
    return usage_error(where, fmt::format("--pidfile '' means no PID file; {} needs one", command));
  }
  return std::nullopt;
}

// run's and stop's --timeout read the same way, and say the same when they cannot.
EarlyExit bad_timeout(std::string_view where, std::string_view value) {
  return usage_error(where,
                     fmt::format("--timeout: '{}' is not a positive number of seconds", value));
}

// Which entry of `table` an option read from the command line is, as the table's enum, so a
// switch over it is warned of any option it forgets.
template <typename Index, typename Table>
Index index_in(const Table& table, const OptionValue& given) {
  return static_cast<Index>(given.option - table.data());
}

Parsed parse_run(const std::vector<std::string>& args, std::size_t command) {
  const std::string_view where = kRunCommand.name;
  auto read = read_options(kRunCommand, args, command);
  if (!read) return usage_error(where, read.error());
  RunOptions run_options;
  core::DaemonOptionValues& daemon = run_options;
  for (const OptionValue& given : read->values) {
    const std::string& value = given.value;
    const RunOption index = index_in<RunOption>(kRunOptions, given);
    if (index >= kFirstDaemonOption && index < kReady) {
      const auto which = static_cast<core::DaemonOption>(index - kFirstDaemonOption);
      if (auto problem = core::apply_daemon_option(which, value, daemon)) {
        return usage_error(where, *problem);
      }
      continue;
    }
    switch (index) {
      case kRunHelp:
        return EarlyExit{0, help_text(kRunCommand), ""};
      case kFirstDaemonOption:  // handled above, with every shared option
        break;
      case kReady:
        if (value == "exec") {
          run_options.ready = ReadyMode::kExec;
        } else if (value == "notify") {
          run_options.ready = ReadyMode::kNotify;
        } else if (value == "pipe") {
          run_options.ready = ReadyMode::kPipe;
        } else {
          return usage_error(where,
                             fmt::format("--ready: '{}' is not one of exec, notify, pipe", value));
        }
        break;
      case kRunTimeout:
        run_options.timeout = parse_timeout(value);
        if (!run_options.timeout) return bad_timeout(where, value);
        break;
    }
  }
  run_options.command.assign(args.begin() + static_cast<std::ptrdiff_t>(read->rest), args.end());

  if (auto problem = core::check_daemon_options(daemon)) return usage_error(where, *problem);
  if (run_options.nodaemon && run_options.ready == ReadyMode::kPipe) {
    return usage_error(where,
                       "--ready=pipe needs a launcher to report to; it cannot be "
                       "combined with --nodaemon");
  }
  if (run_options.nodaemon && run_options.timeout) {
    return usage_error(where,
                       "--timeout needs a launcher that waits; it cannot be combined "
                       "with --nodaemon");
  }
  if (run_options.command.empty() || run_options.command.front().empty()) {
    return usage_error(where, "PROGRAM is required: daemonkit run [OPTIONS] -- PROGRAM [ARGS...]");
  }
  return run_options;
}

// stop and status take options only; a word left over is a mistake, not an operand.
std::optional<EarlyExit> no_operands(const CommandSpec& spec, const std::vector<std::string>& args,
                                     const ReadOptions& read) {
  if (read.rest == args.size()) return std::nullopt;
  return usage_error(spec.name, fmt::format("unexpected argument '{}'", args[read.rest]));
}

Parsed parse_stop(const std::vector<std::string>& args, std::size_t command) {
  const std::string_view where = kStopCommand.name;
  auto read = read_options(kStopCommand, args, command);
  if (!read) return usage_error(where, read.error());
  StopOptions stop_options;
  std::optional<std::string> pidfile;
  for (const OptionValue& given : read->values) {
    switch (index_in<StopOption>(kStopOptions, given)) {
      case kStopHelp:
        return EarlyExit{0, help_text(kStopCommand), ""};
      case kStopPidfile:
        pidfile = given.value;
        break;
      case kStopTimeout: {
        auto timeout = parse_timeout(given.value);
        if (!timeout) return bad_timeout(where, given.value);
        stop_options.timeout = *timeout;
        break;
      }
    }
  }
  if (auto stray = no_operands(kStopCommand, args, *read)) return *stray;
  if (auto missing = pidfile_required(where, "stop", pidfile)) return *missing;
  stop_options.pidfile = *pidfile;
  return stop_options;
}

Parsed parse_status(const std::vector<std::string>& args, std::size_t command) {
  const std::string_view where = kStatusCommand.name;
  auto read = read_options(kStatusCommand, args, command);
  if (!read) return usage_error(where, read.error());
  StatusOptions status_options;
  std::optional<std::string> pidfile;
  for (const OptionValue& given : read->values) {
    switch (index_in<StatusOption>(kStatusOptions, given)) {
      case kStatusHelp:
        return EarlyExit{0, help_text(kStatusCommand), ""};
      case kStatusPidfile:
        pidfile = given.value;
        break;
    }
  }
  if (auto stray = no_operands(kStatusCommand, args, *read)) return *stray;
  if (auto missing = pidfile_required(where, "status", pidfile)) return *missing;
  status_options.pidfile = *pidfile;
  return status_options;
}

}  // namespace

// Plain decimals only ("2", "2.5", ".25"), read digit by digit: in binary floating point
// 2.007 * 1000 is a hair above 2007 and would round up to 2008 ms. Digits past the third
// decimal round up, so a timeout is never shorter than asked.
std::optional<std::chrono::milliseconds> parse_timeout(const std::string& text) {
  constexpr long long kMaxMs = 86400LL * 1000;  // a day: far beyond any start-up
  long long ms = 0;
  int decimals = -1;  // digits seen after the point; -1 before it
  bool any_digit = false;
  bool round_up = false;
  for (char c : text) {
    if (c == '.') {
      if (decimals >= 0) return std::nullopt;
      decimals = 0;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    any_digit = true;
    const int digit = c - '0';
    if (decimals < 0) {
      ms = ms * 10 + digit * 1000;
      if (ms > kMaxMs) return std::nullopt;
    } else if (decimals < 3) {
      static constexpr int kScale[] = {100, 10, 1};
      ms += digit * kScale[decimals++];
    } else if (digit != 0) {
      round_up = true;
    }
  }
  if (round_up) ++ms;
  if (!any_digit || ms == 0 || ms > kMaxMs) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

Parsed parse_command_line(const std::vector<std::string>& args) {
  const std::string_view name = kTopCommand.name;
  if (args.empty()) return usage_error(name, "a command is required");
  auto top = read_options(kTopCommand, args, 0);
  if (!top) return usage_error(name, top.error());
  // --help or --version: the first one given is answered, the rest of the line ignored.
  if (!top->values.empty()) {
    switch (index_in<TopOption>(kTopOptions, top->values.front())) {
      case kTopHelp:
        return EarlyExit{0, help_text(kTopCommand), ""};
      case kTopVersion:
        return EarlyExit{0, std::string(kVersionText) + "\n", ""};
    }
  }
  if (top->rest == args.size()) {
    return EarlyExit{kUsageExit, "",
                     fmt::format("{}: a command is required\n{}", name, help_text(kTopCommand))};
  }
  const std::string& command = args[top->rest];
  if (command == "run") return parse_run(args, top->rest);
  if (command == "stop") return parse_stop(args, top->rest);
  if (command == "status") return parse_status(args, top->rest);
  return usage_error(name, fmt::format("'{}' is not a command (run, stop, status)", command));
}

}  // namespace daemonkit::cli
