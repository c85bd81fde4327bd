// PROGRAM for the black-box tests of `daemonkit run`: it reports the state it was started in
// (ids, umask, cwd, fds, environment) to a file and behaves as a test asks: ready or failing
// on the status pipe or on $NOTIFY_SOCKET, dying, or never getting ready. It speaks both
// protocols by hand, from their specifications, so the tests check the wire and not only the
// library's side of it. Linked statically so it runs inside a bare chroot.
//   daemonkit_cli_probe REPORT_FILE MODE [ARGS...]   (REPORT_FILE "-" for none)
// Modes: run | exit CODE | notify-ready | notify-fail STATUS ERRNO | notify-silent-exit CODE
//        | pipe-ready | pipe-fail MESSAGE | pipe-fail-stay MESSAGE | pipe-raw BYTES | pipe-close
//        | ignore-term | own-session
//        | fork-child CHILD_REPORT | fork-child-exit CHILD_REPORT GO_FILE | rewrite-pidfile PIDFILE
// fork-child: a child (inheriting the descriptors, the PID file's lock among them) writes its
// own report and runs; the probe runs too. fork-child-exit CHILD_REPORT GO_FILE: the same, but
// the probe exits once the child's report and GO_FILE are there, leaving the child with the
// lock. rewrite-pidfile: tries every
// way a daemon could change its PID file (through each inherited descriptor that names it,
// reopening that descriptor through /proc, and by path) and reports the errno of each as
// "rewrite=" (0 for a way that worked), then runs.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_term(int) { g_stop = 1; }

void write_report(const char* path) {
  if (std::strcmp(path, "-") == 0) return;
  std::string text;
  auto line = [&](const std::string& key, const std::string& value) {
    text += key + "=" + value + "\n";
  };
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  getresuid(&ru, &eu, &su);
  getresgid(&rg, &eg, &sg);
  line("pid", std::to_string(getpid()));
  line("ppid", std::to_string(getppid()));
  line("sid", std::to_string(getsid(0)));
  line("uids", std::to_string(ru) + "/" + std::to_string(eu) + "/" + std::to_string(su));
  line("gids", std::to_string(rg) + "/" + std::to_string(eg) + "/" + std::to_string(sg));
  gid_t groups[64];
  const int n = getgroups(64, groups);
  std::string list;
  for (int i = 0; i < n; ++i) list += (i ? "," : "") + std::to_string(groups[i]);
  line("groups", list);
  const mode_t mask = umask(0);
  umask(mask);
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mask));
  line("umask", octal);
  char cwd[4096];
  line("cwd", getcwd(cwd, sizeof cwd) != nullptr ? cwd : "?");
  std::string fds;
  if (DIR* dir = opendir("/proc/self/fd"); dir != nullptr) {
    const int own = dirfd(dir);
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.' || std::atoi(entry->d_name) == own) continue;
      fds += (fds.empty() ? "" : ",") + std::string(entry->d_name);
    }
    closedir(dir);
  } else {
    for (int fd = 0; fd < 64; ++fd) {
      if (fcntl(fd, F_GETFD) >= 0) fds += (fds.empty() ? "" : ",") + std::to_string(fd);
    }
  }
  line("fds", fds);
  sigset_t mask_now;
  sigprocmask(SIG_BLOCK, nullptr, &mask_now);
  line("sigchld_blocked", sigismember(&mask_now, SIGCHLD) ? "1" : "0");
  for (const char* var : {"NOTIFY_SOCKET", "DAEMONKIT_STATUS_FD"}) {
    const char* value = std::getenv(var);
    line(var, value != nullptr ? value : "(unset)");
  }
  // Written whole, then renamed into place, so a test never reads half a report.
  const std::string tmp = std::string(path) + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::_Exit(90);
  close(fd);
  rename(tmp.c_str(), path);
}

void notify(const std::string& datagram) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (where == nullptr || where[0] == '\0') std::_Exit(91);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(where);
  std::memcpy(addr.sun_path, where, len);
  if (where[0] == '@') addr.sun_path[0] = '\0';
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (sendto(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
             addr_len) < 0) {
    std::_Exit(92);
  }
  close(fd);
}

int status_fd() {
  const char* value = std::getenv("DAEMONKIT_STATUS_FD");
  if (value == nullptr) std::_Exit(93);
  return std::atoi(value);
}

void pipe_write(const std::string& bytes) {
  const int fd = status_fd();
  signal(SIGPIPE, SIG_IGN);
  if (write(fd, bytes.data(), bytes.size()) < 0) std::_Exit(94);
  close(fd);
}

