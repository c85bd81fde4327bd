// DaemonContext on the real kernel: each case forks a "command" process that daemonizes, and
// the test process plays the shell that started it. The test is the subreaper
// (PR_SET_CHILD_SUBREAPER), so the daemon is reparented to it and can be waited for; ctest runs
// each case as its own process with a timeout, so a hang fails one case.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using ::testing::HasSubstr;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_string(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

std::string read_to_eof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return out;
    }
  }
}

// What the daemon reports about itself, one "key value" line each.
// The parent of `pid` as /proc/<pid>/stat names it, once it is `expected` or after 5 s.
// The daemon is adopted by the subreaper only when the intermediate has exited, which races
// with the daemon's own start: the intermediate _exits right after its fork, but the daemon may
// run ahead of it (it does under ASan). So the test asks the kernel afterwards, and waits.
pid_t parent_once_settled(pid_t pid, pid_t expected) {
  pid_t parent = -1;
  for (int attempt = 0; attempt < 500 && parent != expected; ++attempt) {
    if (attempt > 0) ::usleep(10000);
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream fields(stat.substr(paren + 2));
    char state = 0;
    fields >> state >> parent;
  }
  return parent;
}

std::string describe_self(DaemonContext& ctx) {
  std::ostringstream out;
  out << "pid " << ::getpid() << "\n";
  out << "sid " << ::getsid(0) << "\n";
  const mode_t mask = ::umask(0);
  ::umask(mask);
  out << "umask " << mask << "\n";
  out << "cwd " << std::filesystem::current_path().string() << "\n";
  uid_t r = 0, e = 0, s = 0;
  ::getresuid(&r, &e, &s);
  out << "uids " << r << "/" << e << "/" << s << "\n";
  errno = 0;
  const bool regained = ::setuid(0) == 0;
  out << "setuid0 " << (regained ? "ok" : std::to_string(errno)) << "\n";
  out << "pidfile_fd " << (ctx.pidfile() ? ctx.pidfile()->fd() : -1) << "\n";
  out << "stop_fd " << ctx.stop_fd() << "\n";
  DIR* dir = ::opendir("/proc/self/fd");
  const int skip = dir ? ::dirfd(dir) : -1;
  std::string fds;
  while (dirent* entry = dir ? ::readdir(dir) : nullptr) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd == skip) continue;
    char target[512] = {};
    const std::string link = std::string("/proc/self/fd/") + entry->d_name;
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    out << "fd" << fd << " " << (n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?")
        << "\n";
    fds += std::to_string(fd) + ",";
  }
  if (dir) ::closedir(dir);
  out << "fds " << fds << "\n";
  return out.str();
}

