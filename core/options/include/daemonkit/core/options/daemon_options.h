// The options every in-process or exec'd daemon takes (twistd's --nodaemon, --pidfile, --rundir,
// --chroot, --umask, --uid, --gid, --euid, --logfile), defined once for both command lines that
// have them: `daemonkit run` (a PROGRAM it execs) and app::run (the application in this
// process). Each row has one name, one value shape and one parser; only the help's words differ,
// because what the option does is said of a different subject (PROGRAM, or the application).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/options/option_table.h"

namespace daemonkit::core {

// Usage errors exit with this status (twistd exits 0 on them: twisted#12656).
inline constexpr int kUsageExit = 2;

// The umask a daemon gets when --umask is not given (twistd's default).
inline constexpr mode_t kDaemonUmask = 0077;

// A user or group as given on the command line: a number, or a name to look up later.
struct IdSpec {
  std::string text;
  std::optional<unsigned long> number;  // Set when `text` is all decimal digits.
  friend bool operator==(const IdSpec&, const IdSpec&) = default;
};

// The rows of the shared table, in the order --help lists them.
enum class DaemonOption : std::size_t {
  kNodaemon,
  kPidfile,
  kRundir,
  kChroot,
  kUmask,
  kUid,
  kGid,
  kEuid,
  kLogfile,
};
inline constexpr std::size_t kDaemonOptionCount = 9;

// Whose help words a table is built with.
enum class DaemonSubject {
  kProgram,      // `daemonkit run`: PROGRAM is exec'd once the options are applied.
  kApplication,  // app::run: the application runs in this process.
};

namespace detail {

struct DaemonOptionRow {
  const char* long_name;
  char short_name;
  std::string_view value_name;
  std::string_view program_help;
  std::string_view application_help;
};

inline constexpr std::array<DaemonOptionRow, kDaemonOptionCount> kDaemonOptionRows{{
    {"nodaemon", 'n', "",
     "Don't daemonize, don't use the default umask of 0077: set up, then exec PROGRAM in this "
     "process (for service managers).",
     "Don't daemonize, don't use the default umask of 0077: run in the foreground (for "
     "service managers)."},
    {"pidfile", 0, "PATH",
     "Write PROGRAM's pid here, locked while it runs; refuse to start when it is held. Empty "
     "('') or not given: no PID file.",
     "Write the daemon's pid here, locked while it runs; refuse to start when it is held. Empty "
     "('') or not given: no PID file."},
    {"rundir", 'd', "DIR", "Directory to chdir to (after --chroot). Default: /",
     "Directory to chdir to (after --chroot). Default: /"},
    {"chroot", 0, "DIR", "chroot to DIR before changing to --rundir.",
     "chroot to DIR before changing to --rundir."},
    {"umask", 0, "MODE",
     "Octal umask for PROGRAM (default 0077 when daemonizing, unchanged with -n).",
     "Octal umask (default 0077 when daemonizing, unchanged with -n)."},
    {"uid", 'u', "USER", "Run as this user (name or number).",
     "Run as this user (name or number) once privileged services have started."},
    {"gid", 'g', "GROUP", "Run as this group (name or number); default: the --uid user's group.",
     "Run as this group (name or number); default: the --uid user's group."},
    {"euid", 0, "", "Set only the effective user and group ids (recoverable; use with caution).",
     "Set only the effective user and group ids (recoverable; use with caution)."},
    {"logfile", 'l', "PATH",
     "Append PROGRAM's stdout and stderr here (opened before chroot and privilege drop). "
     "Default: /dev/null when daemonizing.",
     "Log to this file, rotated by size ('-': standard output, only with --nodaemon)."},
}};

}  // namespace detail

// The shared rows as options of a command, with `subject`'s help words.
[[nodiscard]] constexpr std::array<OptionSpec, kDaemonOptionCount> daemon_option_specs(
    DaemonSubject subject) {
  std::array<OptionSpec, kDaemonOptionCount> specs{};
  for (std::size_t i = 0; i < kDaemonOptionCount; ++i) {
    const detail::DaemonOptionRow& row = detail::kDaemonOptionRows[i];
    specs[i] =
        OptionSpec{row.long_name, row.short_name, row.value_name,
                   subject == DaemonSubject::kProgram ? row.program_help : row.application_help};
  }
  return specs;
}

// A command's table from pieces: its own options before and after the shared rows.
template <std::size_t... N>
[[nodiscard]] constexpr std::array<OptionSpec, (N + ...)> join_options(
    const std::array<OptionSpec, N>&... parts) {
  std::array<OptionSpec, (N + ...)> table{};
  std::size_t at = 0;
  ((std::copy(parts.begin(), parts.end(), table.begin() + static_cast<std::ptrdiff_t>(at)),
    at += N),
   ...);
  return table;
}

// What the shared options ask for, before any name or path is resolved.
struct DaemonOptionValues {
  bool nodaemon = false;
  std::string pidfile;       // Empty: no PID file.
  std::string rundir = "/";  // chdir'd to after chroot.
  std::string chroot;        // Empty: no chroot.
  std::optional<mode_t> umask;
  std::optional<IdSpec> uid;
  std::optional<IdSpec> gid;
  bool euid = false;    // Set only the effective ids.
  std::string logfile;  // Empty: the command's default.

  // The umask to apply: --umask, else 0077 when daemonizing, else none (kept as is).
  [[nodiscard]] std::optional<mode_t> effective_umask() const {
    if (umask) return umask;
    if (!nodaemon) return kDaemonUmask;
    return std::nullopt;
  }
  friend bool operator==(const DaemonOptionValues&, const DaemonOptionValues&) = default;
};

// Records one shared option read from the command line; a bad value comes back as the
// sentence to show the user ("--umask: '9' is not an octal mode ...").
[[nodiscard]] std::optional<std::string> apply_daemon_option(DaemonOption which,
                                                             const std::string& value,
                                                             DaemonOptionValues& options);

// The rules between shared options, checked once all are read: --euid needs --uid or --gid.
[[nodiscard]] std::optional<std::string> check_daemon_options(const DaemonOptionValues& options);

// Parses an octal file mode creation mask as twistd does ("022", "0022", "0o22"), but rejects
// what twistd accepts by accident: signs, underscores, digits 8 and 9, values above 0777.
[[nodiscard]] std::optional<mode_t> parse_umask(const std::string& text);

// A user or group id given as a number or a name; empty text is no spec.
[[nodiscard]] std::optional<IdSpec> parse_id(const std::string& text);

}  // namespace daemonkit::core
