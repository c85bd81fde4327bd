// The status pipe, twistd's protocol without its defects (design.md §4): the daemon reports
// "0" (ready) or "1 <message>" (failed) in one write of at most 100 bytes, and the parent that
// started it waits for that report and exits 0, or 1 with the message on stderr.
#pragma once

#include "daemonkit/core/status/status_codec.h"     // the wire format, sans I/O
#include "daemonkit/core/status/status_exit.h"      // the parent's exit code and stderr text
#include "daemonkit/core/status/status_message.h"   // making messages safe
#include "daemonkit/core/status/status_reporter.h"  // the daemon's end
#include "daemonkit/core/status/status_waiter.h"    // the parent's end
