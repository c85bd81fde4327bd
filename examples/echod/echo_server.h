// echod's server: a TCP echo service on one address, driven by poll(2) on sys::Syscalls, that
// stops cleanly when SIGTERM or SIGINT arrives (through a signalfd, so no handler races).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <map>
#include <string>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace echod {

class EchoServer {
 public:
  explicit EchoServer(daemonkit::sys::Syscalls& os) : os_(os) {}
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;
  ~EchoServer();

  // Blocks SIGTERM and SIGINT into a signalfd, then binds and listens on host:port (IPv4;
  // port 0 picks a free one). Errors name the step: "bind(127.0.0.1:7007): Address already in
  // use (EADDRINUSE)".
  [[nodiscard]] daemonkit::core::StepResult<void> listen(const std::string& host,
                                                         std::uint16_t port);

  // The address actually bound, e.g. "127.0.0.1:40123".
  [[nodiscard]] std::string address() const;

  // Echoes every byte back to its sender until SIGTERM or SIGINT; returns the signal.
  [[nodiscard]] daemonkit::core::StepResult<int> serve();

 private:
  void accept_all();
  void on_readable(int fd);
  void on_writable(int fd);
  void drop(int fd);

  daemonkit::sys::Syscalls& os_;
  int listen_fd_ = -1;
  int signal_fd_ = -1;
  sockaddr_in bound_{};
  std::map<int, std::string> pending_;  // client fd -> bytes not yet written back
};

}  // namespace echod
