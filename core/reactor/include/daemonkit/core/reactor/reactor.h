// Reactor: the core of Twisted's PosixReactorBase on epoll, in C++, on sys::Syscalls&.
// Readers and writers, timed calls, calls from other threads through a coalescing Waker, signals
// routed through the loop, system event triggers, a small thread pool, and daemonize hooks.
// On the fake kernel with its manual clock everything here runs without threads or sleeps.
#pragma once

#include <signal.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/internal/thread_call_queue.h"
#include "daemonkit/core/reactor/internal/thread_pool.h"
#include "daemonkit/core/reactor/internal/timer_queue.h"
#include "daemonkit/core/reactor/internal/waker.h"
#include "daemonkit/core/reactor/reactor_error.h"
#include "daemonkit/core/reactor/signal_routing.h"
#include "daemonkit/core/reactor/system_event_triggers.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct ReactorOptions {
  LogSink log;
  // Route SIGINT (only if still SIG_DFL), SIGTERM, SIGCHLD and each signal with a hook (SIGHUP,
  // SIGUSR1, SIGUSR2) through the loop while run() runs, and ignore SIGPIPE if it is still
  // SIG_DFL (as Python does for Twisted): a peer or child that goes away must fail a write with
  // EPIPE, which the stream transport reports as a loss, not kill the daemon. Off for reactors
  // that share a process with another owner of signals.
  bool install_signal_handlers = true;
  // Upper bound on call_in_thread's threads.
  std::size_t thread_pool_size = 4;
  // How many call_from_thread calls may wait at once (rounded up to a power of two). The ring
  // is allocated up front, 64 bytes a call; a call_from_thread beyond it fails with kQueueFull.
  std::size_t thread_call_capacity = ThreadCallQueue::kDefaultCapacity;
  // After an iteration that ran two or more thread calls (a burst under way), how many more
  // times the loop looks for calls (some tenths of a microsecond of CPU pauses between looks)
  // before it re-arms the waker and blocks. During a burst from another thread the loop then
  // never sleeps between batches, so the producer never pays a write(2) and the loop never a
  // sleep and wake-up. 0: no spin.
  std::uint32_t polls_before_sleep = 32;
};

class Reactor {
 public:
  using Callback = std::function<void()>;

  // Creates the epoll descriptor and the waker (both CLOEXEC). Like Twisted's, this reactor can
  // be made before daemonizing: before_daemonize()/after_daemonize() replace both descriptors.
  static ReactorResult<std::unique_ptr<Reactor>> create(sys::Syscalls& sys,
                                                        ReactorOptions options = {});
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // ---- Lifecycle (Twisted's run/stop/crash) ------------------------------------------------

  // Fires "startup", loops until stopped or crashed, returns after shutdown's after-phase.
  // Fails with kAlreadyRunning, kNotRestartable (after stop), or an OS error of epoll_wait
  // (the loop then crashes: no shutdown triggers).
  ReactorResult<void> run();
  // Fails with kNotRunning when not running or already stopping. Shutdown triggers fire at the
  // end of the current (or next) iteration, not inside this call.
  ReactorResult<void> stop();
  // Leaves the loop at once; fires no shutdown triggers; run() may be called again.
  void crash();
  [[nodiscard]] bool running() const { return running_; }

  // ---- System events -----------------------------------------------------------------------

  TriggerId add_system_event_trigger(Phase phase, std::string_view event, Callback fn);
  TriggerId add_holding_trigger(std::string_view event, std::function<void(EventHold)> fn);
  ReactorResult<void> remove_system_event_trigger(TriggerId id);
  bool fire_system_event(std::string_view event);
  // Calls fn now if running, else once startup finished (an after-startup trigger).
  void call_when_running(Callback fn);

  // ---- Readers and writers -----------------------------------------------------------------

  // Level-triggered. A second add for the same fd and direction replaces the callback. A reader
  // also hears EPOLLHUP and EPOLLERR; a writer hears EPOLLERR (and EPOLLHUP when the fd has no
  // reader). A callback removed while events are being dispatched gets no stale event, even if
  // the fd number is reused meanwhile.
  ReactorResult<void> add_reader(int fd, Callback on_readable);
  ReactorResult<void> add_writer(int fd, Callback on_writable);
  // The same with a plain function and its argument instead of a std::function: nothing is
  // allocated for it, which is what a connection registers (an idle one costs its reader).
  struct FdCallback {
    void (*fn)(void* context) = nullptr;
    void* context = nullptr;
  };
  ReactorResult<void> add_reader(int fd, FdCallback on_readable);
  ReactorResult<void> add_writer(int fd, FdCallback on_writable);
  ReactorResult<void> remove_reader(int fd);
  ReactorResult<void> remove_writer(int fd);
  // Removes fd's reader and writer for a caller that closes fd next, before the loop waits
  // again (a transport ending its connection). The close takes fd out of the epoll set, as the
  // kernel drops a registration with the last descriptor of its open file: this saves the
  // EPOLL_CTL_DEL that remove_reader makes, one system call of every short connection's
  // handful. When another descriptor still holds the file (a dup, a forked child's copy, one
  // passed away), the registration outlives the close and nothing can remove it; the loop
  // notices its first event, moves every watcher to a new epoll set, and removes explicitly
  // from then on (see drop_stale_registrations).
  void remove_before_close(int fd);
  // Removes every reader and writer except the reactor's own (the waker); returns their fds.
  std::vector<int> remove_all();
  // The fds with a reader / a writer, the reactor's own excluded, ascending.
  [[nodiscard]] std::vector<int> readers() const;
  [[nodiscard]] std::vector<int> writers() const;