[[noreturn]] void run_until_term() {
  while (g_stop == 0) pause();
  std::_Exit(0);
}

// Forks a child that writes its report to `child_report` and runs until SIGTERM; returns in the
// parent once that report exists (bounded: 5 s).
void fork_reporting_child(const char* child_report) {
  const pid_t child = fork();
  if (child < 0) std::_Exit(95);
  if (child == 0) {
    write_report(child_report);
    run_until_term();
  }
  for (int i = 0; i < 1000 && access(child_report, F_OK) != 0; ++i) usleep(5000);
}

void try_rewrites(const char* pidfile, const char* report) {
  std::string results;
  auto note = [&](const std::string& how, bool ok) {
    results += (results.empty() ? "" : ",") + how + ":" + std::to_string(ok ? 0 : errno);
  };
  for (int fd = 0; fd < 64; ++fd) {
    char link[64];
    char target[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) continue;
    target[n] = '\0';
    if (std::strcmp(target, pidfile) != 0) continue;
    note("write", write(fd, "1\n", 2) == 2);
    note("ftruncate", ftruncate(fd, 0) == 0);
    const int again = open(link, O_WRONLY | O_CLOEXEC);
    note("reopen", again >= 0);
    if (again >= 0) close(again);
  }
  const int by_path = open(pidfile, O_WRONLY | O_CLOEXEC);
  note("open", by_path >= 0);
  if (by_path >= 0) close(by_path);
  const std::string text = "rewrite=" + results + "\n";
  const std::string tmp = std::string(report) + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    std::_Exit(96);
  }
  close(fd);
  rename(tmp.c_str(), report);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s REPORT_FILE MODE [ARGS...]\n", argv[0]);
    return 2;
  }
  struct sigaction term {};
  term.sa_handler = on_term;
  sigaction(SIGTERM, &term, nullptr);
  std::printf("probe stdout %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  std::fprintf(stderr, "probe stderr %d\n", static_cast<int>(getpid()));
  write_report(argv[1]);
  const std::string mode = argv[2];
  if (mode == "run") run_until_term();
  if (mode == "exit" && argc > 3) return std::atoi(argv[3]);
  if (mode == "notify-ready") {
    notify("STATUS=probe up\nREADY=1\n");
    run_until_term();
  }
  if (mode == "notify-fail" && argc > 4) {
    notify("STATUS=starting");
    notify(std::string("STATUS=") + argv[3] + "\nERRNO=" + argv[4] + "\n");
    return 1;
  }
  if (mode == "notify-silent-exit" && argc > 3) return std::atoi(argv[3]);
  if (mode == "pipe-ready") {
    pipe_write("0");
    run_until_term();
  }
  if (mode == "pipe-fail" && argc > 3) {
    pipe_write(std::string("1 ") + argv[3]);
    return 1;
  }
  if (mode == "pipe-fail-stay" && argc > 3) {
    // The report, with the pipe kept open, as a program that reports and cleans up slowly does.
    signal(SIGPIPE, SIG_IGN);
    const std::string report = std::string("1 ") + argv[3];
    if (write(status_fd(), report.data(), report.size()) < 0) std::_Exit(94);
    run_until_term();
  }
  if (mode == "pipe-raw" && argc > 3) {
    pipe_write(argv[3]);
    run_until_term();
  }
  if (mode == "pipe-close") {
    close(status_fd());
    run_until_term();
  }
  if (mode == "own-session") {
    // Out of the process group the launcher was started in, so a signal to the group misses it.
    if (setsid() < 0) std::_Exit(95);
    run_until_term();
  }
  if (mode == "fork-child" && argc > 3) {
    fork_reporting_child(argv[3]);
    run_until_term();
  }
  if (mode == "fork-child-exit" && argc > 4) {
    fork_reporting_child(argv[3]);
    // Exits only once the test says so (the launcher has returned): a daemon already dead when
    // the launcher sees its exec is, by --ready=exec's rule, one that failed to start.
    for (int i = 0; i < 2000 && access(argv[4], F_OK) != 0; ++i) usleep(5000);
    return 0;
  }
  if (mode == "rewrite-pidfile" && argc > 3) {
    try_rewrites(argv[3], (std::string(argv[1]) + ".rewrite").c_str());
    run_until_term();
  }
  if (mode == "ignore-term") {
    signal(SIGTERM, SIG_IGN);
    for (;;) pause();
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
