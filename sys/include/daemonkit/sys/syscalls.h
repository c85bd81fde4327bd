// The seam: one interface through which every OS effect in daemonkit passes.
// RealSyscalls forwards each method to exactly one libc call; daemonkit::fake::FakeSyscalls
// simulates a kernel behind the same methods, so daemons built on this are testable in-process.
//
// Each method is documented as "See man 2 X" plus only what differs from libc: every method
// returns its value or an Error holding the errno the call set (no global errno above this
// interface), and none retries on EINTR (see retry.h for the one helper that does).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemonkit/sys/child_main.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::sys {

// The two ends of a pipe, as pipe2 fills them.
struct PipeFds {
  int read_end = -1;
  int write_end = -1;
};

// The two connected sockets socketpair makes, in the order it fills them.
struct SocketPair {
  int first = -1;
  int second = -1;
};

// What waitpid reports: the pid reaped (0 with WNOHANG when nothing changed) and the raw wait
// status to be read with WIFEXITED and friends.
struct WaitResult {
  pid_t pid = 0;
  int status = 0;
};

// A child and a pidfd for it, as vfork_with_pidfd makes them.
struct ChildWithPidFd {
  pid_t pid = 0;
  int pidfd = -1;
};

// Real, effective and saved ids, as getresuid/getresgid report them.
template <typename Id>
struct ResIds {
  Id real{};
  Id effective{};
  Id saved{};
  friend bool operator==(const ResIds&, const ResIds&) = default;
};
using ResUids = ResIds<uid_t>;
using ResGids = ResIds<gid_t>;

// The fields of a passwd entry that daemonkit uses.
struct Passwd {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string dir;
  std::string shell;
};

// The fields of a group entry that daemonkit uses.
struct Group {
  std::string name;
  gid_t gid = 0;
  std::vector<std::string> members;
};

class Syscalls {
 public:
  virtual ~Syscalls() = default;

  // ---- Processes -------------------------------------------------------------------------

  // See man 2 fork.
  virtual Result<pid_t> fork() = 0;
  // See man 2 vfork and man 2 clone (CLONE_VM | CLONE_VFORK). Creates a child that shares this
  // process's memory and runs `body` on a stack of its own while this process sleeps; returns
  // the child's pid once the child has exec'd or ended. A body that returns ends the child with
  // its value as the exit status. Nothing is copied and nothing torn down, so it costs the
  // same for a large process as for a small one, which fork does not.
  // The child starts with every signal blocked, so that no handler of this process runs on the
  // memory they share; it resets the handlers it must not run, then sets its own mask.
  // Other threads may run, fork and spawn meanwhile (only the calling thread sleeps), as with
  // posix_spawn, which glibc makes the same way: the child runs on its own stack, with every
  // signal blocked and the calling thread's cancellation disabled, and RealSyscalls' set*id and
  // setgroups in the child change only the child (glibc's wrappers would reach for the other
  // threads). That holds as long as the body keeps to the contract of code between fork and
  // exec: async-signal-safe calls only, no lock, no allocation, no write but to its own stack
  // and to what the calling thread alone owns. (The child's heap is the caller's anyway: what
  // it allocates and never frees stays allocated in the caller.)
  virtual Result<pid_t> vfork(ChildMain body) = 0;
  // vfork that also returns a pidfd for the child, made in the same call (clone's CLONE_PIDFD,
  // close-on-exec, held by this process only). A pidfd_open after vfork would leave a window
  // in which something else in this process (a waitpid(-1), SIGCHLD set to SIG_IGN) reaps the
  // child and its pid is given to a stranger, whom the pidfd would then name. pidfd is -1 on
  // kernels older than 5.2, which ignore the flag: the caller falls back to the pid.
  virtual Result<ChildWithPidFd> vfork_with_pidfd(ChildMain body) = 0;
  // See man 2 setsid.
  virtual Result<pid_t> setsid() = 0;
  // See man 2 getpid. Cannot fail.
  virtual pid_t getpid() = 0;
  // See man 2 getppid. Cannot fail.
  virtual pid_t getppid() = 0;
  // See man 2 getsid.
  virtual Result<pid_t> getsid(pid_t pid) = 0;
  // See man 2 getpgid.
  virtual Result<pid_t> getpgid(pid_t pid) = 0;
  // See man 2 setpgid.
  virtual Result<void> setpgid(pid_t pid, pid_t pgid) = 0;
  // See man 2 waitpid.
  virtual Result<WaitResult> waitpid(pid_t pid, int options) = 0;
  // See man 2 kill.
  virtual Result<void> kill(pid_t pid, int sig) = 0;
  // See man 2 pidfd_open. Returns the new descriptor.
  virtual Result<int> pidfd_open(pid_t pid, unsigned int flags) = 0;
  // See man 2 pidfd_send_signal, with a null siginfo.
  virtual Result<void> pidfd_send_signal(int pidfd, int sig, unsigned int flags) = 0;
  // See man 2 execve. Returns only on failure.
  virtual Result<void> execve(const char* path, char* const argv[], char* const envp[]) = 0;
  // See man 2 _exit. Ends the calling process; the fake unwinds instead (see fake_syscalls.h).
  [[noreturn]] virtual void exit_now(int status) = 0;
  // See man 2 prctl, for options taking one integer argument (PR_SET_CHILD_SUBREAPER,
  // PR_GET_DUMPABLE, PR_SET_DUMPABLE, PR_SET_PDEATHSIG), or one pointer as an integer
  // (PR_SET_NAME, PR_GET_NAME: 16 bytes). Returns prctl's return value.
  virtual Result<int> prctl(int option, unsigned long arg) = 0;

