#include "daemonkit/sys/real_syscalls.h"
#include "daemonkit/sys/hot_path.h"

#include <dirent.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define DAEMONKIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DAEMONKIT_ASAN 1
#endif
#endif
#if DAEMONKIT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace daemonkit::sys {
namespace {

// Where the buffers of the growing look-ups start and where they give up. A group with many
// members can need far more than sysconf suggests, so ERANGE doubles the buffer up to a bound
// that no sane database reaches; past it ERANGE is reported rather than looping forever.
constexpr std::size_t kInitialLookupBuffer = 1024;
constexpr std::size_t kMaxLookupBuffer = std::size_t{64} << 20;

// The error numbers getpw*_r/getgr*_r return for "no such entry" besides 0, which their man
// page lists because NSS back ends disagree on how to say it.
bool means_not_found(int code) {
  return code == 0 || code == ENOENT || code == ESRCH || code == EBADF || code == EPERM;
}

// Runs one reentrant database look-up, growing its buffer on ERANGE. `call` fills `entry`
// through the _r function and returns its error number; `convert` copies the entry out before
// the buffer goes away.
template <typename Entry, typename Value, typename Call, typename Convert>
Result<std::optional<Value>> look_up(const char* name, Call call, Convert convert) {
  std::vector<char> buffer(kInitialLookupBuffer);
  for (;;) {
    Entry entry{};
    Entry* found = nullptr;
    const int code = call(&entry, buffer.data(), buffer.size(), &found);
    if (found != nullptr) return std::optional<Value>(convert(*found));
    if (code == ERANGE && buffer.size() < kMaxLookupBuffer) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (means_not_found(code)) return std::optional<Value>();
    return fail(code, name);
  }
}

Passwd to_passwd(const struct passwd& entry) {
  return Passwd{entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir,
                entry.pw_shell != nullptr ? entry.pw_shell : ""};
}

Group to_group(const struct group& entry) {
  Group group{entry.gr_name, entry.gr_gid, {}};
  for (char** member = entry.gr_mem; member != nullptr && *member != nullptr; ++member) {
    group.members.emplace_back(*member);
  }
  return group;
}

// The vfork child runs on the calling thread's own stack, below the frames that are live while
// the thread sleeps in clone (vfork_clone's, and those clone pushes itself), as a vfork child
// runs on its parent's: that memory is already mapped and faulted in, so a spawn costs no
// mmap, mprotect or munmap, and no fault on a fresh page (each a world switch on a virtual
// machine). It is safe because nothing else uses that part of the stack meanwhile: the thread
// is suspended with every signal blocked until the child execs or exits, and then the child's
// frames are dead. A child that ran too deep meets the thread's own guard page, as the thread
// would. kBelowCallerFrame leaves room for clone's frames; kVforkStackBytes is how much the child
// is said to use, for AddressSanitizer's bounds: it runs ordinary C++ up to exec.
constexpr std::size_t kBelowCallerFrame = std::size_t{4} << 10;
constexpr std::size_t kVforkStackBytes = std::size_t{256} << 10;

// What the vfork child starts from. Under AddressSanitizer it also carries the stack switch:
// ASan keeps the current stack's bounds in the thread's state, which the child shares with its
// sleeping parent, and warns of "false positives" at every noreturn call made on a stack it
// does not know. The child tells it of its own stack and leaves the caller's bounds here, for
// the caller to switch back once it wakes.
struct VforkStart {
  ChildMain* body = nullptr;
  const void* stack = nullptr;
  std::size_t stack_size = 0;
  const void* caller_stack = nullptr;
  std::size_t caller_stack_size = 0;
  void* caller_fake_stack = nullptr;  // ASan's use-after-return frames of the caller
};

// Set in a vfork child (run_child_main) and nowhere else. The child runs on the thread pointer of
// the parent thread asleep in vfork, so this is that thread's flag, which no other thread reads;
// the parent puts its own value back when it wakes. Initial-exec: static TLS, so reading it never
// allocates, as a lazily allocated block of a dynamic TLS model could.
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_vfork_child = false;

// The credential calls, as the calling process needs them. glibc's set*id and setgroups
// wrappers, in a process that has ever had a second thread, make the change in every thread
// (POSIX ids are per process; Linux's are per thread): they take a lock of glibc's, mark each
// thread on its list and signal it to repeat the call. In a vfork child that list and lock are
// the parent's, shared with its running threads: the child would write their state, signal
// them by pid (the kernel refuses: they are in another thread group) and wait on any that is
// exiting. The child is one thread in a process of its own, so the bare system call is the
// whole change there, and touches nothing of the parent's.
#if defined(SYS_setresuid32)  // 32-bit ABIs, where the unsuffixed calls take 16-bit ids
constexpr long kSysSetresuid = SYS_setresuid32;
constexpr long kSysSetresgid = SYS_setresgid32;
constexpr long kSysSetuid = SYS_setuid32;
constexpr long kSysSetgid = SYS_setgid32;
constexpr long kSysSetgroups = SYS_setgroups32;
#else
constexpr long kSysSetresuid = SYS_setresuid;
constexpr long kSysSetresgid = SYS_setresgid;
constexpr long kSysSetuid = SYS_setuid;
constexpr long kSysSetgid = SYS_setgid;
constexpr long kSysSetgroups = SYS_setgroups;
#endif

template <typename... Args, typename... Passed>
int set_ids(int (*wrapper)(Args...), long number, Passed... args) {
  if (t_in_vfork_child) return static_cast<int>(::syscall(number, args...));
  return wrapper(args...);
}

int run_child_main(void* arg) noexcept {
  t_in_vfork_child = true;
  auto* start = static_cast<VforkStart*>(arg);
#if DAEMONKIT_ASAN
  __sanitizer_start_switch_fiber(&start->caller_fake_stack, start->stack, start->stack_size);
  __sanitizer_finish_switch_fiber(nullptr, &start->caller_stack, &start->caller_stack_size);
#endif
  return (*start->body)();
}

void back_on_caller_stack([[maybe_unused]] const VforkStart& start) {
#if DAEMONKIT_ASAN
  if (start.caller_stack == nullptr) return;  // the child never ran
  __sanitizer_start_switch_fiber(nullptr, start.caller_stack, start.caller_stack_size);
  __sanitizer_finish_switch_fiber(start.caller_fake_stack, nullptr, nullptr);
#endif
}

// clone(CLONE_VM | CLONE_VFORK) running `body` below the caller's frames; with `pidfd` non-null,
// also CLONE_PIDFD, the kernel storing the pidfd there (a kernel older than 5.2 ignores the flag
// and leaves it as it was).
__attribute__((noinline)) Result<pid_t> vfork_clone(ChildMain& body, int* pidfd) {
  const char* name = pidfd != nullptr ? "vfork_with_pidfd" : "vfork";
  // 16-byte aligned, as both x86-64 and AArch64 want a stack pointer at a call.
  const auto frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  char* const stack_top =
      reinterpret_cast<char*>((frame - kBelowCallerFrame) & ~std::uintptr_t{15});
  char* const stack = stack_top - kVforkStackBytes;
  // Every signal blocked across the clone, so the child inherits the full mask: a handler of
  // ours would otherwise run in the child, on the memory we share, while we are suspended.
  // (pthread_sigmask leaves glibc's two internal signals unblocked. They are sent to one thread
  // by its thread id, never to the child's, and their handlers act only on a sender of the
  // receiving process's pid.)
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  // Cancellation off across the clone: the child shares this thread's cancellation state, and
  // a request pending for this thread would otherwise be acted on by the child at its first
  // cancellation point (write, close), unwinding this thread's frames in the child.
  int cancel_state = PTHREAD_CANCEL_ENABLE;
  ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
  const bool in_vfork_child = t_in_vfork_child;  // a vfork child may make one in turn
#if DAEMONKIT_ASAN
  // Clean, so the child's first check of its own stack (ASan's, at a noreturn call) does not
  // find a redzone left there by an earlier frame of this thread.
  __asan_unpoison_memory_region(stack, kVforkStackBytes);
#endif
  VforkStart start{&body, stack, kVforkStackBytes};
  int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  if (pidfd != nullptr) flags |= CLONE_PIDFD;
  const pid_t pid = ::clone(run_child_main, stack_top, flags, &start, pidfd);
  const int error = errno;
  back_on_caller_stack(start);
  t_in_vfork_child = in_vfork_child;
  ::pthread_setcancelstate(cancel_state, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
#if DAEMONKIT_ASAN
  // The child's frames never returned, so their redzones are still marked in the shadow of
  // this thread's stack, where the caller's next calls will put their own frames.
  __asan_unpoison_memory_region(stack, kVforkStackBytes);
#endif
  if (pid < 0) return fail(error, name);
  return pid;
}

}  // namespace

// ---- Processes ---------------------------------------------------------------------------

Result<pid_t> RealSyscalls::fork() {
  const pid_t pid = ::fork();
  if (pid < 0) return fail(errno, "fork");
  return pid;
}

Result<pid_t> RealSyscalls::vfork(ChildMain body) { return vfork_clone(body, nullptr); }

Result<ChildWithPidFd> RealSyscalls::vfork_with_pidfd(ChildMain body) {
  ChildWithPidFd child;
  auto pid = vfork_clone(body, &child.pidfd);
  if (!pid) return fail(pid.error());
  child.pid = *pid;
  return child;
}

Result<pid_t> RealSyscalls::setsid() {
  const pid_t sid = ::setsid();
  if (sid < 0) return fail(errno, "setsid");
  return sid;
}

pid_t RealSyscalls::getpid() { return ::getpid(); }

pid_t RealSyscalls::getppid() { return ::getppid(); }

Result<pid_t> RealSyscalls::getsid(pid_t pid) {
  const pid_t sid = ::getsid(pid);
  if (sid < 0) return fail(errno, "getsid");
  return sid;
}

Result<pid_t> RealSyscalls::getpgid(pid_t pid) {
  const pid_t pgid = ::getpgid(pid);
  if (pgid < 0) return fail(errno, "getpgid");
  return pgid;
}

Result<void> RealSyscalls::setpgid(pid_t pid, pid_t pgid) {
  if (::setpgid(pid, pgid) < 0) return fail(errno, "setpgid");
  return {};
}

Result<WaitResult> RealSyscalls::waitpid(pid_t pid, int options) {
  int status = 0;
  const pid_t reaped = ::waitpid(pid, &status, options);
  if (reaped < 0) return fail(errno, "waitpid");
  return WaitResult{reaped, status};
}

Result<void> RealSyscalls::kill(pid_t pid, int sig) {
  if (::kill(pid, sig) < 0) return fail(errno, "kill");
  return {};
}

// glibc 2.36 declares pidfd_open and pidfd_send_signal without C linkage (fixed in 2.37), so
// C++ cannot link against its wrappers; the raw system calls are the same single call.
Result<int> RealSyscalls::pidfd_open(pid_t pid, unsigned int flags) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
  if (fd < 0) return fail(errno, "pidfd_open");
  return fd;
}

