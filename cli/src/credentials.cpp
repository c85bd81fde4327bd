#include "daemonkit/cli/credentials.h"

#include <cerrno>

#include <fmt/format.h>

namespace daemonkit::cli {
namespace {

constexpr uid_t kUnchangedUid = static_cast<uid_t>(-1);
constexpr gid_t kUnchangedGid = static_cast<gid_t>(-1);

}  // namespace

LaunchResult<Credentials> resolve_credentials(sys::Syscalls& os, const std::optional<IdSpec>& uid,
                                              const std::optional<IdSpec>& gid, bool euid) {
  Credentials creds;
  creds.euid = euid;
  std::optional<gid_t> user_gid;
  if (uid) {
    auto entry = uid->number ? os.getpwuid(static_cast<uid_t>(*uid->number))
                             : os.getpwnam(uid->text.c_str());
    if (!entry) {
      return launch_failed(LaunchError::from(fmt::format("--uid {}", uid->text), entry.error()));
    }
    if (*entry) {
      creds.uid = (*entry)->uid;
      creds.user_name = (*entry)->name;
      user_gid = (*entry)->gid;
    } else if (uid->number) {
      creds.uid = static_cast<uid_t>(*uid->number);
    } else {
      return launch_failed(LaunchError{fmt::format("--uid: no such user: {}", uid->text), 0});
    }
  }
  if (gid) {
    if (gid->number) {
      creds.gid = static_cast<gid_t>(*gid->number);
    } else {
      auto entry = os.getgrnam(gid->text.c_str());
      if (!entry) {
        return launch_failed(LaunchError::from(fmt::format("--gid {}", gid->text), entry.error()));
      }
      if (!*entry) {
        return launch_failed(LaunchError{fmt::format("--gid: no such group: {}", gid->text), 0});
      }
      creds.gid = (*entry)->gid;
    }
  } else if (creds.uid) {
    if (!user_gid) {
      return launch_failed(LaunchError{
          fmt::format("--uid {}: the uid has no passwd entry, so its group is unknown; give "
                      "--gid too",
                      uid->text),
          0});
    }
    creds.gid = user_gid;
  }
  return creds;
}

LaunchResult<void> apply_credentials(sys::Syscalls& os, const Credentials& creds) {
  if (creds.empty()) return {};
  auto ids = os.getresuid();
  if (!ids) return launch_failed(LaunchError::from("getresuid", ids.error()));
  const bool privileged = ids->effective == 0;
  if (privileged && creds.gid && !creds.euid) {
    if (!creds.user_name.empty()) {
      auto done = os.initgroups(creds.user_name.c_str(), *creds.gid);
      if (!done) {
        return launch_failed(LaunchError::from(
            fmt::format("initgroups({}, {})", creds.user_name, *creds.gid), done.error()));
      }
    } else {
      const gid_t only[] = {*creds.gid};
      auto done = os.setgroups(only);
      if (!done) {
        return launch_failed(LaunchError::from(fmt::format("setgroups({})", *creds.gid),
                                               done.error()));
      }
    }
  }
  if (creds.gid) {
    const gid_t g = *creds.gid;
    auto done = creds.euid ? os.setresgid(kUnchangedGid, g, kUnchangedGid) : os.setresgid(g, g, g);
    if (!done) {
      return launch_failed(LaunchError::from(
          fmt::format("{}({})", creds.euid ? "setegid" : "setresgid", g), done.error()));
    }
  }
  if (creds.uid) {
    const uid_t u = *creds.uid;
    auto done = creds.euid ? os.setresuid(kUnchangedUid, u, kUnchangedUid) : os.setresuid(u, u, u);
    if (!done) {
      return launch_failed(LaunchError::from(
          fmt::format("{}({})", creds.euid ? "seteuid" : "setresuid", u), done.error()));
    }
    if (!creds.euid) {
      // Prove it: every uid is the new one, and root cannot be taken back.
      auto after = os.getresuid();
      if (!after) return launch_failed(LaunchError::from("getresuid", after.error()));
      if (after->real != u || after->effective != u || after->saved != u) {
        return launch_failed(LaunchError{
            fmt::format("setresuid({}) left uids {}/{}/{}", u, after->real, after->effective,
                        after->saved),
            0});
      }
      if (u != 0 && os.setuid(0)) {
        return launch_failed(
            LaunchError{fmt::format("setresuid({}): root could be regained afterwards", u), 0});
      }
    }
  }
  return {};
}

}  // namespace daemonkit::cli
