#include "daemonkit/core/app/log_format.h"

#include <time.h>

#include <cstdlib>

#include <fmt/format.h>

namespace daemonkit::core {

WallTime wall_clock_now(sys::Syscalls& os) {
  auto now = os.clock_gettime(CLOCK_REALTIME);
  if (!now) return WallTime{};
  return WallTime{std::chrono::seconds(now->tv_sec) + std::chrono::nanoseconds(now->tv_nsec)};
}

std::string format_log_time(WallTime time, std::chrono::minutes utc_offset) {
  using namespace std::chrono;
  const auto local = floor<seconds>(time) + utc_offset;
  const auto day = floor<days>(local);
  const year_month_day date{day};
  const hh_mm_ss clock{local - day};
  const auto offset = utc_offset.count();
  const auto magnitude = std::abs(offset);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}{:02}", int(date.year()),
                     unsigned(date.month()), unsigned(date.day()), clock.hours().count(),
                     clock.minutes().count(), clock.seconds().count(), offset < 0 ? '-' : '+',
                     magnitude / 60, magnitude % 60);
}

std::string format_log_line(WallTime time, std::string_view system, std::string_view text,
                            std::chrono::minutes utc_offset) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  std::string line = format_log_time(time, utc_offset);
  line.reserve(line.size() + system.size() + text.size() + 5);
  line += " [";
  line += system;
  line += "] ";
  for (char c : text) {
    line += c;
    if (c == '\n') line += '\t';
  }
  line += '\n';
  return line;
}

}  // namespace daemonkit::core