  // ---- Time --------------------------------------------------------------------------------

  [[nodiscard]] TimePoint now();
  DelayedCall call_later(Duration delay, Callback fn);
  // How long the timed calls let the next epoll_wait block (Twisted's timeout(); see
  // TimerQueue::timeout). run() blocks for iteration_timeout(), which heeds thread calls too.
  [[nodiscard]] std::optional<Duration> timeout() { return timers_.timeout(); }
  [[nodiscard]] std::vector<DelayedCall> delayed_calls() const { return timers_.pending(); }

  // ---- Threads -----------------------------------------------------------------------------

  // Any thread, and any signal handler: runs fn on the reactor thread. Async-signal-safe:
  // lock-free, allocates nothing, never blocks (fn is built in place in a preallocated slot,
  // and the waker's wake() is a load or one write(2)). FIFO per calling thread; calls from
  // different threads run in the order they claimed their slots. An iteration runs only the
  // calls queued when it began (Twisted's rule): a call queued by a call runs in a later
  // iteration, after the timed calls due now and a look at I/O.
  //
  // fn must fit ThreadCallQueue::kInlineBytes (48) and be stored without throwing: a lambda
  // capturing pointers, references or moved-in values does; what does not is refused at
  // compile time, with the reason (box large state yourself, outside signal handlers).
  //
  // Fails with kQueueFull when options.thread_call_capacity calls wait already: nothing was
  // queued and fn was not moved from, so a thread may retry with the same fn after a pause.
  // A signal handler cannot wait: use a PreparedCall (post) for what must not be lost. The
  // reactor thread must not spin on kQueueFull either (it is the one that empties the ring).
  template <typename F>
  [[nodiscard]] ReactorResult<void> call_from_thread(F&& fn) noexcept {
    if (!thread_calls_.try_push(std::forward<F>(fn))) return reactor_fail(ReactorErrc::kQueueFull);
    waker_.wake();
    return {};
  }
  // Any thread or signal handler (async-signal-safe): runs `call` on the reactor thread;
  // coalesces with a post of the same call that has not run yet. Never refused, whatever the
  // ring holds. In a batch, posted calls run before call_from_thread's.
  void post(PreparedCall& call) noexcept;
  // Any thread, async-signal-safe: makes the current or next epoll_wait return.
  void wake_up() noexcept { waker_.wake(); }
  // Runs fn on the thread pool; false once the pool stopped (during shutdown).
  bool call_in_thread(Callback fn);
  void suggest_thread_pool_size(std::size_t n) { pool_.set_max_threads(n); }

  // ---- Signals and children ----------------------------------------------------------------

  // The user's action for SIGHUP, SIGUSR1 or SIGUSR2 (the signals with no meaning of their own
  // to the loop), run on the reactor thread. Set it before run(); a signal with no hook is left
  // alone. An empty hook removes it. Any other signal is a programming error: std::logic_error.
  void set_signal_hook(int sig, Callback hook);
  void set_sighup_hook(Callback hook) { set_signal_hook(SIGHUP, std::move(hook)); }
  // The signal that stopped the reactor (SIGINT/SIGTERM), or 0 (twistd exits with it).
  [[nodiscard]] int exit_signal() const { return exit_signal_; }
  // Reaps `pid` when it exits (on SIGCHLD, with waitpid(pid, WNOHANG) — never waitpid(-1), so
  // children spawned by others are never stolen). If it has exited already, on_exit runs now.
  // on_exit receives the raw wait status. Fails with kAlreadyRegistered.
  ReactorResult<void> watch_child(pid_t pid, std::function<void(int status)> on_exit);
  ReactorResult<void> unwatch_child(pid_t pid);
  // One waitpid(WNOHANG) per watched child (Twisted's reapAllProcesses).
  void reap_children();

  // ---- Daemonizing (Twisted's IReactorDaemonize) --------------------------------------------

  // Closes the epoll fd and the waker so none of them crosses into the daemon; no reactor
  // method may be used until after_daemonize(). Not while running, and no other thread may
  // touch the reactor meanwhile.
  void before_daemonize();
  // In the daemon: new epoll fd and waker, every reader and writer registered again.
  ReactorResult<void> after_daemonize();

  // ---- One step, for tests and embedding ---------------------------------------------------

