// The fault matrix: for every call a good run makes, and every errno that call can really
// return, run again with that one call failing, and check what a user would see. The daemonize
// path (all three processes), the PID-file path and the privilege path each get a matrix; each
// prints how many (call, errno) cases it covered.
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonize_harness.h"
#include "daemonkit/core/daemon/pid_file.h"
#include "daemonkit/core/daemon/privileges.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::CallRecord;
using fake::FakeSyscalls;
using testing::DaemonizeRun;
using testing::fake_options;
using ::testing::HasSubstr;
using testing::run_daemonize;

// What each call can really fail with on these paths, from its man page, leaving out what only
// a bug can cause (EBADF, EFAULT, EINVAL for bad flags). EPIPE is left out of write: on the
// status pipe it means the first parent is gone, which a single-call fault cannot model.
// A call missing here fails the test, so a new call on the path cannot go unexamined.
const std::map<std::string, std::vector<int>>& real_errnos() {
  static const std::map<std::string, std::vector<int>> kErrnos = {
      {"fork", {EAGAIN, ENOMEM}},
      {"setsid", {EPERM}},
      {"pipe2", {EMFILE, ENFILE}},
      {"open", {EACCES, EMFILE, ENFILE, ENOENT, ELOOP, ENOSPC, EROFS, ENOMEM, EINTR}},
      // Linux releases the descriptor even when close fails; the fake's injected failures
      // happen before any state changes, which for close would model a kernel that keeps it.
      {"close", {}},
      {"close_range", {ENOSYS, EPERM, ENOMEM}},
      {"getdents64", {EIO, ENOENT}},
      {"read", {EIO, EINTR}},
      {"write", {EIO, ENOSPC, EDQUOT, EINTR}},
      {"fstat", {EIO, ENOMEM}},
      {"lstat", {EACCES, ENOENT, ELOOP, ENOMEM}},
      {"flock", {EWOULDBLOCK, EINTR, ENOLCK}},
      {"ftruncate", {EIO, EINTR, EPERM}},
      {"dup2", {EBUSY, EINTR}},
      {"fcntl", {}},
      {"sigaction", {EINVAL}},
      {"sigprocmask", {}},
      {"signalfd", {EMFILE, ENFILE, ENOMEM, ENODEV}},
      {"chdir", {EACCES, ENOENT, ENOTDIR, ELOOP, EIO}},
      {"chroot", {EPERM, EACCES, ENOENT}},
      {"setrlimit", {EPERM}},
      {"getrlimit", {}},
      {"getresuid", {}},
      {"getresgid", {}},
      {"setresuid", {EPERM, EAGAIN}},
      {"setresgid", {EPERM}},
      {"setgroups", {EPERM, ENOMEM}},
      {"setuid", {EPERM, EAGAIN}},
      {"getpwnam", {EIO, EMFILE, ENOMEM}},
      {"getpwuid", {EIO, EMFILE, ENOMEM}},
      {"getgrnam", {EIO, EMFILE, ENOMEM}},
      // glibc's getgrouplist fails only when it cannot allocate; EINVAL is RealSyscalls' answer
      // for more groups than the kernel takes.
      {"getgrouplist", {ENOMEM, EINVAL}},
      {"getcwd", {ENOENT, EACCES}},
      {"unlink", {EACCES, EPERM, EBUSY, EIO, EROFS}},
      {"kill", {EPERM, ESRCH}},
      {"waitpid", {EINTR, ECHILD}},
      {"getpid", {}},
      {"getppid", {}},
      {"umask", {}},
      {"exit_now", {}},
  };
  return kErrnos;
}

