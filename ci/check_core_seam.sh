#!/usr/bin/env bash
# Fails if compiled core code calls libc's system-call wrappers directly instead of going through
# sys::Syscalls&. It reads the undefined symbols of the objects given (an archive or .o files), so
# it sees what the code really calls, whatever the source's spelling or macros.
#   ci/check_core_seam.sh <archive-or-object>...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <archive-or-object>..." >&2; exit 2; }

forbidden=(
  fork vfork clone clone3 setsid getpid getppid getsid getpgid setpgid wait waitpid wait4 waitid
  kill raise pidfd_open pidfd_send_signal execve execv execvp execvpe execl execlp fexecve
  _exit _Exit prctl syscall
  getuid geteuid getgid getegid getresuid getresgid setresuid setresgid setuid seteuid setgid
  setegid setreuid setregid setgroups getgroups initgroups getgrouplist getpwnam getpwnam_r getpwuid
  getpwuid_r getgrnam getgrnam_r getgrgid getgrgid_r
  open open64 openat openat64 creat close close_range closefrom dup dup2 dup3 fcntl fcntl64 ioctl
  read write pread pwrite readv writev fsync fdatasync ftruncate ftruncate64 truncate
  stat stat64 fstat fstat64 lstat lstat64 fstatat fstatat64 statx __xstat __fxstat __lxstat
  flock lockf getdents64 opendir fdopendir readdir readdir64 unlink unlinkat rename renameat
  symlink mkdir rmdir chmod fchmod chown fchown chdir fchdir chroot getcwd umask
  pipe pipe2 sigaction signal sigprocmask pthread_sigmask signalfd poll ppoll select
  epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait eventfd
  socket socketpair bind listen accept accept4 connect send sendto sendmsg recv recvfrom recvmsg
  setsockopt getsockopt getsockname getpeername shutdown
  getrlimit setrlimit prlimit getrlimit64 setrlimit64 prlimit64 clock_gettime gettimeofday time
  nanosleep sleep usleep posix_spawn posix_spawnp daemon
)

pattern="^($(IFS='|'; echo "${forbidden[*]}"))(@.*)?$"
found=$(nm -u --format=just-symbols "$@" 2>/dev/null | grep -E "$pattern" | sort -u || true)
if [ -n "$found" ]; then
  echo "core calls the OS directly instead of through sys::Syscalls&:" >&2
  echo "$found" | sed 's/^/  /' >&2
  exit 1
fi
echo "core seam: no direct OS calls in $*"
