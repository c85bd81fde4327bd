// epoll, eventfd and poll over every kind of open file, through OpenFile::readiness().
//
// Registrations belong to the open file description, not the descriptor number: closing one
// of several descriptors of a description keeps it registered, closing the last one drops it
// (Linux's rule). Reported registrations move to the back, as Linux re-queues level-triggered
// items, so a small maxevents cannot starve anyone.
//
// Level-triggered registrations report whenever the file is ready. Edge-triggered ones
// (EPOLLET) follow Linux's ready list: a registration is queued when it is added or modified
// while ready, and when its file's wait queue is woken with a key it asked for (Kernel::wake,
// called where Linux's drivers call wake_up: a pipe write, a read that frees a full pipe's
// buffer, the last close of an end, eventfd reads and writes, signals, socket traffic); an
// epoll_wait that reaches a queued registration dequeues it and reports it if it is ready.
// `queued` is Linux's ready list for level-triggered registrations too: epoll_wait keeps a
// reported one on it and drops one that is not ready, and a modification that finds the file
// ready queues it only if it was not queued already.
//
// An epoll is itself a file with a wait queue (itself): whenever one of its registrations is
// queued (added or modified while ready, or woken), it wakes that queue with EPOLLIN as
// ep_poll_safewake does, so an epoll watching it edge-triggered gets its edge, however deep the
// nesting. Re-queueing a reported level-triggered item wakes nobody. Polling an epoll (from
// another epoll or poll()) says readable when epoll_wait would report something; like Linux's
// __ep_eventpoll_poll it drops the not-ready ones it passes on the way (the fake walks in
// registration order, Linux in ready-list order). A registration always offers EPOLLHUP and
// EPOLLERR, whatever its events, so an epoll whose only item is a hung-up pipe with events 0 is
// readable.
//
// Nothing here ever blocks: with nothing ready, a zero timeout returns 0 at once; a positive
// timeout advances the manual clock by the timeout and returns 0 (nothing else in the
// simulation runs while the caller waits, so nothing could have become ready); -1 would wait
// forever and goes through the would-block policy (EDEADLK by default).
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <list>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "fake_syscalls_call.h"
#include "kernel.h"

namespace daemonkit::fake {
namespace detail {
namespace {

constexpr std::uint64_t kEventfdMax = 0xfffffffffffffffeULL;
// How deep epoll_ctl lets epolls nest before it calls the chain a loop (Linux: EP_MAX_NESTS).
constexpr int kMaxEpollNesting = 5;

class EventFd final : public OpenFile {
 public:
  EventFd(std::shared_ptr<Inode> inode, int flags, std::uint64_t initial, bool semaphore)
      : OpenFile(std::move(inode), flags), counter_(initial), semaphore_(semaphore) {}

  std::string describe() const override { return "anon_inode:[eventfd]"; }

  sys::Result<std::size_t> read(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    if (buf.size() < sizeof(std::uint64_t)) return sys::fail(EINVAL, "read");
    if (counter_ == 0) return sys::fail(EAGAIN, "read");
    const std::uint64_t value = semaphore_ ? 1 : counter_;
    counter_ -= value;
    std::memcpy(buf.data(), &value, sizeof value);
    kernel.wake(this, EPOLLOUT);
    return sizeof value;
  }

  sys::Result<std::size_t> write(Kernel& kernel, Process&,
                                 std::span<const std::byte> buf) override {
    // Since Linux 6.9 a write must be exactly 8 bytes (reads need at least 8).
    if (buf.size() != sizeof(std::uint64_t)) return sys::fail(EINVAL, "write");
    std::uint64_t value = 0;
    std::memcpy(&value, buf.data(), sizeof value);
    if (value == UINT64_MAX) return sys::fail(EINVAL, "write");
    if (value > kEventfdMax - counter_) return sys::fail(EAGAIN, "write");
    counter_ += value;
    // Even adding 0 wakes the queue, as Linux's eventfd_write does.
    kernel.wake(this, EPOLLIN);
    return sizeof value;
  }

  Readiness readiness() const override {
    Readiness r;
    r.readable = counter_ > 0;
    r.writable = counter_ < kEventfdMax;
    return r;
  }

  std::string blocked_reason(const Kernel&) const override {
    return fmt::format("{} has counter {}; write to it first, or use EFD_NONBLOCK", describe(),
                       counter_);
  }

