#include "daemonkit/core/app/exit_by_signal.h"

#include <signal.h>

namespace daemonkit::core {

int exit_by_signal(sys::Syscalls& os, int sig) {
  // The reactor routed the signal to a handler while it ran; whatever handler is left now
  // would catch the signal instead of letting it end the process.
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  (void)os.sigaction(sig, &action, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  (void)os.sigprocmask(SIG_UNBLOCK, &set, nullptr);
  (void)os.kill(os.getpid(), sig);
  return 128 + sig;
}

}  // namespace daemonkit::core