Result<void> RealSyscalls::pidfd_send_signal(int pidfd, int sig, unsigned int flags) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, flags) < 0) {
    return fail(errno, "pidfd_send_signal");
  }
  return {};
}

Result<void> RealSyscalls::execve(const char* path, char* const argv[], char* const envp[]) {
  ::execve(path, argv, envp);
  return fail(errno, "execve");
}

void RealSyscalls::exit_now(int status) { ::_exit(status); }

Result<int> RealSyscalls::prctl(int option, unsigned long arg) {
  // The unused arguments must be zero: several options reject anything else with EINVAL.
  const int value = ::prctl(option, arg, 0UL, 0UL, 0UL);
  if (value < 0) return fail(errno, "prctl");
  return value;
}

// ---- Credentials -------------------------------------------------------------------------

Result<ResUids> RealSyscalls::getresuid() {
  ResUids ids;
  if (::getresuid(&ids.real, &ids.effective, &ids.saved) < 0) return fail(errno, "getresuid");
  return ids;
}

Result<ResGids> RealSyscalls::getresgid() {
  ResGids ids;
  if (::getresgid(&ids.real, &ids.effective, &ids.saved) < 0) return fail(errno, "getresgid");
  return ids;
}

Result<void> RealSyscalls::setresuid(uid_t real, uid_t effective, uid_t saved) {
  if (set_ids(::setresuid, kSysSetresuid, real, effective, saved) < 0)
    return fail(errno, "setresuid");
  return {};
}

