// AF_UNIX addresses: a path binds a new S_IFSOCK inode in the fake filesystem (EADDRINUSE if
// the name exists; the directory's write and search permissions apply) and connecting or
// sending to it needs write permission on that inode; a name starting with a NUL byte lives in
// the kernel's abstract namespace, one per socket type, and vanishes with its socket; a socket bound with the family
// alone gets an autobind name, "\0" and five hex digits, as Linux gives.
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "socket.h"

namespace daemonkit::fake::detail {
namespace {

constexpr std::size_t kPathOffset = offsetof(sockaddr_un, sun_path);

SocketAddress make_address(std::string_view path_bytes) {
  SocketAddress out(sizeof(sa_family_t), '\0');
  const sa_family_t family = AF_UNIX;
  std::memcpy(out.data(), &family, sizeof family);
  out.append(path_bytes);
  return out;
}

struct UnixName {
  bool abstract = false;
  std::string name;  // the path, or the abstract name with its leading NUL
};

// Linux's unix_validate_addr and unix_mkname: the length must leave room for a name and fit
// sockaddr_un; a path ends at its first NUL.
sys::Result<UnixName> parse(const sockaddr* addr, socklen_t len, const char* call) {
  if (len <= kPathOffset || len > sizeof(sockaddr_un) || addr->sa_family != AF_UNIX) {
    return sys::fail(EINVAL, call);
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(addr);
  const std::size_t n = len - kPathOffset;
  if (un->sun_path[0] == '\0') return UnixName{true, std::string(un->sun_path, n)};
  return UnixName{false, std::string(un->sun_path, strnlen(un->sun_path, n))};
}

// Linux hashes an abstract name with its socket's type (unix_abstract_hash), so a stream and a
// datagram socket may hold the same name, and a look-up of the other type finds nothing.
std::string abstract_key(int type, const std::string& name) {
  return std::string(1, static_cast<char>(type)) + name;
}

}  // namespace

SocketAddress unix_unnamed() { return make_address({}); }

void unix_autobind(Kernel& kernel, Socket& socket, const std::shared_ptr<Socket>& self) {
  for (;;) {
    const std::string name = fmt::format("{}{:05x}", '\0', kernel.next_autobind++ & 0xfffff);
    auto& slot = kernel.abstract_sockets[abstract_key(socket.type(), name)];
    if (!slot.expired()) continue;
    slot = self;
    socket.local = make_address(name);
    return;
  }
}

std::string unix_address_text(const SocketAddress& address) {
  if (address.size() <= sizeof(sa_family_t)) return "unix:(unnamed)";
  std::string name = address.substr(sizeof(sa_family_t));
  if (name.front() == '\0') return "unix:@" + name.substr(1);
  if (!name.empty() && name.back() == '\0') name.pop_back();
  return "unix:" + name;
}

sys::Result<void> unix_bind(Kernel& kernel, Process& p, Socket& socket,
                            const std::shared_ptr<Socket>& self, const sockaddr* addr,
                            socklen_t len) {
  if (len == kPathOffset && addr->sa_family == AF_UNIX) {
    if (!socket.local.empty()) return sys::fail(EINVAL, "bind");
    unix_autobind(kernel, socket, self);
    return {};
  }
  auto parsed = parse(addr, len, "bind");
  if (!parsed) return sys::fail(parsed.error());
  if (parsed->abstract) {
    if (!socket.local.empty()) return sys::fail(EINVAL, "bind");
    auto& slot = kernel.abstract_sockets[abstract_key(socket.type(), parsed->name)];
    if (!slot.expired()) return sys::fail(EADDRINUSE, "bind");
    slot = self;
    socket.local = make_address(parsed->name);
    return {};
  }
  // mknod(path, S_IFSOCK | 0777 & ~umask), with EEXIST reported as EADDRINUSE.
  auto found = kernel.lookup(p, parsed->name, false, "bind", nullptr, false);
  if (!found) return sys::fail(found.error());
  Lookup& l = *found;
  if (l.node) return sys::fail(EADDRINUSE, "bind");
  if (l.parent == nullptr || l.parent->removed) return sys::fail(ENOENT, "bind");
  if (!kernel.may(p, *l.parent, kMayWrite | kMayExec) || l.parent->special != Special::kNone) {
    return sys::fail(EACCES, "bind");
  }
  // unix_bind_bsd makes the inode before it looks at the socket (and removes it again).
  if (!socket.local.empty()) return sys::fail(EINVAL, "bind");
  const bool setgid_dir = (l.parent->mode & S_ISGID) != 0;
  auto node = kernel.new_inode(S_IFSOCK | (0777 & ~p.umask), p.uids.effective,
                               setgid_dir ? l.parent->gid : p.gids.effective);
  node->socket = self;
  kernel.link_into(l.parent, l.name, node);
  socket.local = make_address(parsed->name + '\0');
  return {};
}

sys::Result<std::shared_ptr<Socket>> unix_find(Kernel& kernel, Process& p, const sockaddr* addr,
                                               socklen_t len, int type, const char* call) {
  auto parsed = parse(addr, len, call);
  if (!parsed) return sys::fail(parsed.error());
  std::shared_ptr<OpenFile> bound;
  if (parsed->abstract) {
    auto it = kernel.abstract_sockets.find(abstract_key(type, parsed->name));
    if (it != kernel.abstract_sockets.end()) bound = it->second.lock();
    if (!bound) return sys::fail(ECONNREFUSED, call);
  } else {
    // unix_find_bsd: resolve (following symlinks), MAY_WRITE on the inode, then it must be a
    // socket with a live socket bound to it.
    auto found = kernel.lookup(p, parsed->name, true, call);
    if (!found) return sys::fail(found.error());
    if (!found->node) return sys::fail(ENOENT, call);
    const Inode& node = *found->node;
    if (!kernel.may(p, node, kMayWrite)) return sys::fail(EACCES, call);
    if (!S_ISSOCK(node.mode)) return sys::fail(ECONNREFUSED, call);
    bound = node.socket.lock();
    if (!bound) return sys::fail(ECONNREFUSED, call);
  }
  auto socket = std::dynamic_pointer_cast<Socket>(bound);
  if (!socket) return sys::fail(ECONNREFUSED, call);
  if (socket->type() != type) return sys::fail(EPROTOTYPE, call);
  return socket;
}

}  // namespace daemonkit::fake::detail
