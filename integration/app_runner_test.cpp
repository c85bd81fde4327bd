// The UnixApplicationRunner on the real kernel: a tiny application started as a daemon by a
// forked "command" process, which exits once the daemon reported ready; SIGTERM then stops it,
// and it ends by that signal with its PID file removed. The test is the subreaper, so the
// daemon is reparented to it and can be waited for.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/app/application.h"
#include "daemonkit/core/app/runner.h"
#include "daemonkit/core/reactor/reactor.h"
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

class Failing : public Service {
 public:
  Failing() : Service("db") {}

 protected:
  StepResult<void> do_start() override {
    return step_failed(StepError::plain(StepKind::kApplication, "no database at /nowhere"));
  }
};

class AppRunnerOnKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char pattern[] = "/tmp/daemonkit-runner-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    pidfile_ = dir_ + "/app.pid";
    logfile_ = dir_ + "/app.log";
  }
  void TearDown() override {
    // Only our own unreaped children are signalled: a pid may have been reused by then.
    const pid_t pid = std::atoi(slurp(pidfile_).c_str());
    if (pid > 1 && ::waitpid(pid, nullptr, WNOHANG) == 0) ::kill(pid, SIGKILL);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::filesystem::remove_all(dir_);
  }

  // Forks the command, which runs the application through Runner::run(); returns its exit
  // status once it exited (the daemon reported, or the start failed).
  int start(bool failing) {
    const std::string err_path = dir_ + "/stderr";
    const pid_t command = ::fork();
    if (command == 0) {
      const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
      ::dup2(err, 2);
      ::close(err);
      sys::RealSyscalls os;
      LogRelay relay;
      ReactorOptions reactor_options;
      reactor_options.log = relay.sink();
      auto reactor = Reactor::create(os, reactor_options);
      if (!reactor) ::_exit(70);
      Application app("tiny");
      if (failing && !app.service().add(std::make_shared<Failing>())) ::_exit(71);
      RunnerOptions options;
      options.pidfile = pidfile_;
      options.logfile = logfile_;
      options.rundir = dir_;
      options.start_timeout = std::chrono::seconds(10);
      Runner runner(os, **reactor, app, options);
      runner.relay_into_log(relay);
      ::_exit(runner.run());
    }
    int status = 0;
    EXPECT_EQ(::waitpid(command, &status, 0), command);
    stderr_ = slurp(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string dir_;
  std::string pidfile_;
  std::string logfile_;
  std::string stderr_;
};

TEST_F(AppRunnerOnKernel, StartsAsADaemonStopsOnSigtermAndExitsByIt) {
  ASSERT_EQ(start(false), 0) << stderr_;
  const pid_t daemon = std::atoi(slurp(pidfile_).c_str());
  ASSERT_GT(daemon, 1) << "no pid in " << pidfile_;
  // Ours (adopted, not yet reaped), so the signal cannot reach a stranger.
  ASSERT_EQ(::waitpid(daemon, nullptr, WNOHANG), 0);
  ASSERT_EQ(::kill(daemon, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(daemon, &status, 0), daemon);
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
  const std::string log = slurp(logfile_);
  EXPECT_THAT(log, HasSubstr("tiny starting up."));
  EXPECT_THAT(log, HasSubstr("Received SIGTERM, shutting down."));
  EXPECT_THAT(log, HasSubstr("Server Shut Down."));
}

TEST_F(AppRunnerOnKernel, AFailedStartExitsOneWithTheMessageAndNoPidFile) {
  EXPECT_EQ(start(true), 1);
  EXPECT_EQ(stderr_,
            "An error has occurred: service 'db': no database at /nowhere\n"
            "Please look at log file for more information.\n");
  EXPECT_FALSE(std::filesystem::exists(pidfile_));
}

}  // namespace
}  // namespace daemonkit::core
