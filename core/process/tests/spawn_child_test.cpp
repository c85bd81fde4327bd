// The spawned child on the fake kernel: the plan checked in the parent, the child's steps in
// their order, each of them failed in turn (the step and errno reach the parent, the dead child
// is reaped, no descriptor is left open), and the parent's own failures.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/process/child_plan.h"
#include "daemonkit/core/process/child_steps.h"
#include "daemonkit/core/process/start_child.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::core {
namespace {

using fake::CallsInOrder;
using fake::FailsWith;
using fake::FailsWithMessage;
using fake::FakeSyscalls;
using fake::HasCall;
using fake::HasCallWithArgs;
using fake::IsOk;
using fake::ProcessState;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr const char* kProgram = "/bin/prog";

std::map<int, std::string> table(const FakeSyscalls& os, pid_t pid) {
  std::map<int, std::string> out;
  for (int fd : os.open_fds(pid)) out[fd] = os.describe_fd(pid, fd);
  return out;
}

// What a descriptor refers to, whatever its close-on-exec flag.
std::string file_of(const std::string& described) {
  const std::string flag = " (cloexec)";
  if (described.size() >= flag.size() &&
      described.compare(described.size() - flag.size(), flag.size(), flag) == 0) {
    return described.substr(0, described.size() - flag.size());
  }
  return described;
}

ExecArguments exec_of(const char* program) {
  auto exec = ExecArguments::make(program, {"prog", "--flag"}, {"HOME=/srv"});
  EXPECT_THAT(exec, IsOk());
  return std::move(*exec);
}

ChildFdMap map_of(std::vector<FdAssignment> assignments) {
  auto map = ChildFdMap::make(assignments);
  EXPECT_THAT(map, IsOk());
  return *map;
}

ChildPlan plan_of(ChildFdMap map, ChildOptions options = {}, const char* program = kProgram) {
  auto plan = ChildPlan::make(exec_of(program), std::move(map), std::move(options));
  EXPECT_THAT(plan, IsOk());
  return std::move(*plan);
}

// A world with the program installed, /srv to go to, and 0-2 on /dev/null plus one pipe
// (3 read, 4 write), as a parent that made its child's stdin pipe would have them.
struct World {
  FakeSyscalls os;
  pid_t parent = 0;

