// The worked example of fake/README.md, compiled and run so the README cannot rot.
// A downstream project's daemon code, written against sys::Syscalls, tested on FakeSyscalls.
#include <sys/wait.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"
#include "daemonkit/sys/syscalls.h"

// ---- The project's code (normally in its own library) -------------------------------------
namespace mydaemon {

using daemonkit::sys::Result;
using daemonkit::sys::Syscalls;

// Writes the pid file, then gives up root: groups, then gid, then uid.
Result<void> become_service(Syscalls& os, const char* pid_path, uid_t uid, gid_t gid) {
  auto fd = os.open(pid_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (!fd) return daemonkit::sys::fail(fd.error().about(pid_path));
  const std::string text = std::to_string(os.getpid()) + "\n";
  auto written = os.write(*fd, text.data(), text.size());
  static_cast<void>(os.close(*fd));
  if (!written) return daemonkit::sys::fail(written.error());
  const gid_t groups[] = {gid};
  if (auto r = os.setgroups(groups); !r) return r;
  if (auto r = os.setgid(gid); !r) return r;
  return os.setuid(uid);
}

// A worker process reports "ready" through a pipe and exits. Each side of the fork is its own
// function, so a test can run both sides in one fake kernel.
void worker_main(Syscalls& os, daemonkit::sys::PipeFds pipe) {
  // ---- child: async-signal-safe calls only, until exit ----
  static_cast<void>(os.close(pipe.read_end));
  const bool sent = os.write(pipe.write_end, "ready", 5).has_value();
  os.exit_now(sent ? 0 : 1);
}

Result<void> await_ready(Syscalls& os, daemonkit::sys::PipeFds pipe) {
  static_cast<void>(os.close(pipe.write_end));
  char buf[5];
  auto n = os.read(pipe.read_end, buf, sizeof buf);
  static_cast<void>(os.close(pipe.read_end));
  if (!n) return daemonkit::sys::fail(n.error());
  if (std::string(buf, *n) != "ready") return daemonkit::sys::fail(ECHILD, "await_ready");
  return {};
}

Result<pid_t> start_worker(Syscalls& os) {
  auto pipe = os.pipe2(O_CLOEXEC);
  if (!pipe) return daemonkit::sys::fail(pipe.error());
  auto pid = os.fork();
  if (!pid) return daemonkit::sys::fail(pid.error());
  if (*pid == 0) worker_main(os, *pipe);
  if (auto ready = await_ready(os, *pipe); !ready) return daemonkit::sys::fail(ready.error());
  return *pid;
}

}  // namespace mydaemon

// ---- The project's tests -----------------------------------------------------------------
namespace {

using daemonkit::fake::CalledBefore;
using daemonkit::fake::CallRecord;
using daemonkit::fake::FakeSyscalls;
using daemonkit::fake::ForkAs;
using daemonkit::fake::ProcessEnded;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(BecomeService, WritesThePidFileThenDropsRootInOrder) {
  FakeSyscalls os;  // root, pid 1000, with /run, /tmp, /dev/null and /proc/self/fd
  ASSERT_TRUE(mydaemon::become_service(os, "/run/my.pid", 65534, 65534));

  EXPECT_EQ(os.read_file("/run/my.pid"), "1000\n");
  EXPECT_EQ(*os.getresuid(), (daemonkit::sys::ResUids{65534, 65534, 65534}));
  EXPECT_THAT(os.transcript(), CalledBefore("setgid", "setuid"));
  EXPECT_THAT(os.open_fds(os.getpid()), IsEmpty());
}

TEST(BecomeService, ReportsEveryFailureWithTheCallThatFailed) {
  // Run once to learn how many calls succeed, then fail each of them in turn.
  FakeSyscalls probe;
  ASSERT_TRUE(mydaemon::become_service(probe, "/run/my.pid", 65534, 65534));
  for (std::size_t i = 0; i < probe.transcript().size(); ++i) {
    FakeSyscalls os;
    os.fail_call_at(i);  // the typical errno of whatever call sits at position i
    auto result = mydaemon::become_service(os, "/run/my.pid", 65534, 65534);
    const auto& failed = os.transcript().at(i);
    if (failed.name == "getpid" || failed.name == "close") {
      EXPECT_TRUE(result) << "getpid cannot fail, a failed close is ignored";
      continue;
    }
    ASSERT_FALSE(result) << "no error reported when " << failed.to_string();
    EXPECT_EQ(result.error().call, failed.name);
    EXPECT_NE(os.getresuid()->effective, 65534u) << "half-dropped after " << failed.to_string();
  }
}

TEST(StartWorker, TheWorkerReportsAndTheParentReadsInOneKernel) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();

  // The worker's side first: fork continues in the child, which writes and exits.
  os.script_fork(ForkAs::kChild);
  try {
    static_cast<void>(mydaemon::start_worker(os));
    FAIL() << "the worker should have exited";
  } catch (const ProcessEnded& ended) {
    EXPECT_EQ(ended.exit_code(), 0);
  }
  const pid_t worker = os.last_forked_pid();

  // Then the parent's side of the same fork. Descriptors are numbered as on Linux (lowest
  // free first), so the pipe start_worker made is {0, 1}.
  os.switch_to(parent);
  ASSERT_TRUE(mydaemon::await_ready(os, {0, 1}));
  auto waited = os.waitpid(worker, 0);
  ASSERT_TRUE(waited);
  EXPECT_EQ(WEXITSTATUS(waited->status), 0);
  EXPECT_THAT(os.open_fds(parent), IsEmpty());
}

TEST(StartWorker, AWorkerThatDiesBeforeReportingIsAnError) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  os.fail_nth("write", 1, EIO);
  os.script_fork(ForkAs::kChild);
  try {
    static_cast<void>(mydaemon::start_worker(os));
  } catch (const ProcessEnded& ended) {
    EXPECT_EQ(ended.exit_code(), 1);
  }
  os.switch_to(parent);
  auto ready = mydaemon::await_ready(os, {0, 1});
  ASSERT_FALSE(ready);
  EXPECT_EQ(ready.error().code, ECHILD);  // EOF: the worker's write end closed at exit
}

TEST(StartWorker, AParentWaitingForAWorkerThatNeverRanFailsInsteadOfHanging) {
  FakeSyscalls os;  // fork continues as the parent by default
  auto result = mydaemon::start_worker(os);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, EDEADLK);
  // The transcript says which read would have hung, and why.
  EXPECT_THAT(os.transcript(),
              Contains(Field(&CallRecord::note, HasSubstr("would block forever"))));
}

}  // namespace
