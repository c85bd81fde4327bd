#include "daemonkit/cli/options.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "daemonkit/cli/version.h"

namespace daemonkit::cli {
namespace {

constexpr std::string_view kRunFooter = R"(PROGRAM is started as a daemon once the options are applied: double fork, new session,
stdin on /dev/null, stdout and stderr appended to --logfile, umask, chroot, chdir to --rundir,
PID file (locked for PROGRAM's lifetime), privileges, then exec. The launcher exits 0 once
PROGRAM is ready (see --ready), or 1 with the reason on stderr:
  An error has occurred: <step>: <cause>
  Please look at log file for more information.
Usage errors exit 2.)";

constexpr std::string_view kStopFooter =
    R"(Sends SIGTERM through a pidfd, waits up to --timeout, then sends SIGKILL, and removes the
PID file. Exit 0 when it stopped the daemon, 1 when nothing was running (a stale PID file is
removed and reported), 2 on usage errors.)";

constexpr std::string_view kStatusFooter =
    R"(Exit status as LSB init scripts report it: 0 running (the pid is printed), 1 dead but the
PID file exists, 3 not running, 4 status unknown (the PID file cannot be read), 2 usage error.)";

// Where the command's own arguments start: after `--`, or at the first word that is neither an
// option nor an option's value. Everything from there on belongs to PROGRAM, untouched, so
// `daemonkit run prog --pidfile x` passes `--pidfile x` to prog.
std::size_t command_start(const CLI::App& run, const std::vector<std::string>& args,
                          std::size_t first) {
  for (std::size_t i = first; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--" || arg.empty() || arg[0] != '-' || arg == "-") return i;
    if (arg.find('=') != std::string::npos) continue;  // --name=value
    std::string name = arg;
    // A short option with its value attached (-lfile) carries it; a bare one takes the next.
    if (arg.size() > 2 && arg[1] != '-') name = arg.substr(0, 2);
    const CLI::Option* option = run.get_option_no_throw(name);
    if (option != nullptr && option->get_items_expected_min() > 0 && name == arg) ++i;
  }
  return args.size();
}

