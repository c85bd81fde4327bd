#include "daemonkit/core/net/socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/base/environment_entry.h"
#include "daemonkit/core/base/socket_address.h"
#include "stream_socket.h"

namespace daemonkit::core {
namespace {

constexpr const char* kListenPid = "LISTEN_PID";
constexpr const char* kListenFds = "LISTEN_FDS";
constexpr const char* kListenFdNames = "LISTEN_FDNAMES";

// An empty value counts as unset, as sd_listen_fds treats it.
std::optional<std::string> nonempty(std::string_view value) {
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

// A decimal number from `low` to `high`, nothing else: no sign, no spaces, no trailing bytes.
std::optional<long> number_in(const std::string& text, long low, long high) {
  long value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || stop != end || value < low || value > high || text[0] == '+') {
    return std::nullopt;
  }
  return value;
}

sys::Error invalid(const char* variable, const std::string& value) {
  return sys::Error{EINVAL, "socket activation", fmt::format("{}={}", variable, value)};
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::size_t from = 0;
  for (;;) {
    const std::size_t colon = text.find(':', from);
    names.push_back(text.substr(from, colon - from));
    if (colon == std::string::npos) return names;
    from = colon + 1;
  }
}

// The descriptor is open, and from now on closed across exec.
sys::Result<void> keep_from_children(sys::Syscalls& os, int fd) {
  auto flags = os.fcntl(fd, F_GETFD, 0);
  if (!flags) return sys::fail(flags.error().about(fmt::format("descriptor {}", fd)));
  if (*flags & FD_CLOEXEC) return {};
  if (auto set = os.fcntl(fd, F_SETFD, *flags | FD_CLOEXEC); !set) {
    return sys::fail(set.error().about(fmt::format("descriptor {}", fd)));
  }
  return {};
}

}  // namespace

ActivationVariables ActivationVariables::from_envp(const char* const* envp) {
  ActivationVariables variables;
  if (envp == nullptr) return variables;
  for (const char* const* entry = envp; *entry != nullptr; ++entry) {
    if (auto v = environment_value(*entry, kListenPid)) variables.listen_pid = std::move(v);
    if (auto v = environment_value(*entry, kListenFds)) variables.listen_fds = std::move(v);
    if (auto v = environment_value(*entry, kListenFdNames)) variables.listen_fdnames = std::move(v);
  }
  return variables;
}

ActivationVariables ActivationVariables::take_from_environment() {
  ActivationVariables variables;
  const auto take = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): main, no threads yet
    std::optional<std::string> copy = value != nullptr ? nonempty(value) : std::nullopt;
    ::unsetenv(name);
    return copy;
  };
  variables.listen_pid = take(kListenPid);
  variables.listen_fds = take(kListenFds);
  variables.listen_fdnames = take(kListenFdNames);
  return variables;
}

ActivatedSockets::ActivatedSockets(std::vector<OwnedFd> fds, std::vector<std::string> names)
    : fds_(std::move(fds)), names_(std::move(names)) {}

sys::Result<OwnedFd> ActivatedSockets::take(std::size_t index) {
  if (index >= fds_.size() || !fds_[index].valid()) {
    return sys::fail(
        sys::Error{ENOENT, "socket activation", fmt::format("index {} of {}", index, fds_.size())});
  }
  return std::move(fds_[index]);
}

sys::Result<OwnedFd> ActivatedSockets::take(std::string_view name) {
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    if (names_[i] == name && fds_[i].valid()) return std::move(fds_[i]);
  }
  return sys::fail(sys::Error{ENOENT, "socket activation", fmt::format("name {}", name)});
}

sys::Result<ActivatedSockets> listen_fds(sys::Syscalls& os, const ActivationVariables& variables) {
  if (!variables.listen_pid || !variables.listen_fds) return ActivatedSockets{};
  const auto pid = number_in(*variables.listen_pid, 1, INT_MAX);
  if (!pid) return sys::fail(invalid(kListenPid, *variables.listen_pid));
  if (*pid != os.getpid()) return ActivatedSockets{};
  const auto count = number_in(*variables.listen_fds, 0, INT_MAX - ActivatedSockets::kFirstFd);
  if (!count) return sys::fail(invalid(kListenFds, *variables.listen_fds));
  const auto n = static_cast<std::size_t>(*count);
  std::vector<std::string> names;
  if (variables.listen_fdnames) {
    names = split_names(*variables.listen_fdnames);
    if (names.size() != n) return sys::fail(invalid(kListenFdNames, *variables.listen_fdnames));
  } else {
    names.assign(n, "unknown");
  }
  // Checked one by one: a count far beyond what is open fails at the first closed number, it
  // does not walk the whole range.
  std::vector<OwnedFd> fds;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ActivatedSockets::kFirstFd + static_cast<int>(i);
    if (auto kept = keep_from_children(os, fd); !kept) return sys::fail(kept.error());
    fds.emplace_back(os, fd);
  }
  return ActivatedSockets(std::move(fds), std::move(names));
}

