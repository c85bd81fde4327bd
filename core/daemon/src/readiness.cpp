#include "daemonkit/core/daemon/readiness.h"

#include <signal.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"

#include "status_link.h"

namespace daemonkit::core {
namespace {

std::string single_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

}  // namespace

std::string format_notify(const NotifyState& state) {
  std::string out;
  if (state.ready) out += "READY=1\n";
  if (state.stopping) out += "STOPPING=1\n";
  if (state.status) out += fmt::format("STATUS={}\n", single_line(*state.status));
  if (state.error_number) out += fmt::format("ERRNO={}\n", *state.error_number);
  if (state.main_pid) out += fmt::format("MAINPID={}\n", *state.main_pid);
  return out;
}

StepResult<NotifyAddress> notify_address(std::string_view notify_socket) {
  NotifyAddress out;
  const bool abstract = !notify_socket.empty() && notify_socket.front() == '@';
  if (notify_socket.empty() || (notify_socket.front() != '/' && !abstract)) {
    return step_failed(StepError::plain(
        StepKind::kReadiness,
        fmt::format("NOTIFY_SOCKET={} is neither a path nor an abstract socket", notify_socket)));
  }
  const auto address = SocketAddress::unix_name(notify_socket);
  if (!address) {
    return step_failed(StepError::plain(
        StepKind::kReadiness,
        fmt::format("NOTIFY_SOCKET={} is too long for a socket address", notify_socket)));
  }
  std::memcpy(&out.address, address->data(), address->size());
  out.length = address->size();
  return out;
}

sys::Result<void> send_notify(sys::Syscalls& os, const NotifyAddress& to,
                              std::string_view datagram) {
  auto opened = os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (!opened) return sys::fail(opened.error());
  OwnedFd fd(os, *opened);
  // MSG_DONTWAIT: a manager that never reads its queue cannot stall the daemon's start. A
  // full queue is EAGAIN, logged, and the start goes on, as sd_notify does.
  auto sent = os.sendto(fd.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                        reinterpret_cast<const sockaddr*>(&to.address), to.length);
  fd.reset();
  if (!sent) return sys::fail(sent.error());
  if (*sent != datagram.size()) return sys::fail(EMSGSIZE, "sendto");
  return {};
}

Readiness::Readiness(sys::Syscalls& os, Options options) : os_(os), options_(std::move(options)) {}

sys::Result<void> Readiness::report_pipe(bool ok, std::string_view message) {
  if (options_.status_fd < 0 || reported_) return {};
  reported_ = true;
  const int fd = std::exchange(options_.status_fd, -1);
  auto sent = ok ? report_ready(os_, fd) : report_failure(os_, fd, message);
  if (!sent) {
    pipe_error_ = sent.error();
    log_line(options_.log, fmt::format("could not report to the waiting parent: {}",
                                       sys::to_string(sent.error())));
  }
  return sent;
}

sys::Result<void> Readiness::report_notify(const NotifyState& state) {
  if (!options_.notify_socket) return {};
  auto to = notify_address(*options_.notify_socket);
  if (!to) {
    log_line(options_.log, to.error().message);
    return sys::fail(EINVAL, "sd_notify");
  }
  auto sent = send_notify(os_, *to, format_notify(state));
  if (!sent) {
    log_line(options_.log, fmt::format("sd_notify to {}: {}", *options_.notify_socket,
                                       sys::to_string(sent.error())));
  }
  return sent;
}

sys::Result<void> Readiness::ready(std::string_view status) {
  auto piped = report_pipe(true, {});
  NotifyState state;
  state.ready = true;
  if (!status.empty()) state.status = std::string(status);
  state.main_pid = options_.main_pid;
  auto notified = report_notify(state);
  return piped ? notified : piped;
}

sys::Result<void> Readiness::fail(std::string_view message, int error_number) {
  auto piped = report_pipe(false, message);
  NotifyState state;
  state.status = std::string(message);
  if (error_number != 0) state.error_number = error_number;
  auto notified = report_notify(state);
  return piped ? notified : piped;
}

}  // namespace daemonkit::core
