#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/hot_path.h"

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <exception>
#include <span>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

namespace {

constexpr std::string_view kStartup = "startup";
constexpr std::string_view kShutdown = "shutdown";

std::uint64_t epoll_key(int fd, std::uint32_t generation) {
  return (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd);
}

// epoll_wait's argument: rounded up, so a timer never finds the loop awake a little early and
// spinning with timeout 0 until it is due.
int to_epoll_ms(std::optional<Duration> timeout) {
  if (!timeout) return -1;
  const Duration capped = std::clamp(*timeout, Duration{0}, TimerQueue::kMaxTimeout);
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(capped).count();
  return static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
}

// A hint to the CPU that this thread is spinning (lets the sibling hyperthread and the
// memory system get on with the producer's work).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Between two looks at the queue while spinning: a fraction of a microsecond (a pause is
// some 10 to 150 cycles, depending on the CPU).
constexpr int kPausesPerPoll = 16;

}  // namespace

Reactor::Reactor(sys::Syscalls& sys, ReactorOptions options)
    : sys_(sys),
      options_(std::move(options)),
      waker_(sys),
      signals_(sys, waker_),
      timers_([this] { return now(); }, options_.log),
      triggers_(options_.log),
      thread_calls_(options_.thread_call_capacity),
      pool_(
          [this](std::string message) {
            // On a pool thread. A full ring empties as the loop runs, so retry; but not once
            // shutdown stops the pool: the loop may then be waiting for this very thread, and
            // the line is lost rather than the process hung.
            auto line = [this, m = std::move(message)] { log(m); };
            // call_from_thread moves from `line` only when it queues it, which ends the loop.
            while (!call_from_thread(std::move(line))) {  // NOLINT(bugprone-use-after-move)
              if (pool_.stopped()) return;
              std::this_thread::yield();
            }
          },
          options_.thread_pool_size) {}

ReactorResult<std::unique_ptr<Reactor>> Reactor::create(sys::Syscalls& sys,
                                                        ReactorOptions options) {
  std::unique_ptr<Reactor> reactor(new Reactor(sys, std::move(options)));
  if (auto r = reactor->open_descriptors(); !r) return tl::unexpected(r.error());
  reactor->register_core_triggers();
  return reactor;
}

Reactor::~Reactor() {
  for (Watcher& watcher : watchers_) {
    clear_slot(watcher.on_read);
    clear_slot(watcher.on_write);
  }
  pool_.stop();
  signals_.uninstall();
  waker_.close();
  epfd_.reset();
}

void Reactor::log(std::string_view line) const {
  if (options_.log) options_.log(line);
}

ReactorResult<void> Reactor::open_descriptors() {
  epfd_.reset();
  auto epfd = sys_.epoll_create1(EPOLL_CLOEXEC);
  if (!epfd) return reactor_fail(epfd.error());
  epfd_ = OwnedFd(sys_, *epfd);
  if (auto r = waker_.open(); !r) return reactor_fail(r.error());
  // The waker's reader only empties the eventfd; what the wake-up announced is looked at in
  // run_until_current, every iteration for as long as the waker is pending.
  return add(waker_.fd(),
             {[](void* reactor) { static_cast<Reactor*>(reactor)->waker_.drain(); }, this},
             /*reader=*/true, /*internal=*/true);
}

void Reactor::register_core_triggers() {
  triggers_.add(Phase::kDuring, kStartup, [this] { really_start_running(); });
  triggers_.add(Phase::kDuring, kShutdown, [this] { crash(); });
  triggers_.add(Phase::kDuring, kShutdown, [this] { (void)remove_all(); });
  triggers_.add(Phase::kDuring, kShutdown, [this] { pool_.stop(); });
}

// ---- Lifecycle ------------------------------------------------------------------------------

DAEMONKIT_HOT ReactorResult<void> Reactor::run() {
  if (started_) return reactor_fail(ReactorErrc::kAlreadyRunning);
  if (started_before_) return reactor_fail(ReactorErrc::kNotRestartable);
  started_ = true;
  stopped_ = false;
  triggers_.fire(kStartup);
  ReactorResult<void> result;
  while (started_) {
    run_until_current();
    if (!started_) break;
    // Twisted polls with 0 until startup finished; we block for the real timeout instead,
    // because whatever ends a held startup (a timer, I/O, a thread call) wakes the loop.
    if (auto r = iterate(iteration_timeout()); !r) {
      log(fmt::format("Unexpected error in main loop: {}", r.error()));
      result = r;
      crash();
    }
  }
  signals_.uninstall();
  restore_sigpipe();
  log("Main loop terminated.");
  return result;
}

