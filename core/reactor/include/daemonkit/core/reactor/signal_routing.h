// SignalRouting: brings signals into the reactor's loop instead of acting in the handler.
//
// Choice: a real handler that sets a bit and wakes the reactor's Waker (what Twisted's
// set_wakeup_fd and libuv's signal pipe do), not signalfd. signalfd only sees a signal if it is
// blocked in *every* thread, and a daemon cannot vouch for threads that libraries start; a
// handler works whichever thread the kernel picks. The handler only touches atomics and the
// Waker, which is async-signal-safe, and the loop does the work (logging, stop, reaping).
//
// Signal dispositions are process-wide, so the handler finds its router through a table with one
// slot per signal: the one global state here, forced by the OS.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "daemonkit/core/reactor/internal/waker.h"
#include "daemonkit/core/reactor/reactor_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

class SignalRouting {
 public:
  SignalRouting(sys::Syscalls& sys, Waker& waker) : sys_(sys), waker_(waker) {}
  ~SignalRouting() { uninstall(); }
  SignalRouting(const SignalRouting&) = delete;
  SignalRouting& operator=(const SignalRouting&) = delete;

  // Routes `sig` to this object, remembering its previous disposition. With
  // `only_if_default`, a signal whose disposition is not SIG_DFL is left alone (Twisted keeps a
  // SIGINT handler someone else installed; this also keeps SIG_IGN from nohup or `cmd &`) and
  // false is returned. Fails with kSignalsTaken if another router has the signal.
  ReactorResult<bool> route(int sig, bool only_if_default = false);
  // Restores every previous disposition (Twisted leaves its handlers installed: #11761).
  void uninstall();

  // Reactor thread: the signals caught since the last call, lowest number first.
  [[nodiscard]] std::vector<int> take_caught();
  [[nodiscard]] bool routes(int sig) const;
  // Whether a caught signal waits for take_caught().
  [[nodiscard]] bool any_caught() const { return caught_.load(std::memory_order_seq_cst) != 0; }

  // What the kernel calls. Public so a test on the fake kernel can deliver a signal by calling
  // the handler it finds installed, exactly as the kernel would.
  static void handle(int sig) noexcept;

 private:
  struct Saved {
    int sig;
    struct sigaction previous;
  };

  sys::Syscalls& sys_;
  Waker& waker_;
  std::atomic<std::uint64_t> caught_{0};
  std::vector<Saved> saved_;
};

}  // namespace daemonkit::core
