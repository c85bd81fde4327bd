// User and group ids with Linux's rules (privilege is modelled as euid 0, standing for
// CAP_SETUID/CAP_SETGID): an unprivileged process may only move among its own real,
// effective and saved ids; setgroups needs privilege. Also the passwd and group database.
#include <algorithm>

#include "kernel.h"

namespace daemonkit::fake::detail {
namespace {

template <typename Id>
bool one_of(Id id, const sys::ResIds<Id>& ids) {
  return id == static_cast<Id>(-1) || id == ids.real || id == ids.effective || id == ids.saved;
}

template <typename Id>
void apply(sys::ResIds<Id>& ids, Id r, Id e, Id s) {
  if (r != static_cast<Id>(-1)) ids.real = r;
  if (e != static_cast<Id>(-1)) ids.effective = e;
  if (s != static_cast<Id>(-1)) ids.saved = s;
}

// Linux clears the dumpable flag and the parent-death signal whenever an effective (or
// filesystem) id changes: a process that switched privileges cannot be ptraced or dump core
// by default, and a PR_SET_PDEATHSIG set before dropping root is lost.
template <typename Id>
void note_change(Process& p, const sys::ResIds<Id>& before, const sys::ResIds<Id>& after) {
  if (before.effective != after.effective) {
    p.dumpable = 0;
    p.pdeathsig = 0;
  }
}

}  // namespace

sys::Result<void> Kernel::setresuid(Process& p, uid_t r, uid_t e, uid_t s, const char* call) {
  if (!p.privileged() && !(one_of(r, p.uids) && one_of(e, p.uids) && one_of(s, p.uids))) {
    return sys::fail(EPERM, call);
  }
  const auto before = p.uids;
  apply(p.uids, r, e, s);
  note_change(p, before, p.uids);
  return {};
}

sys::Result<void> Kernel::setresgid(Process& p, gid_t r, gid_t e, gid_t s, const char* call) {
  if (!p.privileged() && !(one_of(r, p.gids) && one_of(e, p.gids) && one_of(s, p.gids))) {
    return sys::fail(EPERM, call);
  }
  const auto before = p.gids;
  apply(p.gids, r, e, s);
  note_change(p, before, p.gids);
  return {};
}

sys::Result<void> Kernel::setuid(Process& p, uid_t uid) {
  if (uid == static_cast<uid_t>(-1)) return sys::fail(EINVAL, "setuid");
  const auto before = p.uids;
  if (p.privileged()) {
    p.uids = {uid, uid, uid};
  } else if (uid == p.uids.real || uid == p.uids.saved) {
    p.uids.effective = uid;
  } else {
    return sys::fail(EPERM, "setuid");
  }
  note_change(p, before, p.uids);
  return {};
}

sys::Result<void> Kernel::setgid(Process& p, gid_t gid) {
  if (gid == static_cast<gid_t>(-1)) return sys::fail(EINVAL, "setgid");
  const auto before = p.gids;
  if (p.privileged()) {
    p.gids = {gid, gid, gid};
  } else if (gid == p.gids.real || gid == p.gids.saved) {
    p.gids.effective = gid;
  } else {
    return sys::fail(EPERM, "setgid");
  }
  note_change(p, before, p.gids);
  return {};
}

sys::Result<void> Kernel::setgroups(Process& p, std::span<const gid_t> list, const char* call) {
  if (list.size() > 65536) return sys::fail(EINVAL, call);
  if (!p.privileged()) return sys::fail(EPERM, call);
  // Linux keeps the list sorted (duplicates stay), and getgroups returns it that way.
  p.groups.assign(list.begin(), list.end());
  std::sort(p.groups.begin(), p.groups.end());
  return {};
}

// As glibc's files back end: the given group first, then every other database group naming
// the user (the given gid is not repeated even when an entry for it names the user).
std::vector<gid_t> Kernel::group_list(std::string_view user, gid_t group) const {
  std::vector<gid_t> list{group};
  for (const auto& g : groups) {
    if (g.gid == group) continue;
    if (std::find(g.members.begin(), g.members.end(), user) != g.members.end()) {
      list.push_back(g.gid);
    }
  }
  return list;
}

std::optional<sys::Passwd> Kernel::user_by_name(std::string_view name) const {
  for (const auto& u : users) {
    if (u.name == name) return u;
  }
  return std::nullopt;
}

std::optional<sys::Passwd> Kernel::user_by_uid(uid_t uid) const {
  for (const auto& u : users) {
    if (u.uid == uid) return u;
  }
  return std::nullopt;
}

std::optional<sys::Group> Kernel::group_by_name(std::string_view name) const {
  for (const auto& g : groups) {
    if (g.name == name) return g;
  }
  return std::nullopt;
}

std::optional<sys::Group> Kernel::group_by_gid(gid_t gid) const {
  for (const auto& g : groups) {
    if (g.gid == gid) return g;
  }
  return std::nullopt;
}

}  // namespace daemonkit::fake::detail
