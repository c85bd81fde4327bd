#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/sys/hot_path.h"

#include <arpa/inet.h>

#include <cstddef>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

constexpr std::size_t kPathOffset = offsetof(sockaddr_un, sun_path);

}  // namespace

std::optional<SocketAddress> SocketAddress::ip(std::string_view host, std::uint16_t port) {
  SocketAddress out;
  const std::string text(host.empty() ? "0.0.0.0" : host);
  sockaddr_in in{};
  if (inet_pton(AF_INET, text.c_str(), &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&out.storage_, &in, sizeof in);
    out.size_ = sizeof in;
    return out;
  }
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET6, text.c_str(), &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&out.storage_, &in6, sizeof in6);
    out.size_ = sizeof in6;
    return out;
  }
  return std::nullopt;
}

std::optional<SocketAddress> SocketAddress::unix_name(std::string_view name) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  const bool abstract = !name.empty() && name.front() == '@';
  if (name.empty()) return std::nullopt;
  // A path must keep its terminating NUL inside sun_path; an abstract name has none.
  const std::size_t room = sizeof un.sun_path - (abstract ? 0 : 1);
  if (name.size() > room || (!abstract && name.find('\0') != std::string_view::npos)) {
    return std::nullopt;
  }
  std::memcpy(un.sun_path, name.data(), name.size());
  if (abstract) un.sun_path[0] = '\0';
  SocketAddress out;
  std::memcpy(&out.storage_, &un, sizeof un);
  out.size_ = static_cast<socklen_t>(kPathOffset + name.size() + (abstract ? 0 : 1));
  return out;
}

DAEMONKIT_HOT std::optional<SocketAddress> SocketAddress::from(const sockaddr* addr,
                                                               socklen_t len) {
  SocketAddress out;
  if (addr == nullptr || len == 0) return out;
  if (len > sizeof out.storage_ || len < sizeof(sa_family_t)) return std::nullopt;
  if (addr->sa_family == AF_INET && len < sizeof(sockaddr_in)) return std::nullopt;
  if (addr->sa_family == AF_INET6 && len < sizeof(sockaddr_in6)) return std::nullopt;
  std::memcpy(&out.storage_, addr, len);
  out.size_ = len;
  return out;
}

std::uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

SocketAddress SocketAddress::with_port(std::uint16_t port) const {
  SocketAddress out = *this;
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_port = htons(port);
  if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_port = htons(port);
  }
  return out;
}

bool SocketAddress::is_abstract() const {
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  return is_unix() && size_ > kPathOffset && un->sun_path[0] == '\0';
}

bool SocketAddress::is_unix_path() const {
  return is_unix() && size_ > kPathOffset && !is_abstract();
}

std::string SocketAddress::host() const {
  char text[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
              sizeof text);
    return text;
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text,
              sizeof text);
    return text;
  }
  if (!is_unix() || size_ <= kPathOffset) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  const std::size_t n = size_ - kPathOffset;
  if (is_abstract()) {
    // Appended rather than "@" + std::string(...): GCC 12 at -O3 warns -Wrestrict (a false
    // positive) inside operator+(const char*, string&&), and the bench builds with -Werror.
    std::string name("@");
    name.append(un->sun_path + 1, n - 1);
    return name;
  }
  return {un->sun_path, strnlen(un->sun_path, n)};
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

std::string to_string(const SocketAddress& address) {
  switch (address.family()) {
    case AF_INET:
      return address.host() + ":" + std::to_string(address.port());
    case AF_INET6:
      return fmt::format("[{}]:{}", address.host(), address.port());
    case AF_UNIX: {
      std::string host = address.host();
      return host.empty() ? "(unnamed)" : host;
    }
    default:
      return "(unspecified)";
  }
}

}  // namespace daemonkit::core
