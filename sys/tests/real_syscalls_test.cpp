// RealSyscalls against the running Linux kernel: for every method, a success case and at least
// one errno the kernel really produces. Anything that changes process-wide state runs in a
// forked child whose exit code carries the verdict. The oracles (temp dirs, child management,
// privilege drops) use raw libc, so a bug in RealSyscalls cannot hide itself.
#include "daemonkit/sys/real_syscalls.h"

#include <dirent.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "daemonkit/sys/retry.h"

namespace daemonkit::sys {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
// Above any pid_max Linux allows (2^22), so never a live process.
constexpr pid_t kNoSuchPid = INT_MAX;
// Never an open descriptor: above this machine's RLIMIT_NOFILE and Linux's nr_open default.
constexpr int kBadFd = 9'999'999;
constexpr int kChildTimeoutMs = 5000;

bool is_root() { return ::geteuid() == 0; }

// ---- Result assertions -------------------------------------------------------------------

template <typename T>
::testing::AssertionResult IsOk(const Result<T>& result) {
  if (result) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << to_string(result.error());
}

// The call failed with exactly `code`, and the Error names `call`.
template <typename T>
::testing::AssertionResult FailsWith(const Result<T>& result, int code, std::string_view call) {
  if (result) {
    return ::testing::AssertionFailure()
           << "succeeded, expected " << call << " to fail with " << errno_name(code);
  }
  if (result.error().code != code || std::string_view(result.error().call) != call) {
    return ::testing::AssertionFailure() << "got " << to_string(result.error()) << ", expected "
                                         << call << " to fail with " << errno_name(code);
  }
  return ::testing::AssertionSuccess();
}

// The value of a call the test depends on; a failure ends the test (or child) with the error.
template <typename T>
T unwrap(Result<T> result) {
  if (!result) throw std::runtime_error(to_string(result.error()));
  return std::move(*result);
}

// ---- Descriptors and temp dirs -----------------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

Pipe make_pipe(int flags = O_CLOEXEC) {
  int fds[2];
  if (::pipe2(fds, flags) != 0) throw std::runtime_error("pipe2 failed");
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }
bool has_cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

void write_file(const std::string& path, std::string_view content, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  const bool written =
      ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ::close(fd);
  if (!written) throw std::runtime_error("cannot write " + path);
}

std::string read_fd(int fd) {
  std::string out;
  char buf[256];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Removes `name` under `dirfd` without ever building a full path, so trees deeper than
// PATH_MAX (the getcwd test makes one) and directories with mode 0000 go away too.
void remove_tree(int dirfd, const char* name) {
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    ::unlinkat(dirfd, name, 0);
    return;
  }
  ::fchmodat(dirfd, name, 0700, 0);
  const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
    } else {
      std::vector<std::string> names;
      while (const dirent* entry = ::readdir(dir)) {
        const std::string_view entry_name = entry->d_name;
        if (entry_name != "." && entry_name != "..") names.emplace_back(entry_name);
      }
      for (const auto& child : names) remove_tree(::dirfd(dir), child.c_str());
      ::closedir(dir);
    }
  }
  ::unlinkat(dirfd, name, AT_REMOVEDIR);
}

// A fresh directory per test, readable by everyone so a child that dropped to nobody reaches
// the files inside and meets the permission the test set on them, not on the directory.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/daemonkit-real-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    ::chmod(path_.c_str(), 0755);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { remove_tree(AT_FDCWD, path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- Children ----------------------------------------------------------------------------

// Runs `body` in a forked child and returns its raw wait status; the child's exit code is what
// `body` returns. The test binary is single-threaded, so the child may allocate; a child that
// outlives the timeout is killed and the test fails instead of hanging.
int run_in_child(const std::function<int()>& body, int timeout_ms = kChildTimeoutMs) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int code = 0;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child threw: %s\n", e.what());
      code = 98;
    } catch (...) {
      code = 99;
    }
    ::_exit(code);
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd entry{pidfd, POLLIN, 0};
    int ready = 0;
    do {
      ready = ::poll(&entry, 1, timeout_ms);
    } while (ready < 0 && errno == EINTR);
    ::close(pidfd);
    if (ready == 0) {
      ADD_FAILURE() << "child " << pid << " still running after " << timeout_ms << " ms";
      ::kill(pid, SIGKILL);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

::testing::AssertionResult ExitedWith(int status, int code) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == code) return ::testing::AssertionSuccess();
  if (WIFEXITED(status)) {
    return ::testing::AssertionFailure()
           << "child exited " << WEXITSTATUS(status) << ", expected " << code;
  }
  if (WIFSIGNALED(status)) {
    return ::testing::AssertionFailure() << "child killed by signal " << WTERMSIG(status);
  }
  return ::testing::AssertionFailure() << "child wait status " << status;
}

std::string why(const ::testing::AssertionResult& result) { return result.message(); }
std::string why(bool) { return {}; }

// A check inside a child: on failure it says where and why on stderr and the child exits 1.
#define CHILD_CHECK(cond)                                                                   \
  do {                                                                                      \
    const auto& child_check_ = (cond);                                                      \
    if (!child_check_) {                                                                    \
      std::fprintf(stderr, "%s:%d: child check failed: %s %s\n", __FILE__, __LINE__, #cond, \
                   why(child_check_).c_str());                                              \
      return 1;                                                                             \
    }                                                                                       \
  } while (0)

// Drops a root child to nobody/nogroup with no supplementary groups; a non-root child is
// unprivileged already.
void become_unprivileged() {
  if (!is_root()) return;
  if (::setgroups(0, nullptr) != 0 || ::setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
      ::setresuid(kNobody, kNobody, kNobody) != 0) {
    throw std::runtime_error("cannot drop to nobody");
  }
}

