#include "daemonkit/core/app/log_signals.h"

#include <signal.h>

namespace daemonkit::core {

void route_log_signals(Reactor& reactor, LogFile& file, LogSignalOptions options) {
  if (options.rotate_on_sigusr1) reactor.set_signal_hook(SIGUSR1, [&file] { (void)file.rotate(); });
  if (options.reopen_on_sighup) reactor.set_signal_hook(SIGHUP, [&file] { (void)file.reopen(); });
}

}  // namespace daemonkit::core