EarlyExit usage_error(std::string_view where, std::string_view problem) {
  return EarlyExit{
      kUsageExit, "",
      fmt::format("{}: {}\nRun '{} --help' for more information.\n", where, problem, where)};
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::optional<mode_t> parse_umask(const std::string& text) {
  std::string_view digits = text;
  if (digits.starts_with("0o") || digits.starts_with("0O")) digits.remove_prefix(2);
  if (digits.empty() || digits.size() > 12) return std::nullopt;
  unsigned long value = 0;
  for (char c : digits) {
    if (c < '0' || c > '7') return std::nullopt;
    value = value * 8 + static_cast<unsigned long>(c - '0');
  }
  if (value > 0777) return std::nullopt;
  return static_cast<mode_t>(value);
}

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

std::string seconds_text(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return fmt::format("{}", duration.count() / 1000);
  return fmt::format("{:g}", static_cast<double>(duration.count()) / 1000);
}

std::optional<IdSpec> parse_id(const std::string& text) {
  if (text.empty()) return std::nullopt;
  IdSpec spec{text, std::nullopt};
  if (all_digits(text) && text.size() <= 10) {
    const unsigned long value = std::strtoul(text.c_str(), nullptr, 10);
    // (uid_t)-1 means "unchanged" to set*id, so it can never name a user.
    if (value < 0xFFFFFFFFUL) spec.number = value;
  }
  return spec;
}

Parsed parse_command_line(const std::vector<std::string>& args) {
  const std::string name = "daemonkit";
  CLI::App app{"Turns any program into a Unix daemon: readiness, PID file, privileges, log file.",
               name};
  app.set_version_flag("--version", std::string(kVersionText));
  app.require_subcommand(1);
  app.footer("Run 'daemonkit COMMAND --help' for a command's options. See daemonkit(1).");

  RunOptions run_options;
  std::string umask_text;
  std::string uid_text;
  std::string gid_text;
  std::string ready_text = "exec";
  std::string run_timeout_text;
  CLI::App* run = app.add_subcommand("run", "Start PROGRAM as a daemon and wait until it is ready.");
  run->footer(std::string(kRunFooter));
  run->add_flag("-n,--nodaemon", run_options.nodaemon,
                "Don't daemonize, don't use the default umask of 0077: set up, then exec PROGRAM "
                "in this process (for service managers).");
  run->add_option("--pidfile", run_options.pidfile,
                  "Write PROGRAM's pid here, locked while it runs; refuse to start when it is held.")
      ->type_name("PATH");
  run->add_option("-d,--rundir", run_options.rundir, "Directory to chdir to (after --chroot).")
      ->type_name("DIR")
      ->capture_default_str();
  run->add_option("--chroot", run_options.chroot, "chroot to DIR before changing to --rundir.")
      ->type_name("DIR");
  run->add_option("--umask", umask_text,
                  "Octal umask for PROGRAM (default 0077 when daemonizing, unchanged with -n).")
      ->type_name("MODE");
  run->add_option("-u,--uid", uid_text, "Run as this user (name or number).")->type_name("USER");
  run->add_option("-g,--gid", gid_text,
                  "Run as this group (name or number); default: the --uid user's group.")
      ->type_name("GROUP");
  run->add_flag("--euid", run_options.euid,
                "Set only the effective user and group ids (recoverable; use with caution).");
  run->add_option("-l,--logfile", run_options.logfile,
                  "Append PROGRAM's stdout and stderr here (opened before chroot and privilege "
                  "drop). Default: /dev/null when daemonizing.")
      ->type_name("PATH");
  run->add_option("--ready", ready_text,
                  "When PROGRAM is ready: exec (once exec'd), notify (READY=1 on $NOTIFY_SOCKET), "
                  "pipe (the status pipe on $DAEMONKIT_STATUS_FD).")
      ->type_name("MODE")
      ->capture_default_str();
  run->add_option("--timeout", run_timeout_text,
                  "Give up if PROGRAM is not ready after SECONDS (it is then sent SIGTERM).")
      ->type_name("SECONDS");
  // Never filled (the words after the options are split off before parsing); it is here so the
  // help's usage line and list show where PROGRAM goes.
  std::vector<std::string> program_for_help;
  run->add_option("PROGRAM", program_for_help,
                  "The program to run and its arguments, after --: daemonkit run [OPTIONS] -- "
                  "PROGRAM [ARGS...]");

  StopOptions stop_options;
  std::string stop_timeout_text;
  CLI::App* stop = app.add_subcommand("stop", "Stop the daemon named by a PID file.");
  stop->footer(std::string(kStopFooter));
  stop->add_option("--pidfile", stop_options.pidfile, "The daemon's PID file.")
      ->type_name("PATH")
      ->required();
  stop->add_option("--timeout", stop_timeout_text,
                   "Seconds to wait after SIGTERM before SIGKILL (default 10).")
      ->type_name("SECONDS");

  StatusOptions status_options;
  CLI::App* status = app.add_subcommand("status", "Report whether the daemon of a PID file runs.");
  status->footer(std::string(kStatusFooter));
  status->add_option("--pidfile", status_options.pidfile, "The daemon's PID file.")
      ->type_name("PATH")
      ->required();

  // Split off PROGRAM before CLI11 sees the words, so its arguments are never parsed as ours.
  std::vector<std::string> ours;
  ours.reserve(args.size());
  bool in_other_command = false;
  for (std::size_t i = args.empty() ? 0 : 1; i < args.size(); ++i) {
    ours.push_back(args[i]);
    if (in_other_command) continue;
    if (args[i] == "stop" || args[i] == "status") in_other_command = true;
    if (args[i] != "run") continue;
    const std::size_t start = command_start(*run, args, i + 1);
    ours.insert(ours.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                args.begin() + static_cast<std::ptrdiff_t>(start));
    std::size_t program = start;
    if (program < args.size() && args[program] == "--") ++program;
    run_options.command.assign(args.begin() + static_cast<std::ptrdiff_t>(program), args.end());
    break;
  }

  if (!ours.empty() && !ours.front().starts_with('-') && ours.front() != "run" &&
      !in_other_command) {
    return usage_error(name, fmt::format("'{}' is not a command (run, stop, status)", ours.front()));
  }

  try {
    // CLI11 takes the words in reverse, last first.
    std::vector<std::string> reversed(ours.rbegin(), ours.rend());
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    return EarlyExit{0, app.help(), ""};
  } catch (const CLI::CallForAllHelp&) {
    return EarlyExit{0, app.help("", CLI::AppFormatMode::All), ""};
  } catch (const CLI::CallForVersion& e) {
    return EarlyExit{0, std::string(e.what()) + "\n", ""};
  } catch (const CLI::ParseError& e) {
    std::string where = name;
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    if (app.get_subcommands().empty() && ours.empty()) {
      return EarlyExit{kUsageExit, "", fmt::format("{}: a command is required\n{}", name,
                                                   app.help())};
    }
    return usage_error(where, e.what());
  }

  if (stop->parsed()) {
    if (!stop_timeout_text.empty()) {
      auto timeout = parse_timeout(stop_timeout_text);
      if (!timeout) {
        return usage_error("daemonkit stop",
                           fmt::format("--timeout: '{}' is not a positive number of seconds",
                                       stop_timeout_text));
      }
      stop_options.timeout = *timeout;
    }
    if (stop_options.pidfile.empty()) {
      return usage_error("daemonkit stop", "--pidfile: a path is required");
    }
    return stop_options;
  }
  if (status->parsed()) {
    if (status_options.pidfile.empty()) {
      return usage_error("daemonkit status", "--pidfile: a path is required");
    }
    return status_options;
  }

  const std::string_view where = "daemonkit run";
  if (!umask_text.empty()) {
    run_options.umask = parse_umask(umask_text);
    if (!run_options.umask) {
      return usage_error(where, fmt::format("--umask: '{}' is not an octal mode from 0 to 0777 "
                                            "(e.g. 022)",
                                            umask_text));
    }
  }
  run_options.uid = parse_id(uid_text);
  run_options.gid = parse_id(gid_text);
  if (ready_text == "exec") {
    run_options.ready = ReadyMode::kExec;
  } else if (ready_text == "notify") {
    run_options.ready = ReadyMode::kNotify;
  } else if (ready_text == "pipe") {
    run_options.ready = ReadyMode::kPipe;
  } else {
    return usage_error(where,
                       fmt::format("--ready: '{}' is not one of exec, notify, pipe", ready_text));
  }
  if (!run_timeout_text.empty()) {
    run_options.timeout = parse_timeout(run_timeout_text);
    if (!run_options.timeout) {
      return usage_error(where, fmt::format("--timeout: '{}' is not a positive number of seconds",
                                            run_timeout_text));
    }
  }
  if (run_options.rundir.empty()) return usage_error(where, "--rundir: a directory is required");
  if (run_options.euid && !run_options.uid && !run_options.gid) {
    return usage_error(where, "--euid needs --uid or --gid");
  }
  if (run_options.nodaemon && run_options.ready == ReadyMode::kPipe) {
    return usage_error(where, "--ready=pipe needs a launcher to report to; it cannot be "
                              "combined with --nodaemon");
  }
  if (run_options.nodaemon && run_options.timeout) {
    return usage_error(where, "--timeout needs a launcher that waits; it cannot be combined "
                              "with --nodaemon");
  }
  if (run_options.command.empty() || run_options.command.front().empty()) {
    return usage_error(where, "PROGRAM is required: daemonkit run [OPTIONS] -- PROGRAM [ARGS...]");
  }
  return run_options;
}

}  // namespace daemonkit::cli