ReactorResult<void> Reactor::stop() {
  if (stopped_ || !started_) return reactor_fail(ReactorErrc::kNotRunning);
  stopped_ = true;
  just_stopped_ = true;
  started_before_ = true;
  return {};
}

void Reactor::crash() {
  started_ = false;
  running_ = false;
  triggers_.add(Phase::kDuring, kStartup, [this] { really_start_running(); });
}

void Reactor::really_start_running() {
  running_ = true;
  if (options_.install_signal_handlers) {
    struct Route {
      int sig;
      bool only_if_default;
      bool wanted;
    };
    std::vector<Route> routes = {
        {SIGINT, true, true}, {SIGTERM, false, true}, {SIGCHLD, false, true}};
    for (const auto& [sig, hook] : signal_hooks_) routes.push_back({sig, false, true});
    for (const Route& route : routes) {
      if (!route.wanted) continue;
      if (auto r = signals_.route(route.sig, route.only_if_default); !r) {
        log(fmt::format("Cannot route signal {} through the reactor: {}", route.sig, r.error()));
      }
    }
    ignore_sigpipe();
  }
  // Children that exited before SIGCHLD was routed would otherwise wait for the next signal.
  reap_children();
}

void Reactor::ignore_sigpipe() {
  if (ignoring_sigpipe_) return;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old {};
  if (auto r = sys_.sigaction(SIGPIPE, nullptr, &old); !r) {
    log(fmt::format("Cannot ignore SIGPIPE: {}", r.error()));
    return;
  }
  if (old.sa_handler != SIG_DFL) return;  // the program chose what SIGPIPE does
  if (auto r = sys_.sigaction(SIGPIPE, &ignore, nullptr); !r) {
    log(fmt::format("Cannot ignore SIGPIPE: {}", r.error()));
    return;
  }
  ignoring_sigpipe_ = true;
}

void Reactor::restore_sigpipe() {
  if (!ignoring_sigpipe_) return;
  ignoring_sigpipe_ = false;
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  if (auto r = sys_.sigaction(SIGPIPE, &default_action, nullptr); !r) {
    log(fmt::format("Cannot restore SIGPIPE: {}", r.error()));
  }
}

DAEMONKIT_HOT void Reactor::run_until_current() {
  if (signals_.any_caught()) handle_signals();
  last_batch_ = thread_calls_.run_batch(options_.log);
  timers_.run_due();
  if (just_stopped_) {
    just_stopped_ = false;
    triggers_.fire(kShutdown);
  }
}

// The waker's pending flag is set by the first wake() after it was cleared, and cleared here
// only, right before the loop may block. While it stays set, every call_from_thread costs its
// producer one load and no write(2), however many batches the loop runs meanwhile. Clearing it
// is safe only because of the re-check after it: see ThreadCallQueue::ready() for the Dekker
// pair (publish, then load the flag / clear the flag, then look), which all four sides do
// with seq_cst operations; SignalRouting's handler pairs its caught bit with the flag the
// same way. A wake-up that races the clear may write the eventfd needlessly; that only costs
// one more turn of the loop, which drains it.
DAEMONKIT_HOT std::optional<Duration> Reactor::iteration_timeout() {
  const auto work_waits = [this] { return thread_calls_.ready() || signals_.any_caught(); };
  if (last_batch_ >= 2) {
    // A burst is under way and more is likely coming: a few microseconds of looking cost less
    // than the sleep, the producer's write(2) and the wake-up that blocking now would bring.
    // Looks are spaced out, the first one too: each reads the very cache line the producer is
    // filling next, and a loop that came straight back for every few calls took that line
    // away from the producer in the middle of nearly every push (batches of ~3 calls and a
    // third of the throughput, measured). A lone call (a request and its reply) is not
    // followed by spinning: on a busy machine the spin would hold the CPU its peer needs to
    // send the next one.
    for (std::uint32_t i = 0; i < options_.polls_before_sleep; ++i) {
      for (int j = 0; j < kPausesPerPoll; ++j) cpu_relax();
      if (work_waits()) return Duration{0};
    }
  } else if (work_waits()) {
    return Duration{0};
  }
  const auto timeout = timers_.timeout();
  if (timeout == Duration{0}) return timeout;
  if (waker_.pending()) {
    waker_.clear();
    if (work_waits()) return Duration{0};
  }
  return timeout;
}

