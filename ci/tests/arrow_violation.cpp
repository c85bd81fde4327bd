// A planted wrong arrow: the daemon area reaching for the reactor, which core/README.md forbids.
// Built with exactly the daemon area's include path, it must fail to compile (ctest builds it
// and expects the reactor header not to be found), which proves the arrows are enforced.
#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/core/reactor/reactor.h"

int daemonkit_arrow_violation() { return 0; }
