// signalfd: a descriptor that reads the caller's pending signals as signalfd_siginfo records.
//
// As on Linux, a signalfd belongs to no process: reading (and polling) it looks at the pending
// signals of whoever reads (or polls), masked by the signalfd's own set. A signal pends only
// while the process blocks it (otherwise it acts at once), so a daemon blocks its stop signals
// and watches the signalfd. The description is shared by dup and fork like any other; after a
// fork the child sees its own (initially empty) pending set through it.
#include <sys/signalfd.h>

#include <cstring>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "fake_syscalls_call.h"
#include "kernel.h"

namespace daemonkit::fake {
namespace detail {
namespace {

class SignalFd final : public OpenFile {
 public:
  SignalFd(std::shared_ptr<Inode> inode, int flags, const sigset_t& mask, Kernel& kernel)
      : OpenFile(std::move(inode), flags), mask_(mask), kernel_(kernel) {}

  std::string describe() const override { return "anon_inode:[signalfd]"; }

  void set_mask(const sigset_t& mask) { mask_ = mask; }

  sys::Result<std::size_t> read(Kernel& kernel, Process& reader,
                                std::span<std::byte> buf) override {
    constexpr std::size_t kRecord = sizeof(signalfd_siginfo);
    if (buf.size() < kRecord) return sys::fail(EINVAL, "read");
    std::size_t done = 0;
    while (done + kRecord <= buf.size()) {
      auto taken = kernel.take_pending(reader, mask_);
      if (!taken) break;
      signalfd_siginfo info{};
      info.ssi_signo = static_cast<std::uint32_t>(taken->first);
      info.ssi_code = SI_USER;
      info.ssi_pid = static_cast<std::uint32_t>(taken->second.pid);
      info.ssi_uid = taken->second.uid;
      std::memcpy(buf.data() + done, &info, kRecord);
      done += kRecord;
    }
    if (done == 0) return sys::fail(EAGAIN, "read");
    return done;
  }

  Readiness readiness() const override {
    Readiness r;
    const Process* poller = kernel_.find(kernel_.current_pid);
    if (poller == nullptr) return r;
    for (int sig = 1; sig <= kMaxSignal; ++sig) {
      if (sigismember(&poller->pending, sig) == 1 && sigismember(&mask_, sig) == 1) {
        r.readable = true;
        break;
      }
    }
    return r;
  }

  // Linux's signalfd_poll waits on the polling process's signal queue.
  const void* wait_queue(const Process& poller) const override { return &poller; }

  std::string blocked_reason(const Kernel&) const override {
    return fmt::format(
        "{}: no signal of its set is pending in pid {}; send one (blocked) from another "
        "process first, or use SFD_NONBLOCK",
        describe(), kernel_.current_pid);
  }

 private:
  sigset_t mask_;
  const Kernel& kernel_;
};

}  // namespace

std::optional<std::pair<int, SignalSource>> Kernel::take_pending(Process& p, const sigset_t& mask) {
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    if (sigismember(&p.pending, sig) == 1 && sigismember(&mask, sig) == 1) {
      sigdelset(&p.pending, sig);
      return std::make_pair(sig, p.pending_from[static_cast<std::size_t>(sig)]);
    }
  }
  return std::nullopt;
}

sys::Result<int> Kernel::signalfd(Process& p, int fd, const sigset_t& mask, int flags) {
  if (flags & ~(SFD_CLOEXEC | SFD_NONBLOCK)) return sys::fail(EINVAL, "signalfd");
  // SIGKILL and SIGSTOP can never be read: Linux drops them from the set silently.
  sigset_t set = mask;
  sigdelset(&set, SIGKILL);
  sigdelset(&set, SIGSTOP);
  if (fd == -1) {
    auto inode = new_inode(0600, 0, 0, kAnonDev);
    const int status = O_RDWR | ((flags & SFD_NONBLOCK) ? O_NONBLOCK : 0);
    auto file = std::make_shared<SignalFd>(std::move(inode), status, set, *this);
    return allocate_fd(p, std::move(file), (flags & SFD_CLOEXEC) != 0, 0, "signalfd");
  }
  FdEntry* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "signalfd");
  auto* existing = dynamic_cast<SignalFd*>(entry->file.get());
  if (existing == nullptr) return sys::fail(EINVAL, "signalfd");
  // Updating the set changes nothing else: flags are ignored here, as on Linux.
  existing->set_mask(set);
  wake(&p, 0);
  return fd;
}

}  // namespace detail

using detail::Process;

namespace {

std::string signal_set_text(const sigset_t& set) {
  std::vector<std::string> names;
  for (int sig = 1; sig <= detail::kMaxSignal; ++sig) {
    if (sigismember(&set, sig) != 1) continue;
    const char* abbrev = ::sigabbrev_np(sig);
    names.push_back(abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(sig));
  }
  return fmt::format("[{}]", fmt::join(names, " "));
}

std::string sfd_flags_text(int flags) {
  return detail::flags_text(static_cast<unsigned>(flags),
                            {{SFD_CLOEXEC, "SFD_CLOEXEC"}, {SFD_NONBLOCK, "SFD_NONBLOCK"}});
}

}  // namespace

sys::Result<int> FakeSyscalls::signalfd(int fd, const sigset_t& mask, int flags) {
  return call<int>("signalfd", {arg(fd), signal_set_text(mask), sfd_flags_text(flags)},
                   [&](Process& p) { return kernel().signalfd(p, fd, mask, flags); });
}

}  // namespace daemonkit::fake