bool mentions(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// The failures a correct daemonizer survives: a close whose descriptor is gone anyway, the
// best fd-closing strategy replaced by the next, the thread count left unknown (logged),
// EINTR where the call is retried, setuid(0) failing as it must, a glibc-reserved signal.
bool survivable(const CallRecord& r, int error) {
  if (r.name == "getdents64") return true;
  // The path vanished after we locked it: acquire() starts over.
  if (r.name == "lstat" && error == ENOENT) return true;
  // The same, seen by the open of the PID file's writing descriptor after the lock.
  if (r.name == "open" && error == ENOENT && r.args.size() > 1 && mentions(r.args[1], "O_WRONLY")) {
    return true;
  }
  if (r.name == "close_range") return error == ENOSYS || error == EPERM;
  if (r.name == "open" && !r.args.empty() && mentions(r.args[0], "/proc/self")) return true;
  if (r.name == "read" && error == EIO) return false;
  if (error == EINTR) return true;
  if (r.name == "setuid") return error == EPERM;
  if (r.name == "sigaction") return true;
  return false;
}

// The descriptors each process held as it ended, seen from the fake's before_each_call hook at
// its exit_now: what a process that went on running instead would have kept.
struct HeldAtExit {
  std::vector<int> fds;
  std::string described;  // "5 -> pipe:[1]:r" per line, to place a leak
};
using FdsAtExit = std::map<pid_t, HeldAtExit>;

void record_fds_at_exit(FakeSyscalls& os, FdsAtExit& out) {
  os.before_each_call([&os, &out](std::string_view name, pid_t caller) {
    if (name != "exit_now") return;
    HeldAtExit& held = out[caller];
    held.fds = os.open_fds(caller);
    for (int fd : held.fds)
      held.described += fmt::format("\n  {} -> {}", fd, os.describe_fd(caller, fd));
  });
}

// After a failed start, no process is left holding a descriptor the start opened: the first
// parent ends with the stdio it began with, and a daemon that gave up with nothing more. (The
// intermediate opens nothing; it exits holding what it inherited.)
void expect_nothing_leaked(const DaemonizeRun& run, const FdsAtExit& fds) {
  const std::vector<int> stdio = {0, 1, 2};
  const auto parent = fds.find(run.first_parent);
  ASSERT_NE(parent, fds.end()) << "the first parent did not exit";
  EXPECT_EQ(parent->second.fds, stdio)
      << "LEAK: the first parent ended holding" << parent->second.described;
  if (run.daemon == 0 || run.daemon == run.first_parent) return;
  const auto daemon = fds.find(run.daemon);
  if (daemon == fds.end()) return;  // it never ran (a fork failed) or is still running
  EXPECT_THAT(daemon->second.fds, ::testing::IsSubsetOf(stdio))
      << "LEAK: the daemon ended holding" << daemon->second.described;
}

struct MatrixCount {
  int cases = 0;
  std::set<std::string> calls;
};

// The kernels the matrix runs on: close_range present (the usual path), missing (the
// /proc/self/fd listing), and /proc missing too (the bounded loop, at a small soft limit).
enum class FdPath { kCloseRange, kProcSelfFd, kLoop };

fake::FakeSyscallsOptions kernel_for(FdPath path) {
  fake::FakeSyscallsOptions kernel;
  if (path == FdPath::kLoop) kernel.nofile = {32, 32};
  return kernel;
}

// Faults that hold for the whole run: they choose the fd-closing path, they are not the fault
// under test.
void arm_path(FakeSyscalls& os, FdPath path) {
  if (path == FdPath::kCloseRange) return;
  os.fail_when(
      "close_range", [](const CallRecord&) { return true; }, ENOSYS);
  if (path == FdPath::kLoop) {
    os.fail_when(
        "open", [](const CallRecord& r) { return r.args.at(0) == "/proc/self/fd"; }, ENOENT);
  }
}

void run_daemonize_matrix(FdPath path, const char* label) {
  DaemonOptions options = fake_options();
  options.privileges.user = "nobody";

  FakeSyscalls probe(kernel_for(path));
  const DaemonizeRun good = run_daemonize(probe, options, testing::report_ready,
                                          [&](FakeSyscalls& fos) { arm_path(fos, path); });
  ASSERT_EQ(good.first_parent_exit, 0) << good.first_parent_stderr;
  const fake::Transcript baseline = probe.transcript();

  // The first parent's reads after its fork are of the status pipe, which fails only with
  // EINTR (retried); EIO belongs to the PID file it reads before.
  std::size_t first_fork = baseline.size();
  for (const CallRecord& r : baseline) {
    if (r.name == "fork") {
      first_fork = r.index;
      break;
    }
  }
  auto errnos_for = [&](const CallRecord& r) {
    const auto known = real_errnos().find(r.name);
    std::vector<int> out = known == real_errnos().end() ? std::vector<int>{} : known->second;
    if (r.name == "read" && r.pid == good.first_parent && r.index > first_fork) out = {EINTR};
    return out;
  };

  MatrixCount count;
  for (const CallRecord& call : baseline) {
    ASSERT_NE(real_errnos().find(call.name), real_errnos().end())
        << "no errno list for " << call.to_string();
    // A fault the path itself injects is not a case.
    if (!call.injected_by.empty()) continue;
    for (int error : errnos_for(call)) {
      SCOPED_TRACE(fmt::format("failing #{} {} with {}", call.index, call.call_text(),
                               sys::errno_name(error)));
      FakeSyscalls os(kernel_for(path));
      FdsAtExit fds_at_exit;
      const DaemonizeRun run =
          run_daemonize(os, options, testing::report_ready, [&](FakeSyscalls& fos) {
            fos.fail_call_at(call.index, error);
            arm_path(fos, path);
            record_fds_at_exit(fos, fds_at_exit);
          });
      ++count.cases;
      count.calls.insert(call.name);
      // Nothing hangs: the first parent finished, and no call would have blocked for ever.
      ASSERT_TRUE(run.first_parent_exit) << to_string(os.transcript());
      for (const CallRecord& r : os.transcript()) {
        ASSERT_FALSE(r.error == EDEADLK && r.injected_by.empty()) << r.to_string();
      }
      const bool daemon_alive = run.daemon_alive(os);
      if (*run.first_parent_exit == 0) {
        EXPECT_TRUE(survivable(call, error)) << "a failure went unreported\n"
                                             << to_string(os.transcript());
        ASSERT_TRUE(daemon_alive);
        EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(run.daemon) + "\n");
        const std::vector<int> fds = os.open_fds(run.daemon);
        ASSERT_EQ(fds.size(), 4u) << ::testing::PrintToString(fds);
        EXPECT_EQ(fds[0], 0);
        EXPECT_EQ(fds[2], 2);
        EXPECT_THAT(os.describe_fd(run.daemon, fds[3]), ::testing::StartsWith("file:/run/d.pid"));
        EXPECT_EQ(os.process(run.daemon).uids, (sys::ResUids{65534, 65534, 65534}));
        continue;
      }
      EXPECT_EQ(*run.first_parent_exit, 1);
      const std::string& said = run.first_parent_stderr;
      // The report itself is the one step the parent cannot hear about: it learns only that
      // the daemon ended without reporting (the daemon stops, see DaemonContext::ready).
      const bool report_lost = call.name == "write" && call.pid == run.daemon &&
                               mentions(said, "the daemon exited before reporting");
      const bool named = mentions(said, call.name) || report_lost ||
                         (call.name == "flock" && error == EWOULDBLOCK &&
                          mentions(said, "Another server is running"));
      EXPECT_TRUE(named) << "the message does not name the step: " << said;
      EXPECT_TRUE(mentions(said, sys::errno_name(error)) || report_lost ||
                  mentions(said, "Another server"))
          << said;
      // A lock held elsewhere means the file is that holder's to keep.
      const bool someone_elses = call.name == "flock" && error == EWOULDBLOCK;
      EXPECT_TRUE(someone_elses || !os.stat_path("/run/d.pid"))
          << "a PID file remains after a failed start";
      EXPECT_FALSE(daemon_alive) << "a daemon runs on after its start failed";
      expect_nothing_leaked(run, fds_at_exit);
    }
  }
  std::printf("daemonize fault matrix (%s): %d (call, errno) cases over %zu calls (%zu distinct)\n",
              label, count.cases, baseline.size(), count.calls.size());
  EXPECT_GT(count.cases, 50);
}