DAEMONKIT_HOT ReactorResult<void> Reactor::iterate(std::optional<Duration> timeout) {
  if (!epfd_) return reactor_fail(sys::Error{EBADF, "epoll_wait", {}});
  auto n = sys_.epoll_wait(epfd_.get(), events_.data(), static_cast<int>(events_.size()),
                           to_epoll_ms(timeout));
  if (!n) {
    if (n.error().code == EINTR) return {};
    return reactor_fail(n.error());
  }
  // Writable descriptors are served first. A loop that both feeds a peer and drains it (a
  // child's stdin and stdout, a proxied connection) otherwise lets the peer sit idle while it
  // reads: the peer's input runs dry before its output is read. With this order the 256 MiB
  // stdin -> cat -> stdout run went from 0.92x to 1.20x a raw poll loop (bench/spawn).
  // Two passes rather than a partition: sorting would allocate on every turn.
  const std::span<const struct epoll_event> batch(events_.data(), static_cast<std::size_t>(*n));
  dispatching_ = true;
  for (const auto& event : batch) {
    if (event.events & EPOLLOUT) dispatch(event);
  }
  for (const auto& event : batch) {
    if (!(event.events & EPOLLOUT)) dispatch(event);
  }
  dispatching_ = false;
  retired_.clear();
  removed_in_batch_.clear();
  if (stale_registration_seen_) [[unlikely]]
    drop_stale_registrations();
  return {};
}

ReactorResult<bool> Reactor::turn_until(const std::function<bool()>& done, Duration limit) {
  constexpr Duration kLongestTurn = std::chrono::milliseconds(100);
  const TimePoint deadline = now() + limit;
  while (!done()) {
    const TimePoint at = now();
    if (at >= deadline) return false;
    if (auto turned = iterate(std::min<Duration>(deadline - at, kLongestTurn)); !turned) {
      return tl::unexpected(turned.error());
    }
    run_until_current();
  }
  return true;
}

// ---- System events --------------------------------------------------------------------------

TriggerId Reactor::add_system_event_trigger(Phase phase, std::string_view event, Callback fn) {
  return triggers_.add(phase, event, std::move(fn));
}

TriggerId Reactor::add_holding_trigger(std::string_view event, std::function<void(EventHold)> fn) {
  return triggers_.add_holding(event, std::move(fn));
}

ReactorResult<void> Reactor::remove_system_event_trigger(TriggerId id) {
  return triggers_.remove(id);
}

bool Reactor::fire_system_event(std::string_view event) { return triggers_.fire(event); }

void Reactor::call_when_running(Callback fn) {
  if (running_) {
    fn();
  } else {
    triggers_.add(Phase::kAfter, kStartup, std::move(fn));
  }
}

// ---- Readers and writers --------------------------------------------------------------------

DAEMONKIT_HOT ReactorResult<void> Reactor::ctl_on(int epfd, int op, int fd,
                                                  const Watcher& watcher) {
  struct epoll_event event {};
  event.events = (watcher.on_read.fn != nullptr ? EPOLLIN : 0u) |
                 (watcher.on_write.fn != nullptr ? EPOLLOUT : 0u);
  event.data.u64 = epoll_key(fd, watcher.generation);
  if (auto r = sys_.epoll_ctl(epfd, op, fd, &event); !r) return reactor_fail(r.error());
  return {};
}

ReactorResult<void> Reactor::register_all(int epfd, int skip) {
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    const int fd = static_cast<int>(i);
    const Watcher& watcher = watchers_[i];
    if (watcher.generation == 0 || fd == skip) continue;
    if (auto r = ctl_on(epfd, EPOLL_CTL_ADD, fd, watcher); !r) {
      return reactor_fail(r.error().os.about(fmt::format("fd {}", fd)));
    }
  }
  return {};
}