std::map<std::string, std::string> parse_report(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.find(' ');
    if (space != std::string::npos) out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

class DaemonizeOnKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(os_.prctl(PR_SET_CHILD_SUBREAPER, 1));
    char pattern[] = "/tmp/daemonkit-daemonize-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    ::chmod(dir_.c_str(), 0777);
    pidfile_ = dir_ + "/d.pid";
  }

  void TearDown() override {
    // A daemon a failed assertion left behind: stop it and reap everything we adopted. Only
    // our own unreaped children are signalled: any other pid may have been reused by then,
    // by another test's daemon under ctest -j.
    auto ours_and_running = [](pid_t pid) {
      return pid > 1 && ::waitpid(pid, nullptr, WNOHANG) == 0;
    };
    const pid_t pid = std::atoi(slurp(pidfile_).c_str());
    if (ours_and_running(pid)) ::kill(pid, SIGKILL);
    for (pid_t p : started_) {
      if (ours_and_running(p)) ::kill(p, SIGKILL);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::filesystem::remove_all(dir_);
  }

  struct Launched {
    int exit_code = -1;
    std::string stderr_text;
    std::string report;  // what the daemon wrote on the report pipe (empty if it never did)
  };

  // The daemon's program: gets the context and the report descriptor, returns its exit code.
  using Program = std::function<int(DaemonContext&, int report_fd)>;

  // Forks the command, which runs `before` (as the command process, before daemonizing), then
  // DaemonContext(options).open(), then `program` in the daemon. Waits for the command to exit
  // and for the daemon's report (EOF of the report pipe).
  Launched launch(DaemonOptions options, Program program, std::function<void()> before = {}) {
    int report[2];
    EXPECT_EQ(::pipe2(report, O_CLOEXEC), 0);
    const std::string err_path = dir_ + "/stderr." + std::to_string(launches_++);
    const pid_t command = ::fork();
    if (command == 0) {
      // ---- the command process (and, after open(), the daemon) ----
      ::close(report[0]);
      const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
      ::dup2(err, 2);
      ::close(err);
      if (before) before();
      options.files_preserve.push_back(report[1]);
      if (!options.start_timeout_ms) options.start_timeout_ms = 10000;
      DaemonContext ctx(os_, options, Environment{},
                        [](std::string_view line) { write_string(2, std::string(line) + "\n"); });
      auto opened = ctx.open();
      if (!opened) exit_with_error(os_, opened.error());
      const int code = program(ctx, report[1]);
      ::_exit(code);
    }
    started_.push_back(command);
    ::close(report[1]);
    Launched out;
    int status = 0;
    EXPECT_EQ(::waitpid(command, &status, 0), command);
    out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    out.report = read_to_eof(report[0]);
    ::close(report[0]);
    out.stderr_text = slurp(err_path);
    return out;
  }

  // A daemon that reports ready, describes itself, and runs until its stop signal.
  static int serve(DaemonContext& ctx, int report_fd) {
    ctx.ready();
    write_string(report_fd, describe_self(ctx));
    ::close(report_fd);
    struct pollfd stop {
      ctx.stop_fd(), POLLIN, 0
    };
    const int ready = ::poll(&stop, 1, 20000);
    ctx.close();
    return ready == 1 ? 0 : 9;
  }

  // Stops the daemon whose pid it reported. A missing report must fail the test, not become
  // kill(0, SIGTERM), which would stop the whole process group, ctest included.
  static void stop_reported(const std::string& pid_text, const std::string& report) {
    const pid_t pid = std::atoi(pid_text.c_str());
    ASSERT_GT(pid, 1) << "no pid in the daemon's report: \"" << report << "\"";
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    EXPECT_EQ(reap(pid), 0);
  }

  // Waits for an adopted daemon (we are its subreaper).
  static int reap(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  sys::RealSyscalls os_;
  std::string dir_;
  std::string pidfile_;
  std::vector<pid_t> started_;
  int launches_ = 0;
};

DaemonOptions with_pidfile(const std::string& path) {
  DaemonOptions options;
  options.pidfile = path;
  options.detach_process = true;
  return options;
}

TEST_F(DaemonizeOnKernel, DaemonIsDetachedCleanAndLocked) {
  // An fd the command inherited without CLOEXEC must not reach the daemon.
  const int leak = ::open("/dev/zero", O_RDONLY);
  ASSERT_GE(leak, 0);
  const Launched run = launch(with_pidfile(pidfile_), serve);
  ::close(leak);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_EQ(run.stderr_text, "");
  auto report = parse_report(run.report);
  const pid_t daemon = std::atoi(report["pid"].c_str());
  ASSERT_GT(daemon, 1) << run.report;

  EXPECT_EQ(parent_once_settled(daemon, ::getpid()), ::getpid())
      << "reparented to us, the subreaper";
  EXPECT_NE(report["sid"], report["pid"]) << "not a session leader: cannot regain a tty";
  EXPECT_NE(report["sid"], std::to_string(::getsid(0)));
  EXPECT_EQ(report["cwd"], "/");
  EXPECT_EQ(report["umask"], std::to_string(077));
  EXPECT_EQ(report["fd0"], "/dev/null");
  EXPECT_EQ(report["fd1"], "/dev/null");
  EXPECT_EQ(report["fd2"], "/dev/null");
  // Exactly: stdio, the PID file, the stop signalfd, and the report pipe we preserved.
  const std::string expected_fds[] = {"0", "1", "2", report["pidfile_fd"], report["stop_fd"]};
  std::string fds = report["fds"];
  for (const std::string& fd : expected_fds) {
    const auto at = ("," + fds).find("," + fd + ",");
    EXPECT_NE(at, std::string::npos) << fd << " missing from " << fds;
  }
  EXPECT_EQ(std::count(fds.begin(), fds.end(), ','), 6) << run.report;

  EXPECT_EQ(slurp(pidfile_), std::to_string(daemon) + "\n");
  const int probe = ::open(pidfile_.c_str(), O_RDONLY);
  ASSERT_GE(probe, 0);
  EXPECT_EQ(::flock(probe, LOCK_EX | LOCK_NB), -1);
  EXPECT_EQ(errno, EWOULDBLOCK) << "the daemon holds the lock";
  ::close(probe);

  ASSERT_EQ(::kill(daemon, SIGTERM), 0);
  EXPECT_EQ(reap(daemon), 0);
  EXPECT_FALSE(std::filesystem::exists(pidfile_)) << "SIGTERM is an orderly stop";
}

TEST_F(DaemonizeOnKernel, SecondStartIsRefusedWithThePidOfTheFirst) {
  const Launched first = launch(with_pidfile(pidfile_), serve);
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  const std::string daemon = parse_report(first.report)["pid"];
  const Launched second = launch(with_pidfile(pidfile_), serve);
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.stderr_text, HasSubstr("Another server is running, PID " + daemon + "\n"));
  EXPECT_THAT(second.stderr_text, HasSubstr("--pidfile"));
  EXPECT_EQ(slurp(pidfile_), daemon + "\n") << "the refused start left the file alone";
  stop_reported(daemon, first.report);
}