TEST(DaemonizeFaultMatrix, EveryFailureExitsOneNamingItsStepAndLeavesNothingBehind) {
  run_daemonize_matrix(FdPath::kCloseRange, "close_range");
}

TEST(DaemonizeFaultMatrix, TheSameWhenFdsAreClosedFromProcSelfFd) {
  run_daemonize_matrix(FdPath::kProcSelfFd, "/proc/self/fd");
}

TEST(DaemonizeFaultMatrix, TheSameWhenFdsAreClosedByTheBoundedLoop) {
  run_daemonize_matrix(FdPath::kLoop, "bounded loop");
}

// Staying in the foreground, open() returns every failure to a process that goes on running
// (here it then exits through exit_with_error), so a descriptor left behind is a real leak. With
// a stop signal in the map, so the signalfd is among what a failure must give back.
TEST(DaemonizeFaultMatrix, InTheForegroundAFailedStartGivesBackEveryDescriptor) {
  DaemonOptions options = fake_options();
  options.detach_process = false;
  options.signal_map = default_signal_map();
  options.privileges.user = "nobody";
  options.working_directory = "/srv";
  FakeSyscalls probe;
  probe.make_dir("/srv");
  const DaemonizeRun good = run_daemonize(probe, options);
  ASSERT_FALSE(good.open_error) << good.open_error->message;
  const fake::Transcript baseline = probe.transcript();

  int cases = 0;
  for (const CallRecord& call : baseline) {
    const auto known = real_errnos().find(call.name);
    ASSERT_NE(known, real_errnos().end()) << "no errno list for " << call.to_string();
    for (int error : known->second) {
      SCOPED_TRACE(fmt::format("failing #{} {} with {}", call.index, call.call_text(),
                               sys::errno_name(error)));
      FakeSyscalls os;
      os.make_dir("/srv");
      FdsAtExit fds_at_exit;
      const DaemonizeRun run =
          run_daemonize(os, options, testing::report_ready, [&](FakeSyscalls& fos) {
            fos.fail_call_at(call.index, error);
            record_fds_at_exit(fos, fds_at_exit);
          });
      ++cases;
      if (!run.open_error) continue;  // survived: EINTR retried, setuid(0) refused, ...
      EXPECT_TRUE(mentions(run.open_error->message, call.name) ||
                  mentions(run.open_error->message, "Another server"))
          << run.open_error->message;
      expect_nothing_leaked(run, fds_at_exit);
    }
  }
  std::printf("foreground fault matrix: %d (call, errno) cases over %zu calls\n", cases,
              baseline.size());
  EXPECT_GT(cases, 30);
}