DAEMONKIT_HOT void Reactor::forget(Watcher& watcher) {
  if (dispatching_) removed_in_batch_.push_back(watcher.generation);
  watcher = Watcher{};
}

DAEMONKIT_HOT Reactor::Watcher* Reactor::watcher_of(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= watchers_.size()) return nullptr;
  Watcher& watcher = watchers_[static_cast<std::size_t>(fd)];
  return watcher.generation != 0 ? &watcher : nullptr;
}

void Reactor::retire(FdCallback slot) {
  if (slot.fn != &run_owned) return;
  std::unique_ptr<Callback> owned(static_cast<Callback*>(slot.context));
  if (dispatching_) retired_.push_back(std::move(owned));
}

DAEMONKIT_HOT ReactorResult<void> Reactor::add(int fd, FdCallback fn, bool reader, bool internal) {
  Watcher* existing = watcher_of(fd);
  if (existing == nullptr) {
    Watcher watcher;
    watcher.generation = next_generation_++;
    if (next_generation_ == 0) next_generation_ = 1;  // 0 means "none"
    watcher.internal = internal;
    (reader ? watcher.on_read : watcher.on_write) = fn;
    if (auto r = ctl(EPOLL_CTL_ADD, fd, watcher); !r) {
      retire(fn);
      return r;
    }
    if (static_cast<std::size_t>(fd) >= watchers_.size()) {
      watchers_.resize(static_cast<std::size_t>(fd) + 1);
    }
    watchers_[static_cast<std::size_t>(fd)] = watcher;
    return {};
  }
  FdCallback& slot = reader ? existing->on_read : existing->on_write;
  const FdCallback previous = std::exchange(slot, fn);
  if (previous.fn == nullptr) {
    if (auto r = ctl(EPOLL_CTL_MOD, fd, *existing); !r) {
      slot = previous;
      retire(fn);
      return r;
    }
  }
  retire(previous);
  return {};
}

ReactorResult<void> Reactor::add_reader(int fd, Callback on_readable) {
  return add(fd, {&run_owned, new Callback(std::move(on_readable))}, true, false);
}

ReactorResult<void> Reactor::add_writer(int fd, Callback on_writable) {
  return add(fd, {&run_owned, new Callback(std::move(on_writable))}, false, false);
}

DAEMONKIT_HOT ReactorResult<void> Reactor::add_reader(int fd, FdCallback on_readable) {
  return add(fd, on_readable, true, false);
}

ReactorResult<void> Reactor::add_writer(int fd, FdCallback on_writable) {
  return add(fd, on_writable, false, false);
}

ReactorResult<void> Reactor::remove(int fd, bool reader) {
  Watcher* watcher = watcher_of(fd);
  if (watcher == nullptr) return {};
  FdCallback& slot = reader ? watcher->on_read : watcher->on_write;
  if (slot.fn == nullptr) return {};
  clear_slot(slot);
  if (watcher->on_read.fn != nullptr || watcher->on_write.fn != nullptr) {
    return ctl(EPOLL_CTL_MOD, fd, *watcher);
  }
  forget(*watcher);
  auto r = sys_.epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  // A descriptor closed before its removal has left the epoll set, unless its file is held
  // elsewhere: then its first event says so (drop_stale_registrations).
  if (!r && r.error().code != EBADF && r.error().code != ENOENT) return reactor_fail(r.error());
  return {};
}

