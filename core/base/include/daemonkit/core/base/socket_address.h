// SocketAddress: one socket address as a value — IPv4, IPv6 or AF_UNIX (a path, an abstract
// name, or unnamed) — holding the exact bytes bind, connect and accept4 use, with the text a
// user reads ("127.0.0.1:7000", "[::1]:7000", "/run/x.sock", "@name").
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace daemonkit::core {

class SocketAddress {
 public:
  // Unspecified (family AF_UNSPEC, size 0): what a socket that has no name reports.
  SocketAddress() = default;

  // A numeric IPv4 or IPv6 host ("127.0.0.1", "::1", "fe80::1%2" is refused: no scope ids)
  // and a port. "" is the IPv4 wildcard 0.0.0.0, as Twisted's interface "" is. Nothing for a
  // host that is not a numeric address: names are resolved elsewhere.
  [[nodiscard]] static std::optional<SocketAddress> ip(std::string_view host, std::uint16_t port);
  // A filesystem path ("/run/x.sock") or, with a leading '@', an abstract name ("@x": a NUL
  // byte then "x", its length counting only the name, as systemd's NOTIFY_SOCKET spells it).
  // Nothing for "", or a name that does not fit sun_path (a path needs room for its NUL).
  [[nodiscard]] static std::optional<SocketAddress> unix_name(std::string_view name);
  // The bytes the kernel gave (accept4, getsockname, recvfrom). Nothing if `len` is larger
  // than any socket address, or too short for its family.
  [[nodiscard]] static std::optional<SocketAddress> from(const sockaddr* addr, socklen_t len);

  [[nodiscard]] int family() const { return storage_.ss_family; }
  [[nodiscard]] bool is_ip() const { return family() == AF_INET || family() == AF_INET6; }
  [[nodiscard]] bool is_unix() const { return family() == AF_UNIX; }
  // The port of an IP address (host order), 0 otherwise.
  [[nodiscard]] std::uint16_t port() const;
  // The same IP address with another port (a listener asked for 0 learns its real one).
  [[nodiscard]] SocketAddress with_port(std::uint16_t port) const;
  // "127.0.0.1", "::1"; for AF_UNIX the path, "@name" or "" when unnamed.
  [[nodiscard]] std::string host() const;
  // A filesystem path (not abstract, not unnamed): unlink and chmod apply to it.
  [[nodiscard]] bool is_unix_path() const;
  [[nodiscard]] bool is_abstract() const;

  [[nodiscard]] const sockaddr* data() const {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  [[nodiscard]] socklen_t size() const { return size_; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
  socklen_t size_ = 0;
};

// "127.0.0.1:7000", "[::1]:7000", "/run/x.sock", "@name", "(unnamed)", "(unspecified)".
[[nodiscard]] std::string to_string(const SocketAddress& address);

}  // namespace daemonkit::core

template <>
struct fmt::formatter<daemonkit::core::SocketAddress> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const daemonkit::core::SocketAddress& address, FormatContext& ctx) const {
    const std::string text = daemonkit::core::to_string(address);
    return fmt::formatter<std::string_view>::format(text, ctx);
  }
};
