// The `daemonkit` command line as data: what each command was asked to do, and the parser that
// turns argv into it. Parsing is pure (no I/O, no OS calls), so every option, default and usage
// error is unit-tested; resolving names and paths against the system happens later, in the
// commands, through sys::Syscalls.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "daemonkit/core/daemon/readiness_waiter.h"
#include "daemonkit/core/options/daemon_options.h"

namespace daemonkit::cli {

// Usage errors exit with this status; the umask of a daemon without --umask (core/options).
using core::kDaemonUmask;
using core::kUsageExit;

// How `run` learns that PROGRAM is ready (the launch's own modes).
using ReadyMode = core::ReadyMode;

// A user or group as given on the command line: a number, or a name to look up later.
using core::IdSpec;

// The shared daemon options (core/options: --nodaemon ... --logfile, and effective_umask),
// then run's own. An empty `logfile` here means /dev/null when daemonizing, the inherited
// stdout/stderr with --nodaemon.
struct RunOptions : core::DaemonOptionValues {
  ReadyMode ready = ReadyMode::kExec;
  std::optional<std::chrono::milliseconds> timeout;  // Unset: wait as long as it takes.
  std::vector<std::string> command;                  // PROGRAM then its arguments.

  friend bool operator==(const RunOptions&, const RunOptions&) = default;
};

struct StopOptions {
  std::string pidfile;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // Before SIGKILL.
  friend bool operator==(const StopOptions&, const StopOptions&) = default;
};

struct StatusOptions {
  std::string pidfile;
  friend bool operator==(const StatusOptions&, const StatusOptions&) = default;
};

// Parsing ended without a command to run: --help, --version, or a usage error. The caller
// prints `out` to stdout and `err` to stderr, then exits with `code`.
struct EarlyExit {
  int code = 0;
  std::string out;
  std::string err;
};

using Parsed = std::variant<RunOptions, StopOptions, StatusOptions, EarlyExit>;

// Parses a whole command line; args[0] is the program name.
[[nodiscard]] Parsed parse_command_line(const std::vector<std::string>& args);

// Parses an octal umask as twistd does, without its accidents (core/options).
using core::parse_umask;

// Parses a timeout in seconds, fractions allowed ("2", "0.5"); must be positive and finite.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_timeout(const std::string& text);

// A duration as the user wrote it in seconds: "10", "0.25" (the launch's timeout message uses it).
using core::seconds_text;

// A user or group id given as a number or a name; empty text is no spec (core/options).
using core::parse_id;

}  // namespace daemonkit::cli
