// One echo server under test, in a process of its own: started with the shared command line
// (echo_server_args.h), its port read from its first line of output, its CPU time and resident
// memory read from /proc while it runs, and ended when this object goes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace daemonkit::bench {

class ServerProcess {
 public:
  // Starts `argv` with "--backlog N" appended and waits (at most `timeout_s`) for its port;
  // with `cpu`, the process (before it announces) runs on that CPU alone. Nothing, after a
  // message on stderr, when it cannot be started, pinned or does not announce a port.
  static std::optional<ServerProcess> start(const std::vector<std::string>& argv, int backlog,
                                            double timeout_s, std::optional<int> cpu);

  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&&) = delete;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Ends the server: SIGTERM, then SIGKILL if it has not exited within two seconds.
  ~ServerProcess();

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

  // Nanoseconds on CPU so far, summed over its threads: the first field of each
  // /proc/PID/task/TID/schedstat (the scheduler's own count, not tick-sampled like stat's
  // utime). Nothing when the process is gone.
  [[nodiscard]] std::optional<std::uint64_t> cpu_ns() const;
  // VmRSS from /proc/PID/status, in KiB.
  [[nodiscard]] std::optional<std::uint64_t> rss_kib() const;
  // True while it has not exited (reaping it if it has, so the pid is never signalled after).
  [[nodiscard]] bool running();

 private:
  ServerProcess(pid_t pid, std::uint16_t port) : pid_(pid), port_(port) {}

  pid_t pid_;
  std::uint16_t port_;
};

}  // namespace daemonkit::bench
