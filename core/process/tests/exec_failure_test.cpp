// The exec-failure report on the fake kernel: what crosses the pipe, what the parent makes of
// an empty, a good and a malformed report, and the text the user reads.
#include "daemonkit/core/process/exec_failure.h"

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <optional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using fake::IsOk;

// A pipe whose write end gets `write` and is then closed, as a child's exit or exec closes it.
template <typename Write>
sys::Result<std::optional<ExecFailure>> report_through_pipe(FakeSyscalls& os, Write write) {
  auto pipe = os.pipe2(O_CLOEXEC);
  EXPECT_TRUE(pipe);
  write(pipe->write_end);
  EXPECT_TRUE(os.close(pipe->write_end));
  auto report = read_exec_failure(os, pipe->read_end);
  EXPECT_TRUE(os.close(pipe->read_end));
  return report;
}

TEST(ExecFailure, ARecordCrossesThePipeIntact) {
  FakeSyscalls os;
  for (const ExecFailure sent :
       {ExecFailure{ChildStep::kExec, ENOENT}, ExecFailure{ChildStep::kChdir, EACCES},
        ExecFailure{ChildStep::kSignals, EINVAL}, ExecFailure{ChildStep::kUid, EPERM}}) {
    auto report = report_through_pipe(os, [&](int fd) { write_exec_failure(os, fd, sent); });
    ASSERT_THAT(report, IsOk());
    EXPECT_EQ(*report, std::optional<ExecFailure>(sent));
  }
}

TEST(ExecFailure, NothingWrittenMeansTheExecSucceeded) {
  FakeSyscalls os;
  auto report = report_through_pipe(os, [](int) {});
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(*report, std::nullopt);
}

TEST(ExecFailure, AShortALongOrAForeignReportIsMalformed) {
  FakeSyscalls os;
  const std::array<unsigned char, 3> short_record{0xE7, 9, 0};
  EXPECT_THAT(
      report_through_pipe(
          os, [&](int fd) { (void)os.write(fd, short_record.data(), short_record.size()); }),
      FailsWith(EPROTO));
  EXPECT_THAT(report_through_pipe(os,
                                  [&](int fd) {
                                    write_exec_failure(os, fd, {ChildStep::kExec, ENOENT});
                                    (void)os.write(fd, "x", 1);
                                  }),
              FailsWith(EPROTO));
  const std::array<unsigned char, kExecFailureRecordSize> foreign{'h', 'e', 'l',  'l',
                                                                  'o', '!', '\n', 0};
  EXPECT_THAT(
      report_through_pipe(os, [&](int fd) { (void)os.write(fd, foreign.data(), foreign.size()); }),
      FailsWith(EPROTO));
  const std::array<unsigned char, kExecFailureRecordSize> unknown_step{0xE7, 42, 0, 0, 2, 0, 0, 0};
  EXPECT_THAT(
      report_through_pipe(
          os, [&](int fd) { (void)os.write(fd, unknown_step.data(), unknown_step.size()); }),
      FailsWith(EPROTO));
}

TEST(ExecFailure, AFailedReadIsReturned) {
  FakeSyscalls os;
  os.fail_nth("read", 1, EIO);
  EXPECT_THAT(report_through_pipe(os, [](int) {}), FailsWith(EIO, "read"));
}

TEST(ExecFailure, TheUserReadsTheStepTheErrorAndForExecTheProgram) {
  EXPECT_EQ(describe({ChildStep::kExec, ENOENT}, "/no/such"),
            "exec /no/such: No such file or directory (ENOENT)");
  EXPECT_EQ(describe({ChildStep::kChdir, EACCES}, "/bin/true"),
            "chdir: Permission denied (EACCES)");
  EXPECT_EQ(describe({ChildStep::kDescriptors, EMFILE}, "/bin/true"),
            "child fds: Too many open files (EMFILE)");
}

}  // namespace
}  // namespace daemonkit::core