TEST_F(DaemonizeOnKernel, StaleFileIsTakenOver) {
  // A pid that surely is not running: a child we have reaped.
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  { std::ofstream(pidfile_) << gone << "\n"; }
  const Launched run = launch(with_pidfile(pidfile_), serve);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_THAT(run.stderr_text, HasSubstr("Removing stale pidfile " + pidfile_));
  const std::string daemon = parse_report(run.report)["pid"];
  EXPECT_EQ(slurp(pidfile_), daemon + "\n");
  stop_reported(daemon, run.report);
}

TEST_F(DaemonizeOnKernel, DaemonDyingBeforeItReportsFailsTheCommand) {
  const Launched run = launch(with_pidfile(pidfile_), [](DaemonContext&, int) { return 3; });
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.stderr_text, HasSubstr("An error has occurred: the daemon exited before "
                                         "reporting its status"));
  EXPECT_FALSE(std::filesystem::exists(pidfile_)) << "no PID file may remain";
}

TEST_F(DaemonizeOnKernel, SilentDaemonTimesOutInsteadOfHanging) {
  DaemonOptions options = with_pidfile(pidfile_);
  options.start_timeout_ms = 300;
  const Launched run = launch(options, [](DaemonContext& ctx, int report_fd) {
    // Never reports; closes the report pipe so launch() returns, then waits to be stopped.
    ::close(report_fd);
    struct pollfd stop {
      ctx.stop_fd(), POLLIN, 0
    };
    ::poll(&stop, 1, 20000);
    ctx.close();
    return 0;
  });
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.stderr_text, HasSubstr("timed out after 300 ms"));
  // The daemon may still be starting: its PID file stays, naming it, until it stops.
  const int daemon = std::atoi(slurp(pidfile_).c_str());
  ASSERT_GT(daemon, 1);
  ::kill(daemon, SIGTERM);
  EXPECT_EQ(reap(daemon), 0);
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
}

TEST_F(DaemonizeOnKernel, FailedPrivilegeDropFailsTheCommandWithTheStep) {
  DaemonOptions options = with_pidfile(pidfile_);
  options.privileges.user = "0";
  options.privileges.group = "0";
  // As an unprivileged user (root first becomes nobody), asking for root must fail.
  const Launched run = launch(options, serve, [] {
    if (::geteuid() == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
          ::setresuid(65534, 65534, 65534) != 0) {
        ::_exit(120);
      }
    }
  });
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.stderr_text, HasSubstr("An error has occurred: setresgid(0): Operation not "
                                         "permitted (EPERM)"));
  EXPECT_FALSE(std::filesystem::exists(pidfile_)) << "no PID file may remain";
}

TEST_F(DaemonizeOnKernel, RootShedsToNobodyForGood) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change uid";
  if (!::getpwnam("nobody")) GTEST_SKIP() << "no user named nobody";
  DaemonOptions options = with_pidfile(pidfile_);
  options.privileges.user = "nobody";
  const Launched run = launch(options, serve);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  auto report = parse_report(run.report);
  const std::string nobody = std::to_string(::getpwnam("nobody")->pw_uid);
  EXPECT_EQ(report["uids"], nobody + "/" + nobody + "/" + nobody);
  EXPECT_EQ(report["setuid0"], std::to_string(EPERM)) << "root cannot be regained";
  // The PID file was written as root; the unprivileged daemon still cleans up on SIGTERM
  // (unlinking if the directory allows, emptying it otherwise).
  const pid_t daemon = std::atoi(report["pid"].c_str());
  ::kill(daemon, SIGTERM);
  EXPECT_EQ(reap(daemon), 0);
  EXPECT_TRUE(!std::filesystem::exists(pidfile_) || slurp(pidfile_).empty());
}

}  // namespace
}  // namespace daemonkit::core