Result<void> RealSyscalls::setresgid(gid_t real, gid_t effective, gid_t saved) {
  if (set_ids(::setresgid, kSysSetresgid, real, effective, saved) < 0)
    return fail(errno, "setresgid");
  return {};
}

Result<void> RealSyscalls::setuid(uid_t uid) {
  if (set_ids(::setuid, kSysSetuid, uid) < 0) return fail(errno, "setuid");
  return {};
}

Result<void> RealSyscalls::seteuid(uid_t uid) {
  // glibc's seteuid is setresuid(-1, uid, -1).
  const int done = t_in_vfork_child
                       ? static_cast<int>(::syscall(kSysSetresuid, static_cast<uid_t>(-1), uid,
                                                    static_cast<uid_t>(-1)))
                       : ::seteuid(uid);
  if (done < 0) return fail(errno, "seteuid");
  return {};
}

Result<void> RealSyscalls::setgid(gid_t gid) {
  if (set_ids(::setgid, kSysSetgid, gid) < 0) return fail(errno, "setgid");
  return {};
}

Result<void> RealSyscalls::setegid(gid_t gid) {
  const int done = t_in_vfork_child
                       ? static_cast<int>(::syscall(kSysSetresgid, static_cast<gid_t>(-1), gid,
                                                    static_cast<gid_t>(-1)))
                       : ::setegid(gid);
  if (done < 0) return fail(errno, "setegid");
  return {};
}

