// describe_wait_status: how a process ended, in the words the status pipe's messages use.
#include "daemonkit/core/status/wait_status.h"

#include <signal.h>
#include <sys/wait.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace daemonkit::core {
namespace {

TEST(DescribeWaitStatus, Exit) {
  EXPECT_EQ(describe_wait_status(W_EXITCODE(3, 0)), "exit status 3");
  EXPECT_EQ(describe_wait_status(W_EXITCODE(0, 0)), "exit status 0");
}

TEST(DescribeWaitStatus, KilledBySignal) {
  EXPECT_EQ(describe_wait_status(W_EXITCODE(0, SIGKILL)), "killed by signal 9 (SIGKILL)");
}

TEST(DescribeWaitStatus, CoreDump) {
  EXPECT_EQ(describe_wait_status(W_EXITCODE(0, SIGSEGV) | WCOREFLAG),
            "killed by signal 11 (SIGSEGV), core dumped");
}

TEST(DescribeWaitStatus, StoppedAndContinued) {
  EXPECT_EQ(describe_wait_status(W_STOPCODE(SIGSTOP)), "stopped by signal 19 (SIGSTOP)");
  EXPECT_EQ(describe_wait_status(0xffff), "continued");
}

TEST(DescribeWaitStatus, SignalWithoutAName) {
  // Real-time signals have no abbreviation in glibc's table.
  EXPECT_EQ(describe_wait_status(W_EXITCODE(0, SIGRTMIN + 1)),
            fmt::format("killed by signal {}", SIGRTMIN + 1));
}

}  // namespace
}  // namespace daemonkit::core