  World() {
    os.install_program(kProgram);
    os.make_dir("/srv", 0755, 65534, 65534);
    for (int fd = 0; fd < 3; ++fd) EXPECT_EQ(os.open("/dev/null", O_RDWR, 0), fd);
    EXPECT_TRUE(os.pipe2(O_CLOEXEC));
    parent = os.getpid();
  }
};

// The plan every step of the child acts on: ids, a directory, a map with a swap, and a mask.
ChildPlan full_plan() {
  ChildOptions options;
  options.working_directory = "/srv";
  options.ids = ChildIds{65534, 65534, {65534, 100}};
  sigaddset(&options.signal_mask, SIGUSR2);
  // 7 puts the map above the report's write end (6), which must then move out of its way.
  return plan_of(map_of({{0, 3}, {1, 4}, {2, 4}, {3, 4}, {4, 3}, {7, 3}}), std::move(options));
}

// The started child's pid; its pidfd, the caller's to close, is checked and closed here.
pid_t started_pid(FakeSyscalls& os, const sys::Result<ChildStart>& start) {
  EXPECT_THAT(start, IsOk());
  if (!start) return 0;
  const auto* started = std::get_if<ChildStarted>(&*start);
  EXPECT_NE(started, nullptr) << "the child did not start: "
                              << describe(std::get<ChildNotStarted>(*start).failure, kProgram);
  if (started == nullptr) return 0;
  EXPECT_EQ(os.describe_fd(os.getpid(), started->pidfd),
            "pidfd:" + std::to_string(started->pid) + " (cloexec)");
  EXPECT_THAT(os.close(started->pidfd), IsOk());
  return started->pid;
}

std::optional<ExecFailure> failure_of(const sys::Result<ChildStart>& start) {
  EXPECT_THAT(start, IsOk());
  if (!start) return std::nullopt;
  const auto* failed = std::get_if<ChildNotStarted>(&*start);
  if (failed == nullptr) return std::nullopt;
  return failed->failure;
}

// ---- The plan ---------------------------------------------------------------------------------

TEST(ChildPlan, BadFieldsAreRefusedByName) {
  auto with = [](auto change) {
    ChildOptions options;
    change(options);
    return ChildPlan::make(exec_of(kProgram), map_of({}), std::move(options));
  };
  EXPECT_THAT(with([](ChildOptions& o) { o.working_directory = ""; }),
              FailsWithMessage("working directory: empty (leave it unset to keep the parent's)"));
  EXPECT_THAT(with([](ChildOptions& o) { o.working_directory = std::string("/sr\0v", 5); }),
              FailsWithMessage("working directory: contains a NUL byte"));
  EXPECT_THAT(with([](ChildOptions& o) {
                o.ids = ChildIds{static_cast<uid_t>(-1), 0, {}};
              }),
              FailsWithMessage("uid: -1 would leave the uid unchanged"));
  EXPECT_THAT(with([](ChildOptions& o) {
                o.ids = ChildIds{0, static_cast<gid_t>(-1), {}};
              }),
              FailsWithMessage("gid: -1 would leave the gid unchanged"));
  EXPECT_THAT(with([](ChildOptions& o) {
                o.ids = ChildIds{1, 1, std::vector<gid_t>(ChildPlan::kMaxGroups + 1, 1)};
              }),
              FailsWithMessage("groups: 65537 given, at most 65536"));
  EXPECT_THAT(with([](ChildOptions& o) { o.working_directory = ""; }),
              FailsWith(StepKind::kOptions));
}

TEST(ChildPlan, DefaultsKeepTheDirectoryAndIdsAndStartWithAnEmptyMask) {
  const ChildPlan plan = plan_of(map_of({}));
  EXPECT_EQ(plan.working_directory(), nullptr);
  EXPECT_EQ(plan.ids(), nullptr);
  for (int sig = 1; sig < NSIG; ++sig) EXPECT_EQ(sigismember(&plan.signal_mask(), sig), 0) << sig;
  EXPECT_EQ(plan.first_user_realtime_signal(), SIGRTMIN);
}

TEST(ChildPlan, NoGroupsGivenMeansTheGidAloneNeverTheParents) {
  ChildOptions options;
  options.ids = ChildIds{65534, 65534, {}};
  EXPECT_THAT(plan_of(map_of({}), options).groups(), ElementsAre(65534));
  options.ids = ChildIds{65534, 65534, {65534, 27}};
  EXPECT_THAT(plan_of(map_of({}), options).groups(), ElementsAre(65534, 27));
}

// ---- The child's steps ------------------------------------------------------------------------

TEST(SpawnChild, TheChildTakesItsStepsInOrderAndExecsTheProgram) {
  World w;
  const auto parent_fds = table(w.os, w.parent);
  const ChildPlan plan = full_plan();
  w.os.clear_transcript();
  const pid_t pid = started_pid(w.os, start_child(w.os, plan));
  ASSERT_NE(pid, 0);
  EXPECT_THAT(w.os.transcript(),
              CallsInOrder({"pipe2", "vfork_with_pidfd", "sigaction", "setgroups", "setresgid",
                            "setresuid", "chdir", "fcntl", "dup2", "close_range", "sigprocmask",
                            "execve", "close", "read", "close"}));
  EXPECT_THAT(w.os.transcript(), HasCallWithArgs("pipe2", ElementsAre("O_CLOEXEC|O_NONBLOCK")));
  EXPECT_THAT(w.os.transcript(), HasCallWithArgs("setgroups", ElementsAre("[65534, 100]")));
  EXPECT_THAT(w.os.transcript(), Not(HasCall("waitpid")));
  const fake::ProcessInfo child = w.os.process(pid);
  ASSERT_EQ(child.execs.size(), 1U);
  EXPECT_EQ(child.execs[0].path, kProgram);
  EXPECT_THAT(child.execs[0].argv, ElementsAre("prog", "--flag"));
  EXPECT_THAT(child.execs[0].envp, ElementsAre("HOME=/srv"));
  EXPECT_EQ(child.uids, (sys::ResUids{65534, 65534, 65534}));
  EXPECT_EQ(child.gids, (sys::ResGids{65534, 65534, 65534}));
  EXPECT_THAT(child.groups, ::testing::UnorderedElementsAre(65534, 100));
  EXPECT_EQ(child.cwd, "/srv");
  EXPECT_THAT(child.blocked_signals, ElementsAre(SIGUSR2));
  // Exactly the map, with the swap, and no report descriptor: the program has only these.
  const std::string in = file_of(parent_fds.at(3));
  const std::string out = file_of(parent_fds.at(4));
  EXPECT_EQ(table(w.os, pid),
            (std::map<int, std::string>{{0, in}, {1, out}, {2, out}, {3, out}, {4, in}, {7, in}}));
  // The parent has what it had, nothing more.
  EXPECT_EQ(table(w.os, w.parent), parent_fds);
}

TEST(SpawnChild, EveryDispositionIsResetNotOnlyIgnoredOnesAndTheMaskIsEmptied) {
  World w;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_THAT(w.os.sigaction(SIGTERM, &ignore, nullptr), IsOk());
  ASSERT_THAT(w.os.sigaction(SIGPIPE, &ignore, nullptr), IsOk());
  struct sigaction handler {};
  handler.sa_handler = [](int) {};
  ASSERT_THAT(w.os.sigaction(SIGUSR1, &handler, nullptr), IsOk());
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  ASSERT_THAT(w.os.sigprocmask(SIG_BLOCK, &blocked, nullptr), IsOk());
  w.os.clear_transcript();
  const pid_t pid = started_pid(w.os, start_child(w.os, plan_of(map_of({}))));
  ASSERT_NE(pid, 0);
  const fake::ProcessInfo child = w.os.process(pid);
  EXPECT_THAT(child.ignored_signals, IsEmpty());
  EXPECT_THAT(child.caught_signals, IsEmpty());
  EXPECT_THAT(child.blocked_signals, IsEmpty());
  // The handler itself was replaced before exec, not only by it: no window where it could run.
  EXPECT_THAT(w.os.transcript(),
              HasCallWithArgs("sigaction", ElementsAre("SIGUSR1", "SIG_DFL", "NULL")));
  EXPECT_THAT(w.os.transcript(),
              Not(HasCallWithArgs("sigaction", ElementsAre("SIGKILL", "SIG_DFL", "NULL"))));
  // The parent keeps its own.
  const fake::ProcessInfo parent = w.os.process(w.parent);
  EXPECT_THAT(parent.ignored_signals, ElementsAre(SIGPIPE, SIGTERM));
  EXPECT_THAT(parent.caught_signals, ElementsAre(SIGUSR1));
  EXPECT_THAT(parent.blocked_signals, ElementsAre(SIGINT));
}

TEST(SpawnChild, WithoutIdsOrDirectoryNeitherIsTouched) {
  World w;
  w.os.clear_transcript();
  ASSERT_NE(started_pid(w.os, start_child(w.os, plan_of(map_of({{0, 3}})))), 0);
  EXPECT_THAT(w.os.transcript(), Not(HasCall("setgroups")));
  EXPECT_THAT(w.os.transcript(), Not(HasCall("setresgid")));
  EXPECT_THAT(w.os.transcript(), Not(HasCall("setresuid")));
  EXPECT_THAT(w.os.transcript(), Not(HasCall("chdir")));
}

// The report's write end, wherever pipe2 put it, survives a map that gives the child that very
// number, and is gone once the program runs.
TEST(SpawnChild, TheReportSurvivesAMapOverItsNumberAndIsClosedByTheExec) {
  World w;  // 0-4 open: the report pipe gets 5 (read) and 6 (write)
  const auto parent_fds = table(w.os, w.parent);
  const ChildPlan plan = plan_of(map_of({{6, 3}, {5, 4}, {0, 0}}));
  // A failure after the map, so the report must have crossed it.
  w.os.fail_nth("execve", 1, ENOENT);
  EXPECT_EQ(failure_of(start_child(w.os, plan)), (ExecFailure{ChildStep::kExec, ENOENT}));
  w.os.clear_faults();
  const pid_t pid = started_pid(w.os, start_child(w.os, plan));
  ASSERT_NE(pid, 0);
  EXPECT_THAT(w.os.open_fds(pid), ElementsAre(0, 5, 6));
  EXPECT_EQ(w.os.describe_fd(pid, 6), file_of(parent_fds.at(3)));
  EXPECT_EQ(w.os.describe_fd(pid, 5), file_of(parent_fds.at(4)));
  EXPECT_EQ(table(w.os, w.parent), parent_fds);
}

// ---- Failures in the child --------------------------------------------------------------------

// Every call of the child's, failed with the errnos it can return: the parent gets the step and
// the errno, the child is dead and reaped, the parent's descriptors are as before.
TEST(SpawnChild, EachFailingStepReachesTheParentWithItsErrno) {
  struct Case {
    const char* call;
    int nth;  // counted from the start of start_child
    int error;
    ChildStep step;
  };
  const std::vector<Case> cases = {
      {"sigaction", 1, EINVAL, ChildStep::kSignals},
      {"sigaction", 15, EFAULT, ChildStep::kSignals},
      {"setgroups", 1, EPERM, ChildStep::kGroups},
      {"setgroups", 1, EINVAL, ChildStep::kGroups},
      {"setgroups", 1, ENOMEM, ChildStep::kGroups},
      {"setresgid", 1, EPERM, ChildStep::kGid},
      {"setresgid", 1, EAGAIN, ChildStep::kGid},
      {"setresuid", 1, EPERM, ChildStep::kUid},
      {"setresuid", 1, EAGAIN, ChildStep::kUid},
      {"chdir", 1, ENOENT, ChildStep::kChdir},
      {"chdir", 1, EACCES, ChildStep::kChdir},
      {"chdir", 1, ENOTDIR, ChildStep::kChdir},
      {"fcntl", 1, EMFILE, ChildStep::kDescriptors},  // the report, moved above the map
      {"fcntl", 1, EINVAL, ChildStep::kDescriptors},  // (the map too high for RLIMIT_NOFILE)
      {"fcntl", 2, EMFILE, ChildStep::kDescriptors},  // the map's copies
      {"fcntl", 3, EINVAL, ChildStep::kDescriptors},
      {"dup2", 1, EMFILE, ChildStep::kDescriptors},
      {"dup2", 2, EBUSY, ChildStep::kDescriptors},
      {"close_range", 1, EINVAL, ChildStep::kDescriptors},
      {"sigprocmask", 1, EINVAL, ChildStep::kSignals},
      {"sigprocmask", 1, EFAULT, ChildStep::kSignals},
      {"execve", 1, ENOENT, ChildStep::kExec},
      {"execve", 1, EACCES, ChildStep::kExec},
      {"execve", 1, ENOEXEC, ChildStep::kExec},
      {"execve", 1, E2BIG, ChildStep::kExec},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << c.call << " #" << c.nth << " " << sys::errno_name(c.error));
    World w;
    const auto parent_fds = table(w.os, w.parent);
    const ChildPlan plan = full_plan();
    w.os.clear_transcript();
    w.os.fail_nth(c.call, c.nth, c.error);
    auto start = start_child(w.os, plan);
    ASSERT_THAT(start, IsOk());
    ASSERT_TRUE(std::holds_alternative<ChildNotStarted>(*start));
    const ChildNotStarted failed = std::get<ChildNotStarted>(*start);
    EXPECT_EQ(failed.failure, (ExecFailure{c.step, c.error}));
    EXPECT_EQ(w.os.process(failed.pid).state, ProcessState::kReaped);
    EXPECT_EQ(w.os.process(failed.pid).wait_status, W_EXITCODE(kChildCannotExecStatus, 0));
    EXPECT_THAT(w.os.transcript(),
                HasCallWithArgs("waitpid", ElementsAre(std::to_string(failed.pid), "0")));
    EXPECT_EQ(table(w.os, w.parent), parent_fds);
  }
}

