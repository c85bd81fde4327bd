// The exec-failure report on the real kernel: a forked child whose exec fails reports ENOENT
// through the close-on-exec pipe; one whose exec succeeds closes it with nothing written.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <optional>

#include <gtest/gtest.h>

#include "daemonkit/core/process/exec_failure.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

// Forks a child that execs `path` and reports a failed exec; returns what the parent reads.
sys::Result<std::optional<ExecFailure>> spawn_and_read(const char* path) {
  sys::RealSyscalls os;
  std::array<int, 2> pipe{};
  if (::pipe2(pipe.data(), O_CLOEXEC) != 0) return sys::fail(errno, "pipe2");
  const pid_t pid = ::fork();
  if (pid < 0) return sys::fail(errno, "fork");
  if (pid == 0) {
    char* const argv[] = {const_cast<char*>(path), nullptr};
    char* const envp[] = {nullptr};
    ::execve(path, argv, envp);
    write_exec_failure(os, pipe[1], {ChildStep::kExec, errno});
    ::_exit(127);
  }
  ::close(pipe[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  auto report = read_exec_failure(os, pipe[0]);
  ::close(pipe[0]);
  return report;
}

TEST(ExecFailureOnLinux, AMissingProgramIsReportedWithItsErrno) {
  auto report = spawn_and_read("/no/such/program");
  ASSERT_TRUE(report) << sys::to_string(report.error());
  ASSERT_TRUE(report->has_value());
  EXPECT_EQ(**report, (ExecFailure{ChildStep::kExec, ENOENT}));
  EXPECT_EQ(describe(**report, "/no/such/program"),
            "exec /no/such/program: No such file or directory (ENOENT)");
}

TEST(ExecFailureOnLinux, ASuccessfulExecWritesNothing) {
  auto report = spawn_and_read("/bin/true");
  ASSERT_TRUE(report) << sys::to_string(report.error());
  EXPECT_FALSE(report->has_value());
}

}  // namespace
}  // namespace daemonkit::core
