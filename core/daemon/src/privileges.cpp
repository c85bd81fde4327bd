#include "daemonkit/core/daemon/privileges.h"

#include <array>
#include <cerrno>
#include <charconv>
#include <span>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

// A decimal id, or nothing. (uid_t)-1 is refused: setres*id reads it as "leave unchanged".
template <typename Id>
std::optional<Id> parse_id(const std::string& text) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  unsigned long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  if (value >= static_cast<unsigned long long>(static_cast<Id>(-1))) return std::nullopt;
  return static_cast<Id>(value);
}

bool is_number(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

std::string id_text(const auto& id) { return id ? std::to_string(*id) : std::string("None"); }

// Every failure here is the privileges step's: resolving the ids or shedding them.
StepError privileges_failed(std::string_view step, const sys::Error& error) {
  return StepError::from(StepKind::kPrivileges, step, error);
}
StepError privileges_refused(std::string message) {
  return StepError::plain(StepKind::kPrivileges, std::move(message));
}

}  // namespace

std::string PrivilegePlan::description() const {
  const char* e = euid ? "e" : "";
  return fmt::format("{}uid/{}gid {}/{}", e, e, id_text(uid), id_text(gid));
}

StepResult<PrivilegePlan> resolve_privileges(sys::Syscalls& os, const PrivilegeRequest& request) {
  PrivilegePlan plan;
  plan.euid = request.euid;
  std::optional<gid_t> user_gid;

  if (request.user) {
    const std::string& user = *request.user;
    if (is_number(user)) {
      plan.uid = parse_id<uid_t>(user);
      if (!plan.uid) {
        return step_failed(privileges_refused(fmt::format("Invalid uid {}", user)));
      }
      auto entry = os.getpwuid(*plan.uid);
      if (!entry) return step_failed(privileges_failed(call_on("getpwuid", user), entry.error()));
      if (*entry) {
        plan.user_name = (*entry)->name;
        user_gid = (*entry)->gid;
      }
    } else {
      auto entry = os.getpwnam(user.c_str());
      if (!entry) return step_failed(privileges_failed(call_on("getpwnam", user), entry.error()));
      if (!*entry) {
        return step_failed(privileges_refused(fmt::format("Unknown user {}", user)));
      }
      plan.uid = (*entry)->uid;
      plan.user_name = (*entry)->name;
      user_gid = (*entry)->gid;
    }
  }

  if (request.group) {
    const std::string& group = *request.group;
    if (is_number(group)) {
      plan.gid = parse_id<gid_t>(group);
      if (!plan.gid) {
        return step_failed(privileges_refused(fmt::format("Invalid gid {}", group)));
      }
    } else {
      auto entry = os.getgrnam(group.c_str());
      if (!entry) return step_failed(privileges_failed(call_on("getgrnam", group), entry.error()));
      if (!*entry) {
        return step_failed(privileges_refused(fmt::format("Unknown group {}", group)));
      }
      plan.gid = (*entry)->gid;
    }
  } else if (plan.uid) {
    if (!user_gid) {
      return step_failed(privileges_refused(fmt::format(
          "uid {} has no passwd entry, so its group is unknown; give a gid", *plan.uid)));
    }
    plan.gid = user_gid;
  }

  // The groups are read here, in the parent: after fork only setgroups may run, and a chroot
  // would hide the database anyway.
  if (!plan.user_name.empty() && plan.gid) {
    auto groups = os.getgrouplist(plan.user_name.c_str(), *plan.gid);
    if (!groups) {
      return step_failed(privileges_failed(
          fmt::format("getgrouplist({}, {})", plan.user_name, *plan.gid), groups.error()));
    }
    plan.groups = std::move(*groups);
  }
  return plan;
}