TEST(SpawnChild, AMissingOrNonExecutableProgramIsAnExecFailureThatNamesIt) {
  World w;
  w.os.write_file("/bin/data", "not a program", 0644);
  auto missing = start_child(w.os, plan_of(map_of({}), {}, "/no/such"));
  ASSERT_EQ(failure_of(missing), (ExecFailure{ChildStep::kExec, ENOENT}));
  EXPECT_EQ(describe(*failure_of(missing), "/no/such"),
            "exec /no/such: No such file or directory (ENOENT)");
  auto denied = start_child(w.os, plan_of(map_of({}), {}, "/bin/data"));
  ASSERT_EQ(failure_of(denied), (ExecFailure{ChildStep::kExec, EACCES}));
  EXPECT_EQ(describe(*failure_of(denied), "/bin/data"),
            "exec /bin/data: Permission denied (EACCES)");
}

TEST(SpawnChild, NotRootTheIdSwitchFailsAtSetgroupsAndSaysSo) {
  fake::FakeSyscallsOptions options;
  options.uid = 1000;
  options.gid = 1000;
  FakeSyscalls os(options);
  os.install_program(kProgram);
  ChildOptions child;
  child.ids = ChildIds{65534, 65534, {}};
  auto start = start_child(os, plan_of(map_of({}), std::move(child)));
  ASSERT_EQ(failure_of(start), (ExecFailure{ChildStep::kGroups, EPERM}));
  EXPECT_EQ(describe(*failure_of(start), kProgram), "setgroups: Operation not permitted (EPERM)");
}