DAEMONKIT_HOT void Reactor::remove_before_close(int fd) {
  Watcher* watcher = watcher_of(fd);
  if (watcher == nullptr) return;
  clear_slot(watcher->on_read);
  clear_slot(watcher->on_write);
  forget(*watcher);
  if (!close_removes_registration_) (void)sys_.epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

// A registration outlived its descriptor's close: another descriptor or process holds the
// file. It is level-triggered and no descriptor of ours names it any more, so it would be
// reported on every turn for as long as the other holder keeps the file, spinning the loop.
// Only closing the epoll set drops it: every watcher moves to a new one. Until the new one is
// whole the old one is kept, so that no watcher is lost; the next stale event tries again.
void Reactor::drop_stale_registrations() {
  stale_registration_seen_ = false;
  if (close_removes_registration_) {
    close_removes_registration_ = false;
    log("A watched descriptor's epoll registration outlived its close (another descriptor or "
        "process holds its file): the watchers move to a new epoll set, and closing descriptors "
        "are removed explicitly from now on.");
  }
  auto created = sys_.epoll_create1(EPOLL_CLOEXEC);
  if (!created) {
    log(fmt::format("Cannot make a new epoll set to drop a stale registration: {}",
                    created.error()));
    return;
  }
  OwnedFd fresh(sys_, *created);
  if (auto r = register_all(fresh.get(), -1); !r) {
    log(fmt::format("Cannot make a new epoll set to drop a stale registration: {}", r.error()));
    return;
  }
  epfd_ = std::move(fresh);
}

ReactorResult<void> Reactor::remove_reader(int fd) { return remove(fd, true); }
ReactorResult<void> Reactor::remove_writer(int fd) { return remove(fd, false); }

std::vector<int> Reactor::remove_all() {
  std::vector<int> removed;
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    Watcher& watcher = watchers_[i];
    if (watcher.generation == 0 || watcher.internal) continue;
    const int fd = static_cast<int>(i);
    removed.push_back(fd);
    (void)sys_.epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, nullptr);
    clear_slot(watcher.on_read);
    clear_slot(watcher.on_write);
    forget(watcher);
  }
  return removed;
}

std::vector<int> Reactor::readers() const {
  std::vector<int> fds;
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    const Watcher& watcher = watchers_[i];
    if (watcher.on_read.fn != nullptr && !watcher.internal) fds.push_back(static_cast<int>(i));
  }
  return fds;
}

std::vector<int> Reactor::writers() const {
  std::vector<int> fds;
  for (std::size_t i = 0; i < watchers_.size(); ++i) {
    const Watcher& watcher = watchers_[i];
    if (watcher.on_write.fn != nullptr && !watcher.internal) fds.push_back(static_cast<int>(i));
  }
  return fds;
}

void Reactor::log_unhandled(const char* what, int fd, const std::exception& e) const {
  log(fmt::format("Unhandled error in {} of fd {}: {}", what, fd, e.what()));
}

// Small enough to inline into dispatch, the formatting kept out of line.
inline void Reactor::invoke(FdCallback fn, const char* what, int fd) {
  try {
    fn.fn(fn.context);
  } catch (const std::exception& e) {
    log_unhandled(what, fd, e);
  }
}

