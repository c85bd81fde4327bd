#include "unix_socket_file.h"

#include <cerrno>

#include <fmt/format.h>

namespace daemonkit::core::detail {

sys::Result<BoundSocketFile> identify_bound_file(sys::Syscalls& os, const std::string& path) {
  auto made = os.lstat(path.c_str());
  if (!made) return sys::fail(made.error().about(path));
  return BoundSocketFile{path, made->st_dev, made->st_ino};
}

void unlink_if_ours(sys::Syscalls& os, const BoundSocketFile& file) {
  auto now = os.lstat(file.path.c_str());
  if (now && now->st_dev == file.dev && now->st_ino == file.ino) (void)os.unlink(file.path.c_str());
}

sys::Error bad_unix_name(std::string_view name, const char* call) {
  return sys::Error{EINVAL, call,
                    fmt::format("{}, not a path or @name that fits a socket address", name)};
}

}  // namespace daemonkit::core::detail
