// The load bench/net puts on an echo server over loopback, from this process (the server runs
// in its own): each case opens its connections, warms up, then counts what completes in a
// measured window together with the server's CPU time over the same window. Every case is
// bounded in time and fails with a reason rather than wait on a server that stalls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server_process.h"

namespace daemonkit::bench {

// What one case measured, or why it could not.
struct Measured {
  double rate = 0;        // operations per second of wall time in the window
  double cpu_ns_per = 0;  // the server's CPU nanoseconds per operation in the window
  double extra = 0;       // the idle case: seconds the burst of connects took
  std::string failed;     // empty when the figures mean something
  // The sums behind rate and cpu_ns_per, so windows can be pooled (pooled).
  double operations = 0;
  double seconds = 0;
  double cpu_ns = 0;
};

// The windows of one case as one: operations, seconds and CPU summed, then divided. Failed
// when any window failed (with the first one's reason), or when there are none.
Measured pooled(const std::vector<Measured>& windows);

struct Timing {
  double warmup_s = 0.2;  // run before the window opens, so connection setup and caches settle
  double window_s = 1.0;  // the measured window
};

// `connections` connections each sending `message_bytes`, waiting for the echo, sending again;
// operations are round trips.
Measured ping_pong(ServerProcess& server, int connections, int message_bytes, Timing timing);

// One connection written and read at once in 64 KiB chunks, the echo checked byte by byte;
// operations are MiB echoed.
Measured bulk(ServerProcess& server, Timing timing);

// Connect, one 64-byte round trip, close, with `in_flight` such cycles under way at any time;
// operations are completed cycles (accepts). The client resets (SO_LINGER 0) rather than
// closes, so no TIME_WAIT piles up on the 28,000 ephemeral ports over rounds and servers.
Measured accepts(ServerProcess& server, int in_flight, Timing timing);

// Opens `connections` at once (the burst), one 1-byte round trip on each so the server has
// accepted and read them all, and measures the server's VmRSS growth: `rate` is bytes per
// idle connection, `extra` the seconds the burst took. A first connection is opened before the
// "before" reading so one-time costs (a shared read buffer) are not charged to the others.
Measured idle_memory(ServerProcess& server, int connections, double timeout_s);

}  // namespace daemonkit::bench