DAEMONKIT_HOT void Reactor::dispatch(const struct epoll_event& event) {
  // The key carries the registration's generation: an event for a watcher removed (or removed
  // and replaced on a reused fd number) earlier in this batch is stale and dropped.
  const int fd = static_cast<int>(static_cast<std::uint32_t>(event.data.u64));
  const auto generation = static_cast<std::uint32_t>(event.data.u64 >> 32);
  // Looked up again after each callback: it may have added descriptors (the table moves) or
  // removed this one.
  auto current = [&]() -> Watcher* {
    Watcher* watcher = watcher_of(fd);
    return watcher != nullptr && watcher->generation == generation ? watcher : nullptr;
  };
  Watcher* watcher = current();
  if (watcher == nullptr) {
    if (std::find(removed_in_batch_.begin(), removed_in_batch_.end(), generation) ==
        removed_in_batch_.end()) {
      stale_registration_seen_ = true;
    }
    return;
  }
  bool read_called = false;
  if ((event.events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && watcher->on_read.fn) {
    read_called = true;
    invoke(watcher->on_read, "reader", fd);
    // Most events are input alone: nothing is left for a writer, so no second lookup.
    if (!(event.events & (EPOLLOUT | EPOLLERR))) return;
    watcher = current();
    if (watcher == nullptr) return;
  }
  const bool for_writer =
      (event.events & (EPOLLOUT | EPOLLERR)) || ((event.events & EPOLLHUP) && !read_called);
  if (for_writer && watcher->on_write.fn) invoke(watcher->on_write, "writer", fd);
}

// ---- Time and threads -----------------------------------------------------------------------

TimePoint Reactor::now() {
  if (auto ts = sys_.clock_gettime(CLOCK_MONOTONIC)) {
    last_now_ = TimePoint(std::chrono::seconds(ts->tv_sec) + std::chrono::nanoseconds(ts->tv_nsec));
  }
  return last_now_;
}

DelayedCall Reactor::call_later(Duration delay, Callback fn) {
  return timers_.call_later(delay, std::move(fn));
}

void Reactor::post(PreparedCall& call) noexcept {
  if (thread_calls_.push(call)) waker_.wake();
}

bool Reactor::call_in_thread(Callback fn) { return pool_.call(std::move(fn)); }

// ---- Signals and children -------------------------------------------------------------------

namespace {

const char* hook_name(int sig) {
  if (sig == SIGHUP) return "SIGHUP";
  return sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2";
}

}  // namespace

void Reactor::set_signal_hook(int sig, Callback hook) {
  if (sig != SIGHUP && sig != SIGUSR1 && sig != SIGUSR2) {
    throw std::logic_error(
        fmt::format("Reactor::set_signal_hook: signal {} is not SIGHUP, SIGUSR1 or SIGUSR2", sig));
  }
  if (hook) {
    signal_hooks_[sig] = std::move(hook);
  } else {
    signal_hooks_.erase(sig);
  }
}

void Reactor::handle_signals() {
  const std::vector<int> caught = signals_.take_caught();
  for (int sig : caught) {
    if (sig == SIGINT || sig == SIGTERM) {
      log(fmt::format("Received {}, shutting down.", sig == SIGINT ? "SIGINT" : "SIGTERM"));
      exit_signal_ = sig;
      (void)stop();  // a second signal while shutting down finds it stopping already
    } else if (auto hook = signal_hooks_.find(sig); hook != signal_hooks_.end()) {
      try {
        // A copy: the hook may replace itself.
        Callback run = hook->second;
        run();
      } catch (const std::exception& e) {
        log(fmt::format("Unhandled error in {} hook: {}", hook_name(sig), e.what()));
      }
    } else if (sig == SIGCHLD) {
      reap_children();
    }
  }
}

ReactorResult<void> Reactor::watch_child(pid_t pid, std::function<void(int status)> on_exit) {
  if (children_.contains(pid)) return reactor_fail(ReactorErrc::kAlreadyRegistered);
  auto r = sys_.waitpid(pid, WNOHANG);
  if (!r) {
    log(fmt::format("Failed to reap {}: {}", pid, r.error()));
  } else if (r->pid > 0) {
    on_exit(r->status);
    return {};
  }
  children_.emplace(pid, std::move(on_exit));
  return {};
}

ReactorResult<void> Reactor::unwatch_child(pid_t pid) {
  if (children_.erase(pid) == 0) return reactor_fail(ReactorErrc::kNotRegistered);
  return {};
}

void Reactor::reap_children() {
  std::vector<pid_t> pids;
  pids.reserve(children_.size());
  for (const auto& entry : children_) pids.push_back(entry.first);
  for (pid_t pid : pids) {
    auto it = children_.find(pid);
    if (it == children_.end()) continue;  // an earlier callback unwatched it
    auto r = sys_.waitpid(pid, WNOHANG);
    if (!r) {
      if (r.error().code != ECHILD) log(fmt::format("Failed to reap {}: {}", pid, r.error()));
      continue;
    }
    if (r->pid <= 0) continue;
    // Unregister first: the callback sees the child gone (as Twisted pins).
    auto on_exit = std::move(it->second);
    children_.erase(it);
    try {
      on_exit(r->status);
    } catch (const std::exception& e) {
      log(fmt::format("Unhandled error in exit callback of {}: {}", pid, e.what()));
    }
  }
}

// ---- Daemonizing ----------------------------------------------------------------------------

void Reactor::before_daemonize() {
  if (Watcher* waker = watcher_of(waker_.fd())) {
    clear_slot(waker->on_read);
    *waker = Watcher{};
  }
  waker_.close();
  epfd_.reset();
}

ReactorResult<void> Reactor::after_daemonize() {
  if (auto r = open_descriptors(); !r) return r;
  // The new waker starts clear: calls queued before daemonizing must still be looked at.
  if (!thread_calls_.empty()) waker_.wake();
  return register_all(epfd_.get(), /*skip=*/waker_.fd());  // the waker is registered already
}

}  // namespace daemonkit::core
