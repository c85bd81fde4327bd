// What the scripted differential scenarios share (differential_sockets_test.cpp and
// differential_net_test.cpp): a Script that records each step's result as text in either
// world, AF_UNIX addresses, a forked child in either world, and SIGPIPE ignored.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/result.h"
#include "differential_world.h"

namespace daemonkit::fake::differential {

// Records steps as a scenario runs, in either world.
class Script {
 public:
  explicit Script(sys::Syscalls& syscalls) : os(syscalls) {}

  template <typename T>
  T value(const std::string& call, sys::Result<T> result, T otherwise,
          const std::function<std::string(const T&)>& show = {}) {
    if (!result) {
      steps.push_back({call, sys::errno_name(result.error().code)});
      return otherwise;
    }
    if (show) {
      steps.push_back({call, show(*result)});
    } else if constexpr (std::is_arithmetic_v<T>) {
      steps.push_back({call, std::to_string(*result)});
    }
    return *result;
  }

  void done(const std::string& call, const sys::Result<void>& result) {
    steps.push_back({call, result ? "ok" : sys::errno_name(result.error().code)});
  }

  void note(const std::string& call, std::string result) {
    steps.push_back({call, std::move(result)});
  }

  std::string poll_text(int fd) {
    pollfd entry{fd, POLLIN | POLLOUT | POLLRDHUP, 0};
    auto n = os.poll(&entry, 1, 0);
    if (!n) return sys::errno_name(n.error().code);
    std::string text;
    auto add = [&](short bit, const char* name) {
      if (entry.revents & bit) text += text.empty() ? name : std::string("|") + name;
    };
    add(POLLIN, "IN");
    add(POLLOUT, "OUT");
    add(POLLRDHUP, "RDHUP");
    add(POLLHUP, "HUP");
    add(POLLERR, "ERR");
    return text.empty() ? "0" : text;
  }

  std::string recv_text(int fd, std::size_t len, int flags = 0) {
    std::string buf(len, '\0');
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    auto n = os.recvfrom(fd, buf.data(), len, flags, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (!n) return sys::errno_name(n.error().code);
    buf.resize(std::min(*n, len));
    return fmt::format("n={} \"{}\" from_len={}", *n, buf, from_len);
  }

  sys::Syscalls& os;
  std::vector<Step> steps;
};

struct Unix {
  sockaddr_un un{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&un); }
};

inline Unix unix_path(const std::string& path) {
  Unix a;
  a.un.sun_family = AF_UNIX;
  std::memcpy(a.un.sun_path, path.data(), path.size());
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

inline Unix unix_abstract(const std::string& name) {
  Unix a;
  a.un.sun_family = AF_UNIX;
  std::memcpy(a.un.sun_path + 1, name.data(), name.size());
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

// Runs `child` in a forked child of the caller, in either world, and reaps it. Returns the
// child's pid (0 if the fork failed) and leaves how it ended in `s`.
inline pid_t in_child(Script& s, const std::function<bool(sys::Syscalls&)>& child) {
  sys::Syscalls& os = s.os;
  auto pid = os.fork();
  if (!pid) {
    s.note("fork", sys::errno_name(pid.error().code));
    return 0;
  }
  if (auto* fake = dynamic_cast<FakeSyscalls*>(&os)) {
    const pid_t parent = fake->getpid();
    fake->switch_to(*pid);
    const bool ok = child(os);
    fake->end_process(*pid, ok ? 0 : 1);
    fake->switch_to(parent);
  } else if (*pid == 0) {
    ::_exit(child(os) ? 0 : 1);  // the real world's child never returns into the scenario
  }
  auto waited = os.waitpid(*pid, 0);
  s.note("child", waited ? fmt::format("status {:#x}", waited->status)
                         : sys::errno_name(waited.error().code));
  return *pid;
}

// Ignores SIGPIPE in either world, so that write and writev report EPIPE and the scenario
// goes on (the real world runs in a forked child: the test binary keeps its disposition).
inline void ignore_sigpipe(Script& s) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  s.done("ignore SIGPIPE", s.os.sigaction(SIGPIPE, &ignore, nullptr));
}

}  // namespace daemonkit::fake::differential