namespace {

// An adopted descriptor is checked before it is used: a socket of `type` (else EPROTOTYPE), and
// for a stream socket, listening or connected as the caller needs (else EINVAL, naming the call
// that would have failed on it).
sys::Result<void> check_socket(sys::Syscalls& os, int fd, int type, std::optional<bool> listening) {
  const auto option = [&](int name) -> sys::Result<int> {
    int value = 0;
    socklen_t len = sizeof value;
    if (auto got = os.getsockopt(fd, SOL_SOCKET, name, &value, &len); !got) {
      return sys::fail(got.error());
    }
    return value;
  };
  auto got_type = option(SO_TYPE);
  if (!got_type) return sys::fail(got_type.error());
  if (*got_type != type) return sys::fail(sys::Error{EPROTOTYPE, "getsockopt", {}});
  if (!listening) return {};
  auto accepting = option(SO_ACCEPTCONN);
  if (!accepting) return sys::fail(accepting.error());
  if ((*accepting != 0) != *listening) {
    return sys::fail(sys::Error{EINVAL, *listening ? "listen" : "getsockopt", {}});
  }
  return {};
}

// The loop never blocks on a descriptor it was handed: O_NONBLOCK is set if it was not.
sys::Result<void> make_non_blocking(sys::Syscalls& os, int fd) {
  auto status = os.fcntl(fd, F_GETFL, 0);
  if (!status) return sys::fail(status.error());
  if ((*status & O_NONBLOCK) != 0) return {};
  if (auto set = os.fcntl(fd, F_SETFL, *status | O_NONBLOCK); !set) {
    return sys::fail(set.error());
  }
  return {};
}

sys::Error about_adopted(const sys::Error& e, int fd) {
  return e.about(fmt::format("adopted descriptor {}", fd));
}

}  // namespace

ReactorResult<std::unique_ptr<ListeningPort>> adopt_stream_port(Reactor& reactor, sys::Syscalls& os,
                                                                OwnedFd fd, ServerFactory& factory,
                                                                PortOptions options) {
  const auto about = [&](const sys::Error& e) { return about_adopted(e, fd.get()); };
  if (auto checked = check_socket(os, fd.get(), SOCK_STREAM, true); !checked) {
    return reactor_fail(about(checked.error()));
  }
  if (auto set = make_non_blocking(os, fd.get()); !set) return reactor_fail(about(set.error()));
  auto address = detail::bound_address(os, fd);
  if (!address) return reactor_fail(about(address.error()));
  return ListeningPort::start(reactor, os, std::move(fd), *address, factory, std::move(options));
}

ReactorResult<std::unique_ptr<Connection>> adopt_stream_connection(Reactor& reactor,
                                                                   sys::Syscalls& os, OwnedFd fd,
                                                                   ServerFactory& factory,
                                                                   Connection::Owner* owner,
                                                                   StreamOptions options) {
  const auto about = [&](const sys::Error& e) { return about_adopted(e, fd.get()); };
  if (auto checked = check_socket(os, fd.get(), SOCK_STREAM, false); !checked) {
    return reactor_fail(about(checked.error()));
  }
  sockaddr_storage name{};
  socklen_t name_len = sizeof name;
  if (auto got = os.getpeername(fd.get(), reinterpret_cast<sockaddr*>(&name), &name_len); !got) {
    return reactor_fail(about(got.error()));
  }
  const SocketAddress peer = SocketAddress::from(reinterpret_cast<const sockaddr*>(&name), name_len)
                                 .value_or(SocketAddress{});
  if (auto set = make_non_blocking(os, fd.get()); !set) return reactor_fail(about(set.error()));
  std::unique_ptr<Protocol> protocol = factory.build_protocol(peer);
  if (!protocol) {
    return reactor_fail(about(sys::Error{ECONNABORTED, "build_protocol", {}}));
  }
  auto made = Connection::open(reactor, os, std::move(fd), std::move(protocol), peer, owner,
                               std::move(options));
  if (!made) return tl::unexpected(made.error());
  (*made)->start();
  return made;
}

ReactorResult<std::unique_ptr<DatagramPort>> adopt_datagram_port(Reactor& reactor,
                                                                 sys::Syscalls& os, OwnedFd fd,
                                                                 DatagramProtocol& protocol,
                                                                 DatagramOptions options) {
  const auto about = [&](const sys::Error& e) { return about_adopted(e, fd.get()); };
  if (auto checked = check_socket(os, fd.get(), SOCK_DGRAM, std::nullopt); !checked) {
    return reactor_fail(about(checked.error()));
  }
  if (auto set = make_non_blocking(os, fd.get()); !set) return reactor_fail(about(set.error()));
  auto address = detail::bound_address(os, fd);
  if (!address) return reactor_fail(about(address.error()));
  std::optional<SocketAddress> peer;
  sockaddr_storage name{};
  socklen_t name_len = sizeof name;
  if (auto got = os.getpeername(fd.get(), reinterpret_cast<sockaddr*>(&name), &name_len); got) {
    peer = SocketAddress::from(reinterpret_cast<const sockaddr*>(&name), name_len);
  } else if (got.error().code != ENOTCONN) {
    return reactor_fail(about(got.error()));
  }
  return DatagramPort::start(reactor, os, std::move(fd), *address, std::move(peer), protocol,
                             std::move(options));
}

}  // namespace daemonkit::core