Result<void> RealSyscalls::setgroups(std::span<const gid_t> groups) {
  if (set_ids(::setgroups, kSysSetgroups, groups.size(), groups.data()) < 0)
    return fail(errno, "setgroups");
  return {};
}

Result<std::vector<gid_t>> RealSyscalls::getgroups() {
  // The list can change between asking its size and fetching it (another thread may call
  // setgroups); the kernel then says EINVAL and the size is asked again.
  for (;;) {
    const int count = ::getgroups(0, nullptr);
    if (count < 0) return fail(errno, "getgroups");
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    const int filled = ::getgroups(count, groups.data());
    if (filled >= 0) {
      groups.resize(static_cast<std::size_t>(filled));
      return groups;
    }
    if (errno != EINVAL) return fail(errno, "getgroups");
  }
}

Result<std::optional<Passwd>> RealSyscalls::getpwnam(const char* name) {
  return look_up<struct passwd, Passwd>(
      "getpwnam",
      [name](struct passwd* entry, char* buf, std::size_t size, struct passwd** found) {
        return ::getpwnam_r(name, entry, buf, size, found);
      },
      to_passwd);
}

Result<std::optional<Passwd>> RealSyscalls::getpwuid(uid_t uid) {
  return look_up<struct passwd, Passwd>(
      "getpwuid",
      [uid](struct passwd* entry, char* buf, std::size_t size, struct passwd** found) {
        return ::getpwuid_r(uid, entry, buf, size, found);
      },
      to_passwd);
}

Result<std::optional<Group>> RealSyscalls::getgrnam(const char* name) {
  return look_up<struct group, Group>(
      "getgrnam",
      [name](struct group* entry, char* buf, std::size_t size, struct group** found) {
        return ::getgrnam_r(name, entry, buf, size, found);
      },
      to_group);
}

Result<std::optional<Group>> RealSyscalls::getgrgid(gid_t gid) {
  return look_up<struct group, Group>(
      "getgrgid",
      [gid](struct group* entry, char* buf, std::size_t size, struct group** found) {
        return ::getgrgid_r(gid, entry, buf, size, found);
      },
      to_group);
}

Result<std::vector<gid_t>> RealSyscalls::getgrouplist(const char* user, gid_t group) {
  // A list longer than the kernel's limit could never be set, so the buffer grows no further.
  const long configured = ::sysconf(_SC_NGROUPS_MAX);
  const int limit =
      configured > 0 && configured <= INT_MAX ? static_cast<int>(configured) : NGROUPS_MAX;
  std::vector<gid_t> groups(static_cast<std::size_t>(std::min(32, limit)));
  // Each retry asks for strictly more room than the last, up to `limit`: this ends.
  for (;;) {
    int count = static_cast<int>(groups.size());
    errno = 0;
    if (::getgrouplist(user, group, groups.data(), &count) >= 0) {
      groups.resize(static_cast<std::size_t>(count));
      return groups;
    }
    // -1 with a larger count: the buffer was too small. Without one, glibc could not allocate
    // its working copy (it reports nothing else: unreachable databases just contribute no
    // groups).
    if (count <= static_cast<int>(groups.size())) {
      return fail(errno != 0 ? errno : ENOMEM, "getgrouplist");
    }
    if (count > limit) return fail(EINVAL, "getgrouplist");
    groups.resize(static_cast<std::size_t>(count));
  }
}

