#include "daemonkit/core/app/syslog_sink.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

int severity_of(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return LOG_DEBUG;
    case LogLevel::kInfo:
      return LOG_INFO;
    case LogLevel::kWarn:
      return LOG_WARNING;
    case LogLevel::kError:
      return LOG_ERR;
    case LogLevel::kCritical:
      return LOG_CRIT;
  }
  return LOG_INFO;
}

// RFC 3164's TIMESTAMP: "Mmm dd hh:mm:ss", the day padded with a space ("Dec  2").
std::string syslog_time(WallTime time, std::chrono::minutes utc_offset) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto local = floor<seconds>(time) + utc_offset;
  const auto day = floor<days>(local);
  const year_month_day date{day};
  const hh_mm_ss clock{local - day};
  return fmt::format("{} {:>2} {:02}:{:02}:{:02}", kMonths[unsigned(date.month()) - 1],
                     unsigned(date.day()), clock.hours().count(), clock.minutes().count(),
                     clock.seconds().count());
}

// The longest prefix of `text` no longer than `limit` that does not end inside a UTF-8 sequence.
std::size_t utf8_cut(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text.size();
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

bool peer_gone(int code) {
  return code == ECONNREFUSED || code == ENOTCONN || code == ECONNRESET || code == EPIPE;
}

TimePoint monotonic_now(sys::Syscalls& os) {
  auto now = os.clock_gettime(CLOCK_MONOTONIC);
  if (!now) return TimePoint{};
  return TimePoint{std::chrono::seconds(now->tv_sec) + std::chrono::nanoseconds(now->tv_nsec)};
}

}  // namespace

std::string syslog_record(const SyslogOptions& options, int severity, WallTime time, pid_t pid,
                          std::string_view system, std::string_view line) {
  std::string record = fmt::format("<{}>{} {}", options.facility | severity,
                                   syslog_time(time, options.utc_offset), options.ident);
  if (options.include_pid) record += fmt::format("[{}]", pid);
  record += fmt::format(": [{}] {}", system, line);
  record.resize(utf8_cut(record, options.max_record));
  return record;
}

SyslogSink::SyslogSink(sys::Syscalls& os, SyslogOptions options)
    : os_(os), options_(std::move(options)) {}

void SyslogSink::emit(LogLevel level, std::string_view system, std::string_view text) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty()) return;
  const WallTime now = wall_clock_now(os_);
  const pid_t pid = os_.getpid();
  bool first = true;
  while (true) {
    const auto newline = text.find('\n');
    std::string line(text.substr(0, newline));
    if (!first) line.insert(0, 1, '\t');
    first = false;
    send(syslog_record(options_, severity_of(level), now, pid, system, line));
    if (newline == std::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
}

bool SyslogSink::send(const std::string& record) {
  if (unreported_ > 0) {
    const std::string why = last_error_ ? fmt::format(" ({})", *last_error_) : std::string();
    const std::string report = syslog_record(
        options_, LOG_WARNING, wall_clock_now(os_), os_.getpid(), "-",
        fmt::format("{} syslog record{} dropped{}", unreported_, unreported_ == 1 ? "" : "s", why));
    // While the report cannot go, neither can what it would precede.
    if (auto failed = deliver(report)) {
      drop(*failed);
      return false;
    }
    unreported_ = 0;
  }
  if (auto failed = deliver(record)) {
    drop(*failed);
    return false;
  }
  return true;
}

// One record, with one reconnect if the socket turned out to be gone. Nothing, or why not.
std::optional<sys::Error> SyslogSink::deliver(const std::string& record) {
  bool reconnected = false;
  while (true) {
    if (!fd_ && !connect()) return connect_error_;
    auto sent = sys::retry_on_eintr([&] {
      return os_.sendto(fd_.get(), record.data(), record.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                        nullptr, 0);
    });
    if (sent) return std::nullopt;
    if (peer_gone(sent.error().code) && !reconnected) {
      fd_.reset();  // the syslog daemon went away or restarted: a new socket, a new connect
      reconnected = true;
      continue;
    }
    return sent.error().about(options_.socket_path);
  }
}

bool SyslogSink::connect() {
  const TimePoint now = monotonic_now(os_);
  if (next_connect_ && now < *next_connect_) return false;
  auto failed = [&](const sys::Error& error) {
    connect_error_ = error.about(options_.socket_path);
    next_connect_ = now + options_.reconnect_delay;
    return false;
  };
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  if (options_.socket_path.size() >= sizeof(address.sun_path)) {
    return failed(sys::Error{ENAMETOOLONG, "connect", {}});
  }
  std::memcpy(address.sun_path, options_.socket_path.data(), options_.socket_path.size());
  auto fd = os_.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (!fd) return failed(fd.error());
  OwnedFd socket(os_, *fd);
  if (auto r = os_.connect(socket.get(), reinterpret_cast<const struct sockaddr*>(&address),
                           sizeof(address));
      !r) {
    return failed(r.error());
  }
  fd_ = std::move(socket);
  next_connect_.reset();
  return true;
}

void SyslogSink::drop(const sys::Error& why) {
  last_error_ = why;
  ++unreported_;
  ++dropped_total_;
}

}  // namespace daemonkit::core