  // Runs thread calls, due timed calls, and shutdown if stop() was called (runUntilCurrent).
  void run_until_current();
  // One epoll_wait with the given timeout (none: block) and dispatch (doIteration).
  ReactorResult<void> iterate(std::optional<Duration> timeout);
  // The timeout run() gives iterate(): zero while thread calls or caught signals wait (then
  // the waker stays pending, so producers pay one load per call); otherwise, after the brief
  // spin of polls_before_sleep, timeout() with the waker re-armed. Call it right before
  // iterate(): it is the only place the waker is re-armed.
  [[nodiscard]] std::optional<Duration> iteration_timeout();
  // Turns the loop (iterate for at most 100 ms, then run_until_current) until `done` holds:
  // true then, false once `limit` has passed on the reactor's clock without it (a child or
  // peer that hangs must not hang the test or bench waiting for it), or iterate's error.
  ReactorResult<bool> turn_until(const std::function<bool()>& done, Duration limit);

  [[nodiscard]] int epoll_fd() const { return epfd_.get(); }
  [[nodiscard]] int waker_fd() const { return waker_.fd(); }
  [[nodiscard]] const Waker& waker() const { return waker_; }

 private:
  // A std::function given to add_reader/add_writer is boxed on the heap, owned by its slot
  // (fn is run_owned); an FdCallback is stored as it is.
  static void run_owned(void* callback) { (*static_cast<Callback*>(callback))(); }
  struct Watcher {
    FdCallback on_read;
    FdCallback on_write;
    std::uint32_t generation = 0;  // 0: no watcher on this fd
    bool internal = false;
  };

  ReactorResult<void> add(int fd, FdCallback fn, bool reader, bool internal);
  [[nodiscard]] Watcher* watcher_of(int fd);
  // Frees a slot's boxed std::function; while events are being dispatched it may be the one
  // running (a callback that removes or replaces itself), so it is kept until the batch ends.
  void retire(FdCallback slot);
  void clear_slot(FdCallback& slot) { retire(std::exchange(slot, FdCallback{})); }

  Reactor(sys::Syscalls& sys, ReactorOptions options);
  ReactorResult<void> open_descriptors();
  void log(std::string_view line) const;
  ReactorResult<void> ctl(int op, int fd, const Watcher& watcher) {
    return ctl_on(epfd_.get(), op, fd, watcher);
  }
  ReactorResult<void> ctl_on(int epfd, int op, int fd, const Watcher& watcher);
  // Re-registers every watcher but `skip` in `epfd`; fails at the first that cannot be.
  ReactorResult<void> register_all(int epfd, int skip);
  ReactorResult<void> remove(int fd, bool reader);
  // Empties a watcher; during dispatch its generation is noted, so that an event for it later
  // in the batch is known to be expected.
  void forget(Watcher& watcher);
  void drop_stale_registrations();
  void invoke(FdCallback fn, const char* what, int fd);
  void log_unhandled(const char* what, int fd, const std::exception& e) const;
  void dispatch(const struct epoll_event& event);
  void handle_signals();
  void really_start_running();
  void ignore_sigpipe();
  void restore_sigpipe();
  void register_core_triggers();

  sys::Syscalls& sys_;
  ReactorOptions options_;
  OwnedFd epfd_;
  Waker waker_;
  SignalRouting signals_;
  TimerQueue timers_;
  SystemEventTriggers triggers_;
  ThreadCallQueue thread_calls_;
  std::size_t last_batch_ = 0;  // thread calls run by the last run_until_current
  ThreadPool pool_;
  // Indexed by fd: one lookup per event and no node per descriptor (a hash map's node and two
  // shared callbacks were some 140 bytes of every idle connection).
  std::vector<Watcher> watchers_;
  std::vector<std::unique_ptr<Callback>> retired_;
  bool dispatching_ = false;
  // Generations removed while the current batch is dispatched: their events are stale, but
  // expected. A stale event of any other generation is a registration that outlived its close.
  std::vector<std::uint32_t> removed_in_batch_;
  bool stale_registration_seen_ = false;
  // remove_before_close leaves the registration to the close, until a registration is seen to
  // outlive one.
  bool close_removes_registration_ = true;
  std::uint32_t next_generation_ = 1;
  std::map<pid_t, std::function<void(int)>> children_;
  std::map<int, Callback> signal_hooks_;  // SIGHUP, SIGUSR1, SIGUSR2
  // run() set SIGPIPE from SIG_DFL to SIG_IGN, and puts it back when it returns.
  bool ignoring_sigpipe_ = false;
  TimePoint last_now_{};
  // A busy server with a thousand connections finds hundreds ready at once: each epoll_wait
  // takes up to 256 of them (as the raw loop of bench/net does; libuv takes 1,024), 3 KiB.
  std::array<struct epoll_event, 256> events_{};

  bool started_ = false;
  bool running_ = false;
  bool stopped_ = false;
  bool just_stopped_ = false;
  bool started_before_ = false;
  int exit_signal_ = 0;
};

}  // namespace daemonkit::core