// The PID file's own path: acquire over a stale file (so kill and the emptying run), write,
// release. Every failure of acquire or write is an error naming its call that leaves no
// descriptor open; release never fails and never leaves a pid behind.
TEST(PidFileFaultMatrix, FailuresNameTheirCallAndLeakNothing) {
  auto scenario = [](FakeSyscalls& os, std::vector<std::string>& log) -> StepResult<void> {
    auto pid =
        PidFile::acquire(os, "/run/p.pid", [&](std::string_view line) { log.emplace_back(line); });
    if (!pid) return step_failed(pid.error());
    if (auto w = pid->write_pid(os.getpid()); !w) {
      pid->release();
      return w;
    }
    pid->release();
    return {};
  };
  FakeSyscalls probe;
  probe.write_file("/run/p.pid", "4242\n");
  std::vector<std::string> log;
  ASSERT_TRUE(scenario(probe, log));
  const fake::Transcript baseline = probe.transcript();

  int cases = 0;
  for (const CallRecord& call : baseline) {
    const auto known = real_errnos().find(call.name);
    ASSERT_NE(known, real_errnos().end()) << call.to_string();
    for (int error : known->second) {
      SCOPED_TRACE(fmt::format("failing {} with {}", call.call_text(), sys::errno_name(error)));
      FakeSyscalls os;
      os.write_file("/run/p.pid", "4242\n");
      os.fail_call_at(call.index, error);
      std::vector<std::string> lines;
      auto result = scenario(os, lines);
      ++cases;
      EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
      const auto content = os.read_file("/run/p.pid");
      if (result) {
        // Survived: EINTR retried, a failed close, or a release that emptied instead.
        EXPECT_TRUE(!content || content->empty()) << "release left " << *content;
        continue;
      }
      const bool named =
          mentions(result.error().message, call.name) ||
          (call.name == "kill" && error == EPERM &&
           mentions(result.error().message, "Another server is running, PID 4242")) ||
          (call.name == "flock" && error == EWOULDBLOCK &&
           mentions(result.error().message, "Another server is running"));
      EXPECT_TRUE(named) << result.error().message;
      // A failed start never leaves a live-looking pid of ours behind.
      EXPECT_NE(content.value_or(""), std::to_string(os.current_pid()) + "\n");
    }
  }
  std::printf("pid file fault matrix: %d (call, errno) cases over %zu calls\n", cases,
              baseline.size());
  EXPECT_GT(cases, 20);
}

// Shedding root: every failure names its call, and success always comes with the proof.
TEST(PrivilegeFaultMatrix, FailuresNameTheirCallAndSuccessIsProven) {
  auto scenario = [](FakeSyscalls& os) -> StepResult<void> {
    PrivilegeRequest request;
    request.user = "nobody";
    auto plan = resolve_privileges(os, request);
    if (!plan) return step_failed(plan.error());
    return shed_privileges(os, *plan, {});
  };
  FakeSyscalls probe;
  ASSERT_TRUE(scenario(probe));
  const fake::Transcript baseline = probe.transcript();

  int cases = 0;
  for (const CallRecord& call : baseline) {
    const auto known = real_errnos().find(call.name);
    ASSERT_NE(known, real_errnos().end()) << call.to_string();
    for (int error : known->second) {
      SCOPED_TRACE(fmt::format("failing {} with {}", call.call_text(), sys::errno_name(error)));
      FakeSyscalls os;
      os.fail_call_at(call.index, error);
      auto result = scenario(os);
      ++cases;
      const fake::ProcessInfo self = os.process(os.current_pid());
      if (result) {
        EXPECT_TRUE(call.name == "setuid" && error == EPERM) << "unreported failure";
        EXPECT_EQ(self.uids, (sys::ResUids{65534, 65534, 65534}));
        EXPECT_EQ(self.gids, (sys::ResGids{65534, 65534, 65534}));
        continue;
      }
      EXPECT_TRUE(mentions(result.error().message, call.name)) << result.error().message;
      EXPECT_TRUE(mentions(result.error().message, sys::errno_name(error)))
          << result.error().message;
    }
  }
  std::printf("privilege fault matrix: %d (call, errno) cases over %zu calls\n", cases,
              baseline.size());
  EXPECT_GT(cases, 8);
}

}  // namespace
}  // namespace daemonkit::core