// A program that ran and exited 127 is a program's exit, not an exec failure: start_child says
// it started, and the status is the program's to report.
TEST(SpawnChild, AProgramExiting127IsNotAnExecFailure) {
  World w;
  const pid_t pid = started_pid(w.os, start_child(w.os, plan_of(map_of({}))));
  ASSERT_NE(pid, 0);
  w.os.end_process(pid, 127);
  auto reaped = w.os.waitpid(pid, 0);
  ASSERT_THAT(reaped, IsOk());
  EXPECT_EQ(reaped->status, W_EXITCODE(127, 0));
}

// ---- Failures in the parent -------------------------------------------------------------------

TEST(SpawnChild, AFailedPipeOrVforkLeavesNoDescriptorAndNoChild) {
  for (const auto& [call, error] :
       std::vector<std::pair<const char*, int>>{{"pipe2", EMFILE},
                                                {"pipe2", ENFILE},
                                                {"vfork_with_pidfd", EAGAIN},
                                                {"vfork_with_pidfd", ENOMEM}}) {
    SCOPED_TRACE(call);
    World w;
    const auto parent_fds = table(w.os, w.parent);
    w.os.clear_transcript();
    w.os.fail_nth(call, 1, error);
    EXPECT_THAT(start_child(w.os, plan_of(map_of({{0, 3}}))), FailsWith(error, call));
    EXPECT_EQ(table(w.os, w.parent), parent_fds);
    EXPECT_THAT(w.os.process(w.parent).fds, ElementsAre(0, 1, 2, 3, 4));
    EXPECT_EQ(w.os.process_exists(w.parent + 1), false);
  }
}