 private:
  std::uint64_t counter_;
  bool semaphore_;
};

// Files whose driver has no poll operation: Linux refuses them in epoll_ctl (EPERM) and poll
// reports them always readable and writable.
bool pollable(const OpenFile& file) {
  const Inode& node = file.inode();
  return !(node.is_reg() || node.is_dir() || node.special == Special::kDevNull);
}

std::uint32_t ready_mask(const OpenFile& file) {
  if (!pollable(file)) return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
  const Readiness r = file.readiness();
  std::uint32_t mask = 0;
  if (r.readable) mask |= EPOLLIN | EPOLLRDNORM;
  if (r.writable) mask |= EPOLLOUT | EPOLLWRNORM;
  if (r.hangup) mask |= EPOLLHUP;
  if (r.error) mask |= EPOLLERR;
  if (r.read_hangup) mask |= EPOLLRDHUP;
  return mask;
}

class EpollFile final : public OpenFile {
 public:
  struct Registration {
    std::weak_ptr<OpenFile> file;
    const OpenFile* key = nullptr;  // identity, valid while `file` has not expired
    int fd = -1;
    std::uint32_t events = 0;
    epoll_data_t data{};
    bool disarmed = false;        // EPOLLONESHOT after its report, until EPOLL_CTL_MOD
    const void* queue = nullptr;  // the file's wait queue, for Kernel::wake
    // On Linux's ready list (what edge triggering reports); mutable because polling an epoll
    // trims its ready list, as the kernel's poll of an epoll does.
    mutable bool queued = false;
  };

  using OpenFile::OpenFile;

  std::string describe() const override { return "anon_inode:[eventpoll]"; }

  Readiness readiness() const override {
    Readiness r;
    for (const auto& reg : registrations_) {
      if (report(reg) != 0) {
        r.readable = true;
        break;
      }
      reg.queued = false;
    }
    return r;
  }

  std::list<Registration>::iterator find(const OpenFile* file, int fd) {
    prune();
    return std::find_if(registrations_.begin(), registrations_.end(),
                        [&](const Registration& r) { return r.key == file && r.fd == fd; });
  }

  // What a registration's file offers now: EPOLLHUP and EPOLLERR always, others if asked for.
  static std::uint32_t poll(const Registration& reg) {
    if (reg.disarmed) return 0;
    auto file = reg.file.lock();
    if (!file) return 0;
    return ready_mask(*file) & (reg.events | EPOLLHUP | EPOLLERR);
  }

  // What epoll_wait would report for it: edge-triggered ones only while queued.
  static std::uint32_t report(const Registration& reg) {
    if ((reg.events & EPOLLET) && !reg.queued) return 0;
    return poll(reg);
  }

  // Whether `target` is reachable from this epoll through nested epoll registrations.
  bool reaches(const OpenFile* target, int depth = 0) const {
    if (depth > kMaxEpollNesting) return true;  // too deep counts as a loop, as in Linux
    for (const auto& reg : registrations_) {
      auto file = reg.file.lock();
      if (!file) continue;
      if (file.get() == target) return true;
      const auto* nested = dynamic_cast<const EpollFile*>(file.get());
      if (nested != nullptr && nested->reaches(target, depth + 1)) return true;
    }
    return false;
  }

  void prune() {
    registrations_.remove_if([](const Registration& r) { return r.file.expired(); });
  }