// ---- Files and descriptors ---------------------------------------------------------------

Result<int> RealSyscalls::open(const char* path, int flags, mode_t mode) {
  const int fd = ::open(path, flags, mode);
  if (fd < 0) return fail(errno, "open");
  return fd;
}

Result<int> RealSyscalls::openat(int dirfd, const char* path, int flags, mode_t mode) {
  const int fd = ::openat(dirfd, path, flags, mode);
  if (fd < 0) return fail(errno, "openat");
  return fd;
}

DAEMONKIT_HOT Result<void> RealSyscalls::close(int fd) {
  if (::close(fd) < 0) return fail(errno, "close");
  return {};
}

Result<void> RealSyscalls::close_range(unsigned int first, unsigned int last, int flags) {
  if (::close_range(first, last, flags) < 0) return fail(errno, "close_range");
  return {};
}

Result<int> RealSyscalls::dup(int fd) {
  const int copy = ::dup(fd);
  if (copy < 0) return fail(errno, "dup");
  return copy;
}

Result<int> RealSyscalls::dup2(int oldfd, int newfd) {
  const int fd = ::dup2(oldfd, newfd);
  if (fd < 0) return fail(errno, "dup2");
  return fd;
}

Result<int> RealSyscalls::dup3(int oldfd, int newfd, int flags) {
  const int fd = ::dup3(oldfd, newfd, flags);
  if (fd < 0) return fail(errno, "dup3");
  return fd;
}

Result<int> RealSyscalls::fcntl(int fd, int cmd, int arg) {
  const int value = ::fcntl(fd, cmd, arg);
  if (value < 0) return fail(errno, "fcntl");
  return value;
}

Result<int> RealSyscalls::ioctl(int fd, unsigned long request, void* arg) {
  const int value = ::ioctl(fd, request, arg);
  if (value < 0) return fail(errno, "ioctl");
  return value;
}

DAEMONKIT_HOT Result<std::size_t> RealSyscalls::read(int fd, void* buf, std::size_t count) {
  const ssize_t n = ::read(fd, buf, count);
  if (n < 0) return fail(errno, "read");
  return static_cast<std::size_t>(n);
}

DAEMONKIT_HOT Result<std::size_t> RealSyscalls::write(int fd, const void* buf, std::size_t count) {
  const ssize_t n = ::write(fd, buf, count);
  if (n < 0) return fail(errno, "write");
  return static_cast<std::size_t>(n);
}

DAEMONKIT_HOT Result<std::size_t> RealSyscalls::writev(int fd, std::span<const struct iovec> iov) {
  // A count beyond int is beyond IOV_MAX too: clamped, it still gets the kernel's EINVAL.
  const int count = static_cast<int>(std::min<std::size_t>(iov.size(), INT_MAX));
  const ssize_t n = ::writev(fd, iov.data(), count);
  if (n < 0) return fail(errno, "writev");
  return static_cast<std::size_t>(n);
}

Result<void> RealSyscalls::fsync(int fd) {
  if (::fsync(fd) < 0) return fail(errno, "fsync");
  return {};
}

Result<void> RealSyscalls::ftruncate(int fd, off_t length) {
  if (::ftruncate(fd, length) < 0) return fail(errno, "ftruncate");
  return {};
}

Result<struct stat> RealSyscalls::fstat(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return fail(errno, "fstat");
  return st;
}

Result<struct stat> RealSyscalls::stat(const char* path) {
  struct stat st {};
  if (::stat(path, &st) < 0) return fail(errno, "stat");
  return st;
}

Result<struct stat> RealSyscalls::lstat(const char* path) {
  struct stat st {};
  if (::lstat(path, &st) < 0) return fail(errno, "lstat");
  return st;
}

Result<void> RealSyscalls::flock(int fd, int operation) {
  if (::flock(fd, operation) < 0) return fail(errno, "flock");
  return {};
}

Result<std::size_t> RealSyscalls::getdents64(int fd, void* buf, std::size_t count) {
  const ssize_t n = ::getdents64(fd, buf, count);
  if (n < 0) return fail(errno, "getdents64");
  return static_cast<std::size_t>(n);
}

Result<void> RealSyscalls::unlink(const char* path) {
  if (::unlink(path) < 0) return fail(errno, "unlink");
  return {};
}

Result<void> RealSyscalls::rename(const char* from, const char* to) {
  if (::rename(from, to) < 0) return fail(errno, "rename");
  return {};
}

