// ChildFdMap on the real kernel: a forked child applies a map with a cycle and a shared source,
// then checks its own descriptor table and reports by exit code.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <vector>

#include <gtest/gtest.h>

#include "daemonkit/core/process/child_fd_map.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

struct Identity {
  dev_t dev = 0;
  ino_t ino = 0;
};

Identity identity_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  return {st.st_dev, st.st_ino};
}

// In the child: 0 when every descriptor below 64 is as `want` says (open, same file, no
// close-on-exec) or closed, else the first descriptor that is not, plus 10.
int check_table(const std::vector<std::pair<int, Identity>>& want) {
  for (int fd = 0; fd < 64; ++fd) {
    const int flags = ::fcntl(fd, F_GETFD);
    bool wanted = false;
    for (const auto& [child, id] : want) {
      if (child != fd) continue;
      wanted = true;
      const Identity got = identity_of(fd);
      if (flags < 0 || (flags & FD_CLOEXEC) != 0 || got.dev != id.dev || got.ino != id.ino) {
        return 10 + fd;
      }
    }
    if (!wanted && flags >= 0) return 10 + fd;
  }
  return 0;
}

TEST(ChildFdMapOnLinux, ACycleAndASharedSourceGiveTheChildExactlyTheMap) {
  std::array<int, 2> a{};
  std::array<int, 2> b{};
  ASSERT_EQ(::pipe2(a.data(), O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b.data(), O_CLOEXEC), 0);
  // The two read ends trade numbers (a cycle), 1 and 2 share a's write end, and 9 gets b's.
  const std::vector<FdAssignment> assignments = {
      {a[0], b[0]}, {b[0], a[0]}, {1, a[1]}, {2, a[1]}, {9, b[1]}};
  auto map = ChildFdMap::make(assignments);
  ASSERT_TRUE(map) << map.error().message;
  std::vector<std::pair<int, Identity>> want;
  for (const FdAssignment& entry : assignments)
    want.push_back({entry.child, identity_of(entry.parent)});

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sys::RealSyscalls os;
    if (!map->apply(os)) ::_exit(2);
    ::_exit(check_table(want));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  for (int fd : {a[0], a[1], b[0], b[1]}) ::close(fd);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: apply failed; 10 + n: descriptor n is wrong";
}

}  // namespace
}  // namespace daemonkit::core