  // ---- Credentials -----------------------------------------------------------------------

  // See man 2 getresuid.
  virtual Result<ResUids> getresuid() = 0;
  // See man 2 getresgid.
  virtual Result<ResGids> getresgid() = 0;
  // See man 2 setresuid; -1 leaves an id unchanged, as in libc.
  virtual Result<void> setresuid(uid_t real, uid_t effective, uid_t saved) = 0;
  // See man 2 setresgid; -1 leaves an id unchanged, as in libc.
  virtual Result<void> setresgid(gid_t real, gid_t effective, gid_t saved) = 0;
  // See man 2 setuid.
  virtual Result<void> setuid(uid_t uid) = 0;
  // See man 2 seteuid.
  virtual Result<void> seteuid(uid_t uid) = 0;
  // See man 2 setgid.
  virtual Result<void> setgid(gid_t gid) = 0;
  // See man 2 setegid.
  virtual Result<void> setegid(gid_t gid) = 0;
  // See man 2 setgroups.
  virtual Result<void> setgroups(std::span<const gid_t> groups) = 0;
  // See man 2 getgroups. Returns the whole list.
  virtual Result<std::vector<gid_t>> getgroups() = 0;
  // See man 3 getpwnam_r. An unknown name is an empty optional, not an error.
  virtual Result<std::optional<Passwd>> getpwnam(const char* name) = 0;
  // See man 3 getpwuid_r. An unknown uid is an empty optional, not an error.
  virtual Result<std::optional<Passwd>> getpwuid(uid_t uid) = 0;
  // See man 3 getgrnam_r. An unknown name is an empty optional, not an error.
  virtual Result<std::optional<Group>> getgrnam(const char* name) = 0;
  // See man 3 getgrgid_r. An unknown gid is an empty optional, not an error.
  virtual Result<std::optional<Group>> getgrgid(gid_t gid) = 0;
  // See man 3 getgrouplist: `group` followed by the groups that list `user` as a member (an
  // unknown user gives `group` alone). Runs in the parent, so that after fork the groups are set
  // with setgroups alone: the NSS work behind this is not async-signal-safe. More groups than
  // the kernel accepts (sysconf(_SC_NGROUPS_MAX)) is EINVAL, what setgroups would answer.
  virtual Result<std::vector<gid_t>> getgrouplist(const char* user, gid_t group) = 0;

  // ---- Files and descriptors -------------------------------------------------------------