Result<void> RealSyscalls::symlink(const char* target, const char* linkpath) {
  if (::symlink(target, linkpath) < 0) return fail(errno, "symlink");
  return {};
}

Result<void> RealSyscalls::mkdir(const char* path, mode_t mode) {
  if (::mkdir(path, mode) < 0) return fail(errno, "mkdir");
  return {};
}

Result<void> RealSyscalls::rmdir(const char* path) {
  if (::rmdir(path) < 0) return fail(errno, "rmdir");
  return {};
}

Result<void> RealSyscalls::chmod(const char* path, mode_t mode) {
  if (::chmod(path, mode) < 0) return fail(errno, "chmod");
  return {};
}

Result<void> RealSyscalls::fchmod(int fd, mode_t mode) {
  if (::fchmod(fd, mode) < 0) return fail(errno, "fchmod");
  return {};
}

Result<void> RealSyscalls::chown(const char* path, uid_t owner, gid_t group) {
  if (::chown(path, owner, group) < 0) return fail(errno, "chown");
  return {};
}

Result<void> RealSyscalls::chdir(const char* path) {
  if (::chdir(path) < 0) return fail(errno, "chdir");
  return {};
}

Result<void> RealSyscalls::chroot(const char* path) {
  if (::chroot(path) < 0) return fail(errno, "chroot");
  return {};
}

Result<std::string> RealSyscalls::getcwd() {
  std::string path(PATH_MAX, '\0');
  for (;;) {
    if (::getcwd(path.data(), path.size()) != nullptr) {
      path.resize(path.find('\0'));
      return path;
    }
    // A path deeper than PATH_MAX is legal on Linux; only ERANGE asks for more room.
    if (errno != ERANGE || path.size() >= kMaxLookupBuffer) return fail(errno, "getcwd");
    path.resize(path.size() * 2);
  }
}

mode_t RealSyscalls::umask(mode_t mask) { return ::umask(mask); }

// ---- Pipes, signals, polling -------------------------------------------------------------

Result<PipeFds> RealSyscalls::pipe2(int flags) {
  int fds[2] = {-1, -1};
  if (::pipe2(fds, flags) < 0) return fail(errno, "pipe2");
  return PipeFds{fds[0], fds[1]};
}

Result<void> RealSyscalls::sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (::sigaction(sig, act, old) < 0) return fail(errno, "sigaction");
  return {};
}

Result<void> RealSyscalls::sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  // pthread_sigmask returns the error number and leaves errno alone.
  const int code = ::pthread_sigmask(how, set, old);
  if (code != 0) return fail(code, "sigprocmask");
  return {};
}

Result<int> RealSyscalls::signalfd(int fd, const sigset_t& mask, int flags) {
  const int result = ::signalfd(fd, &mask, flags);
  if (result < 0) return fail(errno, "signalfd");
  return result;
}

Result<int> RealSyscalls::poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) {
  const int ready = ::poll(fds, nfds, timeout_ms);
  if (ready < 0) return fail(errno, "poll");
  return ready;
}

Result<int> RealSyscalls::epoll_create1(int flags) {
  const int fd = ::epoll_create1(flags);
  if (fd < 0) return fail(errno, "epoll_create1");
  return fd;
}

DAEMONKIT_HOT Result<void> RealSyscalls::epoll_ctl(int epfd, int op, int fd,
                                                   struct epoll_event* event) {
  if (::epoll_ctl(epfd, op, fd, event) < 0) return fail(errno, "epoll_ctl");
  return {};
}

DAEMONKIT_HOT Result<int> RealSyscalls::epoll_wait(int epfd, struct epoll_event* events,
                                                   int maxevents, int timeout_ms) {
  const int ready = ::epoll_wait(epfd, events, maxevents, timeout_ms);
  if (ready < 0) return fail(errno, "epoll_wait");
  return ready;
}

Result<int> RealSyscalls::eventfd(unsigned int initval, int flags) {
  const int fd = ::eventfd(initval, flags);
  if (fd < 0) return fail(errno, "eventfd");
  return fd;
}

// ---- Sockets -----------------------------------------------------------------------------

Result<int> RealSyscalls::socket(int domain, int type, int protocol) {
  const int fd = ::socket(domain, type, protocol);
  if (fd < 0) return fail(errno, "socket");
  return fd;
}