// A forked process that blocks until `release` is closed, then exits 0.
pid_t spawn_blocked(Pipe& release) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(release.write.get());
    char byte;
    while (::read(release.read.get(), &byte, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// ---- Sockets -----------------------------------------------------------------------------

struct UnixAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

UnixAddress path_address(const std::string& path) {
  UnixAddress a;
  a.addr.sun_family = AF_UNIX;
  std::memcpy(a.addr.sun_path, path.c_str(), path.size() + 1);
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

// A name in the abstract namespace, unique to this process: no file, nothing to clean up.
UnixAddress abstract_address(std::string_view tag) {
  const std::string name = "daemonkit-real-" + std::to_string(::getpid()) + "-" + std::string(tag);
  UnixAddress a;
  a.addr.sun_family = AF_UNIX;
  a.addr.sun_path[0] = '\0';
  std::memcpy(a.addr.sun_path + 1, name.data(), name.size());
  a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

bool same_address(const UnixAddress& expected, const sockaddr_un& got, socklen_t got_len) {
  return got_len == expected.len && got.sun_family == AF_UNIX &&
         std::memcmp(got.sun_path, expected.addr.sun_path,
                     expected.len - offsetof(sockaddr_un, sun_path)) == 0;
}

// ---- Fixtures ----------------------------------------------------------------------------

class RealSyscallsTest : public ::testing::Test {
 protected:
  std::string path(std::string_view name) const { return dir_.path() + "/" + std::string(name); }

  RealSyscalls sys_;
  TempDir dir_;
};

class RealSyscallsProcess : public RealSyscallsTest {};
class RealSyscallsCredentials : public RealSyscallsTest {};
class RealSyscallsFiles : public RealSyscallsTest {};
class RealSyscallsSignals : public RealSyscallsTest {};
class RealSyscallsPolling : public RealSyscallsTest {};
class RealSyscallsSockets : public RealSyscallsTest {};
class RealSyscallsLimits : public RealSyscallsTest {};

#define SKIP_UNLESS_ROOT(what) \
  if (!is_root()) GTEST_SKIP() << "needs root to " what

// ==== Processes ===========================================================================

TEST_F(RealSyscallsProcess, ForkStartsChildThatWaitpidReaps) {
  std::fflush(nullptr);
  const auto pid = sys_.fork();
  ASSERT_TRUE(IsOk(pid));
  if (*pid == 0) ::_exit(7);
  const auto waited = sys_.waitpid(*pid, 0);
  ASSERT_TRUE(IsOk(waited));
  EXPECT_EQ(waited->pid, *pid);
  EXPECT_TRUE(ExitedWith(waited->status, 7));
}

TEST_F(RealSyscallsProcess, ForkFailsWithEagainOverRlimitNproc) {
  const int status = run_in_child([this] {
    const rlimit none{0, 0};
    CHILD_CHECK(::setrlimit(RLIMIT_NPROC, &none) == 0);
    // Root ignores RLIMIT_NPROC, so the limit only bites once the child is nobody.
    become_unprivileged();
    const auto pid = sys_.fork();
    if (pid && *pid == 0) ::_exit(0);
    CHILD_CHECK(FailsWith(pid, EAGAIN, "fork"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// The child borrows our memory: what it writes before it ends is what we read after.
TEST_F(RealSyscallsProcess, VforkChildRunsInOurMemoryAndEndsWithTheBodysValue) {
  pid_t seen_pid = 0;
  pid_t seen_parent = 0;
  const auto pid = sys_.vfork([&] {
    seen_pid = static_cast<pid_t>(::syscall(SYS_getpid));
    seen_parent = ::getppid();
    return 7;
  });
  ASSERT_TRUE(IsOk(pid));
  EXPECT_EQ(seen_pid, *pid);
  EXPECT_EQ(seen_parent, ::getpid());
  const auto waited = sys_.waitpid(*pid, 0);
  ASSERT_TRUE(IsOk(waited));
  EXPECT_TRUE(ExitedWith(waited->status, 7));
}

// We sleep until the exec, not until the program ends: the program is still running when
// vfork returns, and everything the body did before exec'ing is done.
TEST_F(RealSyscallsProcess, VforkReturnsOnceTheChildExecsWhileTheProgramRuns) {
  int gate[2] = {-1, -1};
  ASSERT_EQ(::pipe2(gate, O_CLOEXEC), 0);
  bool reached_exec = false;
  const auto pid = sys_.vfork([&] {
    ::dup2(gate[0], 0);  // the program's stdin: it runs until we close the write end
    char program[] = "/bin/cat";
    char* argv[] = {program, nullptr};
    char* envp[] = {nullptr};
    reached_exec = true;
    static_cast<void>(sys_.execve(program, argv, envp));
    return 127;
  });
  ASSERT_TRUE(IsOk(pid));
  EXPECT_TRUE(reached_exec);
  const auto running = sys_.waitpid(*pid, WNOHANG);
  ASSERT_TRUE(IsOk(running));
  EXPECT_EQ(running->pid, 0);
  ::close(gate[1]);
  ::close(gate[0]);
  const auto waited = sys_.waitpid(*pid, 0);
  ASSERT_TRUE(IsOk(waited));
  EXPECT_TRUE(ExitedWith(waited->status, 0));
}

TEST_F(RealSyscallsProcess, VforkChildStartsWithEverySignalBlockedAndOurMaskIsKept) {
  sigset_t before;
  ASSERT_EQ(::sigprocmask(SIG_SETMASK, nullptr, &before), 0);
  sigset_t in_child;
  sigemptyset(&in_child);
  const auto pid = sys_.vfork([&] {
    ::sigprocmask(SIG_SETMASK, nullptr, &in_child);
    return 0;
  });
  ASSERT_TRUE(IsOk(pid));
  ASSERT_TRUE(IsOk(sys_.waitpid(*pid, 0)));
  for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGCHLD, SIGUSR1, SIGRTMIN + 1}) {
    EXPECT_TRUE(sigismember(&in_child, sig)) << sig;
  }
  sigset_t after;
  ASSERT_EQ(::sigprocmask(SIG_SETMASK, nullptr, &after), 0);
  for (int sig = 1; sig < SIGRTMIN; ++sig) {
    EXPECT_EQ(sigismember(&after, sig), sigismember(&before, sig)) << sig;
  }
}

TEST_F(RealSyscallsProcess, VforkWithPidfdGivesAPidfdThatSignalsAndReportsTheExit) {
  const auto child = sys_.vfork_with_pidfd([&] {
    sigset_t none;  // the vfork child starts with every signal blocked; exec would keep that
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    char arg0[] = "sleep";
    char arg1[] = "30";
    char* argv[] = {arg0, arg1, nullptr};
    char* envp[] = {nullptr};
    ::execve("/bin/sleep", argv, envp);
    return 127;
  });
  ASSERT_TRUE(IsOk(child));
  ASSERT_GE(child->pidfd, 0) << "this kernel has no CLONE_PIDFD (Linux < 5.2)";
  EXPECT_EQ(::fcntl(child->pidfd, F_GETFD), FD_CLOEXEC);
  pollfd ready{child->pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&ready, 1, 0), 0);  // still running
  ASSERT_TRUE(IsOk(sys_.pidfd_send_signal(child->pidfd, SIGTERM, 0)));
  EXPECT_EQ(::poll(&ready, 1, 10000), 1);
  const auto waited = sys_.waitpid(child->pid, 0);
  ASSERT_TRUE(IsOk(waited));
  EXPECT_TRUE(WIFSIGNALED(waited->status));
  EXPECT_EQ(WTERMSIG(waited->status), SIGTERM);
  ::close(child->pidfd);
}

TEST_F(RealSyscallsProcess, VforkFailsWithEagainOverRlimitNproc) {
  const int status = run_in_child([this] {
    const rlimit none{0, 0};
    CHILD_CHECK(::setrlimit(RLIMIT_NPROC, &none) == 0);
    become_unprivileged();  // root ignores RLIMIT_NPROC
    bool ran = false;
    const auto pid = sys_.vfork([&] {
      ran = true;
      return 0;
    });
    CHILD_CHECK(FailsWith(pid, EAGAIN, "vfork"));
    CHILD_CHECK(!ran);
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsProcess, SetsidLeadsNewSessionThenFailsWithEpermAsLeader) {
  const int status = run_in_child([this] {
    const auto sid = sys_.setsid();
    CHILD_CHECK(IsOk(sid));
    CHILD_CHECK(*sid == ::getpid());
    CHILD_CHECK(::getsid(0) == ::getpid());
    CHILD_CHECK(FailsWith(sys_.setsid(), EPERM, "setsid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// getpid and getppid cannot fail, so they have no errno path to test.
TEST_F(RealSyscallsProcess, GetpidAndGetppidNameThisProcessAndItsParent) {
  EXPECT_EQ(sys_.getpid(), static_cast<pid_t>(::syscall(SYS_getpid)));
  EXPECT_EQ(sys_.getppid(), static_cast<pid_t>(::syscall(SYS_getppid)));
  const pid_t parent = ::getpid();
  const int status = run_in_child([this, parent] {
    CHILD_CHECK(sys_.getppid() == parent);
    CHILD_CHECK(sys_.getpid() != parent);
    CHILD_CHECK(sys_.getpid() == static_cast<pid_t>(::syscall(SYS_getpid)));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsProcess, GetsidReportsSessionAndEsrch) {
  const auto sid = sys_.getsid(0);
  ASSERT_TRUE(IsOk(sid));
  EXPECT_EQ(*sid, ::getsid(0));
  EXPECT_TRUE(FailsWith(sys_.getsid(kNoSuchPid), ESRCH, "getsid"));
}

TEST_F(RealSyscallsProcess, GetpgidReportsGroupAndEsrch) {
  const auto pgid = sys_.getpgid(0);
  ASSERT_TRUE(IsOk(pgid));
  EXPECT_EQ(*pgid, ::getpgrp());
  EXPECT_TRUE(FailsWith(sys_.getpgid(kNoSuchPid), ESRCH, "getpgid"));
}

TEST_F(RealSyscallsProcess, SetpgidMovesChildToOwnGroupAndReportsEsrchAndEinval) {
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setpgid(0, 0)));
    CHILD_CHECK(::getpgrp() == ::getpid());
    CHILD_CHECK(FailsWith(sys_.setpgid(kNoSuchPid, 0), ESRCH, "setpgid"));
    CHILD_CHECK(FailsWith(sys_.setpgid(0, -1), EINVAL, "setpgid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsProcess, WaitpidWithNohangSeesRunningChildAndEchildWithoutOne) {
  Pipe release = make_pipe();
  const pid_t pid = spawn_blocked(release);
  const auto running = sys_.waitpid(pid, WNOHANG);
  ASSERT_TRUE(IsOk(running));
  EXPECT_EQ(running->pid, 0);
  release.write.reset();
  const auto done = sys_.waitpid(pid, 0);
  ASSERT_TRUE(IsOk(done));
  EXPECT_EQ(done->pid, pid);
  EXPECT_TRUE(ExitedWith(done->status, 0));
  EXPECT_TRUE(FailsWith(sys_.waitpid(pid, 0), ECHILD, "waitpid"));
  EXPECT_TRUE(FailsWith(sys_.waitpid(0, 0xdead0000), EINVAL, "waitpid"));
}

TEST_F(RealSyscallsProcess, KillSignalsChildAndReportsEsrchAndEinval) {
  Pipe release = make_pipe();
  const pid_t pid = spawn_blocked(release);
  EXPECT_TRUE(IsOk(sys_.kill(pid, 0)));
  ASSERT_TRUE(IsOk(sys_.kill(pid, SIGTERM)));
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  EXPECT_TRUE(FailsWith(sys_.kill(kNoSuchPid, 0), ESRCH, "kill"));
  EXPECT_TRUE(FailsWith(sys_.kill(::getpid(), 1000), EINVAL, "kill"));
}

TEST_F(RealSyscallsProcess, KillFailsWithEpermAcrossUsers) {
  SKIP_UNLESS_ROOT("have a process that nobody may not signal");
  const pid_t root_parent = ::getpid();
  const int status = run_in_child([this, root_parent] {
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.kill(root_parent, 0), EPERM, "kill"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsProcess, PidfdOpenBecomesReadableWhenChildExits) {
  Pipe release = make_pipe();
  const pid_t pid = spawn_blocked(release);
  const auto pidfd = sys_.pidfd_open(pid, 0);
  ASSERT_TRUE(IsOk(pidfd));
  const Fd owned(*pidfd);
  pollfd entry{*pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&entry, 1, 0), 0);
  release.write.reset();
  EXPECT_EQ(::poll(&entry, 1, kChildTimeoutMs), 1);
  EXPECT_TRUE(ExitedWith(wait_status(pid), 0));
  EXPECT_TRUE(FailsWith(sys_.pidfd_open(kNoSuchPid, 0), ESRCH, "pidfd_open"));
  EXPECT_TRUE(FailsWith(sys_.pidfd_open(::getpid(), 0xdead), EINVAL, "pidfd_open"));
}

TEST_F(RealSyscallsProcess, PidfdSendSignalKillsChildThenReportsEsrchOnceReaped) {
  Pipe release = make_pipe();
  const pid_t pid = spawn_blocked(release);
  const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_GE(pidfd.get(), 0);
  ASSERT_TRUE(IsOk(sys_.pidfd_send_signal(pidfd.get(), SIGKILL, 0)));
  const int status = wait_status(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_TRUE(FailsWith(sys_.pidfd_send_signal(pidfd.get(), 0, 0), ESRCH, "pidfd_send_signal"));
  EXPECT_TRUE(FailsWith(sys_.pidfd_send_signal(kBadFd, 0, 0), EBADF, "pidfd_send_signal"));
  EXPECT_TRUE(
      FailsWith(sys_.pidfd_send_signal(release.read.get(), 0, 0), EBADF, "pidfd_send_signal"));
}

TEST_F(RealSyscallsProcess, ExecveRunsProgramInChild) {
  const int status = run_in_child([this] {
    char program[] = "/bin/true";
    char* argv[] = {program, nullptr};
    char* envp[] = {nullptr};
    const auto failed = sys_.execve(program, argv, envp);
    std::fprintf(stderr, "%s\n", to_string(failed.error()).c_str());
    return 10;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsProcess, ExecveReportsEnoentAndEacces) {
  const std::string not_executable = path("data");
  write_file(not_executable, "not a program", 0644);
  const int status = run_in_child([this, &not_executable] {
    char missing[] = "/nonexistent/daemonkit-program";
    char* argv[] = {missing, nullptr};
    char* envp[] = {nullptr};
    CHILD_CHECK(FailsWith(sys_.execve(missing, argv, envp), ENOENT, "execve"));
    CHILD_CHECK(FailsWith(sys_.execve(not_executable.c_str(), argv, envp), EACCES, "execve"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// exit_now cannot fail. It must be _exit, not exit: stdio buffers are dropped, not flushed.
TEST_F(RealSyscallsProcess, ExitNowEndsProcessWithoutFlushingStdio) {
  Pipe out = make_pipe();
  const int status = run_in_child([this, &out] {
    FILE* stream = ::fdopen(out.write.get(), "w");
    CHILD_CHECK(stream != nullptr);
    CHILD_CHECK(std::setvbuf(stream, nullptr, _IOFBF, 4096) == 0);
    std::fputs("buffered and lost", stream);
    sys_.exit_now(42);
  });
  EXPECT_TRUE(ExitedWith(status, 42));
  out.write.reset();
  EXPECT_EQ(read_fd(out.read.get()), "");
}

TEST_F(RealSyscallsProcess, PrctlSetsDumpableAndRejectsBadOptions) {
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.prctl(PR_SET_DUMPABLE, 0)));
    const auto off = sys_.prctl(PR_GET_DUMPABLE, 0);
    CHILD_CHECK(IsOk(off));
    CHILD_CHECK(*off == 0);
    CHILD_CHECK(IsOk(sys_.prctl(PR_SET_DUMPABLE, 1)));
    const auto on = sys_.prctl(PR_GET_DUMPABLE, 0);
    CHILD_CHECK(IsOk(on));
    CHILD_CHECK(*on == 1);
    CHILD_CHECK(FailsWith(sys_.prctl(PR_SET_DUMPABLE, 5), EINVAL, "prctl"));
    CHILD_CHECK(FailsWith(sys_.prctl(-1, 0), EINVAL, "prctl"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// The orphaned grandchild must be re-parented to the subreaper rather than to init.
TEST_F(RealSyscallsProcess, PrctlChildSubreaperAdoptsOrphans) {
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.prctl(PR_SET_CHILD_SUBREAPER, 1)));
    const pid_t subreaper = ::getpid();
    const pid_t middle = ::fork();
    CHILD_CHECK(middle >= 0);
    if (middle == 0) {
      if (::fork() == 0) {
        for (int i = 0; i < 2000 && ::getppid() != subreaper; ++i) ::usleep(1000);
        ::_exit(::getppid() == subreaper ? 0 : 3);
      }
      ::_exit(0);
    }
    CHILD_CHECK(ExitedWith(wait_status(middle), 0));
    int orphan_status = 0;
    const pid_t orphan = ::waitpid(-1, &orphan_status, 0);
    CHILD_CHECK(orphan > 0);
    CHILD_CHECK(ExitedWith(orphan_status, 0));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// ==== Credentials =========================================================================

// getresuid and getresgid fail only with EFAULT, which valid pointers never produce.
TEST_F(RealSyscallsCredentials, GetresuidAndGetresgidMatchTheKernel) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  ASSERT_EQ(::getresuid(&ruid, &euid, &suid), 0);
  ASSERT_EQ(::getresgid(&rgid, &egid, &sgid), 0);
  const auto uids = sys_.getresuid();
  const auto gids = sys_.getresgid();
  ASSERT_TRUE(IsOk(uids));
  ASSERT_TRUE(IsOk(gids));
  EXPECT_EQ(*uids, (ResUids{ruid, euid, suid}));
  EXPECT_EQ(*gids, (ResGids{rgid, egid, sgid}));
}

TEST_F(RealSyscallsCredentials, SetresuidDropsRootForGoodThenFailsWithEperm) {
  SKIP_UNLESS_ROOT("change uids");
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setresuid(kNobody, kNobody, kNobody)));
    const auto ids = sys_.getresuid();
    CHILD_CHECK(IsOk(ids));
    CHILD_CHECK((*ids == ResUids{kNobody, kNobody, kNobody}));
    CHILD_CHECK(FailsWith(sys_.setresuid(0, 0, 0), EPERM, "setresuid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, SetresgidChangesGidsThenFailsWithEpermUnprivileged) {
  SKIP_UNLESS_ROOT("change gids");
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setresgid(kNogroup, kNogroup, kNogroup)));
    const auto ids = sys_.getresgid();
    CHILD_CHECK(IsOk(ids));
    CHILD_CHECK((*ids == ResGids{kNogroup, kNogroup, kNogroup}));
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.setresgid(0, 0, 0), EPERM, "setresgid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, SetuidAsRootSetsAllThreeThenFailsWithEperm) {
  SKIP_UNLESS_ROOT("change uids");
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setuid(kNobody)));
    CHILD_CHECK((unwrap(sys_.getresuid()) == ResUids{kNobody, kNobody, kNobody}));
    CHILD_CHECK(FailsWith(sys_.setuid(0), EPERM, "setuid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, SeteuidSwitchesEffectiveOnlyThenFailsWithEperm) {
  SKIP_UNLESS_ROOT("change uids");
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.seteuid(kNobody)));
    CHILD_CHECK((unwrap(sys_.getresuid()) == ResUids{0, kNobody, 0}));
    CHILD_CHECK(IsOk(sys_.seteuid(0)));  // the saved uid is still root
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.seteuid(0), EPERM, "seteuid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, SetgidAsRootSetsAllThreeThenFailsWithEperm) {
  SKIP_UNLESS_ROOT("change gids");
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setgid(kNogroup)));
    CHILD_CHECK((unwrap(sys_.getresgid()) == ResGids{kNogroup, kNogroup, kNogroup}));
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.setgid(0), EPERM, "setgid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, SetegidSwitchesEffectiveOnlyThenFailsWithEperm) {
  SKIP_UNLESS_ROOT("change gids");
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setegid(kNogroup)));
    CHILD_CHECK((unwrap(sys_.getresgid()) == ResGids{0, kNogroup, 0}));
    CHILD_CHECK(IsOk(sys_.setegid(0)));
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.setegid(0), EPERM, "setegid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// -1 means "unchanged" to setres*id, but to the single-id calls it is not a valid id.
TEST_F(RealSyscallsCredentials, SingleIdSettersRejectMinusOneWithEinval) {
  const int status = run_in_child([this] {
    CHILD_CHECK(FailsWith(sys_.setuid(static_cast<uid_t>(-1)), EINVAL, "setuid"));
    CHILD_CHECK(FailsWith(sys_.seteuid(static_cast<uid_t>(-1)), EINVAL, "seteuid"));
    CHILD_CHECK(FailsWith(sys_.setgid(static_cast<gid_t>(-1)), EINVAL, "setgid"));
    CHILD_CHECK(FailsWith(sys_.setegid(static_cast<gid_t>(-1)), EINVAL, "setegid"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, SetgroupsReplacesListThenFailsWithEpermUnprivileged) {
  SKIP_UNLESS_ROOT("set supplementary groups");
  const int status = run_in_child([this] {
    const std::vector<gid_t> wanted{kNogroup, 100};
    CHILD_CHECK(IsOk(sys_.setgroups(wanted)));
    auto got = unwrap(sys_.getgroups());
    std::sort(got.begin(), got.end());
    CHILD_CHECK((got == std::vector<gid_t>{100, kNogroup}));
    CHILD_CHECK(IsOk(sys_.setgroups({})));
    CHILD_CHECK(unwrap(sys_.getgroups()).empty());
    const std::vector<gid_t> too_many(NGROUPS_MAX + 1, kNogroup);
    CHILD_CHECK(FailsWith(sys_.setgroups(too_many), EINVAL, "setgroups"));
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.setgroups({}), EPERM, "setgroups"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// getgroups fails only with EFAULT or with a too small buffer, which it sizes itself.
TEST_F(RealSyscallsCredentials, GetgroupsReturnsTheWholeList) {
  const int count = ::getgroups(0, nullptr);
  ASSERT_GE(count, 0);
  std::vector<gid_t> expected(static_cast<std::size_t>(count));
  ASSERT_EQ(::getgroups(count, expected.data()), count);
  const auto got = sys_.getgroups();
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(*got, expected);
}

// The oracle: libc's own answer with a buffer as large as the kernel allows.
std::vector<gid_t> raw_group_list(const char* user, gid_t group) {
  std::vector<gid_t> groups(NGROUPS_MAX + 1);
  int count = static_cast<int>(groups.size());
  if (::getgrouplist(user, group, groups.data(), &count) < 0) {
    throw std::runtime_error("raw getgrouplist failed");
  }
  groups.resize(static_cast<std::size_t>(count));
  return groups;
}

// The gids of the /etc/group entries that name `user` as a member.
std::set<gid_t> groups_naming(const std::string& user) {
  std::set<gid_t> named;
  ::setgrent();
  while (const group* g = ::getgrent()) {
    for (char** m = g->gr_mem; *m != nullptr; ++m) {
      if (user == *m) named.insert(g->gr_gid);
    }
  }
  ::endgrent();
  return named;
}

TEST_F(RealSyscallsCredentials, GetgrouplistIsTheGidThenTheUsersGroupsAsLibcSays) {
  for (const auto& [user, gid] :
       {std::pair<const char*, gid_t>{"root", 0}, std::pair<const char*, gid_t>{"nobody", kNogroup},
        std::pair<const char*, gid_t>{"nobody", 100}}) {
    const auto got = sys_.getgrouplist(user, gid);
    ASSERT_TRUE(IsOk(got)) << user;
    ASSERT_FALSE(got->empty()) << user;
    EXPECT_EQ(got->front(), gid) << user;
    EXPECT_EQ(std::count(got->begin(), got->end(), gid), 1) << user;
    EXPECT_EQ(*got, raw_group_list(user, gid)) << user;
    for (const gid_t named : groups_naming(user)) {
      EXPECT_NE(std::find(got->begin(), got->end(), named), got->end())
          << user << " is named by group " << named;
    }
  }
  const auto unknown = sys_.getgrouplist("daemonkit-no-such-user", 4242);
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_EQ(*unknown, std::vector<gid_t>{4242});
}

// A user in more groups than the first buffer holds, then in more than the kernel accepts.
// The group database is replaced only in a child's private mount namespace.
constexpr int kNoMountNamespace = 77;

TEST_F(RealSyscallsCredentials, GetgrouplistGrowsItsBufferAndStopsAtTheKernelLimit) {
  SKIP_UNLESS_ROOT("mount a group database of its own");
  auto write_database = [this](const std::string& name, int count) {
    std::string text = "root:x:0:\n";
    for (int i = 0; i < count; ++i) {
      text += "dk" + std::to_string(i) + ":x:" + std::to_string(100000 + i) + ":dk-member\n";
    }
    const std::string file = path(name);
    std::FILE* out = std::fopen(file.c_str(), "w");
    if (out == nullptr) throw std::runtime_error("cannot write " + file);
    std::fwrite(text.data(), 1, text.size(), out);
    std::fclose(out);
    return file;
  };
  const std::string hundred = write_database("group.100", 100);
  const std::string too_many = write_database("group.max", NGROUPS_MAX);
  const int status = run_in_child(
      [&] {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
          return kNoMountNamespace;
        }
        CHILD_CHECK(::mount(hundred.c_str(), "/etc/group", nullptr, MS_BIND, nullptr) == 0);
        const auto grown = sys_.getgrouplist("dk-member", 5);
        CHILD_CHECK(IsOk(grown));
        CHILD_CHECK(grown->size() == 101);
        CHILD_CHECK(*grown == raw_group_list("dk-member", 5));
        // The given gid plus NGROUPS_MAX more: one past what setgroups would take.
        CHILD_CHECK(::umount("/etc/group") == 0);
        CHILD_CHECK(::mount(too_many.c_str(), "/etc/group", nullptr, MS_BIND, nullptr) == 0);
        CHILD_CHECK(FailsWith(sys_.getgrouplist("dk-member", 5), EINVAL, "getgrouplist"));
        return 0;
      },
      20000);
  if (WIFEXITED(status) && WEXITSTATUS(status) == kNoMountNamespace) {
    GTEST_SKIP() << "no private mount namespace here (unshare or mount refused)";
  }
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsCredentials, GetpwnamFindsUsersAndReportsUnknownAsEmpty) {
  const auto root = sys_.getpwnam("root");
  ASSERT_TRUE(IsOk(root));
  ASSERT_TRUE(root->has_value());
  const passwd* expected = ::getpwnam("root");
  ASSERT_NE(expected, nullptr);
  EXPECT_EQ((*root)->name, "root");
  EXPECT_EQ((*root)->uid, 0u);
  EXPECT_EQ((*root)->gid, 0u);
  EXPECT_EQ((*root)->dir, expected->pw_dir);
  EXPECT_EQ((*root)->shell, expected->pw_shell);
  const auto unknown = sys_.getpwnam("daemonkit-no-such-user");
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_FALSE(unknown->has_value());
}

TEST_F(RealSyscallsCredentials, GetpwuidFindsUsersAndReportsUnknownAsEmpty) {
  const auto nobody = sys_.getpwuid(kNobody);
  ASSERT_TRUE(IsOk(nobody));
  ASSERT_TRUE(nobody->has_value());
  EXPECT_EQ((*nobody)->name, "nobody");
  EXPECT_EQ((*nobody)->gid, kNogroup);
  EXPECT_EQ((*nobody)->dir, "/nonexistent");
  const auto unknown = sys_.getpwuid(4'000'000);
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_FALSE(unknown->has_value());
}

TEST_F(RealSyscallsCredentials, GetgrnamFindsGroupsAndReportsUnknownAsEmpty) {
  const auto nogroup = sys_.getgrnam("nogroup");
  ASSERT_TRUE(IsOk(nogroup));
  ASSERT_TRUE(nogroup->has_value());
  EXPECT_EQ((*nogroup)->gid, kNogroup);
  EXPECT_TRUE((*nogroup)->members.empty());
  const auto unknown = sys_.getgrnam("daemonkit-no-such-group");
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_FALSE(unknown->has_value());
}

// Every group in the database comes back with the same name and members as libc reports.
TEST_F(RealSyscallsCredentials, GetgrgidAgreesWithDatabaseAndReportsUnknownAsEmpty) {
  struct Entry {
    std::string name;
    gid_t gid;
    std::vector<std::string> members;
  };
  std::vector<Entry> entries;
  std::set<gid_t> seen;
  ::setgrent();
  while (const group* g = ::getgrent()) {
    if (!seen.insert(g->gr_gid).second) continue;  // getgrgid finds the first of duplicates
    Entry entry{g->gr_name, g->gr_gid, {}};
    for (char** m = g->gr_mem; *m != nullptr; ++m) entry.members.emplace_back(*m);
    entries.push_back(std::move(entry));
  }
  ::endgrent();
  ASSERT_FALSE(entries.empty());
  for (const Entry& entry : entries) {
    const auto got = sys_.getgrgid(entry.gid);
    ASSERT_TRUE(IsOk(got)) << entry.name;
    ASSERT_TRUE(got->has_value()) << entry.name;
    EXPECT_EQ((*got)->name, entry.name);
    EXPECT_EQ((*got)->gid, entry.gid);
    EXPECT_EQ((*got)->members, entry.members) << entry.name;
  }
  const auto unknown = sys_.getgrgid(4'000'000);
  ASSERT_TRUE(IsOk(unknown));
  EXPECT_FALSE(unknown->has_value());
}

// With no descriptor left, the files back end cannot open the database: that is an error
// (EMFILE), not "no such user". Which answer arrives depends on the NSS modules this process
// has already loaded (nss-systemd synthesises root without opening anything), so each look-up
// is checked against the raw _r call made in the same state; the test skips if no look-up
// reached an error at all.
constexpr int kNoErrorReached = 77;

template <typename Value>
::testing::AssertionResult AgreesWithRawLookup(const Result<std::optional<Value>>& ours,
                                               int raw_code, bool raw_found, const char* call,
                                               int& errors_seen) {
  if (raw_found) {
    if (ours && ours->has_value()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << call << ": libc found the entry, RealSyscalls did not";
  }
  if (raw_code == 0) {
    if (ours && !ours->has_value()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << call << ": libc found nothing, RealSyscalls differs";
  }
  ++errors_seen;
  return FailsWith(ours, raw_code, call);
}

TEST_F(RealSyscallsCredentials, LookupsReportDatabaseErrorsSuchAsEmfile) {
  const int status = run_in_child([this] {
    for (int fd = 0; fd < 3; ++fd) {
      if (!is_open(fd)) CHILD_CHECK(::open("/dev/null", O_RDWR) == fd);
    }
    CHILD_CHECK(::close_range(3, ~0U, 0) == 0);
    // UBSan's vptr check (clang's) opens a pipe the first time it meets an object's dynamic
    // type, to probe the vtable; with no descriptor left it would report a valid sys_ as an
    // "invalid vptr". One call through this->sys_ while descriptors remain lets it see both.
    CHILD_CHECK(sys_.getpid() == ::getpid());
    const rlimit three{3, 3};
    CHILD_CHECK(::setrlimit(RLIMIT_NOFILE, &three) == 0);
    std::vector<char> buf(16384);
    int errors_seen = 0;
    passwd pw{};
    passwd* pw_found = nullptr;
    group gr{};
    group* gr_found = nullptr;

    int code = ::getpwnam_r("daemon", &pw, buf.data(), buf.size(), &pw_found);
    CHILD_CHECK(AgreesWithRawLookup(sys_.getpwnam("daemon"), code, pw_found != nullptr, "getpwnam",
                                    errors_seen));
    code = ::getpwuid_r(1, &pw, buf.data(), buf.size(), &pw_found);
    CHILD_CHECK(
        AgreesWithRawLookup(sys_.getpwuid(1), code, pw_found != nullptr, "getpwuid", errors_seen));
    code = ::getgrnam_r("daemon", &gr, buf.data(), buf.size(), &gr_found);
    CHILD_CHECK(AgreesWithRawLookup(sys_.getgrnam("daemon"), code, gr_found != nullptr, "getgrnam",
                                    errors_seen));
    code = ::getgrgid_r(1, &gr, buf.data(), buf.size(), &gr_found);
    CHILD_CHECK(
        AgreesWithRawLookup(sys_.getgrgid(1), code, gr_found != nullptr, "getgrgid", errors_seen));
    return errors_seen > 0 ? 0 : kNoErrorReached;
  });
  if (WIFEXITED(status) && WEXITSTATUS(status) == kNoErrorReached) {
    GTEST_SKIP() << "an NSS module loaded earlier in this process answered every look-up "
                    "without the files database; run this test alone (as ctest does)";
  }
  EXPECT_TRUE(ExitedWith(status, 0));
}

// ==== Files and descriptors ===============================================================

TEST_F(RealSyscallsFiles, OpenCreatesExclusivelyAndReportsEexistEnoentEnotdirEisdir) {
  const std::string file = path("file");
  const auto created = sys_.open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_TRUE(IsOk(created));
  const Fd fd(*created);
  EXPECT_TRUE(has_cloexec(fd.get()));
  ASSERT_EQ(::write(fd.get(), "abc", 3), 3);
  const Fd again(unwrap(sys_.open(file.c_str(), O_RDONLY | O_CLOEXEC, 0)));
  EXPECT_EQ(read_fd(again.get()), "abc");
  EXPECT_TRUE(
      FailsWith(sys_.open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600), EEXIST, "open"));
  EXPECT_TRUE(FailsWith(sys_.open(path("missing").c_str(), O_RDONLY, 0), ENOENT, "open"));
  EXPECT_TRUE(FailsWith(sys_.open((file + "/below").c_str(), O_RDONLY, 0), ENOTDIR, "open"));
  EXPECT_TRUE(FailsWith(sys_.open(dir_.path().c_str(), O_WRONLY, 0), EISDIR, "open"));
}

TEST_F(RealSyscallsFiles, OpenWithNofollowRefusesSymlinkWithEloop) {
  const std::string file = path("file");
  const std::string link = path("link");
  write_file(file, "x");
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  EXPECT_TRUE(FailsWith(sys_.open(link.c_str(), O_RDONLY | O_NOFOLLOW, 0), ELOOP, "open"));
  const auto followed = sys_.open(link.c_str(), O_RDONLY | O_CLOEXEC, 0);
  ASSERT_TRUE(IsOk(followed));
  ::close(*followed);
}

TEST_F(RealSyscallsFiles, OpenDeniesUnprivilegedReaderWithEacces) {
  const std::string secret = path("secret");
  // Root's 0600 file is closed to nobody; an ordinary user's own file needs mode 0000.
  write_file(secret, "s", is_root() ? 0600 : 0000);
  ::chmod(secret.c_str(), is_root() ? 0600 : 0000);
  const int status = run_in_child([this, &secret] {
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.open(secret.c_str(), O_RDONLY, 0), EACCES, "open"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, OpenatResolvesAgainstDirectoryAndReportsEbadfEnotdir) {
  const Fd dirfd(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(dirfd.get(), 0);
  const auto created = sys_.openat(dirfd.get(), "rel", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_TRUE(IsOk(created));
  ::close(*created);
  struct stat st {};
  EXPECT_EQ(::stat(path("rel").c_str(), &st), 0);
  const Fd file(::open(path("rel").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(FailsWith(sys_.openat(kBadFd, "rel", O_RDONLY, 0), EBADF, "openat"));
  EXPECT_TRUE(FailsWith(sys_.openat(file.get(), "rel", O_RDONLY, 0), ENOTDIR, "openat"));
  EXPECT_TRUE(FailsWith(sys_.openat(dirfd.get(), "missing", O_RDONLY, 0), ENOENT, "openat"));
}

TEST_F(RealSyscallsFiles, CloseReleasesDescriptorThenReportsEbadf) {
  const int fd = ::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(IsOk(sys_.close(fd)));
  EXPECT_FALSE(is_open(fd));
  EXPECT_TRUE(FailsWith(sys_.close(fd), EBADF, "close"));
}

TEST_F(RealSyscallsFiles, CloseRangeClosesOrMarksCloexecAndReportsEinval) {
  Pipe p = make_pipe();
  for (const int target : {700, 701, 702}) ASSERT_EQ(::dup2(p.read.get(), target), target);
  ASSERT_TRUE(IsOk(sys_.close_range(700, 701, 0)));
  EXPECT_FALSE(is_open(700));
  EXPECT_FALSE(is_open(701));
  ASSERT_TRUE(is_open(702));
  EXPECT_FALSE(has_cloexec(702));
  ASSERT_TRUE(IsOk(sys_.close_range(702, 702, CLOSE_RANGE_CLOEXEC)));
  EXPECT_TRUE(is_open(702));
  EXPECT_TRUE(has_cloexec(702));
  ::close(702);
  EXPECT_TRUE(FailsWith(sys_.close_range(10, 5, 0), EINVAL, "close_range"));
  EXPECT_TRUE(FailsWith(sys_.close_range(700, 702, 0x4000), EINVAL, "close_range"));
}

TEST_F(RealSyscallsFiles, DupSharesTheOpenFileAndReportsEbadf) {
  const std::string file = path("file");
  write_file(file, "0123456789");
  const Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  const auto copy = sys_.dup(fd.get());
  ASSERT_TRUE(IsOk(copy));
  const Fd owned(*copy);
  EXPECT_NE(*copy, fd.get());
  char buf[4];
  ASSERT_EQ(::read(fd.get(), buf, 4), 4);
  EXPECT_EQ(::lseek(*copy, 0, SEEK_CUR), 4);  // one offset: the same open file description
  EXPECT_TRUE(FailsWith(sys_.dup(kBadFd), EBADF, "dup"));
}

TEST_F(RealSyscallsFiles, Dup2PlacesOnChosenNumberAndReportsEbadf) {
  Pipe p = make_pipe();
  const auto placed = sys_.dup2(p.write.get(), 600);
  ASSERT_TRUE(IsOk(placed));
  EXPECT_EQ(*placed, 600);
  ASSERT_EQ(::write(600, "z", 1), 1);
  char byte = 0;
  ASSERT_EQ(::read(p.read.get(), &byte, 1), 1);
  EXPECT_EQ(byte, 'z');
  EXPECT_FALSE(has_cloexec(600));
  ::close(600);
  const auto same = sys_.dup2(p.read.get(), p.read.get());
  ASSERT_TRUE(IsOk(same));
  EXPECT_EQ(*same, p.read.get());
  EXPECT_TRUE(FailsWith(sys_.dup2(kBadFd, 600), EBADF, "dup2"));
  EXPECT_TRUE(FailsWith(sys_.dup2(p.read.get(), -1), EBADF, "dup2"));
}

TEST_F(RealSyscallsFiles, Dup3SetsCloexecAndReportsEinval) {
  Pipe p = make_pipe();
  const auto placed = sys_.dup3(p.read.get(), 601, O_CLOEXEC);
  ASSERT_TRUE(IsOk(placed));
  EXPECT_EQ(*placed, 601);
  EXPECT_TRUE(has_cloexec(601));
  ::close(601);
  EXPECT_TRUE(FailsWith(sys_.dup3(p.read.get(), p.read.get(), 0), EINVAL, "dup3"));
  EXPECT_TRUE(FailsWith(sys_.dup3(p.read.get(), 602, 0xdead), EINVAL, "dup3"));
  EXPECT_TRUE(FailsWith(sys_.dup3(kBadFd, 602, 0), EBADF, "dup3"));
}

TEST_F(RealSyscallsFiles, FcntlReadsAndSetsFlagsAndReportsEbadfEinval) {
  Pipe p = make_pipe(0);
  EXPECT_EQ(unwrap(sys_.fcntl(p.read.get(), F_GETFD, 0)), 0);
  ASSERT_TRUE(IsOk(sys_.fcntl(p.read.get(), F_SETFD, FD_CLOEXEC)));
  EXPECT_EQ(unwrap(sys_.fcntl(p.read.get(), F_GETFD, 0)), FD_CLOEXEC);
  const int status_flags = unwrap(sys_.fcntl(p.read.get(), F_GETFL, 0));
  EXPECT_EQ(status_flags & O_NONBLOCK, 0);
  ASSERT_TRUE(IsOk(sys_.fcntl(p.read.get(), F_SETFL, status_flags | O_NONBLOCK)));
  EXPECT_NE(::fcntl(p.read.get(), F_GETFL) & O_NONBLOCK, 0);
  const auto above = sys_.fcntl(p.read.get(), F_DUPFD_CLOEXEC, 650);
  ASSERT_TRUE(IsOk(above));
  EXPECT_GE(*above, 650);
  EXPECT_TRUE(has_cloexec(*above));
  ::close(*above);
  EXPECT_TRUE(FailsWith(sys_.fcntl(kBadFd, F_GETFD, 0), EBADF, "fcntl"));
  EXPECT_TRUE(FailsWith(sys_.fcntl(p.read.get(), 9999, 0), EINVAL, "fcntl"));
}

TEST_F(RealSyscallsFiles, ReadAndWriteCarryPipeBytesThenReadSeesEof) {
  Pipe p = make_pipe();
  const auto wrote = sys_.write(p.write.get(), "hello", 5);
  ASSERT_TRUE(IsOk(wrote));
  EXPECT_EQ(*wrote, 5u);
  char buf[16] = {};
  const auto got = sys_.read(p.read.get(), buf, sizeof buf);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(std::string_view(buf, *got), "hello");
  p.write.reset();
  const auto eof = sys_.read(p.read.get(), buf, sizeof buf);
  ASSERT_TRUE(IsOk(eof));
  EXPECT_EQ(*eof, 0u);
}

TEST_F(RealSyscallsFiles, ReadReportsEagainEbadfEisdir) {
  Pipe p = make_pipe(O_CLOEXEC | O_NONBLOCK);
  char buf[8];
  EXPECT_TRUE(FailsWith(sys_.read(p.read.get(), buf, sizeof buf), EAGAIN, "read"));
  EXPECT_TRUE(FailsWith(sys_.read(p.write.get(), buf, sizeof buf), EBADF, "read"));
  EXPECT_TRUE(FailsWith(sys_.read(kBadFd, buf, sizeof buf), EBADF, "read"));
  const Fd dirfd(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(FailsWith(sys_.read(dirfd.get(), buf, sizeof buf), EISDIR, "read"));
}

TEST_F(RealSyscallsFiles, WriteReportsEagainOnFullPipeAndEbadf) {
  Pipe p = make_pipe(O_CLOEXEC | O_NONBLOCK);
  const std::vector<char> chunk(4096, 'x');
  Result<std::size_t> last = 0u;
  for (int i = 0; i < 1024 && last; ++i)
    last = sys_.write(p.write.get(), chunk.data(), chunk.size());
  EXPECT_TRUE(FailsWith(last, EAGAIN, "write"));
  EXPECT_TRUE(FailsWith(sys_.write(p.read.get(), "x", 1), EBADF, "write"));
}

TEST_F(RealSyscallsFiles, WriteReportsEpipeWhenSigpipeIgnored) {
  const int status = run_in_child([this] {
    CHILD_CHECK(::signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    Pipe p = make_pipe();
    p.read.reset();
    CHILD_CHECK(FailsWith(sys_.write(p.write.get(), "x", 1), EPIPE, "write"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, WritevSendsTheBuffersInOrderAsOneWrite) {
  Pipe p = make_pipe(O_CLOEXEC | O_NONBLOCK);
  char a[] = "hel";
  char b[] = "lo";
  const struct iovec iov[] = {{a, 3}, {nullptr, 0}, {b, 2}};
  EXPECT_EQ(unwrap(sys_.writev(p.write.get(), iov)), 5u);
  char buf[16] = {};
  EXPECT_EQ(std::string_view(buf, unwrap(sys_.read(p.read.get(), buf, sizeof buf))), "hello");
  EXPECT_EQ(unwrap(sys_.writev(p.write.get(), {})), 0u);
}

TEST_F(RealSyscallsFiles, WritevReportsEinvalPastIovMaxEbadfAndEpipe) {
  Pipe p = make_pipe(O_CLOEXEC | O_NONBLOCK);
  char x = 'x';
  const std::vector<struct iovec> many(IOV_MAX + 1, iovec{&x, 1});
  EXPECT_TRUE(FailsWith(sys_.writev(p.write.get(), many), EINVAL, "writev"));
  EXPECT_EQ(unwrap(sys_.writev(p.write.get(), std::span(many).first(IOV_MAX))),
            static_cast<std::size_t>(IOV_MAX));
  EXPECT_TRUE(FailsWith(sys_.writev(p.read.get(), std::span(many).first(1)), EBADF, "writev"));
  const int status = run_in_child([this] {
    CHILD_CHECK(::signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    Pipe q = make_pipe();
    q.read.reset();
    char y = 'y';
    const struct iovec one[] = {{&y, 1}};
    CHILD_CHECK(FailsWith(sys_.writev(q.write.get(), one), EPIPE, "writev"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, FsyncFlushesFileAndReportsEinvalOnPipe) {
  const Fd fd(::open(path("file").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_EQ(::write(fd.get(), "x", 1), 1);
  EXPECT_TRUE(IsOk(sys_.fsync(fd.get())));
  Pipe p = make_pipe();
  EXPECT_TRUE(FailsWith(sys_.fsync(p.read.get()), EINVAL, "fsync"));
  EXPECT_TRUE(FailsWith(sys_.fsync(kBadFd), EBADF, "fsync"));
}

TEST_F(RealSyscallsFiles, FtruncateSetsLengthAndReportsEinvalEbadf) {
  const std::string file = path("file");
  write_file(file, "0123456789abcdef");
  const Fd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(IsOk(sys_.ftruncate(fd.get(), 10)));
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 10);
  EXPECT_TRUE(FailsWith(sys_.ftruncate(fd.get(), -1), EINVAL, "ftruncate"));
  const Fd read_only(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(FailsWith(sys_.ftruncate(read_only.get(), 0), EINVAL, "ftruncate"));
  EXPECT_TRUE(FailsWith(sys_.ftruncate(kBadFd, 0), EBADF, "ftruncate"));
}

TEST_F(RealSyscallsFiles, FstatDescribesOpenFileAndReportsEbadf) {
  const std::string file = path("file");
  write_file(file, "abc");
  const Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  const auto st = sys_.fstat(fd.get());
  ASSERT_TRUE(IsOk(st));
  EXPECT_TRUE(S_ISREG(st->st_mode));
  EXPECT_EQ(st->st_size, 3);
  EXPECT_TRUE(FailsWith(sys_.fstat(kBadFd), EBADF, "fstat"));
}

TEST_F(RealSyscallsFiles, StatFollowsLinksAndReportsEnoentEnotdirEloop) {
  const std::string file = path("file");
  write_file(file, "abc");
  ASSERT_EQ(::symlink(file.c_str(), path("link").c_str()), 0);
  ASSERT_EQ(::symlink(path("b").c_str(), path("a").c_str()), 0);
  ASSERT_EQ(::symlink(path("a").c_str(), path("b").c_str()), 0);
  const auto direct = sys_.stat(file.c_str());
  const auto through = sys_.stat(path("link").c_str());
  ASSERT_TRUE(IsOk(direct));
  ASSERT_TRUE(IsOk(through));
  EXPECT_TRUE(S_ISREG(through->st_mode));
  EXPECT_EQ(through->st_ino, direct->st_ino);
  EXPECT_TRUE(FailsWith(sys_.stat(path("missing").c_str()), ENOENT, "stat"));
  EXPECT_TRUE(FailsWith(sys_.stat((file + "/below").c_str()), ENOTDIR, "stat"));
  EXPECT_TRUE(FailsWith(sys_.stat(path("a").c_str()), ELOOP, "stat"));
}

TEST_F(RealSyscallsFiles, LstatDescribesLinkItselfAndReportsEnoent) {
  write_file(path("file"), "abc");
  ASSERT_EQ(::symlink(path("file").c_str(), path("link").c_str()), 0);
  const auto st = sys_.lstat(path("link").c_str());
  ASSERT_TRUE(IsOk(st));
  EXPECT_TRUE(S_ISLNK(st->st_mode));
  EXPECT_TRUE(FailsWith(sys_.lstat(path("missing").c_str()), ENOENT, "lstat"));
}

TEST_F(RealSyscallsFiles, FlockExcludesSecondOpenFileDescriptionWithEwouldblock) {
  const std::string file = path("lock");
  write_file(file, "");
  const Fd first(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  const Fd second(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(IsOk(sys_.flock(first.get(), LOCK_EX)));
  EXPECT_TRUE(FailsWith(sys_.flock(second.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK, "flock"));
  ASSERT_TRUE(IsOk(sys_.flock(first.get(), LOCK_UN)));
  EXPECT_TRUE(IsOk(sys_.flock(second.get(), LOCK_EX | LOCK_NB)));
  EXPECT_TRUE(FailsWith(sys_.flock(kBadFd, LOCK_EX), EBADF, "flock"));
  EXPECT_TRUE(FailsWith(sys_.flock(first.get(), 0), EINVAL, "flock"));
}

TEST_F(RealSyscallsFiles, Getdents64ListsOpenDescriptorsInProcSelfFd) {
  const Fd marker(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const Fd fds(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(fds.get(), 0);
  std::set<std::string> names;
  alignas(8) char buf[512];  // small, so the listing takes several calls
  for (int calls = 0; calls < 1000; ++calls) {
    const auto used = sys_.getdents64(fds.get(), buf, sizeof buf);
    ASSERT_TRUE(IsOk(used));
    if (*used == 0) break;
    for (std::size_t offset = 0; offset < *used;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buf + offset);
      names.insert(entry->d_name);
      offset += entry->d_reclen;
    }
  }
  EXPECT_TRUE(names.count(".") == 1 && names.count("..") == 1);
  EXPECT_EQ(names.count(std::to_string(marker.get())), 1u);
  EXPECT_EQ(names.count(std::to_string(fds.get())), 1u);
  const Fd fresh(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(FailsWith(sys_.getdents64(fresh.get(), buf, 1), EINVAL, "getdents64"));
  EXPECT_TRUE(FailsWith(sys_.getdents64(kBadFd, buf, sizeof buf), EBADF, "getdents64"));
  write_file(path("file"), "");
  const Fd file(::open(path("file").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(FailsWith(sys_.getdents64(file.get(), buf, sizeof buf), ENOTDIR, "getdents64"));
}

TEST_F(RealSyscallsFiles, UnlinkRemovesFileAndReportsEnoentEisdir) {
  write_file(path("file"), "");
  ASSERT_TRUE(IsOk(sys_.unlink(path("file").c_str())));
  struct stat st {};
  EXPECT_NE(::lstat(path("file").c_str(), &st), 0);
  EXPECT_TRUE(FailsWith(sys_.unlink(path("file").c_str()), ENOENT, "unlink"));
  EXPECT_TRUE(FailsWith(sys_.unlink(dir_.path().c_str()), EISDIR, "unlink"));
}

TEST_F(RealSyscallsFiles, RenameReplacesTargetAndReportsEnoentEisdirEnotdir) {
  write_file(path("from"), "new");
  write_file(path("to"), "old");
  ASSERT_TRUE(IsOk(sys_.rename(path("from").c_str(), path("to").c_str())));
  const Fd fd(::open(path("to").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(read_fd(fd.get()), "new");
  EXPECT_TRUE(FailsWith(sys_.rename(path("from").c_str(), path("x").c_str()), ENOENT, "rename"));
  ASSERT_EQ(::mkdir(path("dir").c_str(), 0755), 0);
  EXPECT_TRUE(FailsWith(sys_.rename(path("to").c_str(), path("dir").c_str()), EISDIR, "rename"));
  EXPECT_TRUE(FailsWith(sys_.rename(path("dir").c_str(), path("to").c_str()), ENOTDIR, "rename"));
}

TEST_F(RealSyscallsFiles, SymlinkCreatesLinkAndReportsEexistEnoent) {
  const std::string link = path("link");
  ASSERT_TRUE(IsOk(sys_.symlink("some/target", link.c_str())));
  char target[64] = {};
  ASSERT_EQ(::readlink(link.c_str(), target, sizeof target - 1), 11);
  EXPECT_STREQ(target, "some/target");
  EXPECT_TRUE(FailsWith(sys_.symlink("other", link.c_str()), EEXIST, "symlink"));
  EXPECT_TRUE(FailsWith(sys_.symlink("t", path("missing/link").c_str()), ENOENT, "symlink"));
}

TEST_F(RealSyscallsFiles, MkdirCreatesDirectoryAndReportsEexistEnoent) {
  const std::string sub = path("sub");
  ASSERT_TRUE(IsOk(sys_.mkdir(sub.c_str(), 0750)));
  struct stat st {};
  ASSERT_EQ(::stat(sub.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(FailsWith(sys_.mkdir(sub.c_str(), 0750), EEXIST, "mkdir"));
  EXPECT_TRUE(FailsWith(sys_.mkdir(path("a/b").c_str(), 0750), ENOENT, "mkdir"));
}

TEST_F(RealSyscallsFiles, RmdirRemovesEmptyDirectoryAndReportsEnotemptyEnotdirEnoent) {
  const std::string sub = path("sub");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  write_file(sub + "/file", "");
  EXPECT_TRUE(FailsWith(sys_.rmdir(sub.c_str()), ENOTEMPTY, "rmdir"));
  EXPECT_TRUE(FailsWith(sys_.rmdir((sub + "/file").c_str()), ENOTDIR, "rmdir"));
  ASSERT_EQ(::unlink((sub + "/file").c_str()), 0);
  ASSERT_TRUE(IsOk(sys_.rmdir(sub.c_str())));
  EXPECT_TRUE(FailsWith(sys_.rmdir(sub.c_str()), ENOENT, "rmdir"));
}

TEST_F(RealSyscallsFiles, ChmodChangesModeAndReportsEnoent) {
  const std::string file = path("file");
  write_file(file, "");
  ASSERT_TRUE(IsOk(sys_.chmod(file.c_str(), 0640)));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_TRUE(FailsWith(sys_.chmod(path("missing").c_str(), 0640), ENOENT, "chmod"));
}

TEST_F(RealSyscallsFiles, FchmodChangesTheOpenFilesModeAndReportsEbadf) {
  const std::string file = path("file");
  write_file(file, "");
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(IsOk(sys_.fchmod(fd, 0604)));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  ::close(fd);
  EXPECT_TRUE(FailsWith(sys_.fchmod(fd, 0600), EBADF, "fchmod"));
}

TEST_F(RealSyscallsFiles, ChmodOfAnotherUsersFileFailsWithEperm) {
  SKIP_UNLESS_ROOT("own a file that nobody does not");
  const std::string file = path("file");
  write_file(file, "");
  const int status = run_in_child([this, &file] {
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.chmod(file.c_str(), 0777), EPERM, "chmod"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, ChownGivesFileAwayAndReportsEpermEnoent) {
  const std::string file = path("file");
  write_file(file, "");
  EXPECT_TRUE(FailsWith(sys_.chown(path("missing").c_str(), 0, 0), ENOENT, "chown"));
  if (!is_root()) {
    EXPECT_TRUE(IsOk(sys_.chown(file.c_str(), ::getuid(), static_cast<gid_t>(-1))));
    EXPECT_TRUE(FailsWith(sys_.chown(file.c_str(), 0, 0), EPERM, "chown"));
    return;
  }
  ASSERT_TRUE(IsOk(sys_.chown(file.c_str(), kNobody, kNogroup)));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNogroup);
  const int status = run_in_child([this, &file] {
    become_unprivileged();
    // nobody owns the file now, yet may not give it to root.
    CHILD_CHECK(FailsWith(sys_.chown(file.c_str(), 0, 0), EPERM, "chown"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, ChdirMovesChildAndReportsEnoentEnotdirEacces) {
  write_file(path("file"), "");
  ASSERT_EQ(::mkdir(path("closed").c_str(), is_root() ? 0700 : 0000), 0);
  ::chmod(path("closed").c_str(), is_root() ? 0700 : 0000);
  char* real = ::realpath(dir_.path().c_str(), nullptr);
  ASSERT_NE(real, nullptr);
  const std::string expected = real;
  std::free(real);
  const int status = run_in_child([this, &expected] {
    CHILD_CHECK(IsOk(sys_.chdir(dir_.path().c_str())));
    char cwd[PATH_MAX];
    CHILD_CHECK(::getcwd(cwd, sizeof cwd) != nullptr);
    CHILD_CHECK(expected == cwd);
    CHILD_CHECK(FailsWith(sys_.chdir(path("missing").c_str()), ENOENT, "chdir"));
    CHILD_CHECK(FailsWith(sys_.chdir(path("file").c_str()), ENOTDIR, "chdir"));
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.chdir(path("closed").c_str()), EACCES, "chdir"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, ChrootConfinesChildThenFailsWithEpermUnprivileged) {
  SKIP_UNLESS_ROOT("chroot");
  write_file(path("marker"), "inside");
  const int status = run_in_child([this] {
    CHILD_CHECK(FailsWith(sys_.chroot(path("missing").c_str()), ENOENT, "chroot"));
    CHILD_CHECK(FailsWith(sys_.chroot(path("marker").c_str()), ENOTDIR, "chroot"));
    CHILD_CHECK(IsOk(sys_.chroot(dir_.path().c_str())));
    CHILD_CHECK(::chdir("/") == 0);
    struct stat st {};
    CHILD_CHECK(::stat("/marker", &st) == 0);
    CHILD_CHECK(::stat("/tmp", &st) != 0);
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.chroot("/"), EPERM, "chroot"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, GetcwdMatchesKernel) {
  char expected[PATH_MAX];
  ASSERT_NE(::getcwd(expected, sizeof expected), nullptr);
  const auto cwd = sys_.getcwd();
  ASSERT_TRUE(IsOk(cwd));
  EXPECT_EQ(*cwd, expected);
}

// Linux allows a working directory deeper than PATH_MAX; getcwd must grow its buffer for it.
TEST_F(RealSyscallsFiles, GetcwdReturnsWholePathBeyondPathMax) {
  const int status = run_in_child([this] {
    CHILD_CHECK(::chdir(dir_.path().c_str()) == 0);
    char start[PATH_MAX];
    CHILD_CHECK(::getcwd(start, sizeof start) != nullptr);
    std::string expected = start;
    const std::string component(200, 'd');
    while (expected.size() <= 2 * PATH_MAX) {
      CHILD_CHECK(::mkdir(component.c_str(), 0755) == 0);
      CHILD_CHECK(::chdir(component.c_str()) == 0);
      expected += "/" + component;
    }
    const auto cwd = sys_.getcwd();
    CHILD_CHECK(IsOk(cwd));
    CHILD_CHECK(*cwd == expected);
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsFiles, GetcwdReportsEnoentForRemovedDirectory) {
  const std::string gone = path("gone");
  ASSERT_EQ(::mkdir(gone.c_str(), 0755), 0);
  const int status = run_in_child([this, &gone] {
    CHILD_CHECK(::chdir(gone.c_str()) == 0);
    CHILD_CHECK(::rmdir(gone.c_str()) == 0);
    CHILD_CHECK(FailsWith(sys_.getcwd(), ENOENT, "getcwd"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// umask cannot fail; it returns the previous mask and masks the mode of new files.
TEST_F(RealSyscallsFiles, UmaskReturnsPreviousMaskAndMasksNewFiles) {
  const std::string file = path("file");
  const int status = run_in_child([this, &file] {
    static_cast<void>(sys_.umask(027));
    CHILD_CHECK(sys_.umask(027) == 027);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    CHILD_CHECK(fd >= 0);
    ::close(fd);
    struct stat st {};
    CHILD_CHECK(::stat(file.c_str(), &st) == 0);
    CHILD_CHECK((st.st_mode & 0777) == 0640);
    CHILD_CHECK(sys_.umask(0) == 027);
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// ==== Pipes and signals ===================================================================

TEST_F(RealSyscallsSignals, Pipe2AppliesFlagsToBothEndsAndReportsEinval) {
  const auto fds = sys_.pipe2(O_CLOEXEC | O_NONBLOCK);
  ASSERT_TRUE(IsOk(fds));
  const Fd r(fds->read_end);
  const Fd w(fds->write_end);
  for (const int fd : {r.get(), w.get()}) {
    EXPECT_TRUE(has_cloexec(fd));
    EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  }
  ASSERT_EQ(::write(w.get(), "p", 1), 1);
  char byte = 0;
  EXPECT_EQ(::read(r.get(), &byte, 1), 1);
  EXPECT_EQ(byte, 'p');
  const auto plain = sys_.pipe2(0);
  ASSERT_TRUE(IsOk(plain));
  EXPECT_FALSE(has_cloexec(plain->read_end));
  ::close(plain->read_end);
  ::close(plain->write_end);
  EXPECT_TRUE(FailsWith(sys_.pipe2(0x7fff0000), EINVAL, "pipe2"));
}

volatile sig_atomic_t g_signals_seen = 0;
void count_signal(int) { g_signals_seen = g_signals_seen + 1; }

TEST_F(RealSyscallsSignals, SigactionInstallsHandlerReturnsOldAndReportsEinval) {
  const int status = run_in_child([this] {
    struct sigaction act {};
    act.sa_handler = count_signal;
    sigemptyset(&act.sa_mask);
    struct sigaction old {};
    CHILD_CHECK(IsOk(sys_.sigaction(SIGUSR1, &act, &old)));
    CHILD_CHECK(old.sa_handler == SIG_DFL);
    CHILD_CHECK(::raise(SIGUSR1) == 0);
    CHILD_CHECK(g_signals_seen == 1);
    struct sigaction current {};
    CHILD_CHECK(IsOk(sys_.sigaction(SIGUSR1, nullptr, &current)));
    CHILD_CHECK(current.sa_handler == count_signal);
    CHILD_CHECK(FailsWith(sys_.sigaction(SIGKILL, &act, nullptr), EINVAL, "sigaction"));
    CHILD_CHECK(FailsWith(sys_.sigaction(0, &act, nullptr), EINVAL, "sigaction"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsSignals, SigprocmaskBlocksDeliveryUntilUnblocked) {
  const int status = run_in_child([this] {
    struct sigaction act {};
    act.sa_handler = count_signal;
    CHILD_CHECK(::sigaction(SIGUSR1, &act, nullptr) == 0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigset_t old;
    CHILD_CHECK(IsOk(sys_.sigprocmask(SIG_BLOCK, &usr1, &old)));
    CHILD_CHECK(sigismember(&old, SIGUSR1) == 0);
    CHILD_CHECK(::raise(SIGUSR1) == 0);
    CHILD_CHECK(g_signals_seen == 0);
    sigset_t pending;
    CHILD_CHECK(::sigpending(&pending) == 0);
    CHILD_CHECK(sigismember(&pending, SIGUSR1) == 1);
    CHILD_CHECK(IsOk(sys_.sigprocmask(SIG_SETMASK, &old, nullptr)));
    CHILD_CHECK(g_signals_seen == 1);
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// pthread_sigmask returns its error instead of setting errno; the Error must carry it anyway.
TEST_F(RealSyscallsSignals, SigprocmaskReportsEinvalForUnknownHow) {
  sigset_t set;
  sigemptyset(&set);
  errno = EBADF;  // pthread_sigmask leaves errno alone; reading it would report this instead
  EXPECT_TRUE(FailsWith(sys_.sigprocmask(12345, &set, nullptr), EINVAL, "sigprocmask"));
}

TEST_F(RealSyscallsSignals, SignalfdReadsBlockedSignalAndReportsEinvalEbadf) {
  const int status = run_in_child([this] {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHILD_CHECK(::pthread_sigmask(SIG_BLOCK, &usr2, nullptr) == 0);
    const auto created = sys_.signalfd(-1, usr2, SFD_CLOEXEC | SFD_NONBLOCK);
    CHILD_CHECK(IsOk(created));
    const Fd sfd(*created);
    CHILD_CHECK(has_cloexec(sfd.get()));
    signalfd_siginfo info{};
    CHILD_CHECK(::read(sfd.get(), &info, sizeof info) < 0 && errno == EAGAIN);
    CHILD_CHECK(::kill(::getpid(), SIGUSR2) == 0);
    CHILD_CHECK(::read(sfd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info));
    CHILD_CHECK(static_cast<int>(info.ssi_signo) == SIGUSR2);
    const auto updated = sys_.signalfd(sfd.get(), usr2, 0);
    CHILD_CHECK(IsOk(updated));
    CHILD_CHECK(*updated == sfd.get());
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
  sigset_t mask;
  sigemptyset(&mask);
  Pipe p = make_pipe();
  EXPECT_TRUE(FailsWith(sys_.signalfd(-1, mask, 0x7fff0000), EINVAL, "signalfd"));
  EXPECT_TRUE(FailsWith(sys_.signalfd(kBadFd, mask, 0), EBADF, "signalfd"));
  EXPECT_TRUE(FailsWith(sys_.signalfd(p.read.get(), mask, 0), EINVAL, "signalfd"));
}

// RealSyscalls must hand EINTR back (it never retries); retry_on_eintr is what retries. The
// handler has no SA_RESTART, and on the third tick it makes the data arrive.
int g_data_write_end = -1;
void tick_then_feed(int) {
  g_signals_seen = g_signals_seen + 1;
  if (g_signals_seen == 3) {
    const char byte = 'x';
    static_cast<void>(::write(g_data_write_end, &byte, 1));
  }
}

TEST_F(RealSyscallsSignals, ReadReturnsEintrAndRetryOnEintrCompletesOnceDataArrives) {
  const int status = run_in_child([this] {
    struct sigaction act {};
    act.sa_handler = tick_then_feed;
    act.sa_flags = 0;
    sigemptyset(&act.sa_mask);
    CHILD_CHECK(::sigaction(SIGALRM, &act, nullptr) == 0);
    Pipe p = make_pipe();
    g_data_write_end = p.write.get();
    const itimerval every_20ms{{0, 20'000}, {0, 20'000}};
    CHILD_CHECK(::setitimer(ITIMER_REAL, &every_20ms, nullptr) == 0);

    char byte = 0;
    CHILD_CHECK(FailsWith(sys_.read(p.read.get(), &byte, 1), EINTR, "read"));
    CHILD_CHECK(g_signals_seen >= 1 && g_signals_seen < 3);  // interrupted before any data

    int attempts = 0;
    int interrupted = 0;
    const auto got = retry_on_eintr([&] {
      ++attempts;
      auto result = sys_.read(p.read.get(), &byte, 1);
      if (!result && result.error().code == EINTR) ++interrupted;
      return result;
    });
    const itimerval off{};
    CHILD_CHECK(::setitimer(ITIMER_REAL, &off, nullptr) == 0);
    CHILD_CHECK(IsOk(got));
    CHILD_CHECK(*got == 1);
    CHILD_CHECK(byte == 'x');
    CHILD_CHECK(interrupted >= 1);
    CHILD_CHECK(attempts == interrupted + 1);
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

// ==== Polling =============================================================================

TEST_F(RealSyscallsPolling, PollReportsReadinessTimeoutAndNval) {
  Pipe p = make_pipe();
  pollfd entry{p.read.get(), POLLIN, 0};
  EXPECT_EQ(unwrap(sys_.poll(&entry, 1, 0)), 0);
  ASSERT_EQ(::write(p.write.get(), "x", 1), 1);
  EXPECT_EQ(unwrap(sys_.poll(&entry, 1, 0)), 1);
  EXPECT_NE(entry.revents & POLLIN, 0);
  pollfd closed{kBadFd, POLLIN, 0};
  EXPECT_EQ(unwrap(sys_.poll(&closed, 1, 0)), 1);
  EXPECT_NE(closed.revents & POLLNVAL, 0);
}

TEST_F(RealSyscallsPolling, PollReportsEinvalForMoreFdsThanRlimitNofile) {
  const int status = run_in_child([this] {
    const rlimit small{64, 64};
    CHILD_CHECK(::setrlimit(RLIMIT_NOFILE, &small) == 0);
    std::vector<pollfd> entries(65, pollfd{-1, 0, 0});
    CHILD_CHECK(FailsWith(sys_.poll(entries.data(), entries.size(), 0), EINVAL, "poll"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsPolling, EpollCreate1SetsCloexecAndReportsEinval) {
  const auto epfd = sys_.epoll_create1(EPOLL_CLOEXEC);
  ASSERT_TRUE(IsOk(epfd));
  const Fd owned(*epfd);
  EXPECT_TRUE(has_cloexec(*epfd));
  EXPECT_TRUE(FailsWith(sys_.epoll_create1(0x7fff), EINVAL, "epoll_create1"));
}

TEST_F(RealSyscallsPolling, EpollCtlRegistersAndReportsEexistEnoentEpermEbadf) {
  const Fd epfd(::epoll_create1(EPOLL_CLOEXEC));
  Pipe p = make_pipe();
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 42;
  ASSERT_TRUE(IsOk(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_ADD, p.read.get(), &event)));
  EXPECT_TRUE(FailsWith(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_ADD, p.read.get(), &event), EEXIST,
                        "epoll_ctl"));
  EXPECT_TRUE(FailsWith(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_MOD, p.write.get(), &event), ENOENT,
                        "epoll_ctl"));
  write_file(path("file"), "");
  const Fd file(::open(path("file").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(
      FailsWith(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_ADD, file.get(), &event), EPERM, "epoll_ctl"));
  EXPECT_TRUE(
      FailsWith(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_ADD, kBadFd, &event), EBADF, "epoll_ctl"));
  ASSERT_TRUE(IsOk(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_DEL, p.read.get(), nullptr)));
  EXPECT_TRUE(FailsWith(sys_.epoll_ctl(epfd.get(), EPOLL_CTL_DEL, p.read.get(), nullptr), ENOENT,
                        "epoll_ctl"));
}

TEST_F(RealSyscallsPolling, EpollWaitDeliversRegisteredDataAndReportsEinvalEbadf) {
  const Fd epfd(::epoll_create1(EPOLL_CLOEXEC));
  Pipe p = make_pipe();
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 42;
  ASSERT_EQ(::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, p.read.get(), &event), 0);
  epoll_event events[4] = {};
  EXPECT_EQ(unwrap(sys_.epoll_wait(epfd.get(), events, 4, 0)), 0);
  ASSERT_EQ(::write(p.write.get(), "x", 1), 1);
  ASSERT_EQ(unwrap(sys_.epoll_wait(epfd.get(), events, 4, 1000)), 1);
  // epoll_event is packed: its u64 sits 4 bytes in, so it is read by value, not bound to
  // EXPECT_EQ's reference (a misaligned reference, which UBSan rejects).
  const std::uint64_t data = events[0].data.u64;
  EXPECT_EQ(data, 42u);
  EXPECT_NE(events[0].events & EPOLLIN, 0u);
  EXPECT_TRUE(FailsWith(sys_.epoll_wait(epfd.get(), events, 0, 0), EINVAL, "epoll_wait"));
  EXPECT_TRUE(FailsWith(sys_.epoll_wait(p.read.get(), events, 4, 0), EINVAL, "epoll_wait"));
  EXPECT_TRUE(FailsWith(sys_.epoll_wait(kBadFd, events, 4, 0), EBADF, "epoll_wait"));
}

TEST_F(RealSyscallsPolling, EventfdSumsWritesAndReportsEagainEinval) {
  const auto created = sys_.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_TRUE(IsOk(created));
  const Fd efd(*created);
  EXPECT_TRUE(has_cloexec(efd.get()));
  std::uint64_t value = 0;
  EXPECT_TRUE(FailsWith(sys_.read(efd.get(), &value, sizeof value), EAGAIN, "read"));
  const std::uint64_t three = 3;
  ASSERT_EQ(::write(efd.get(), &three, sizeof three), 8);
  ASSERT_EQ(::write(efd.get(), &three, sizeof three), 8);
  ASSERT_EQ(::read(efd.get(), &value, sizeof value), 8);
  EXPECT_EQ(value, 6u);
  const auto seeded = sys_.eventfd(5, EFD_CLOEXEC);
  ASSERT_TRUE(IsOk(seeded));
  const Fd seeded_fd(*seeded);
  ASSERT_EQ(::read(seeded_fd.get(), &value, sizeof value), 8);
  EXPECT_EQ(value, 5u);
  EXPECT_TRUE(FailsWith(sys_.eventfd(0, 0x7fff0000), EINVAL, "eventfd"));
}

// ==== Sockets =============================================================================

TEST_F(RealSyscallsSockets, StreamSocketConnectsAcceptsAndCarriesBytesOnTempPath) {
  const UnixAddress address = path_address(path("stream.sock"));
  const auto created = sys_.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(IsOk(created));
  const Fd listener(*created);
  EXPECT_TRUE(has_cloexec(listener.get()));
  ASSERT_TRUE(IsOk(sys_.bind(listener.get(), address.get(), address.len)));
  ASSERT_TRUE(IsOk(sys_.listen(listener.get(), 4)));
  UnixAddress bound;
  bound.len = sizeof bound.addr;
  ASSERT_TRUE(
      IsOk(sys_.getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound.addr), &bound.len)));
  EXPECT_TRUE(same_address(address, bound.addr, bound.len));

  const Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(IsOk(sys_.connect(client.get(), address.get(), address.len)));
  sockaddr_un peer{};
  socklen_t peer_len = sizeof peer;
  const auto accepted = sys_.accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &peer_len,
                                     SOCK_CLOEXEC | SOCK_NONBLOCK);
  ASSERT_TRUE(IsOk(accepted));
  Fd server(*accepted);
  EXPECT_TRUE(has_cloexec(server.get()));
  EXPECT_NE(::fcntl(server.get(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(peer.sun_family, AF_UNIX);

  EXPECT_EQ(unwrap(sys_.sendto(client.get(), "ping", 4, 0, nullptr, 0)), 4u);
  char buf[16] = {};
  const auto got = sys_.recvfrom(server.get(), buf, sizeof buf, 0, nullptr, nullptr);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(std::string_view(buf, *got), "ping");
  EXPECT_TRUE(FailsWith(sys_.recvfrom(server.get(), buf, sizeof buf, 0, nullptr, nullptr), EAGAIN,
                        "recvfrom"));
  server.reset();
  EXPECT_TRUE(
      FailsWith(sys_.sendto(client.get(), "x", 1, MSG_NOSIGNAL, nullptr, 0), EPIPE, "sendto"));
}

TEST_F(RealSyscallsSockets, StreamErrorsAreReported) {
  const UnixAddress address = path_address(path("stream.sock"));
  const Fd bound(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(bound.get(), address.get(), address.len), 0);
  const Fd other(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  Pipe p = make_pipe();

  EXPECT_TRUE(FailsWith(sys_.socket(9999, SOCK_STREAM, 0), EAFNOSUPPORT, "socket"));
  EXPECT_TRUE(FailsWith(sys_.socket(AF_UNIX, 9999, 0), EINVAL, "socket"));
  EXPECT_TRUE(FailsWith(sys_.bind(other.get(), address.get(), address.len), EADDRINUSE, "bind"));
  EXPECT_TRUE(FailsWith(sys_.bind(p.read.get(), address.get(), address.len), ENOTSOCK, "bind"));
  // Bound but not listening: nobody accepts.
  EXPECT_TRUE(
      FailsWith(sys_.connect(other.get(), address.get(), address.len), ECONNREFUSED, "connect"));
  const UnixAddress missing = path_address(path("missing.sock"));
  EXPECT_TRUE(FailsWith(sys_.connect(other.get(), missing.get(), missing.len), ENOENT, "connect"));
  EXPECT_TRUE(
      FailsWith(sys_.connect(p.read.get(), address.get(), address.len), ENOTSOCK, "connect"));
  EXPECT_TRUE(FailsWith(sys_.accept4(bound.get(), nullptr, nullptr, 0), EINVAL, "accept4"));
  EXPECT_TRUE(FailsWith(sys_.accept4(p.read.get(), nullptr, nullptr, 0), ENOTSOCK, "accept4"));
  EXPECT_TRUE(FailsWith(sys_.listen(p.read.get(), 1), ENOTSOCK, "listen"));
  EXPECT_TRUE(
      FailsWith(sys_.sendto(other.get(), "x", 1, MSG_NOSIGNAL, nullptr, 0), ENOTCONN, "sendto"));

  ASSERT_EQ(::listen(bound.get(), 1), 0);
  ASSERT_EQ(::fcntl(bound.get(), F_SETFL, O_NONBLOCK), 0);
  EXPECT_TRUE(FailsWith(sys_.accept4(bound.get(), nullptr, nullptr, 0), EAGAIN, "accept4"));
}

TEST_F(RealSyscallsSockets, DatagramSocketReportsSenderOnAbstractNames) {
  const UnixAddress server_address = abstract_address("server");
  const UnixAddress client_address = abstract_address("client");
  const Fd server(unwrap(sys_.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)));
  const Fd client(unwrap(sys_.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)));
  ASSERT_TRUE(IsOk(sys_.bind(server.get(), server_address.get(), server_address.len)));
  ASSERT_TRUE(IsOk(sys_.bind(client.get(), client_address.get(), client_address.len)));

  UnixAddress name;
  name.len = sizeof name.addr;
  ASSERT_TRUE(
      IsOk(sys_.getsockname(server.get(), reinterpret_cast<sockaddr*>(&name.addr), &name.len)));
  EXPECT_TRUE(same_address(server_address, name.addr, name.len));

  const auto sent =
      sys_.sendto(client.get(), "dgram", 5, 0, server_address.get(), server_address.len);
  ASSERT_TRUE(IsOk(sent));
  EXPECT_EQ(*sent, 5u);
  char buf[16] = {};
  UnixAddress from;
  from.len = sizeof from.addr;
  const auto got = sys_.recvfrom(server.get(), buf, sizeof buf, 0,
                                 reinterpret_cast<sockaddr*>(&from.addr), &from.len);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(std::string_view(buf, *got), "dgram");
  EXPECT_TRUE(same_address(client_address, from.addr, from.len));

  EXPECT_TRUE(
      FailsWith(sys_.recvfrom(server.get(), buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr),
                EAGAIN, "recvfrom"));
  EXPECT_TRUE(FailsWith(sys_.listen(server.get(), 1), EOPNOTSUPP, "listen"));
  const UnixAddress nobody_there = abstract_address("unbound");
  EXPECT_TRUE(FailsWith(sys_.sendto(client.get(), "x", 1, 0, nobody_there.get(), nobody_there.len),
                        ECONNREFUSED, "sendto"));
  const UnixAddress missing = path_address(path("missing.sock"));
  EXPECT_TRUE(FailsWith(sys_.sendto(client.get(), "x", 1, 0, missing.get(), missing.len), ENOENT,
                        "sendto"));
  Pipe p = make_pipe();
  EXPECT_TRUE(FailsWith(sys_.recvfrom(p.read.get(), buf, sizeof buf, 0, nullptr, nullptr), ENOTSOCK,
                        "recvfrom"));
  EXPECT_TRUE(FailsWith(sys_.sendto(kBadFd, "x", 1, 0, nullptr, 0), EBADF, "sendto"));
}

TEST_F(RealSyscallsSockets, RecvmsgDeliversTheSendersCredentialsAndItsErrors) {
  const UnixAddress server_address = abstract_address("creds");
  const Fd server(unwrap(sys_.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)));
  const Fd client(unwrap(sys_.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)));
  ASSERT_TRUE(IsOk(sys_.bind(server.get(), server_address.get(), server_address.len)));
  const int on = 1;
  ASSERT_TRUE(IsOk(sys_.setsockopt(server.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on)));
  ASSERT_EQ(::sendto(client.get(), "hello", 5, 0, server_address.get(), server_address.len), 5);

  char buf[3] = {};
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const auto got = sys_.recvmsg(server.get(), &msg, 0);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(*got, 3u);
  EXPECT_EQ(std::string_view(buf, 3), "hel");
  EXPECT_EQ(msg.msg_flags, MSG_TRUNC);
  const cmsghdr* header = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(header->cmsg_level, SOL_SOCKET);
  EXPECT_EQ(header->cmsg_type, SCM_CREDENTIALS);
  ucred credentials{};
  std::memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
  EXPECT_EQ(credentials.pid, ::getpid());
  EXPECT_EQ(credentials.uid, ::getuid());
  EXPECT_EQ(credentials.gid, ::getgid());

  EXPECT_TRUE(FailsWith(sys_.recvmsg(server.get(), &msg, MSG_DONTWAIT), EAGAIN, "recvmsg"));
  EXPECT_TRUE(FailsWith(sys_.recvmsg(server.get(), nullptr, MSG_DONTWAIT), EFAULT, "recvmsg"));
  Pipe p = make_pipe();
  EXPECT_TRUE(FailsWith(sys_.recvmsg(p.read.get(), &msg, 0), ENOTSOCK, "recvmsg"));
  EXPECT_TRUE(FailsWith(sys_.recvmsg(kBadFd, &msg, 0), EBADF, "recvmsg"));
}

TEST_F(RealSyscallsSockets, SendmsgPassesADescriptorAndReportsItsErrors) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair), 0);
  const Fd a(pair[0]);
  const Fd b(pair[1]);
  Pipe p = make_pipe();
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* header = CMSG_FIRSTHDR(&msg);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  const int sent_fd = p.write.get();
  std::memcpy(CMSG_DATA(header), &sent_fd, sizeof sent_fd);
  const auto sent = sys_.sendmsg(a.get(), &msg, 0);
  ASSERT_TRUE(IsOk(sent));
  EXPECT_EQ(*sent, 1u);

  char got = 0;
  iovec in{&got, 1};
  alignas(cmsghdr) unsigned char received[CMSG_SPACE(sizeof(int))] = {};
  msghdr reply{};
  reply.msg_iov = &in;
  reply.msg_iovlen = 1;
  reply.msg_control = received;
  reply.msg_controllen = sizeof received;
  ASSERT_EQ(::recvmsg(b.get(), &reply, MSG_CMSG_CLOEXEC), 1);
  const cmsghdr* arrived = CMSG_FIRSTHDR(&reply);
  ASSERT_NE(arrived, nullptr);
  ASSERT_EQ(arrived->cmsg_type, SCM_RIGHTS);
  int new_fd = -1;
  std::memcpy(&new_fd, CMSG_DATA(arrived), sizeof new_fd);
  const Fd copy(new_fd);
  ASSERT_EQ(::write(copy.get(), "p", 1), 1) << "the same pipe, under another number";
  char piped = 0;
  ASSERT_EQ(::read(p.read.get(), &piped, 1), 1);
  EXPECT_EQ(piped, 'p');

  const int bad = kBadFd;
  std::memcpy(CMSG_DATA(header), &bad, sizeof bad);
  EXPECT_TRUE(FailsWith(sys_.sendmsg(a.get(), &msg, 0), EBADF, "sendmsg"));
  EXPECT_TRUE(FailsWith(sys_.sendmsg(a.get(), nullptr, 0), EFAULT, "sendmsg"));
  EXPECT_TRUE(FailsWith(sys_.sendmsg(p.read.get(), &msg, 0), ENOTSOCK, "sendmsg"));
  EXPECT_TRUE(FailsWith(sys_.sendmsg(kBadFd, &msg, 0), EBADF, "sendmsg"));
}

TEST_F(RealSyscallsSockets, GetpeernameNamesThePeerOrSaysEnotconn) {
  const UnixAddress address = abstract_address("peer");
  const Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(listener.get(), address.get(), address.len), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  const Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UnixAddress peer;
  peer.len = sizeof peer.addr;
  EXPECT_TRUE(
      FailsWith(sys_.getpeername(client.get(), reinterpret_cast<sockaddr*>(&peer.addr), &peer.len),
                ENOTCONN, "getpeername"));
  ASSERT_EQ(::connect(client.get(), address.get(), address.len), 0);
  peer.len = sizeof peer.addr;
  ASSERT_TRUE(
      IsOk(sys_.getpeername(client.get(), reinterpret_cast<sockaddr*>(&peer.addr), &peer.len)));
  EXPECT_TRUE(same_address(address, peer.addr, peer.len));
  Pipe p = make_pipe();
  EXPECT_TRUE(
      FailsWith(sys_.getpeername(p.read.get(), reinterpret_cast<sockaddr*>(&peer.addr), &peer.len),
                ENOTSOCK, "getpeername"));
}

TEST_F(RealSyscallsSockets, SockoptsRoundTripAndReportSoType) {
  const Fd stream(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const Fd dgram(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  ASSERT_TRUE(IsOk(sys_.setsockopt(stream.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on)));
  int value = 0;
  socklen_t len = sizeof value;
  ASSERT_TRUE(IsOk(sys_.getsockopt(stream.get(), SOL_SOCKET, SO_PASSCRED, &value, &len)));
  EXPECT_EQ(value, 1);
  len = sizeof value;
  ASSERT_TRUE(IsOk(sys_.getsockopt(stream.get(), SOL_SOCKET, SO_TYPE, &value, &len)));
  EXPECT_EQ(value, SOCK_STREAM);
  len = sizeof value;
  ASSERT_TRUE(IsOk(sys_.getsockopt(dgram.get(), SOL_SOCKET, SO_TYPE, &value, &len)));
  EXPECT_EQ(value, SOCK_DGRAM);
}

TEST_F(RealSyscallsSockets, SockoptsReportEnotsockEnoprotooptEinval) {
  const Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  Pipe p = make_pipe();
  const int on = 1;
  int value = 0;
  socklen_t len = sizeof value;
  EXPECT_TRUE(FailsWith(sys_.setsockopt(p.read.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on),
                        ENOTSOCK, "setsockopt"));
  EXPECT_TRUE(FailsWith(sys_.setsockopt(sock.get(), SOL_SOCKET, 9999, &on, sizeof on), ENOPROTOOPT,
                        "setsockopt"));
  EXPECT_TRUE(FailsWith(sys_.setsockopt(sock.get(), SOL_SOCKET, SO_PASSCRED, &on, 1), EINVAL,
                        "setsockopt"));
  EXPECT_TRUE(FailsWith(sys_.getsockopt(p.read.get(), SOL_SOCKET, SO_TYPE, &value, &len), ENOTSOCK,
                        "getsockopt"));
  len = sizeof value;
  EXPECT_TRUE(FailsWith(sys_.getsockopt(sock.get(), SOL_SOCKET, 9999, &value, &len), ENOPROTOOPT,
                        "getsockopt"));
}

TEST_F(RealSyscallsSockets, GetsocknameReportsEnotsockEbadf) {
  Pipe p = make_pipe();
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  EXPECT_TRUE(FailsWith(sys_.getsockname(p.read.get(), reinterpret_cast<sockaddr*>(&addr), &len),
                        ENOTSOCK, "getsockname"));
  len = sizeof addr;
  EXPECT_TRUE(FailsWith(sys_.getsockname(kBadFd, reinterpret_cast<sockaddr*>(&addr), &len), EBADF,
                        "getsockname"));
}

TEST_F(RealSyscallsSockets, ShutdownWriteGivesThePeerEofAfterTheBytes) {
  const UnixAddress address = abstract_address("shutdown");
  const Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(listener.get(), address.get(), address.len), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  const Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_EQ(::connect(client.get(), address.get(), address.len), 0);
  const Fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  ASSERT_EQ(::write(client.get(), "ab", 2), 2);
  ASSERT_TRUE(IsOk(sys_.shutdown(client.get(), SHUT_WR)));
  char buf[8];
  EXPECT_EQ(unwrap(sys_.read(server.get(), buf, sizeof buf)), 2u);
  EXPECT_EQ(unwrap(sys_.read(server.get(), buf, sizeof buf)), 0u) << "EOF after the bytes";
  EXPECT_TRUE(
      FailsWith(sys_.sendto(client.get(), "x", 1, MSG_NOSIGNAL, nullptr, 0), EPIPE, "sendto"));
  // The other direction still carries bytes.
  ASSERT_EQ(::write(server.get(), "cd", 2), 2);
  EXPECT_EQ(unwrap(sys_.read(client.get(), buf, sizeof buf)), 2u);
}

TEST_F(RealSyscallsSockets, ShutdownReportsEnotsockEbadfEinvalEnotconn) {
  Pipe p = make_pipe();
  EXPECT_TRUE(FailsWith(sys_.shutdown(p.write.get(), SHUT_WR), ENOTSOCK, "shutdown"));
  EXPECT_TRUE(FailsWith(sys_.shutdown(kBadFd, SHUT_WR), EBADF, "shutdown"));
  const Fd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(FailsWith(sys_.shutdown(tcp.get(), 7), EINVAL, "shutdown"));
  EXPECT_TRUE(FailsWith(sys_.shutdown(tcp.get(), SHUT_WR), ENOTCONN, "shutdown"));
  // An unconnected AF_UNIX socket takes it: unix_shutdown only records the flags.
  const Fd unix_socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(IsOk(sys_.shutdown(unix_socket.get(), SHUT_WR)));
}

TEST_F(RealSyscallsSockets, SocketpairConnectsTwoUnixSockets) {
  auto pair = sys_.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(IsOk(pair));
  const Fd first(pair->first);
  const Fd second(pair->second);
  EXPECT_EQ(::fcntl(first.get(), F_GETFD), FD_CLOEXEC);
  ASSERT_EQ(::write(first.get(), "hi", 2), 2);
  char buf[4] = {};
  ASSERT_EQ(::read(second.get(), buf, sizeof buf), 2);
  EXPECT_STREQ(buf, "hi");
}

TEST_F(RealSyscallsSockets, SocketpairReportsEopnotsuppEafnosupportEinval) {
  EXPECT_TRUE(FailsWith(sys_.socketpair(AF_INET, SOCK_STREAM, 0), EOPNOTSUPP, "socketpair"));
  EXPECT_TRUE(FailsWith(sys_.socketpair(99, SOCK_STREAM, 0), EAFNOSUPPORT, "socketpair"));
  EXPECT_TRUE(FailsWith(sys_.socketpair(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL, "socketpair"));
}

// ==== Terminals ===========================================================================

class RealSyscallsTerminals : public RealSyscallsTest {};

TEST_F(RealSyscallsTerminals, IoctlNamesAndUnlocksAPtyAndReadsItsTermios) {
  const Fd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (master.get() < 0) GTEST_SKIP() << "no /dev/ptmx here";
  unsigned index = 99999;
  ASSERT_TRUE(IsOk(sys_.ioctl(master.get(), TIOCGPTN, &index)));
  EXPECT_LT(index, 99999U);
  int unlock = 0;
  ASSERT_TRUE(IsOk(sys_.ioctl(master.get(), TIOCSPTLCK, &unlock)));
  auto peer = sys_.ioctl(
      master.get(), TIOCGPTPEER,
      reinterpret_cast<void*>(static_cast<std::uintptr_t>(O_RDWR | O_NOCTTY | O_CLOEXEC)));
  ASSERT_TRUE(IsOk(peer));
  const Fd slave(*peer);
  termios attributes{};
  ASSERT_TRUE(IsOk(sys_.ioctl(slave.get(), TCGETS, &attributes)));
  EXPECT_NE(attributes.c_lflag & ICANON, 0U);
}

TEST_F(RealSyscallsTerminals, IoctlReportsEnottyEbadf) {
  Pipe p = make_pipe();
  termios attributes{};
  EXPECT_TRUE(FailsWith(sys_.ioctl(p.read.get(), TCGETS, &attributes), ENOTTY, "ioctl"));
  EXPECT_TRUE(FailsWith(sys_.ioctl(kBadFd, TCGETS, &attributes), EBADF, "ioctl"));
}

// ==== Limits and time =====================================================================

TEST_F(RealSyscallsLimits, GetrlimitMatchesKernelAndReportsEinval) {
  rlimit expected{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &expected), 0);
  const auto got = sys_.getrlimit(RLIMIT_NOFILE);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->rlim_cur, expected.rlim_cur);
  EXPECT_EQ(got->rlim_max, expected.rlim_max);
  EXPECT_TRUE(FailsWith(sys_.getrlimit(9999), EINVAL, "getrlimit"));
}

TEST_F(RealSyscallsLimits, SetrlimitLowersLimitsAndReportsEinvalEperm) {
  const int status = run_in_child([this] {
    CHILD_CHECK(IsOk(sys_.setrlimit(RLIMIT_NOFILE, rlimit{64, 128})));
    const auto got = unwrap(sys_.getrlimit(RLIMIT_NOFILE));
    CHILD_CHECK(got.rlim_cur == 64 && got.rlim_max == 128);
    CHILD_CHECK(FailsWith(sys_.setrlimit(RLIMIT_NOFILE, rlimit{129, 128}), EINVAL, "setrlimit"));
    CHILD_CHECK(FailsWith(sys_.setrlimit(9999, rlimit{1, 1}), EINVAL, "setrlimit"));
    // Raising a hard limit takes CAP_SYS_RESOURCE, which nobody lacks.
    become_unprivileged();
    CHILD_CHECK(FailsWith(sys_.setrlimit(RLIMIT_NOFILE, rlimit{64, 256}), EPERM, "setrlimit"));
    return 0;
  });
  EXPECT_TRUE(ExitedWith(status, 0));
}

TEST_F(RealSyscallsLimits, ClockGettimeMonotonicNeverGoesBackAndBadClockIsEinval) {
  auto previous = unwrap(sys_.clock_gettime(CLOCK_MONOTONIC));
  for (int i = 0; i < 1000; ++i) {
    const auto now = unwrap(sys_.clock_gettime(CLOCK_MONOTONIC));
    ASSERT_TRUE(now.tv_sec > previous.tv_sec ||
                (now.tv_sec == previous.tv_sec && now.tv_nsec >= previous.tv_nsec));
    ASSERT_LT(now.tv_nsec, 1'000'000'000);
    previous = now;
  }
  const auto wall = unwrap(sys_.clock_gettime(CLOCK_REALTIME));
  EXPECT_LE(std::abs(wall.tv_sec - ::time(nullptr)), 1);
  EXPECT_TRUE(FailsWith(sys_.clock_gettime(9999), EINVAL, "clock_gettime"));
}

}  // namespace
}  // namespace daemonkit::sys