  // See man 2 open.
  virtual Result<int> open(const char* path, int flags, mode_t mode) = 0;
  // See man 2 openat.
  virtual Result<int> openat(int dirfd, const char* path, int flags, mode_t mode) = 0;
  // See man 2 close. Never retried on EINTR: Linux has closed the descriptor anyway.
  virtual Result<void> close(int fd) = 0;
  // See man 2 close_range.
  virtual Result<void> close_range(unsigned int first, unsigned int last, int flags) = 0;
  // See man 2 dup.
  virtual Result<int> dup(int fd) = 0;
  // See man 2 dup2.
  virtual Result<int> dup2(int oldfd, int newfd) = 0;
  // See man 2 dup3.
  virtual Result<int> dup3(int oldfd, int newfd, int flags) = 0;
  // See man 2 fcntl, for commands whose argument is an int (F_GETFD, F_SETFD, F_GETFL,
  // F_SETFL, F_DUPFD, F_DUPFD_CLOEXEC).
  virtual Result<int> fcntl(int fd, int cmd, int arg) = 0;
  // See man 2 ioctl. `arg` is what the request takes: a pointer to its structure or integer,
  // or an integer passed in the pointer itself (TIOCSCTTY, TIOCGPTPEER). TCGETS and TCSETS
  // take the kernel's struct termios, which is the first 36 bytes of glibc's (its c_cc has
  // 19 entries, glibc's 32), so a glibc struct termios may be passed. Returns ioctl's value
  // (a new descriptor for TIOCGPTPEER). One system call that allocates nothing, so a vfork
  // child may make it (setsid, then TIOCSCTTY and TIOCSWINSZ on its terminal).
  virtual Result<int> ioctl(int fd, unsigned long request, void* arg) = 0;
  // See man 2 read.
  virtual Result<std::size_t> read(int fd, void* buf, std::size_t count) = 0;
  // See man 2 write.
  virtual Result<std::size_t> write(int fd, const void* buf, std::size_t count) = 0;
  // See man 2 writev: one write of the buffers' concatenation (a partial count, a pipe's
  // PIPE_BUF atomicity and EPIPE as write has them); more than IOV_MAX buffers is EINVAL, and
  // a total of 0 bytes returns 0 before the file is asked (so no EPIPE, unlike write).
  virtual Result<std::size_t> writev(int fd, std::span<const struct iovec> iov) = 0;
  // See man 2 fsync.
  virtual Result<void> fsync(int fd) = 0;
  // See man 2 ftruncate.
  virtual Result<void> ftruncate(int fd, off_t length) = 0;
  // See man 2 fstat.
  virtual Result<struct stat> fstat(int fd) = 0;
  // See man 2 stat.
  virtual Result<struct stat> stat(const char* path) = 0;
  // See man 2 lstat.
  virtual Result<struct stat> lstat(const char* path) = 0;
  // See man 2 flock.
  virtual Result<void> flock(int fd, int operation) = 0;
  // See man 2 getdents64: fills buf with linux_dirent64 records, returns bytes used, 0 at the
  // end. This is how /proc/self/fd is listed without allocating.
  virtual Result<std::size_t> getdents64(int fd, void* buf, std::size_t count) = 0;
  // See man 2 unlink.
  virtual Result<void> unlink(const char* path) = 0;
  // See man 2 rename.
  virtual Result<void> rename(const char* from, const char* to) = 0;
  // See man 2 symlink.
  virtual Result<void> symlink(const char* target, const char* linkpath) = 0;
  // See man 2 mkdir.
  virtual Result<void> mkdir(const char* path, mode_t mode) = 0;
  // See man 2 rmdir.
  virtual Result<void> rmdir(const char* path) = 0;
  // See man 2 chmod.
  virtual Result<void> chmod(const char* path, mode_t mode) = 0;
  // See man 2 fchmod. Sets the mode of what a descriptor names, with no path to be swapped
  // under the caller (a file just created under a directory another user can write to).
  virtual Result<void> fchmod(int fd, mode_t mode) = 0;
  // See man 2 chown.
  virtual Result<void> chown(const char* path, uid_t owner, gid_t group) = 0;
  // See man 2 chdir.
  virtual Result<void> chdir(const char* path) = 0;
  // See man 2 chroot.
  virtual Result<void> chroot(const char* path) = 0;
  // See man 3 getcwd. Returns the whole path.
  virtual Result<std::string> getcwd() = 0;
  // See man 2 umask. Cannot fail; returns the previous mask.
  virtual mode_t umask(mode_t mask) = 0;

  // ---- Pipes, signals, polling -----------------------------------------------------------

