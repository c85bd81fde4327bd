// The file a UNIX socket bound to a path leaves in the filesystem, shared by the stream and
// datagram listeners: what names it, and its removal at the stop only while the path still
// names it (a server started after ours may have found it stale and bound its own there).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core::detail {

struct BoundSocketFile {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
};

// The file at `path` just after our bind made it, as lstat names it.
[[nodiscard]] sys::Result<BoundSocketFile> identify_bound_file(sys::Syscalls& os,
                                                               const std::string& path);

void unlink_if_ours(sys::Syscalls& os, const BoundSocketFile& file);

// EINVAL from `call` for a name that is neither a path nor an @name that fits sockaddr_un.
[[nodiscard]] sys::Error bad_unix_name(std::string_view name, const char* call);

}  // namespace daemonkit::core::detail