StepResult<void> shed_privileges(sys::Syscalls& os, const PrivilegePlan& plan, const LogSink& log) {
  if (plan.empty()) return {};
  auto failed = [&](StepError error) {
    log_line(log, fmt::format("failed to set {}: {} (are you root?) -- exiting.",
                              plan.description(), error.message));
    return step_failed(std::move(error));
  };

  auto before = os.getresuid();
  if (!before) return failed(privileges_failed("getresuid", before.error()));
  bool change_uid = false;
  if (plan.uid) {
    const uid_t current = plan.euid ? before->effective : before->real;
    const bool already = plan.euid ? before->effective == *plan.uid
                                   : (before->real == *plan.uid && before->effective == *plan.uid &&
                                      before->saved == *plan.uid);
    if (already) {
      log_line(log, fmt::format("tried to drop privileges and set{} {} but {} is already {}; "
                                "should we be root? Continuing.",
                                plan.euid ? "euid" : "uid", *plan.uid, plan.euid ? "euid" : "uid",
                                current));
    }
    change_uid = !already;
  }

  // Supplementary groups first: only root may set them, and root is what the later steps give
  // away. A non-root process asking for its own ids has no groups to change.
  if (before->effective == 0 && (change_uid || plan.gid)) {
    const std::array<gid_t, 1> only{plan.gid.value_or(0)};
    std::span<const gid_t> list;
    if (change_uid && !plan.groups.empty()) {
      list = plan.groups;
    } else if (plan.gid) {
      list = only;
    }
    if (!list.empty()) {
      auto done = os.setgroups(list);
      if (!done) {
        const std::string ids = fmt::format("{}", fmt::join(list, ", "));
        return failed(privileges_failed(call_on("setgroups", ids), done.error()));
      }
    }
  }

  const uid_t kKeep = static_cast<uid_t>(-1);
  const gid_t kKeepGid = static_cast<gid_t>(-1);
  if (plan.gid) {
    const gid_t g = *plan.gid;
    auto done = plan.euid ? os.setresgid(kKeepGid, g, kKeepGid) : os.setresgid(g, g, g);
    if (!done) {
      return failed(privileges_failed(
          call_on(plan.euid ? "setegid" : "setresgid", std::to_string(g)), done.error()));
    }
  }
  if (change_uid) {
    const uid_t u = *plan.uid;
    auto done = plan.euid ? os.setresuid(kKeep, u, kKeep) : os.setresuid(u, u, u);
    if (!done) {
      return failed(privileges_failed(
          call_on(plan.euid ? "seteuid" : "setresuid", std::to_string(u)), done.error()));
    }
  }

  // Prove it. setresuid can succeed partially on exotic systems, and a bug here would leave a
  // daemon that believes it is unprivileged while root is one call away.
  auto uids = os.getresuid();
  if (!uids) return failed(privileges_failed("getresuid", uids.error()));
  auto gids = os.getresgid();
  if (!gids) return failed(privileges_failed("getresgid", gids.error()));
  if (plan.uid && change_uid) {
    const bool ok = plan.euid ? uids->effective == *plan.uid
                              : (uids->real == *plan.uid && uids->effective == *plan.uid &&
                                 uids->saved == *plan.uid);
    if (!ok) {
      return failed(
          privileges_refused(fmt::format("getresuid reports {}/{}/{} after setting uid {}",
                                         uids->real, uids->effective, uids->saved, *plan.uid)));
    }
  }
  if (plan.gid) {
    const bool ok = plan.euid ? gids->effective == *plan.gid
                              : (gids->real == *plan.gid && gids->effective == *plan.gid &&
                                 gids->saved == *plan.gid);
    if (!ok) {
      return failed(
          privileges_refused(fmt::format("getresgid reports {}/{}/{} after setting gid {}",
                                         gids->real, gids->effective, gids->saved, *plan.gid)));
    }
  }
  if (!plan.euid && change_uid && *plan.uid != 0) {
    if (auto regained = os.setuid(0); regained) {
      return failed(
          privileges_refused(fmt::format("setuid(0) succeeded after dropping to uid {}: privileges "
                                         "could be regained",
                                         *plan.uid)));
    } else if (regained.error().code != EPERM) {
      return failed(privileges_failed("setuid(0)", regained.error()));
    }
  }

  log_line(log, fmt::format("set {}", plan.description()));
  return {};
}

}  // namespace daemonkit::core
