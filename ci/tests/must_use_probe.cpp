// Results above sys must be used, as sys::Result is. Each DAEMONKIT_DROP_* below drops one
// result on the floor; ctest builds the file once per macro with -Werror=unused-result and
// requires the compiler to refuse it (ci/check_must_use.cmake). The build compiles it once
// with no macro, which proves that the dropped result is the only thing wrong with each case.
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"

namespace daemonkit::probe {

// The example: stopping a reactor that is not running is Twisted's ReactorNotRunning.
bool stop_reactor(core::Reactor& reactor) {
#ifdef DAEMONKIT_DROP_REACTOR_RESULT
  reactor.stop();
  return true;
#else
  return static_cast<bool>(reactor.stop());
#endif
}

// A DelayedCall's cancel() says whether there was anything left to cancel.
bool cancel_call(core::DelayedCall& call) {
#ifdef DAEMONKIT_DROP_DELAYED_CALL_RESULT
  call.cancel();
  return true;
#else
  return static_cast<bool>(call.cancel());
#endif
}

// A start-up hook is a std::function, whose call operator no attribute on a function can
// reach: only the result type itself makes its failure impossible to drop.
bool run_hook(const core::DaemonOptions& options) {
#ifdef DAEMONKIT_DROP_STEP_RESULT
  options.after_detach();
  return true;
#else
  return static_cast<bool>(options.after_detach());
#endif
}

}  // namespace daemonkit::probe
