#include "daemonkit/core/options/daemon_options.h"

#include <fmt/format.h>

#include <cstdlib>

namespace daemonkit::core {
namespace {

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> apply_daemon_option(DaemonOption which, const std::string& value,
                                               DaemonOptionValues& options) {
  switch (which) {
    case DaemonOption::kNodaemon:
      options.nodaemon = true;
      break;
    case DaemonOption::kPidfile:
      options.pidfile = value;
      break;
    case DaemonOption::kRundir:
      if (value.empty()) return "--rundir: a directory is required";
      options.rundir = value;
      break;
    case DaemonOption::kChroot:
      options.chroot = value;
      break;
    case DaemonOption::kUmask:
      options.umask = parse_umask(value);
      if (!options.umask) {
        return fmt::format("--umask: '{}' is not an octal mode from 0 to 0777 (e.g. 022)", value);
      }
      break;
    case DaemonOption::kUid:
      options.uid = parse_id(value);
      break;
    case DaemonOption::kGid:
      options.gid = parse_id(value);
      break;
    case DaemonOption::kEuid:
      options.euid = true;
      break;
    case DaemonOption::kLogfile:
      options.logfile = value;
      break;
  }
  return std::nullopt;
}

std::optional<std::string> check_daemon_options(const DaemonOptionValues& options) {
  if (options.euid && !options.uid && !options.gid) return "--euid needs --uid or --gid";
  return std::nullopt;
}

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

}  // namespace daemonkit::core