Result<SocketPair> RealSyscalls::socketpair(int domain, int type, int protocol) {
  int fds[2] = {-1, -1};
  if (::socketpair(domain, type, protocol, fds) < 0) return fail(errno, "socketpair");
  return SocketPair{fds[0], fds[1]};
}

Result<void> RealSyscalls::bind(int fd, const struct sockaddr* addr, socklen_t len) {
  if (::bind(fd, addr, len) < 0) return fail(errno, "bind");
  return {};
}

Result<void> RealSyscalls::listen(int fd, int backlog) {
  if (::listen(fd, backlog) < 0) return fail(errno, "listen");
  return {};
}

DAEMONKIT_HOT Result<int> RealSyscalls::accept4(int fd, struct sockaddr* addr, socklen_t* len,
                                                int flags) {
  const int conn = ::accept4(fd, addr, len, flags);
  if (conn < 0) return fail(errno, "accept4");
  return conn;
}

Result<void> RealSyscalls::connect(int fd, const struct sockaddr* addr, socklen_t len) {
  if (::connect(fd, addr, len) < 0) return fail(errno, "connect");
  return {};
}

Result<std::size_t> RealSyscalls::sendto(int fd, const void* buf, std::size_t len, int flags,
                                         const struct sockaddr* addr, socklen_t addrlen) {
  const ssize_t n = ::sendto(fd, buf, len, flags, addr, addrlen);
  if (n < 0) return fail(errno, "sendto");
  return static_cast<std::size_t>(n);
}

Result<std::size_t> RealSyscalls::recvfrom(int fd, void* buf, std::size_t len, int flags,
                                           struct sockaddr* addr, socklen_t* addrlen) {
  const ssize_t n = ::recvfrom(fd, buf, len, flags, addr, addrlen);
  if (n < 0) return fail(errno, "recvfrom");
  return static_cast<std::size_t>(n);
}

Result<std::size_t> RealSyscalls::recvmsg(int fd, struct msghdr* msg, int flags) {
  const ssize_t n = ::recvmsg(fd, msg, flags);
  if (n < 0) return fail(errno, "recvmsg");
  return static_cast<std::size_t>(n);
}

Result<std::size_t> RealSyscalls::sendmsg(int fd, const struct msghdr* msg, int flags) {
  const ssize_t n = ::sendmsg(fd, msg, flags);
  if (n < 0) return fail(errno, "sendmsg");
  return static_cast<std::size_t>(n);
}

DAEMONKIT_HOT Result<void> RealSyscalls::setsockopt(int fd, int level, int name, const void* value,
                                                    socklen_t len) {
  if (::setsockopt(fd, level, name, value, len) < 0) return fail(errno, "setsockopt");
  return {};
}

Result<void> RealSyscalls::getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
  if (::getsockopt(fd, level, name, value, len) < 0) return fail(errno, "getsockopt");
  return {};
}

Result<void> RealSyscalls::getsockname(int fd, struct sockaddr* addr, socklen_t* len) {
  if (::getsockname(fd, addr, len) < 0) return fail(errno, "getsockname");
  return {};
}

Result<void> RealSyscalls::getpeername(int fd, struct sockaddr* addr, socklen_t* len) {
  if (::getpeername(fd, addr, len) < 0) return fail(errno, "getpeername");
  return {};
}

Result<void> RealSyscalls::shutdown(int fd, int how) {
  if (::shutdown(fd, how) < 0) return fail(errno, "shutdown");
  return {};
}

// ---- Limits and time ---------------------------------------------------------------------

Result<struct rlimit> RealSyscalls::getrlimit(int resource) {
  struct rlimit limit {};
  // glibc types the resource as an enum in C++; the interface keeps libc's plain int.
  if (::getrlimit(static_cast<__rlimit_resource_t>(resource), &limit) < 0) {
    return fail(errno, "getrlimit");
  }
  return limit;
}

Result<void> RealSyscalls::setrlimit(int resource, const struct rlimit& limit) {
  if (::setrlimit(static_cast<__rlimit_resource_t>(resource), &limit) < 0) {
    return fail(errno, "setrlimit");
  }
  return {};
}

Result<struct timespec> RealSyscalls::clock_gettime(clockid_t clock) {
  struct timespec now {};
  if (::clock_gettime(clock, &now) < 0) return fail(errno, "clock_gettime");
  return now;
}

}  // namespace daemonkit::sys