  std::list<Registration> registrations_;
};

EpollFile* epoll_at(Process& p, Kernel& kernel, int epfd) {
  FdEntry* entry = kernel.fd_entry(p, epfd);
  return entry == nullptr ? nullptr : dynamic_cast<EpollFile*>(entry->file.get());
}

// Nothing is ready: what a wait with this timeout does in a world where time only moves when
// someone moves it.
sys::Result<int> nothing_ready(Kernel& kernel, const char* call, int timeout_ms,
                               const std::string& what) {
  if (timeout_ms == 0) return 0;
  // A fake program cannot sleep out of its turn: it waits for its next one instead.
  if (timeout_ms > 0 && !kernel.in_program_turn) {
    kernel.clock.advance(std::chrono::milliseconds(timeout_ms));
    return 0;
  }
  return kernel.would_block<int>(
      call, fmt::format("nothing is ready in {}{}", what, timeout_ms < 0 ? " and no timeout" : ""));
}

std::string events_text(const struct epoll_event* event) {
  if (event == nullptr) return "NULL";
  return flags_text(event->events, {{EPOLLIN, "EPOLLIN"},
                                    {EPOLLOUT, "EPOLLOUT"},
                                    {EPOLLRDHUP, "EPOLLRDHUP"},
                                    {EPOLLPRI, "EPOLLPRI"},
                                    {EPOLLERR, "EPOLLERR"},
                                    {EPOLLHUP, "EPOLLHUP"},
                                    {EPOLLET, "EPOLLET"},
                                    {EPOLLONESHOT, "EPOLLONESHOT"}});
}

}  // namespace

void Kernel::wake(const void* queue, std::uint32_t key) {
  if (shutting_down) return;
  ++changes;
  std::erase_if(epolls, [](const std::weak_ptr<OpenFile>& e) { return e.expired(); });
  // Level by level: the queues woken at this depth, and the epolls whose registrations that
  // queued, which wake their own pollers with EPOLLIN at the next. epoll_ctl refuses loops and
  // nesting deeper than Linux's limit, so the bound only guards against a bug turning into a
  // hang.
  std::vector<const void*> woken{queue};
  for (int depth = 0; !woken.empty() && depth <= kMaxEpollNesting; ++depth) {
    std::vector<const void*> next;
    for (const auto& weak : epolls) {
      auto ep = std::static_pointer_cast<EpollFile>(weak.lock());
      bool queued_any = false;
      for (auto& reg : ep->registrations_) {
        if (reg.disarmed || std::find(woken.begin(), woken.end(), reg.queue) == woken.end()) {
          continue;
        }
        // ep_poll_callback: a key names the events that happened; an item that asked for none
        // of them stays off the ready list. One already queued still wakes the pollers.
        if (key != 0 && (key & (reg.events | EPOLLHUP | EPOLLERR)) == 0) continue;
        reg.queued = true;
        queued_any = true;
      }
      if (queued_any) next.push_back(static_cast<const OpenFile*>(ep.get()));
    }
    woken = std::move(next);
    key = EPOLLIN;
  }
}

}  // namespace detail

using detail::Process;

sys::Result<int> FakeSyscalls::eventfd(unsigned int initval, int flags) {
  return call<int>("eventfd", {arg(initval), arg(flags)}, [&](Process& p) -> sys::Result<int> {
    if (flags & ~(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) return sys::fail(EINVAL, "eventfd");
    auto& k = kernel();
    auto inode = k.new_inode(0600, p.uids.effective, p.gids.effective, detail::kAnonDev);
    const int status = O_RDWR | ((flags & EFD_NONBLOCK) ? O_NONBLOCK : 0);
    auto file = std::make_shared<detail::EventFd>(std::move(inode), status, initval,
                                                  (flags & EFD_SEMAPHORE) != 0);
    return k.allocate_fd(p, std::move(file), (flags & EFD_CLOEXEC) != 0, 0, "eventfd");
  });
}

sys::Result<int> FakeSyscalls::epoll_create1(int flags) {
  return call<int>("epoll_create1", {arg(flags)}, [&](Process& p) -> sys::Result<int> {
    if (flags & ~EPOLL_CLOEXEC) return sys::fail(EINVAL, "epoll_create1");
    auto& k = kernel();
    auto inode = k.new_inode(0600, p.uids.effective, p.gids.effective, detail::kAnonDev);
    auto file = std::make_shared<detail::EpollFile>(std::move(inode), O_RDWR);
    k.epolls.push_back(file);
    return k.allocate_fd(p, std::move(file), (flags & EPOLL_CLOEXEC) != 0, 0, "epoll_create1");
  });
}

sys::Result<void> FakeSyscalls::epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
  return call<void>(
      "epoll_ctl", {arg(epfd), arg(op), arg(fd), detail::events_text(event)},
      [&](Process& p) -> sys::Result<void> {
        auto& k = kernel();
        // Linux's order: the event is copied in first, then both descriptors, then the
        // target must support poll, then the epoll must be one and not the target itself
        // (the same description, whatever the numbers).
        const bool has_event = op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD;
        if (has_event && event == nullptr) return sys::fail(EFAULT, "epoll_ctl");
        detail::FdEntry* ep_entry = k.fd_entry(p, epfd);
        detail::FdEntry* target_entry = k.fd_entry(p, fd);
        if (ep_entry == nullptr || target_entry == nullptr) return sys::fail(EBADF, "epoll_ctl");
        const auto& target = target_entry->file;
        if (!detail::pollable(*target)) return sys::fail(EPERM, "epoll_ctl");
        auto* ep = dynamic_cast<detail::EpollFile*>(ep_entry->file.get());
        if (ep == nullptr || ep_entry->file == target) return sys::fail(EINVAL, "epoll_ctl");
        auto it = ep->find(target.get(), fd);
        switch (op) {
          case EPOLL_CTL_ADD: {
            if (it != ep->registrations_.end()) return sys::fail(EEXIST, "epoll_ctl");
            if (auto* nested = dynamic_cast<detail::EpollFile*>(target.get())) {
              if (nested->reaches(ep)) return sys::fail(ELOOP, "epoll_ctl");
            }
            detail::EpollFile::Registration reg;
            reg.file = target;
            reg.key = target.get();
            reg.fd = fd;
            reg.events = event->events;
            reg.data = event->data;
            reg.queue = target->wait_queue(p);
            reg.queued = detail::EpollFile::poll(reg) != 0;
            const bool queued = reg.queued;
            ep->registrations_.push_back(std::move(reg));
            // ep_insert: the epolls watching this one learn of it.
            if (queued) k.wake(ep->wait_queue(p), EPOLLIN);
            return {};
          }
          case EPOLL_CTL_MOD:
            if (it == ep->registrations_.end()) return sys::fail(ENOENT, "epoll_ctl");
            if (event->events & EPOLLEXCLUSIVE) return sys::fail(EINVAL, "epoll_ctl");
            it->events = event->events;
            it->data = event->data;
            it->disarmed = false;
            // Linux re-polls a modified item and queues it if ready; a queued one stays, and
            // only one that was not queued wakes this epoll's pollers.
            if (detail::EpollFile::poll(*it) != 0 && !it->queued) {
              it->queued = true;
              k.wake(ep->wait_queue(p), EPOLLIN);
            }
            return {};
          case EPOLL_CTL_DEL:
            if (it == ep->registrations_.end()) return sys::fail(ENOENT, "epoll_ctl");
            ep->registrations_.erase(it);
            return {};
          default:
            return sys::fail(EINVAL, "epoll_ctl");
        }
      });
}

sys::Result<int> FakeSyscalls::epoll_wait(int epfd, struct epoll_event* events, int maxevents,
                                          int timeout_ms) {
  may_wait(WaitOn::kAnything);
  return call<int>("epoll_wait", {arg(epfd), arg(maxevents), arg(timeout_ms)},
                   [&](Process& p) -> sys::Result<int> {
                     auto& k = kernel();
                     if (k.fd_entry(p, epfd) == nullptr) return sys::fail(EBADF, "epoll_wait");
                     detail::EpollFile* ep = detail::epoll_at(p, k, epfd);
                     if (ep == nullptr || maxevents <= 0) return sys::fail(EINVAL, "epoll_wait");
                     if (events == nullptr) return sys::fail(EFAULT, "epoll_wait");
                     ep->prune();
                     auto& regs = ep->registrations_;
                     std::list<detail::EpollFile::Registration> reported;
                     int n = 0;
                     for (auto it = regs.begin(); it != regs.end() && n < maxevents;) {
                       const std::uint32_t mask = detail::EpollFile::report(*it);
                       // Reaching an item takes it off the ready list; a reported level-triggered one goes
                       // back on (ep_send_events), unless EPOLLONESHOT just disarmed it.
                       it->queued = mask != 0 && (it->events & (EPOLLET | EPOLLONESHOT)) == 0;
                       if (mask == 0) {
                         ++it;
                         continue;
                       }
                       events[n].events = mask;
                       events[n].data = it->data;
                       ++n;
                       if (it->events & EPOLLONESHOT) it->disarmed = true;
                       auto next = std::next(it);
                       reported.splice(reported.end(), regs, it);
                       it = next;
                     }
                     regs.splice(regs.end(), reported);
                     if (n > 0) return n;
                     return detail::nothing_ready(k, "epoll_wait", timeout_ms,
                                                  fmt::format("epoll fd {}", epfd));
                   });
}

sys::Result<int> FakeSyscalls::poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) {
  may_wait(WaitOn::kAnything);
  return call<int>("poll", {arg(nfds), arg(timeout_ms)}, [&](Process& p) -> sys::Result<int> {
    auto& k = kernel();
    if (nfds > p.rlimits[RLIMIT_NOFILE].rlim_cur) return sys::fail(EINVAL, "poll");
    if (nfds > 0 && fds == nullptr) return sys::fail(EFAULT, "poll");
    int ready = 0;
    for (nfds_t i = 0; i < nfds; ++i) {
      fds[i].revents = 0;
      if (fds[i].fd < 0) continue;
      detail::FdEntry* entry = k.fd_entry(p, fds[i].fd);
      if (entry == nullptr) {
        fds[i].revents = POLLNVAL;
      } else {
        const auto asked = static_cast<std::uint32_t>(static_cast<unsigned short>(fds[i].events));
        const std::uint32_t mask = detail::ready_mask(*entry->file) & (asked | POLLHUP | POLLERR);
        fds[i].revents = static_cast<short>(mask);
      }
      if (fds[i].revents != 0) ++ready;
    }
    if (ready > 0) return ready;
    return detail::nothing_ready(k, "poll", timeout_ms, fmt::format("{} descriptor(s)", nfds));
  });
}

}  // namespace daemonkit::fake
