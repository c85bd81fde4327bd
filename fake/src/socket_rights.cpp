// What AF_UNIX messages carry besides bytes: open file descriptions (SCM_RIGHTS) and the
// sender's credentials (SCM_CREDENTIALS), as Linux's scm_send, scm_detach_fds and
// unix_stream_read_generic handle them. A description in flight is held by its message, so its
// file stays open after the sender closes its descriptor, and is closed if the message is
// never received. Linux's garbage collector for sockets in flight inside each other is not
// modelled; such cycles are broken only when the kernel is destroyed.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "socket.h"

namespace daemonkit::fake::detail {
namespace {

// SCM_MAX_FD: the most descriptors one message may carry.
constexpr std::size_t kMaxRights = 253;

// scm_check_creds: a sender may state its own pid and any of its real, effective or saved ids;
// privilege (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID) may state any.
sys::Result<Credentials> checked_credentials(Kernel& kernel, const Process& sender,
                                             const ucred& stated) {
  if (stated.uid == static_cast<uid_t>(-1) || stated.gid == static_cast<gid_t>(-1)) {
    return sys::fail(EINVAL, "sendmsg");
  }
  const bool root = sender.privileged();
  const bool pid_ok = stated.pid == sender.pid || root;
  const bool uid_ok = root || stated.uid == sender.uids.real ||
                      stated.uid == sender.uids.effective || stated.uid == sender.uids.saved;
  const bool gid_ok = root || stated.gid == sender.gids.real ||
                      stated.gid == sender.gids.effective || stated.gid == sender.gids.saved;
  if (!pid_ok || !uid_ok || !gid_ok) return sys::fail(EPERM, "sendmsg");
  // A privileged sender may name another process, which must exist (a zombie still does).
  const Process* named = kernel.find(stated.pid);
  if (named == nullptr || named->state == ProcessState::kReaped) {
    return sys::fail(ESRCH, "sendmsg");
  }
  return Credentials{stated.pid, stated.uid, stated.gid};
}

}  // namespace

sys::Result<Ancillary> parse_control(Kernel& kernel, Process& sender, const Socket& socket,
                                     const msghdr& msg) {
  Ancillary extra;
  // CMSG_FIRSTHDR is null for a buffer shorter than one header: nothing to read.
  if (msg.msg_controllen == 0 || msg.msg_control == nullptr) return extra;
  auto* walk = const_cast<msghdr*>(&msg);
  for (cmsghdr* c = CMSG_FIRSTHDR(walk); c != nullptr; c = CMSG_NXTHDR(walk, c)) {
    const auto* end = static_cast<const unsigned char*>(msg.msg_control) + msg.msg_controllen;
    // CMSG_OK: a header whose length is short or runs past the buffer.
    if (c->cmsg_len < sizeof(cmsghdr) ||
        c->cmsg_len > static_cast<std::size_t>(end - reinterpret_cast<unsigned char*>(c))) {
      return sys::fail(EINVAL, "sendmsg");
    }
    if (!socket.is_unix()) {
      // TCP passes only socket-level messages to sock_cmsg_send, which knows none of these
      // (and skips other levels); UDP's ip_cmsg_send takes IP-level ones the fake does not model.
      if (c->cmsg_level == SOL_SOCKET || !socket.is_stream()) return sys::fail(EINVAL, "sendmsg");
      continue;
    }
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      if (count == 0) continue;
      if (extra.rights.size() + count > kMaxRights) return sys::fail(EINVAL, "sendmsg");
      for (std::size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        FdEntry* entry = kernel.fd_entry(sender, fd);
        if (entry == nullptr) return sys::fail(EBADF, "sendmsg");
        extra.rights.push_back(entry->file);
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      if (c->cmsg_len != CMSG_LEN(sizeof(ucred))) return sys::fail(EINVAL, "sendmsg");
      ucred stated{};
      std::memcpy(&stated, CMSG_DATA(c), sizeof stated);
      auto checked = checked_credentials(kernel, sender, stated);
      if (!checked) return sys::fail(checked.error());
      extra.credentials = *checked;
    } else {
      return sys::fail(EINVAL, "sendmsg");
    }
  }
  return extra;
}

void stream_attach(StreamChannel& channel, std::size_t n, Ancillary extra) {
  // Runs cover the unread bytes contiguously from the front once there is one; a channel that
  // never carried anything keeps none.
  const std::uint64_t end = channel.consumed + channel.bytes.size();
  const bool plain = extra.rights.empty() && !extra.credentials;
  if (channel.runs.empty()) {
    if (plain) return;
    const std::uint64_t start = end - n;
    if (start > channel.consumed) channel.runs.push_back(StreamRun{start, {}});
  } else if (extra.rights.empty()) {
    StreamRun& last = channel.runs.back();
    if (last.extra.rights.empty() && last.extra.credentials == extra.credentials) {
      last.end = end;  // more bytes like the run's before them join it
      return;
    }
  }
  channel.runs.push_back(StreamRun{end, std::move(extra)});
}

std::size_t stream_read_limit(StreamChannel& channel, std::size_t want, bool check_credentials,
                              bool peek, Received* info) {
  if (channel.runs.empty()) return want;
  const std::uint64_t limit = channel.consumed + want;
  std::uint64_t at = channel.consumed;
  const std::optional<Credentials> first = channel.runs.front().extra.credentials;
  std::size_t finished = 0;  // runs read to their end
  for (StreamRun& run : channel.runs) {
    if (at >= limit) break;
    // unix_skb_scm_eq: with SO_PASSCRED, another sender's bytes wait for the next read.
    if (check_credentials && run.extra.credentials != first) break;
    at = std::min(limit, run.end);
    if (!run.extra.rights.empty()) {
      // Descriptors go with the first read that touches their run (a peek copies them), and
      // that read ends with the run.
      if (info != nullptr) info->rights = run.extra.rights;
      if (!peek) run.extra.rights.clear();
      if (at == run.end) ++finished;
      break;
    }
    if (at < run.end) break;
    ++finished;
  }
  if (info != nullptr) info->credentials = first;
  if (!peek) {
    channel.runs.erase(channel.runs.begin(),
                       channel.runs.begin() + static_cast<std::ptrdiff_t>(finished));
  }
  return static_cast<std::size_t>(at - channel.consumed);
}

Credentials peer_credentials_of(const Process& p) {
  return Credentials{p.pid, p.uids.effective, p.gids.effective};
}

void put_rights(Kernel& kernel, Process& receiver, msghdr& msg, std::size_t& used, Rights rights,
                bool cloexec) {
  const std::size_t room = msg.msg_control == nullptr ? 0 : msg.msg_controllen - used;
  const std::size_t fit = room <= sizeof(cmsghdr) ? 0 : (room - sizeof(cmsghdr)) / sizeof(int);
  std::vector<int> fds;
  for (std::size_t i = 0; i < std::min(fit, rights.size()); ++i) {
    auto fd = kernel.allocate_fd(receiver, rights[i], cloexec, 0, "recvmsg");
    if (!fd) break;  // EMFILE: this one and the rest are closed
    fds.push_back(*fd);
  }
  if (fds.size() < rights.size()) msg.msg_flags |= MSG_CTRUNC;
  if (fds.empty()) return;
  auto* at = static_cast<unsigned char*>(msg.msg_control) + used;
  cmsghdr header{};
  header.cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
  header.cmsg_level = SOL_SOCKET;
  header.cmsg_type = SCM_RIGHTS;
  std::memcpy(at, &header, sizeof header);
  std::memcpy(at + CMSG_LEN(0), fds.data(), fds.size() * sizeof(int));
  used += std::min<std::size_t>(CMSG_SPACE(fds.size() * sizeof(int)), room);
  // The descriptions that did not fit drop here with `rights`, closing their files if nothing
  // else holds them.
}

void note_rights_sent(Kernel& kernel, const std::shared_ptr<Socket>& receiver) {
  auto& list = kernel.sockets_sent_rights;
  std::erase_if(list, [](const std::weak_ptr<OpenFile>& w) { return w.expired(); });
  list.push_back(receiver);
}

void release_in_flight(Kernel& kernel) {
  // Moved out first: dropping a description may end a socket, whose end touches the kernel.
  const auto holders = std::move(kernel.sockets_sent_rights);
  for (const auto& weak : holders) {
    auto socket = std::dynamic_pointer_cast<Socket>(weak.lock());
    if (!socket) continue;
    std::vector<Rights> dropped;
    for (Datagram& d : socket->inbox) dropped.push_back(std::move(d.rights));
    if (socket->rx) {
      for (StreamRun& run : socket->rx->runs) dropped.push_back(std::move(run.extra.rights));
    }
  }
}

}  // namespace daemonkit::fake::detail