// A map naming a descriptor that was not open when the plan was made would hand the child the
// report pipe, which pipe2 just put there.
TEST(SpawnChild, AMapNamingTheReportPipeIsRefusedBeforeTheChildIsMade) {
  World w;  // 0-4 open: the report pipe gets 5 and 6
  const auto parent_fds = table(w.os, w.parent);
  for (int named : {5, 6}) {
    w.os.clear_transcript();
    EXPECT_THAT(start_child(w.os, plan_of(map_of({{1, named}}))), FailsWith(EBADF, "child fds"));
    EXPECT_THAT(w.os.transcript(), Not(HasCall("vfork_with_pidfd")));
    EXPECT_EQ(table(w.os, w.parent), parent_fds);
  }
}

// A report that cannot be read leaves the parent not knowing whether the program runs: the
// child is killed and reaped rather than left unowned.
TEST(SpawnChild, AnUnreadableReportKillsAndReapsTheChild) {
  World w;
  const auto parent_fds = table(w.os, w.parent);
  w.os.fail_nth("read", 1, EIO);
  EXPECT_THAT(start_child(w.os, plan_of(map_of({}))), FailsWith(EIO, "read"));
  const pid_t child = w.os.last_forked_pid();
  EXPECT_EQ(w.os.process(child).state, ProcessState::kReaped);
  EXPECT_TRUE(WIFSIGNALED(w.os.process(child).wait_status));
  EXPECT_EQ(table(w.os, w.parent), parent_fds);
}

// Another thread forks while the report pipe exists: its child holds a copy of the write end,
// which never reaches EOF. The report is read without waiting for that process, whether the
// exec succeeded or failed.
TEST(SpawnChild, AWriteEndHeldByAProcessAnotherThreadForkedDoesNotBlockTheParent) {
  for (const bool exec_fails : {false, true}) {
    World w;
    w.os.set_would_block(fake::WouldBlock::kFail);
    pid_t other = 0;
    w.os.before_each_call([&](std::string_view name, pid_t caller) {
      if (name == "vfork_with_pidfd" && caller == w.parent && other == 0) {
        auto forked = w.os.fork();
        ASSERT_THAT(forked, IsOk());
        other = *forked;
      }
    });
    if (exec_fails) w.os.fail_nth("execve", 1, ENOENT);
    auto start = start_child(w.os, plan_of(map_of({})));
    ASSERT_NE(other, 0);
    ASSERT_THAT(start, IsOk());
    EXPECT_EQ(std::holds_alternative<ChildNotStarted>(*start), exec_fails);
    EXPECT_THAT(w.os.transcript(),
                Not(::testing::Contains(::testing::Field(&fake::CallRecord::error, EDEADLK))));
  }
}

}  // namespace
}  // namespace daemonkit::core
