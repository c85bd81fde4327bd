#include "daemonkit/core/daemon/environment.h"

#include <sys/stat.h>

#include <charconv>

namespace daemonkit::core {
namespace {

std::optional<std::string> value_of(const char* entry, std::string_view key) {
  const std::string_view text(entry);
  if (text.size() <= key.size() || text.substr(0, key.size()) != key || text[key.size()] != '=') {
    return std::nullopt;
  }
  std::string value(text.substr(key.size() + 1));
  if (value.empty()) return std::nullopt;
  return value;
}

}  // namespace

Environment Environment::from_envp(const char* const* envp) {
  Environment env;
  if (envp == nullptr) return env;
  for (const char* const* entry = envp; *entry != nullptr; ++entry) {
    if (auto v = value_of(*entry, "NOTIFY_SOCKET")) env.notify_socket = std::move(v);
    if (auto v = value_of(*entry, "LISTEN_PID")) env.listen_pid = std::move(v);
  }
  return env;
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
  if (os.getppid() == 1) return {false, "init is the parent of this process"};
  // inetd hands the connection over as stdin; PEP 3143 treats a socket there as "inetd".
  if (auto st = os.fstat(0); st && S_ISSOCK(st->st_mode)) {
    return {false, "stdin is a socket (started by inetd)"};
  }
  return {true, "started from a shell or a forking service manager"};
}

}  // namespace daemonkit::core
