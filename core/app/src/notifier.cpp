#include "daemonkit/core/app/notifier.h"

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/base/environment_entry.h"

namespace daemonkit::core {
namespace {

template <typename T>
std::optional<T> whole_number(const std::string& text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

NotifyVariables NotifyVariables::from_envp(const char* const* envp) {
  NotifyVariables out;
  if (envp == nullptr) return out;
  for (const char* const* entry = envp; *entry != nullptr; ++entry) {
    if (auto v = environment_value(*entry, "NOTIFY_SOCKET")) out.notify_socket = std::move(v);
    if (auto v = environment_value(*entry, "WATCHDOG_USEC")) out.watchdog_usec = std::move(v);
    if (auto v = environment_value(*entry, "WATCHDOG_PID")) out.watchdog_pid = std::move(v);
  }
  return out;
}

Notifier::Notifier(Reactor& reactor, sys::Syscalls& os, const NotifyVariables& variables,
                   LogSink log)
    : reactor_(reactor), os_(os), log_(std::move(log)), self_(std::make_shared<Notifier*>(this)) {
  if (!variables.notify_socket) return;
  name_ = *variables.notify_socket;
  auto address = notify_address(name_);
  if (!address) {
    log_line(log_, fmt::format("sd_notify: {}; not notifying", address.error().message));
    return;
  }
  address_ = *address;
  if (!variables.watchdog_usec) return;
  if (variables.watchdog_pid) {
    const auto pid = whole_number<pid_t>(*variables.watchdog_pid);
    if (!pid || *pid != os_.getpid()) return;  // meant for another process: not ours to feed
  }
  const auto usec = whole_number<std::uint64_t>(*variables.watchdog_usec);
  // Half of it, as sd_watchdog_enabled(3) advises; a value too small to halve cannot be kept.
  if (!usec || *usec < 2 || *usec > std::uint64_t{1} << 53) {
    log_line(log_, fmt::format("sd_notify: WATCHDOG_USEC={} is not a usable number of "
                               "microseconds; no keep-alives",
                               *variables.watchdog_usec));
    return;
  }
  keepalive_ = std::chrono::duration_cast<Duration>(std::chrono::microseconds(*usec / 2));
}

Notifier::~Notifier() {
  self_.reset();
  if (keepalive_timer_.active()) (void)keepalive_timer_.cancel();
}

bool Notifier::ready(std::string_view status) {
  NotifyState state;
  state.ready = true;
  if (!status.empty()) state.status = std::string(status);
  const bool sent = send(format_notify(state));
  start_keep_alives();
  return sent;
}

void Notifier::start_keep_alives() {
  if (keepalive_ && enabled() && !keepalive_timer_.active()) schedule_keep_alive();
}

bool Notifier::stopping(std::string_view status) {
  if (keepalive_timer_.active()) (void)keepalive_timer_.cancel();
  NotifyState state;
  state.stopping = true;
  if (!status.empty()) state.status = std::string(status);
  return send(format_notify(state));
}

bool Notifier::status(std::string_view text) {
  NotifyState state;
  state.status = std::string(text);
  return send(format_notify(state));
}

bool Notifier::keep_alive() { return send("WATCHDOG=1\n"); }

void Notifier::schedule_keep_alive() {
  keepalive_timer_ = reactor_.call_later(*keepalive_, [self = std::weak_ptr<Notifier*>(self_)] {
    const auto alive = self.lock();
    if (!alive) return;
    Notifier& notifier = **alive;
    (void)notifier.keep_alive();
    notifier.schedule_keep_alive();
  });
}

bool Notifier::send(std::string_view datagram) {
  if (!enabled()) return true;
  auto sent = send_once(datagram);
  if (sent) {
    last_error_.reset();
    return true;
  }
  ++failed_;
  // Logged once per run of failures: the first after a success, or the first ever.
  if (!last_error_) {
    log_line(log_, fmt::format("sd_notify to {}: {} (further failures are not logged until a "
                               "notification gets through)",
                               name_, sys::to_string(sent.error())));
  }
  last_error_ = sent.error();
  return false;
}

sys::Result<void> Notifier::send_once(std::string_view datagram) {
  if (!socket_.valid()) {
    // Made at the first send, not at construction: a daemon that is never told of a manager,
    // or that daemonizes (and closes what it inherited) before it is ready, holds nothing.
    auto opened = os_.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (!opened) return sys::fail(opened.error());
    socket_ = OwnedFd(os_, *opened);
  }
  auto sent =
      os_.sendto(socket_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&address_->address), address_->length);
  if (!sent) return sys::fail(sent.error().about(name_));
  if (*sent != datagram.size()) return sys::fail(sys::Error{EMSGSIZE, "sendto", name_});
  return {};
}

}  // namespace daemonkit::core
