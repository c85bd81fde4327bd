// The reference point of the launch benchmark: the least a correct daemonizer can do, written
// straight on libc. Double fork, new session, stdio on /dev/null, umask 077, chdir /, inherited
// fds closed with close_range, PID file, then exec PROGRAM; the parent waits on a CLOEXEC
// status pipe (EOF after exec is success, a byte is an exec error) and exits.
//   minimal_daemon PIDFILE PROGRAM [ARGS...]
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PIDFILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child > 0) {
    close(status_pipe[1]);
    int code = 0;
    ssize_t n;
    do {
      n = read(status_pipe[0], &code, sizeof code);
    } while (n < 0 && errno == EINTR);
    waitpid(child, nullptr, 0);  // The intermediate exits at once.
    if (n == 0) return 0;
    std::fprintf(stderr, "exec %s: %s\n", argv[2], std::strerror(code));
    return 1;
  }
  // ---- Child and grandchild: async-signal-safe calls only from here to exec/_exit. ----
  close(status_pipe[0]);
  setsid();
  const pid_t grandchild = fork();
  if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);  // The pipe is CLOEXEC already.
  const int null_fd = open("/dev/null", O_RDWR);
  dup2(null_fd, 0);
  dup2(null_fd, 1);
  dup2(null_fd, 2);
  if (null_fd > 2) close(null_fd);
  umask(077);
  if (chdir("/") != 0) _exit(1);
  const int pid_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (pid_fd >= 0) {
    char text[24];
    int len = 0;
    char digits[24];
    int nd = 0;
    for (pid_t pid = getpid(); pid > 0; pid /= 10) digits[nd++] = static_cast<char>('0' + pid % 10);
    while (nd > 0) text[len++] = digits[--nd];
    text[len++] = '\n';
    if (write(pid_fd, text, static_cast<size_t>(len)) != len) _exit(1);
    close(pid_fd);
  }
  execv(argv[2], argv + 2);
  const int error = errno;
  if (write(status_pipe[1], &error, sizeof error) < 0) _exit(127);
  _exit(127);
}
