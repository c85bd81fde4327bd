#include "daemonkit/core/daemon/environment.h"

#include <sys/stat.h>

#include <charconv>

#include "daemonkit/core/base/environment_entry.h"

namespace daemonkit::core {

Environment Environment::from_envp(const char* const* envp) {
  Environment env;
  if (envp == nullptr) return env;
  for (const char* const* entry = envp; *entry != nullptr; ++entry) {
    if (auto v = environment_value(*entry, "NOTIFY_SOCKET")) env.notify_socket = std::move(v);
    if (auto v = environment_value(*entry, "LISTEN_PID")) env.listen_pid = std::move(v);
    if (auto v = environment_value(*entry, "DAEMONKIT_STATUS_FD")) env.status_fd = std::move(v);
  }
  return env;
}

std::optional<int> Environment::launcher_status_fd(sys::Syscalls& os) const {
  if (!status_fd) return std::nullopt;
  int fd = -1;
  const std::string& text = *status_fd;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
  if (ec != std::errc{} || end != text.data() + text.size() || fd <= 2) return std::nullopt;
  auto st = os.fstat(fd);
  if (!st || !S_ISFIFO(st->st_mode)) return std::nullopt;
  return fd;
}

DetachDecision decide_detach(sys::Syscalls& os, const Environment& env) {
  if (env.notify_socket) {
    return {false, "a service manager supervises this process ($NOTIFY_SOCKET is set)"};
  }
  if (env.listen_pid) {
    pid_t listen_pid = 0;
    const std::string& text = *env.listen_pid;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), listen_pid);
    if (ec == std::errc{} && end == text.data() + text.size() && listen_pid == os.getpid()) {
      return {false, "sockets were passed to this process ($LISTEN_PID is its pid)"};
    }
  }
  if (env.launcher_status_fd(os)) {
    return {false, "a launcher waits for this process's report ($DAEMONKIT_STATUS_FD)"};
  }
  if (os.getppid() == 1) return {false, "init is the parent of this process"};
  // inetd hands the connection over as stdin; PEP 3143 treats a socket there as "inetd".
  if (auto st = os.fstat(0); st && S_ISSOCK(st->st_mode)) {
    return {false, "stdin is a socket (started by inetd)"};
  }
  return {true, "started from a shell or a forking service manager"};
}

}  // namespace daemonkit::core
