// How a daemon's log line looks: twistd's classic text format,
// "2026-12-02T11:00:00+0000 [system] message", one line per event, the lines after the first
// of a multi-line text prefixed with a TAB so that a reader can tell where an event ends.
//
// Time is the wall clock (CLOCK_REALTIME, read through Syscalls) shown at a fixed offset from
// UTC, +0000 by default. twistd shows local time, which needs the time zone database: a
// chrooted daemon has none, reading it would be file I/O behind the seam's back, and a zone's
// daylight-saving jump makes the log's times go backwards once a year. An operator who wants
// local time states the offset.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// A point on the wall clock (CLOCK_REALTIME), nanoseconds since the Unix epoch. Read through
// Syscalls, never with system_clock::now(), so the fake kernel's clock drives it.
using WallTime = std::chrono::sys_time<std::chrono::nanoseconds>;

// CLOCK_REALTIME now; the epoch if the clock cannot be read (a log line with a wrong time
// is better than no line).
[[nodiscard]] WallTime wall_clock_now(sys::Syscalls& os);

// "%Y-%m-%dT%H:%M:%S%z" at `utc_offset`: "2026-12-02T11:00:00+0000", "…T12:00:00+0100".
// Seconds are truncated, as strftime truncates.
[[nodiscard]] std::string format_log_time(
    WallTime time, std::chrono::minutes utc_offset = std::chrono::minutes(0));

// "<time> [<system>] <text>\n", every '\n' inside `text` followed by a TAB (twistd's
// continuation lines). A text that ends with '\n' does not end the event with an empty line.
[[nodiscard]] std::string format_log_line(
    WallTime time, std::string_view system, std::string_view text,
    std::chrono::minutes utc_offset = std::chrono::minutes(0));

}  // namespace daemonkit::core