  // See man 2 pipe2.
  virtual Result<PipeFds> pipe2(int flags) = 0;
  // See man 2 sigaction.
  virtual Result<void> sigaction(int sig, const struct sigaction* act, struct sigaction* old) = 0;
  // See man 2 sigprocmask (per thread, as pthread_sigmask).
  virtual Result<void> sigprocmask(int how, const sigset_t* set, sigset_t* old) = 0;
  // See man 2 signalfd; fd -1 creates a new descriptor.
  virtual Result<int> signalfd(int fd, const sigset_t& mask, int flags) = 0;
  // See man 2 poll. Returns the number of ready descriptors.
  virtual Result<int> poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) = 0;
  // See man 2 epoll_create1.
  virtual Result<int> epoll_create1(int flags) = 0;
  // See man 2 epoll_ctl. `event` may be null for EPOLL_CTL_DEL.
  virtual Result<void> epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) = 0;
  // See man 2 epoll_wait. Returns the number of events filled in.
  virtual Result<int> epoll_wait(int epfd, struct epoll_event* events, int maxevents,
                                 int timeout_ms) = 0;
  // See man 2 eventfd.
  virtual Result<int> eventfd(unsigned int initval, int flags) = 0;

  // ---- Sockets ---------------------------------------------------------------------------

  // See man 2 socket.
  virtual Result<int> socket(int domain, int type, int protocol) = 0;
  // See man 2 socketpair.
  virtual Result<SocketPair> socketpair(int domain, int type, int protocol) = 0;
  // See man 2 bind.
  virtual Result<void> bind(int fd, const struct sockaddr* addr, socklen_t len) = 0;
  // See man 2 listen.
  virtual Result<void> listen(int fd, int backlog) = 0;
  // See man 2 accept4.
  virtual Result<int> accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) = 0;
  // See man 2 connect.
  virtual Result<void> connect(int fd, const struct sockaddr* addr, socklen_t len) = 0;
  // See man 2 sendto; addr may be null on a connected socket.
  virtual Result<std::size_t> sendto(int fd, const void* buf, std::size_t len, int flags,
                                     const struct sockaddr* addr, socklen_t addrlen) = 0;
  // See man 2 recvfrom; addr and addrlen may be null.
  virtual Result<std::size_t> recvfrom(int fd, void* buf, std::size_t len, int flags,
                                       struct sockaddr* addr, socklen_t* addrlen) = 0;
  // See man 2 recvmsg. On success msg's msg_namelen, msg_controllen and msg_flags are updated
  // (MSG_TRUNC, MSG_CTRUNC): check MSG_CTRUNC before trusting a control message.
  virtual Result<std::size_t> recvmsg(int fd, struct msghdr* msg, int flags) = 0;
  // See man 2 sendmsg. Descriptors sent with SCM_RIGHTS stay open here: the receiver gets new
  // descriptors for the same open file descriptions.
  virtual Result<std::size_t> sendmsg(int fd, const struct msghdr* msg, int flags) = 0;
  // See man 2 setsockopt.
  virtual Result<void> setsockopt(int fd, int level, int name, const void* value,
                                  socklen_t len) = 0;
  // See man 2 getsockopt.
  virtual Result<void> getsockopt(int fd, int level, int name, void* value, socklen_t* len) = 0;
  // See man 2 getsockname.
  virtual Result<void> getsockname(int fd, struct sockaddr* addr, socklen_t* len) = 0;
  // See man 2 getpeername.
  virtual Result<void> getpeername(int fd, struct sockaddr* addr, socklen_t* len) = 0;
  // See man 2 shutdown. SHUT_WR on a stream: the peer reads EOF once it has the bytes sent
  // before, and writes here fail with EPIPE (raising SIGPIPE, as write does). An unconnected
  // AF_UNIX socket accepts it (Linux keeps the flags); an unconnected TCP one is ENOTCONN.
  virtual Result<void> shutdown(int fd, int how) = 0;

  // ---- Limits and time -------------------------------------------------------------------

  // See man 2 getrlimit.
  virtual Result<struct rlimit> getrlimit(int resource) = 0;
  // See man 2 setrlimit.
  virtual Result<void> setrlimit(int resource, const struct rlimit& limit) = 0;
  // See man 2 clock_gettime.
  virtual Result<struct timespec> clock_gettime(clockid_t clock) = 0;
};

}  // namespace daemonkit::sys
