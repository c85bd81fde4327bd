// RealSyscalls: the Syscalls seam bound to the Linux kernel through glibc.
// Each method makes one libc call and captures errno at once (the look-ups, getgroups and getcwd
// repeat theirs only to grow a buffer); none retries on EINTR. Methods are documented on the
// interface (syscalls.h); the Error of each names the method, e.g. "sigprocmask".
#pragma once

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::sys {

class RealSyscalls final : public Syscalls {
 public:
  // Processes
  Result<pid_t> fork() override;
  Result<pid_t> vfork(ChildMain body) override;
  Result<ChildWithPidFd> vfork_with_pidfd(ChildMain body) override;
  Result<pid_t> setsid() override;
  pid_t getpid() override;
  pid_t getppid() override;
  Result<pid_t> getsid(pid_t pid) override;
  Result<pid_t> getpgid(pid_t pid) override;
  Result<void> setpgid(pid_t pid, pid_t pgid) override;
  Result<WaitResult> waitpid(pid_t pid, int options) override;
  Result<void> kill(pid_t pid, int sig) override;
  Result<int> pidfd_open(pid_t pid, unsigned int flags) override;
  Result<void> pidfd_send_signal(int pidfd, int sig, unsigned int flags) override;
  Result<void> execve(const char* path, char* const argv[], char* const envp[]) override;
  [[noreturn]] void exit_now(int status) override;
  Result<int> prctl(int option, unsigned long arg) override;

  // Credentials
  Result<ResUids> getresuid() override;
  Result<ResGids> getresgid() override;
  Result<void> setresuid(uid_t real, uid_t effective, uid_t saved) override;
  Result<void> setresgid(gid_t real, gid_t effective, gid_t saved) override;
  Result<void> setuid(uid_t uid) override;
  Result<void> seteuid(uid_t uid) override;
  Result<void> setgid(gid_t gid) override;
  Result<void> setegid(gid_t gid) override;
  Result<void> setgroups(std::span<const gid_t> groups) override;
  Result<std::vector<gid_t>> getgroups() override;
  Result<std::optional<Passwd>> getpwnam(const char* name) override;
  Result<std::optional<Passwd>> getpwuid(uid_t uid) override;
  Result<std::optional<Group>> getgrnam(const char* name) override;
  Result<std::optional<Group>> getgrgid(gid_t gid) override;
  Result<std::vector<gid_t>> getgrouplist(const char* user, gid_t group) override;

  // Files and descriptors
  Result<int> open(const char* path, int flags, mode_t mode) override;
  Result<int> openat(int dirfd, const char* path, int flags, mode_t mode) override;
  Result<void> close(int fd) override;
  Result<void> close_range(unsigned int first, unsigned int last, int flags) override;
  Result<int> dup(int fd) override;
  Result<int> dup2(int oldfd, int newfd) override;
  Result<int> dup3(int oldfd, int newfd, int flags) override;
  Result<int> fcntl(int fd, int cmd, int arg) override;
  Result<int> ioctl(int fd, unsigned long request, void* arg) override;
  Result<std::size_t> read(int fd, void* buf, std::size_t count) override;
  Result<std::size_t> write(int fd, const void* buf, std::size_t count) override;
  Result<std::size_t> writev(int fd, std::span<const struct iovec> iov) override;
  Result<void> fsync(int fd) override;
  Result<void> ftruncate(int fd, off_t length) override;
  Result<struct stat> fstat(int fd) override;
  Result<struct stat> stat(const char* path) override;
  Result<struct stat> lstat(const char* path) override;
  Result<void> flock(int fd, int operation) override;
  Result<std::size_t> getdents64(int fd, void* buf, std::size_t count) override;
  Result<void> unlink(const char* path) override;
  Result<void> rename(const char* from, const char* to) override;
  Result<void> symlink(const char* target, const char* linkpath) override;
  Result<void> mkdir(const char* path, mode_t mode) override;
  Result<void> rmdir(const char* path) override;
  Result<void> chmod(const char* path, mode_t mode) override;
  Result<void> fchmod(int fd, mode_t mode) override;
  Result<void> chown(const char* path, uid_t owner, gid_t group) override;
  Result<void> chdir(const char* path) override;
  Result<void> chroot(const char* path) override;
  Result<std::string> getcwd() override;
  mode_t umask(mode_t mask) override;

  // Pipes, signals, polling
  Result<PipeFds> pipe2(int flags) override;
  Result<void> sigaction(int sig, const struct sigaction* act, struct sigaction* old) override;
  Result<void> sigprocmask(int how, const sigset_t* set, sigset_t* old) override;
  Result<int> signalfd(int fd, const sigset_t& mask, int flags) override;
  Result<int> poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) override;
  Result<int> epoll_create1(int flags) override;
  Result<void> epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) override;
  Result<int> epoll_wait(int epfd, struct epoll_event* events, int maxevents,
                         int timeout_ms) override;
  Result<int> eventfd(unsigned int initval, int flags) override;

  // Sockets
  Result<int> socket(int domain, int type, int protocol) override;
  Result<SocketPair> socketpair(int domain, int type, int protocol) override;
  Result<void> bind(int fd, const struct sockaddr* addr, socklen_t len) override;
  Result<void> listen(int fd, int backlog) override;
  Result<int> accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) override;
  Result<void> connect(int fd, const struct sockaddr* addr, socklen_t len) override;
  Result<std::size_t> sendto(int fd, const void* buf, std::size_t len, int flags,
                             const struct sockaddr* addr, socklen_t addrlen) override;
  Result<std::size_t> recvfrom(int fd, void* buf, std::size_t len, int flags, struct sockaddr* addr,
                               socklen_t* addrlen) override;
  Result<std::size_t> recvmsg(int fd, struct msghdr* msg, int flags) override;
  Result<std::size_t> sendmsg(int fd, const struct msghdr* msg, int flags) override;
  Result<void> setsockopt(int fd, int level, int name, const void* value, socklen_t len) override;
  Result<void> getsockopt(int fd, int level, int name, void* value, socklen_t* len) override;
  Result<void> getsockname(int fd, struct sockaddr* addr, socklen_t* len) override;
  Result<void> getpeername(int fd, struct sockaddr* addr, socklen_t* len) override;
  Result<void> shutdown(int fd, int how) override;

  // Limits and time
  Result<struct rlimit> getrlimit(int resource) override;
  Result<void> setrlimit(int resource, const struct rlimit& limit) override;
  Result<struct timespec> clock_gettime(clockid_t clock) override;
};

}  // namespace daemonkit::sys
