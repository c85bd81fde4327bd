// Processes in the fake kernel: fork by script, vfork, exit into zombies, waitpid, reparenting,
// sessions, signals and their default actions, execve, pidfds.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "daemonkit/fake/fake_syscalls.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing_support::ends;
using testing_support::read_all;

struct sigaction handler_action(int flags = 0) {
  struct sigaction act {};
  act.sa_handler = [](int) {};
  act.sa_flags = flags;
  return act;
}

struct sigaction simple_action(void (*handler)(int)) {
  struct sigaction act {};
  act.sa_handler = handler;
  return act;
}

TEST(FakeFork, ContinuesAsParentByDefault) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  auto child = os.fork();
  ASSERT_TRUE(child);
  EXPECT_GT(*child, parent);
  EXPECT_EQ(os.current_pid(), parent);
  const ProcessInfo info = os.process(*child);
  EXPECT_EQ(info.ppid, parent);
  EXPECT_EQ(info.sid, os.process(parent).sid);
  EXPECT_EQ(info.pgid, os.process(parent).pgid);
  EXPECT_TRUE(info.alive());
  EXPECT_EQ(os.last_forked_pid(), *child);
}

TEST(FakeFork, ScriptedChildContinuesInTheChild) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  os.script_fork(ForkAs::kChild);
  auto result = os.fork();
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, 0);
  EXPECT_NE(os.getpid(), parent);
  EXPECT_EQ(os.getppid(), parent);
  EXPECT_EQ(os.getpid(), os.last_forked_pid());
}

TEST(FakeFork, ScriptIsConsumedInOrder) {
  FakeSyscalls os;
  os.script_fork(ForkAs::kParent);
  os.script_fork(ForkAs::kChild);
  EXPECT_GT(*os.fork(), 0);
  EXPECT_EQ(*os.fork(), 0);
  EXPECT_GT(*os.fork(), 0);  // unscripted: parent
}

TEST(FakeFork, ChildCopiesCredentialsUmaskAndCwd) {
  FakeSyscalls os;
  os.make_dir("/srv");
  ASSERT_TRUE(os.chdir("/srv"));
  os.umask(027);
  const pid_t child = *os.fork();
  const ProcessInfo info = os.process(child);
  EXPECT_EQ(info.cwd, "/srv");
  EXPECT_EQ(info.umask, 027u);
  EXPECT_EQ(info.uids, os.process(os.getpid()).uids);
}

TEST(FakeFork, SharesOpenFileDescriptionsAndTheirOffsets) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const int fd = *os.open("/tmp/log", O_WRONLY | O_CREAT, 0644);
  ASSERT_TRUE(os.write(fd, "ab", 2));
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.write(fd, "cd", 2));
  os.switch_to(parent);
  ASSERT_TRUE(os.write(fd, "ef", 2));
  EXPECT_EQ(os.read_file("/tmp/log"), "abcdef");
}

TEST(FakeFork, ClosingInTheChildLeavesTheParentsDescriptorOpen) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const int fd = *os.open("/dev/null", O_RDONLY, 0);
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.close(fd));
  EXPECT_THAT(os.open_fds(child), IsEmpty());
  EXPECT_THAT(os.open_fds(parent), ElementsAre(fd));
}

// vfork runs the child's body at once, as the current process, and returns its pid to the
// parent only once the child has exec'd or ended, as a parent asleep in vfork sees it.
TEST(FakeVfork, RunsTheBodyAsTheChildAndReturnsOnceItExecs) {
  FakeSyscalls os;
  os.install_program("/usr/bin/worker");
  const pid_t parent = os.getpid();
  const int fd = *os.open("/tmp/log", O_WRONLY | O_CREAT, 0644);
  pid_t seen_pid = 0;
  pid_t seen_ppid = 0;
  auto child = os.vfork([&] {
    seen_pid = os.getpid();
    seen_ppid = os.getppid();
    static_cast<void>(os.write(fd, "child", 5));  // the description is shared, as after fork
    char arg0[] = "worker";
    char* argv[] = {arg0, nullptr};
    char* envp[] = {nullptr};
    static_cast<void>(os.execve("/usr/bin/worker", argv, envp));
    return 127;
  });
  ASSERT_TRUE(child);
  EXPECT_EQ(*child, seen_pid);
  EXPECT_EQ(seen_ppid, parent);
  EXPECT_EQ(os.current_pid(), parent);
  const ProcessInfo info = os.process(*child);
  EXPECT_TRUE(info.alive());
  ASSERT_EQ(info.execs.size(), 1u);
  EXPECT_EQ(info.execs[0].path, "/usr/bin/worker");
  EXPECT_EQ(info.ppid, parent);
  EXPECT_EQ(os.read_file("/tmp/log"), "child");
  EXPECT_THAT(os.open_fds(parent), ElementsAre(fd));
}

TEST(FakeVfork, ABodyThatReturnsEndsTheChildWithItsValue) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  auto child = os.vfork([] { return 7; });
  ASSERT_TRUE(child);
  EXPECT_EQ(os.current_pid(), parent);
  auto waited = os.waitpid(*child, 0);
  ASSERT_TRUE(waited);
  EXPECT_TRUE(WIFEXITED(waited->status));
  EXPECT_EQ(WEXITSTATUS(waited->status), 7);
}

TEST(FakeVfork, TheChildsExitNowEndsOnlyTheChild) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  auto child = os.vfork([&] {
    os.exit_now(3);
    return 0;  // not reached: exit_now unwinds the fake child
  });
  ASSERT_TRUE(child);
  EXPECT_EQ(os.current_pid(), parent);
  EXPECT_EQ(os.process(*child).state, ProcessState::kZombie);
  EXPECT_EQ(WEXITSTATUS(os.process(*child).wait_status), 3);
}

TEST(FakeVfork, TheChildStartsWithEverySignalBlockedAndTheParentKeepsItsMask) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  std::vector<int> blocked_in_child;
  auto child = os.vfork([&] {
    blocked_in_child = os.process(os.getpid()).blocked_signals;
    return 0;
  });
  ASSERT_TRUE(child);
  using ::testing::Contains;
  for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGCHLD, SIGUSR1, SIGRTMIN + 1}) {
    EXPECT_THAT(blocked_in_child, Contains(sig)) << sig;
  }
  EXPECT_THAT(blocked_in_child, ::testing::Not(Contains(SIGKILL)));
  EXPECT_THAT(os.process(parent).blocked_signals, IsEmpty());
}

TEST(FakeVfork, ANestedVforkReturnsToEachParentInTurn) {
  FakeSyscalls os;
  os.install_program("/bin/daemon");
  const pid_t launcher = os.getpid();
  pid_t grandchild = 0;
  auto child = os.vfork([&] {
    EXPECT_TRUE(os.setsid());
    auto made = os.vfork([&] {
      char arg0[] = "daemon";
      char* argv[] = {arg0, nullptr};
      char* envp[] = {nullptr};
      static_cast<void>(os.execve("/bin/daemon", argv, envp));
      return 127;
    });
    grandchild = made.value_or(-1);
    return 0;
  });
  ASSERT_TRUE(child);
  EXPECT_EQ(os.current_pid(), launcher);
  EXPECT_EQ(os.process(*child).state, ProcessState::kZombie);
  // Orphaned by the intermediate's exit, the daemon went to init, in the intermediate's session.
  const ProcessInfo daemon = os.process(grandchild);
  EXPECT_TRUE(daemon.alive());
  EXPECT_EQ(daemon.ppid, 1);
  EXPECT_EQ(daemon.sid, *child);
  EXPECT_EQ(daemon.execs.size(), 1u);
}

TEST(FakeVfork, AnInjectedFailureMakesNoChildAndRunsNoBody) {
  FakeSyscalls os;
  os.fail_nth("vfork", 1, EAGAIN);
  bool ran = false;
  auto child = os.vfork([&] {
    ran = true;
    return 0;
  });
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code, EAGAIN);
  EXPECT_EQ(std::string(child.error().call), "vfork");
  EXPECT_FALSE(ran);
  EXPECT_EQ(os.last_forked_pid(), 0);
}

// The pidfd is made with the child, in the parent only, and says when the child has exited.
TEST(FakeVfork, WithPidfdGivesTheParentAPidfdTheChildDoesNotHold) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  std::vector<int> child_fds;
  auto child = os.vfork_with_pidfd([&] {
    child_fds = os.open_fds(os.getpid());
    return 5;
  });
  ASSERT_TRUE(child);
  EXPECT_EQ(os.current_pid(), parent);
  EXPECT_THAT(child_fds, IsEmpty());
  EXPECT_THAT(os.open_fds(parent), ElementsAre(child->pidfd));
  EXPECT_EQ(os.describe_fd(parent, child->pidfd), fmt::format("pidfd:{} (cloexec)", child->pid));
  EXPECT_EQ(*os.fcntl(child->pidfd, F_GETFD, 0), FD_CLOEXEC);
  pollfd ready{child->pidfd, POLLIN, 0};
  ASSERT_EQ(*os.poll(&ready, 1, 0), 1);
  auto waited = os.waitpid(child->pid, 0);
  ASSERT_TRUE(waited);
  EXPECT_EQ(WEXITSTATUS(waited->status), 5);
}

TEST(FakeVfork, WithPidfdAndNoFreeDescriptorMakesNoChild) {
  FakeSyscalls os({.nofile = {3, 3}});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  bool ran = false;
  auto child = os.vfork_with_pidfd([&] {
    ran = true;
    return 0;
  });
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().code, EMFILE);
  EXPECT_EQ(std::string(child.error().call), "vfork_with_pidfd");
  EXPECT_FALSE(ran);
  EXPECT_EQ(os.last_forked_pid(), 0);
}

TEST(FakeVfork, SwitchingToAParentAsleepInVforkAborts) {
  EXPECT_DEATH(
      {
        FakeSyscalls os;
        const pid_t parent = os.getpid();
        static_cast<void>(os.vfork([&] {
          os.switch_to(parent);
          return 0;
        }));
      },
      "asleep in vfork until its child");
}

TEST(FakeVfork, AnExceptionFromTheBodyKillsTheChildAndReachesTheTest) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  pid_t child = 0;
  EXPECT_THROW(static_cast<void>(os.vfork([&]() -> int {
                 child = os.getpid();
                 throw std::runtime_error("bug in the body");
               })),
               std::runtime_error);
  EXPECT_EQ(os.current_pid(), parent);
  EXPECT_EQ(os.process(child).state, ProcessState::kZombie);
  EXPECT_EQ(os.process(child).wait_status, SIGABRT);
}

TEST(FakeExit, EndsTheProcessIntoAZombieUntilReaped) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  const pid_t child = os.getpid();
  const ProcessEnded ended = ends([&] { os.exit_now(3); });
  EXPECT_EQ(ended.pid, child);
  EXPECT_TRUE(ended.exited());
  EXPECT_EQ(ended.exit_code(), 3);
  EXPECT_EQ(os.current_pid(), 0);
  EXPECT_EQ(os.process(child).state, ProcessState::kZombie);

  os.switch_to(parent);
  auto waited = os.waitpid(child, 0);
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->pid, child);
  EXPECT_TRUE(WIFEXITED(waited->status));
  EXPECT_EQ(WEXITSTATUS(waited->status), 3);
  EXPECT_EQ(os.process(child).state, ProcessState::kReaped);
  EXPECT_EQ(os.waitpid(child, 0).error().code, ECHILD);
}

// /proc/<pid>/stat is how a PID-file probe tells a zombie (kill(pid, 0) still succeeds on it)
// from a running daemon.
TEST(FakeProcStat, StateFieldTellsAZombieFromARunningProcessAndVanishesOnReap) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  const pid_t child = os.getpid();
  const std::string path = "/proc/" + std::to_string(child) + "/stat";
  auto stat_text = [&] {
    auto fd = os.open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (!fd) return std::string("open failed: ") + sys::errno_name(fd.error().code);
    std::string text = read_all(os, *fd);
    static_cast<void>(os.close(*fd));
    return text;
  };
  EXPECT_EQ(stat_text().substr(0, stat_text().find(" 0 ")),
            fmt::format("{} (fake) S {} {} {}", child, parent, os.process(child).pgid,
                        os.process(child).sid));
  ends([&] { os.exit_now(0); });

  os.switch_to(parent);
  EXPECT_THAT(stat_text(), ::testing::StartsWith(fmt::format("{} (fake) Z {}", child, parent)));
  ASSERT_TRUE(os.waitpid(child, 0));
  EXPECT_EQ(stat_text(), "open failed: ENOENT");
}

TEST(FakeProcStat, CommIsTheExecutedProgramsBaseNameCutTo15Bytes) {
  FakeSyscalls os;
  os.install_program("/usr/sbin/a-daemon-with-a-long-name");
  const pid_t parent = os.getpid();
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  const pid_t child = os.getpid();
  char arg0[] = "d";
  char* argv[] = {arg0, nullptr};
  ends([&] { static_cast<void>(os.execve("/usr/sbin/a-daemon-with-a-long-name", argv, argv)); });
  os.switch_to(parent);
  auto fd = os.open(("/proc/" + std::to_string(child) + "/stat").c_str(), O_RDONLY, 0);
  ASSERT_TRUE(fd);
  EXPECT_THAT(read_all(os, *fd),
              ::testing::StartsWith(fmt::format("{} (a-daemon-with-a) S ", child)));
}

// A blocking read that would be a deadlock on its own: the hook plays the child, which writes
// and exits just before the parent's read, as it would on a real kernel's scheduler.
TEST(FakeBeforeEachCall, LetsATestPlayAnotherProcessBetweenTheCallersCalls) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  auto pipe = os.pipe2(O_CLOEXEC).value();
  const pid_t child = os.fork().value();
  ASSERT_TRUE(os.close(pipe.write_end));
  std::vector<std::string> seen;
  os.before_each_call([&](std::string_view name, pid_t caller) {
    seen.push_back(fmt::format("{}@{}", name, caller == parent ? "parent" : "?"));
    if (name != "read" || !os.process(child).alive()) return;
    os.switch_to(child);
    ASSERT_TRUE(os.write(pipe.write_end, "hi", 2));  // not seen: no hook inside the hook
    os.end_process(child, 0);
  });
  char buffer[8];
  EXPECT_EQ(os.read(pipe.read_end, buffer, sizeof buffer).value(), 2u);
  EXPECT_EQ(os.current_pid(), parent);
  EXPECT_EQ(os.read(pipe.read_end, buffer, sizeof buffer).value(), 0u);  // the writer is gone
  EXPECT_THAT(seen, ElementsAre("read@parent", "read@parent"));
  os.before_each_call(nullptr);
  EXPECT_TRUE(os.waitpid(child, 0));
  EXPECT_EQ(seen.size(), 2u);
}

// A signal that arrives just before a call: the process dies without making it.
TEST(FakeBeforeEachCall, AHookThatKillsTheCallerEndsItBeforeTheCall) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  os.before_each_call([&](std::string_view name, pid_t caller) {
    if (name == "setsid") os.send_signal(caller, SIGKILL);
  });
  const ProcessEnded ended = ends([&] { static_cast<void>(os.setsid()); });
  os.before_each_call(nullptr);
  EXPECT_EQ(ended.pid, self);
  EXPECT_TRUE(ended.killed());
  EXPECT_EQ(ended.signal(), SIGKILL);
  EXPECT_EQ(os.current_pid(), 0);
  EXPECT_FALSE(std::any_of(os.transcript().begin(), os.transcript().end(),
                           [](const CallRecord& call) { return call.name == "setsid"; }));
}

TEST(FakeExit, CallsAfterTheCurrentProcessEndedAbortWithAMessage) {
  FakeSyscalls os;
  ends([&] { os.exit_now(0); });
  EXPECT_DEATH(static_cast<void>(os.getpid()), "no process is current");
}

// What a descriptor owner's destructor does as the fake unwinds the ended process: a real
// process never gets there, so the close is not made and no other process loses a descriptor.
TEST(FakeExit, ACloseWhileTheEndedProcessUnwindsIsNotMade) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const int kept = *os.open("/dev/null", O_RDONLY, 0);
  struct ClosesOnUnwind {
    FakeSyscalls& os;
    int fd;
    sys::Result<void>* seen;
    ~ClosesOnUnwind() { *seen = os.close(fd); }
  };
  sys::Result<void> seen;
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(os.fork(), 0);
  const std::size_t calls = os.transcript().size();
  ends([&] {
    ClosesOnUnwind owner{os, kept, &seen};
    os.exit_now(0);
  });
  ASSERT_FALSE(seen);
  EXPECT_EQ(seen.error().code, EBADF);
  EXPECT_EQ(os.transcript().size(), calls + 1) << "only exit_now is recorded";
  os.switch_to(parent);
  EXPECT_THAT(os.open_fds(parent), ElementsAre(kept));
  // Outside an unwinding, a call with no process current is still a test bug.
  ends([&] { os.exit_now(0); });
  EXPECT_DEATH(static_cast<void>(os.close(kept)), "no process is current");
}

TEST(FakeExit, ClosesEveryDescriptorSoPipeReadersSeeEof) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  auto fds = *os.pipe2(0);
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  ASSERT_TRUE(os.write(fds.write_end, "bye", 3));
  ends([&] { os.exit_now(0); });
  os.switch_to(parent);
  ASSERT_TRUE(os.close(fds.write_end));
  EXPECT_EQ(read_all(os, fds.read_end), "bye");
}

TEST(FakeWaitpid, WnohangReturnsZeroWhileTheChildRuns) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  auto waited = os.waitpid(child, WNOHANG);
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->pid, 0);
}

TEST(FakeWaitpid, BlockingOnARunningChildFailsWithEdeadlkInsteadOfHanging) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  auto waited = os.waitpid(-1, 0);
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code, EDEADLK);
  EXPECT_THAT(os.transcript().back().note, HasSubstr(std::to_string(child)));
}

TEST(FakeWaitpid, AbortPolicyAbortsWithTheReason) {
  FakeSyscalls os;
  os.set_would_block(WouldBlock::kAbort);
  static_cast<void>(os.fork());
  EXPECT_DEATH(static_cast<void>(os.waitpid(-1, 0)), "would block forever");
}

TEST(FakeWaitpid, WithoutChildrenFailsWithEchild) {
  FakeSyscalls os;
  EXPECT_EQ(os.waitpid(-1, 0).error().code, ECHILD);
  EXPECT_EQ(os.waitpid(1, WNOHANG).error().code, ECHILD);
}

TEST(FakeWaitpid, RejectsUnknownOptions) {
  FakeSyscalls os;
  EXPECT_EQ(os.waitpid(-1, 0x1000).error().code, EINVAL);
}

TEST(FakeWaitpid, MinusOneReapsWhicheverChildExited) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const pid_t first = *os.fork();
  const pid_t second = *os.fork();
  os.switch_to(second);
  ends([&] { os.exit_now(7); });
  os.switch_to(parent);
  auto waited = *os.waitpid(-1, 0);
  EXPECT_EQ(waited.pid, second);
  EXPECT_EQ(WEXITSTATUS(waited.status), 7);
  EXPECT_TRUE(os.process(first).alive());
}

TEST(FakeWaitpid, ReportsDeathBySignal) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.kill(child, SIGTERM));
  auto waited = *os.waitpid(child, 0);
  EXPECT_TRUE(WIFSIGNALED(waited.status));
  EXPECT_EQ(WTERMSIG(waited.status), SIGTERM);
}

TEST(FakeWaitpid, ChildrenOfAParentIgnoringSigchldAreReapedAtOnce) {
  FakeSyscalls os;
  auto ignore = simple_action(SIG_IGN);
  ASSERT_TRUE(os.sigaction(SIGCHLD, &ignore, nullptr));
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.kill(child, SIGKILL));
  EXPECT_EQ(os.process(child).state, ProcessState::kReaped);
  EXPECT_EQ(os.waitpid(-1, 0).error().code, ECHILD);
}

TEST(FakeSigchld, ACaughtSigchldIsRecordedWhenAChildExits) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  auto act = handler_action();
  ASSERT_TRUE(os.sigaction(SIGCHLD, &act, nullptr));
  const pid_t child = *os.fork();
  os.switch_to(child);
  ends([&] { os.exit_now(0); });
  const auto signals = os.process(parent).signals;
  ASSERT_EQ(signals.size(), 1u);
  EXPECT_EQ(signals[0].signal, SIGCHLD);
  EXPECT_EQ(signals[0].sender, child);
  EXPECT_EQ(signals[0].action, SignalAction::kCaught);
}

TEST(FakeReparent, OrphansGoToInitWhichReapsThem) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.switch_to(child);
  const pid_t grandchild = *os.fork();
  ends([&] { os.exit_now(0); });
  EXPECT_EQ(os.process(grandchild).ppid, 1);
  os.switch_to(grandchild);
  ends([&] { os.exit_now(0); });
  EXPECT_EQ(os.process(grandchild).state, ProcessState::kReaped);
  os.switch_to(parent);
  EXPECT_EQ(os.waitpid(child, 0)->pid, child);
}

TEST(FakeReparent, OrphansGoToTheNearestLivingSubreaper) {
  FakeSyscalls os;
  const pid_t reaper = os.getpid();
  ASSERT_EQ(*os.prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const pid_t child = *os.fork();
  os.switch_to(child);
  const pid_t grandchild = *os.fork();
  ends([&] { os.exit_now(0); });
  EXPECT_EQ(os.process(grandchild).ppid, reaper);

  os.switch_to(grandchild);
  ends([&] { os.exit_now(5); });
  EXPECT_EQ(os.process(grandchild).state, ProcessState::kZombie);
  os.switch_to(reaper);
  auto first = *os.waitpid(-1, 0);
  auto second = *os.waitpid(-1, 0);
  EXPECT_EQ(first.pid, child);
  EXPECT_EQ(second.pid, grandchild);
  EXPECT_EQ(WEXITSTATUS(second.status), 5);
}

TEST(FakeReparent, SubreaperFlagIsNotInheritedAcrossFork) {
  FakeSyscalls os;
  ASSERT_TRUE(os.prctl(PR_SET_CHILD_SUBREAPER, 1));
  const pid_t child = *os.fork();
  EXPECT_TRUE(os.process(os.getpid()).subreaper);
  EXPECT_FALSE(os.process(child).subreaper);
  int flag = -1;
  os.switch_to(child);
  ASSERT_TRUE(os.prctl(PR_GET_CHILD_SUBREAPER, reinterpret_cast<unsigned long>(&flag)));
  EXPECT_EQ(flag, 0);
}

// The thread's name (/proc/PID/comm): 15 bytes kept, copied by fork, a null pointer refused.
TEST(FakeProcessName, SetGetTruncateAndInherit) {
  FakeSyscalls os;
  ASSERT_TRUE(os.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>("a-name-longer-than-15")));
  std::array<char, 16> name{};
  name.fill('x');
  ASSERT_TRUE(os.prctl(PR_GET_NAME, reinterpret_cast<unsigned long>(name.data())));
  EXPECT_STREQ(name.data(), "a-name-longer-t");
  const pid_t child = *os.fork();
  os.switch_to(child);
  name.fill('x');
  ASSERT_TRUE(os.prctl(PR_GET_NAME, reinterpret_cast<unsigned long>(name.data())));
  EXPECT_STREQ(name.data(), "a-name-longer-t");
  EXPECT_EQ(os.prctl(PR_SET_NAME, 0).error().code, EFAULT);
  EXPECT_EQ(os.prctl(PR_GET_NAME, 0).error().code, EFAULT);
}

TEST(FakeReparent, ParentDeathSignalReachesTheOrphan) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.prctl(PR_SET_PDEATHSIG, SIGTERM));
  const pid_t grandchild = *os.fork();
  os.switch_to(grandchild);
  ASSERT_TRUE(os.prctl(PR_SET_PDEATHSIG, SIGTERM));
  os.switch_to(child);
  ends([&] { os.exit_now(0); });
  EXPECT_EQ(os.process(grandchild).state, ProcessState::kReaped);  // killed, reaped by init
  EXPECT_EQ(WTERMSIG(os.process(grandchild).wait_status), SIGTERM);
}

TEST(FakeSession, SetsidFailsForAProcessGroupLeader) {
  FakeSyscalls os;
  ASSERT_EQ(*os.getpgid(0), os.getpid());
  EXPECT_EQ(os.setsid().error().code, EPERM);
}

TEST(FakeSession, SetsidAfterForkMakesANewSessionAndGroup) {
  FakeSyscalls os;
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  const pid_t self = os.getpid();
  ASSERT_EQ(*os.setsid(), self);
  EXPECT_EQ(*os.getsid(0), self);
  EXPECT_EQ(*os.getpgid(0), self);
  // Now a session leader: a second setsid fails, and so does moving to another group.
  EXPECT_EQ(os.setsid().error().code, EPERM);
  EXPECT_EQ(os.setpgid(0, 0).error().code, EPERM);
}

TEST(FakeSession, GetsidOfAnUnknownPidIsEsrch) {
  FakeSyscalls os;
  EXPECT_EQ(os.getsid(424242).error().code, ESRCH);
  EXPECT_EQ(os.getpgid(424242).error().code, ESRCH);
  EXPECT_EQ(*os.getsid(1), 1);
}

TEST(FakeSession, SetpgidMovesAChildIntoTheParentsGroupButNotAnUnrelatedProcess) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.setpgid(child, child));
  EXPECT_EQ(*os.getpgid(child), child);
  ASSERT_TRUE(os.setpgid(child, os.getpid()));
  EXPECT_EQ(*os.getpgid(child), os.getpid());
  EXPECT_EQ(os.setpgid(1, 1).error().code, ESRCH);
  EXPECT_EQ(os.setpgid(0, -1).error().code, EINVAL);
  EXPECT_EQ(os.setpgid(child, 424242).error().code, EPERM);
}

TEST(FakeKill, SignalZeroOnlyChecksThatTheProcessExists) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.kill(child, 0));
  EXPECT_TRUE(os.process(child).alive());
  EXPECT_THAT(os.process(child).signals, IsEmpty());
  EXPECT_EQ(os.kill(424242, 0).error().code, ESRCH);
  EXPECT_EQ(os.kill(child, 65).error().code, EINVAL);
}

TEST(FakeKill, AZombieCanStillBeSignalledButAReapedProcessCannot) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.kill(child, SIGKILL));
  EXPECT_TRUE(os.kill(child, SIGTERM));
  ASSERT_TRUE(os.waitpid(child, 0));
  EXPECT_EQ(os.kill(child, SIGTERM).error().code, ESRCH);
}

TEST(FakeKill, UnprivilegedSenderNeedsMatchingIds) {
  FakeSyscallsOptions options;
  options.uid = 1000;
  options.gid = 1000;
  FakeSyscalls os(options);
  EXPECT_EQ(os.kill(1, SIGTERM).error().code, EPERM);
  const pid_t child = *os.fork();
  EXPECT_TRUE(os.kill(child, SIGTERM));
}

TEST(FakeKill, RootMaySignalAnyone) {
  FakeSyscalls os;
  ASSERT_TRUE(os.kill(999, SIGHUP));
  EXPECT_FALSE(os.process(999).alive());
}

TEST(FakeKill, InitIgnoresSignalsItHasNoHandlerFor) {
  FakeSyscalls os;
  ASSERT_TRUE(os.kill(1, SIGKILL));
  ASSERT_TRUE(os.kill(1, SIGTERM));
  EXPECT_TRUE(os.process(1).alive());
  EXPECT_EQ(os.process(1).signals.at(0).action, SignalAction::kIgnored);
}

TEST(FakeKill, DefaultActionOnSelfEndsTheProcessWithSignalStatus) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  const ProcessEnded ended = ends([&] { static_cast<void>(os.kill(self, SIGTERM)); });
  EXPECT_TRUE(ended.killed());
  EXPECT_EQ(ended.signal(), SIGTERM);
  EXPECT_EQ(os.process(self).state, ProcessState::kZombie);
  EXPECT_EQ(os.transcript().back().name, "kill");
}

TEST(FakeKill, IgnoredAndDefaultIgnoredSignalsLeaveTheProcessRunning) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  os.switch_to(child);
  auto ignore = simple_action(SIG_IGN);
  ASSERT_TRUE(os.sigaction(SIGHUP, &ignore, nullptr));
  os.switch_to(os.process(child).ppid);
  ASSERT_TRUE(os.kill(child, SIGHUP));
  ASSERT_TRUE(os.kill(child, SIGWINCH));
  const ProcessInfo info = os.process(child);
  EXPECT_TRUE(info.alive());
  ASSERT_EQ(info.signals.size(), 2u);
  EXPECT_EQ(info.signals[0].action, SignalAction::kIgnored);
  EXPECT_EQ(info.signals[1].action, SignalAction::kIgnored);
}

TEST(FakeKill, ACaughtSignalIsRecordedAndItsHandlerIsNotRun) {
  FakeSyscalls os;
  auto act = handler_action();
  ASSERT_TRUE(os.sigaction(SIGUSR1, &act, nullptr));
  ASSERT_TRUE(os.kill(os.getpid(), SIGUSR1));
  const auto signals = os.process(os.getpid()).signals;
  ASSERT_EQ(signals.size(), 1u);
  EXPECT_EQ(signals[0].signal, SIGUSR1);
  EXPECT_EQ(signals[0].sender, os.getpid());
  EXPECT_EQ(signals[0].action, SignalAction::kCaught);
}

TEST(FakeKill, ABlockedSignalPendsAndActsWhenUnblocked) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  ASSERT_TRUE(os.sigprocmask(SIG_BLOCK, &set, nullptr));
  ASSERT_TRUE(os.kill(self, SIGTERM));
  EXPECT_THAT(os.process(self).pending_signals, ElementsAre(SIGTERM));
  const ProcessEnded ended =
      ends([&] { static_cast<void>(os.sigprocmask(SIG_UNBLOCK, &set, nullptr)); });
  EXPECT_EQ(ended.signal(), SIGTERM);
}

TEST(FakeKill, IgnoringAPendingSignalDiscardsIt) {
  FakeSyscalls os;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  ASSERT_TRUE(os.sigprocmask(SIG_BLOCK, &set, nullptr));
  ASSERT_TRUE(os.kill(os.getpid(), SIGTERM));
  auto ignore = simple_action(SIG_IGN);
  ASSERT_TRUE(os.sigaction(SIGTERM, &ignore, nullptr));
  EXPECT_THAT(os.process(os.getpid()).pending_signals, IsEmpty());
  ASSERT_TRUE(os.sigprocmask(SIG_UNBLOCK, &set, nullptr));
  EXPECT_TRUE(os.process(os.getpid()).alive());
}

TEST(FakeKill, ProcessGroupSignalReachesEveryMember) {
  FakeSyscalls os;
  const pid_t a = *os.fork();
  const pid_t b = *os.fork();
  auto ignore = simple_action(SIG_IGN);
  ASSERT_TRUE(os.sigaction(SIGTERM, &ignore, nullptr));
  ASSERT_TRUE(os.kill(0, SIGTERM));
  EXPECT_TRUE(os.process(os.getpid()).alive());
  EXPECT_FALSE(os.process(a).alive());
  EXPECT_FALSE(os.process(b).alive());
  EXPECT_EQ(os.kill(-424242, SIGTERM).error().code, ESRCH);
}

TEST(FakeSignals, SigactionRefusesSigkillAndSigstopAndBadNumbers) {
  FakeSyscalls os;
  auto ignore = simple_action(SIG_IGN);
  EXPECT_EQ(os.sigaction(SIGKILL, &ignore, nullptr).error().code, EINVAL);
  EXPECT_EQ(os.sigaction(SIGSTOP, &ignore, nullptr).error().code, EINVAL);
  EXPECT_EQ(os.sigaction(0, nullptr, nullptr).error().code, EINVAL);
  EXPECT_EQ(os.sigaction(65, nullptr, nullptr).error().code, EINVAL);
  struct sigaction old {};
  EXPECT_TRUE(os.sigaction(SIGKILL, nullptr, &old));
}

TEST(FakeSignals, SigactionReturnsThePreviousDisposition) {
  FakeSyscalls os;
  auto ignore = simple_action(SIG_IGN);
  struct sigaction old {};
  ASSERT_TRUE(os.sigaction(SIGPIPE, &ignore, &old));
  EXPECT_EQ(old.sa_handler, SIG_DFL);
  ASSERT_TRUE(os.sigaction(SIGPIPE, nullptr, &old));
  EXPECT_EQ(old.sa_handler, SIG_IGN);
}

TEST(FakeSignals, SigprocmaskCannotBlockSigkillAndRejectsABadHow) {
  FakeSyscalls os;
  sigset_t all;
  sigfillset(&all);
  ASSERT_TRUE(os.sigprocmask(SIG_SETMASK, &all, nullptr));
  const auto blocked = os.process(os.getpid()).blocked_signals;
  EXPECT_THAT(blocked, ::testing::Not(::testing::Contains(SIGKILL)));
  EXPECT_THAT(blocked, ::testing::Contains(SIGTERM));
  sigset_t old;
  ASSERT_TRUE(os.sigprocmask(SIG_BLOCK, nullptr, &old));
  EXPECT_EQ(sigismember(&old, SIGTERM), 1);
  EXPECT_EQ(os.sigprocmask(7, &all, nullptr).error().code, EINVAL);
}

TEST(FakeExecve, RunsAnInstalledProgramAndRecordsIt) {
  FakeSyscalls os;
  os.install_program("/usr/bin/worker");
  const pid_t self = os.getpid();
  char arg0[] = "worker";
  char arg1[] = "--once";
  char env0[] = "A=1";
  char* argv[] = {arg0, arg1, nullptr};
  char* envp[] = {env0, nullptr};
  const ProcessEnded ended =
      ends([&] { static_cast<void>(os.execve("/usr/bin/worker", argv, envp)); });
  EXPECT_TRUE(ended.by_exec);
  EXPECT_EQ(ended.pid, self);
  EXPECT_EQ(os.current_pid(), 0);
  const ProcessInfo info = os.process(self);
  EXPECT_TRUE(info.alive());
  ASSERT_EQ(info.execs.size(), 1u);
  EXPECT_EQ(info.execs[0].path, "/usr/bin/worker");
  EXPECT_THAT(info.execs[0].argv, ElementsAre("worker", "--once"));
  EXPECT_THAT(info.execs[0].envp, ElementsAre("A=1"));
}

TEST(FakeExecve, ClosesCloexecDescriptorsAndKeepsTheOthers) {
  FakeSyscalls os;
  os.install_program("/bin/true");
  const pid_t self = os.getpid();
  const int kept = *os.open("/dev/null", O_RDONLY, 0);
  const int closed = *os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  auto fds = *os.pipe2(O_CLOEXEC);
  char* argv[] = {nullptr};
  ends([&] { static_cast<void>(os.execve("/bin/true", argv, argv)); });
  EXPECT_THAT(os.open_fds(self), ElementsAre(kept));
  static_cast<void>(closed);
  static_cast<void>(fds);
}

TEST(FakeExecve, ResetsCaughtSignalsButKeepsIgnoredOnesAndTheMask) {
  FakeSyscalls os;
  os.install_program("/bin/true");
  const pid_t self = os.getpid();
  auto act = handler_action();
  auto ignore = simple_action(SIG_IGN);
  ASSERT_TRUE(os.sigaction(SIGHUP, &act, nullptr));
  ASSERT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  ASSERT_TRUE(os.sigprocmask(SIG_BLOCK, &set, nullptr));
  char* argv[] = {nullptr};
  ends([&] { static_cast<void>(os.execve("/bin/true", argv, argv)); });
  const ProcessInfo info = os.process(self);
  EXPECT_THAT(info.caught_signals, IsEmpty());
  EXPECT_THAT(info.ignored_signals, ElementsAre(SIGPIPE));
  EXPECT_THAT(info.blocked_signals, ElementsAre(SIGUSR2));
}

TEST(FakeExecve, FailsWithoutChangingAnythingForMissingOrNonExecutableFiles) {
  FakeSyscalls os;
  os.write_file("/etc/data", "x", 0644);
  os.make_dir("/opt/dir");
  char* argv[] = {nullptr};
  const int fd = *os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  EXPECT_EQ(os.execve("/usr/bin/missing", argv, argv).error().code, ENOENT);
  // Root gets no execute permission on a file without any x bit.
  EXPECT_EQ(os.execve("/etc/data", argv, argv).error().code, EACCES);
  EXPECT_EQ(os.execve("/opt/dir", argv, argv).error().code, EACCES);
  EXPECT_THAT(os.open_fds(os.getpid()), ElementsAre(fd));
}

TEST(FakeExecve, NeedsTheExecuteBitForItsUser) {
  FakeSyscallsOptions options;
  options.uid = 1000;
  options.gid = 1000;
  FakeSyscalls os(options);
  os.install_program("/usr/bin/rootonly", 0700);
  char* argv[] = {nullptr};
  EXPECT_EQ(os.execve("/usr/bin/rootonly", argv, argv).error().code, EACCES);
}

TEST(FakeExecve, AfterExecTheTestCanEndTheProgram) {
  FakeSyscalls os;
  os.install_program("/bin/sleep");
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.switch_to(child);
  char* argv[] = {nullptr};
  ends([&] { static_cast<void>(os.execve("/bin/sleep", argv, argv)); });
  os.end_process(child, 4);
  os.switch_to(parent);
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child, 0)->status), 4);
}

TEST(FakePidfd, SignalsTheProcessItRefersTo) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  const int pidfd = *os.pidfd_open(child, 0);
  EXPECT_EQ(*os.fcntl(pidfd, F_GETFD, 0), FD_CLOEXEC);
  ASSERT_TRUE(os.pidfd_send_signal(pidfd, SIGTERM, 0));
  EXPECT_FALSE(os.process(child).alive());
  // A zombie can still be signalled; once reaped, the pid is dead.
  EXPECT_TRUE(os.pidfd_send_signal(pidfd, SIGTERM, 0));
  ASSERT_TRUE(os.waitpid(child, 0));
  EXPECT_EQ(os.pidfd_send_signal(pidfd, SIGTERM, 0).error().code, ESRCH);
}

TEST(FakePidfd, ReportsLinuxErrors) {
  FakeSyscalls os;
  EXPECT_EQ(os.pidfd_open(424242, 0).error().code, ESRCH);
  EXPECT_EQ(os.pidfd_open(0, 0).error().code, EINVAL);
  EXPECT_EQ(os.pidfd_open(os.getpid(), 1).error().code, EINVAL);
  const int fd = *os.open("/dev/null", O_RDONLY, 0);
  EXPECT_EQ(os.pidfd_send_signal(fd, SIGTERM, 0).error().code, EBADF);
  EXPECT_EQ(os.pidfd_send_signal(99, SIGTERM, 0).error().code, EBADF);
  const int pidfd = *os.pidfd_open(os.getpid(), 0);
  EXPECT_EQ(os.pidfd_send_signal(pidfd, SIGTERM, 8).error().code, EINVAL);
  EXPECT_EQ(os.pidfd_send_signal(pidfd, SIGTERM, 3).error().code, EINVAL) << "one scope at most";
}

TEST(FakePidfd, CanSignalTheWholeProcessGroup) {
  FakeSyscalls os;
  const pid_t a = *os.fork();
  const pid_t b = *os.fork();
  ASSERT_TRUE(os.setpgid(a, a));
  ASSERT_TRUE(os.setpgid(b, a));
  const int pidfd = *os.pidfd_open(a, 0);
  ASSERT_TRUE(os.pidfd_send_signal(pidfd, SIGTERM, 4 /* PIDFD_SIGNAL_PROCESS_GROUP */));
  EXPECT_FALSE(os.process(a).alive());
  EXPECT_FALSE(os.process(b).alive());
  EXPECT_TRUE(os.process(os.getpid()).alive());
}

TEST(FakeKill, MinusOneSucceedsIfAnyoneElseExistsEvenWithoutPermission) {
  FakeSyscallsOptions options;
  options.uid = 1000;
  FakeSyscalls os(options);
  // Only init and the shell (999, same user here) exist besides the caller.
  EXPECT_TRUE(os.kill(-1, 0));
  EXPECT_TRUE(os.process(999).alive());
}

TEST(FakePrctl, ChangingTheEffectiveIdClearsDumpable) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setgroups(std::vector<gid_t>{}));
  EXPECT_EQ(*os.prctl(PR_GET_DUMPABLE, 0), 1) << "groups are not an effective id";
  ASSERT_TRUE(os.setresuid(-1, 0, -1));
  EXPECT_EQ(*os.prctl(PR_GET_DUMPABLE, 0), 1) << "no change, no effect";
  ASSERT_TRUE(os.prctl(PR_SET_PDEATHSIG, SIGTERM));
  ASSERT_TRUE(os.seteuid(1000));
  EXPECT_EQ(*os.prctl(PR_GET_DUMPABLE, 0), 0);
  EXPECT_EQ(os.process(os.getpid()).pdeathsig, 0) << "the parent-death signal is lost too";
  os.install_program("/bin/true");
  char* argv[] = {nullptr};
  const pid_t self = os.getpid();
  ends([&] { static_cast<void>(os.execve("/bin/true", argv, argv)); });
  os.switch_to(self);
  EXPECT_EQ(*os.prctl(PR_GET_DUMPABLE, 0), 1) << "exec of an ordinary program restores it";
}

TEST(FakePrctl, DumpableAndUnknownOptions) {
  FakeSyscalls os;
  EXPECT_EQ(*os.prctl(PR_GET_DUMPABLE, 0), 1);
  ASSERT_TRUE(os.prctl(PR_SET_DUMPABLE, 0));
  EXPECT_EQ(*os.prctl(PR_GET_DUMPABLE, 0), 0);
  EXPECT_EQ(os.prctl(PR_SET_DUMPABLE, 5).error().code, EINVAL);
  EXPECT_EQ(os.prctl(-1, 0).error().code, EINVAL);
}

TEST(FakeDoubleFork, BytesCrossAPipeFromTheDaemonToTheFirstParent) {
  FakeSyscalls os;
  const pid_t first = os.getpid();
  auto status = *os.pipe2(O_CLOEXEC);

  // First parent: forks the intermediate and keeps running as the parent.
  const pid_t intermediate = *os.fork();

  // Intermediate: new session, forks the daemon, exits.
  os.switch_to(intermediate);
  ASSERT_TRUE(os.close(status.read_end));
  ASSERT_EQ(*os.setsid(), intermediate);
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  const pid_t daemon = os.getpid();
  os.switch_to(intermediate);
  ends([&] { os.exit_now(0); });

  // Daemon: reparented to init, reports readiness, closes the write end.
  os.switch_to(daemon);
  EXPECT_EQ(os.getppid(), 1);
  EXPECT_EQ(*os.getsid(0), intermediate);
  ASSERT_EQ(*os.write(status.write_end, "0", 1), 1u);
  ASSERT_TRUE(os.close(status.write_end));

  // First parent: closes its write end, reaps the intermediate, reads until EOF.
  os.switch_to(first);
  ASSERT_TRUE(os.close(status.write_end));
  EXPECT_EQ(WEXITSTATUS(os.waitpid(intermediate, 0)->status), 0);
  EXPECT_EQ(read_all(os, status.read_end), "0");
  EXPECT_TRUE(os.process(daemon).alive());
}

TEST(FakeKill, ANonexistentTargetIsEsrchEvenForAnInvalidSignal) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  os.end_process(child, 0);
  ASSERT_TRUE(os.waitpid(child, 0));
  EXPECT_EQ(os.kill(child, 65).error().code, ESRCH);
  EXPECT_EQ(os.kill(-424242, -1).error().code, ESRCH);
  EXPECT_EQ(os.kill(os.getpid(), 65).error().code, EINVAL);
  EXPECT_EQ(os.kill(-1, 65).error().code, EINVAL);
}

// Linux's kill(-1, sig) counts only errors other than EPERM (checked on this kernel: a uid
// with no other process gets 0 back).
TEST(FakeKill, SignallingEveryoneSucceedsEvenWhenNoProcessMayBeSignalled) {
  FakeSyscalls os;  // root, with a root shell as parent
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.setresuid(23456, 23456, 23456));
  EXPECT_EQ(os.kill(child, 0).error().code, EPERM);
  EXPECT_TRUE(os.kill(-1, 0));
  EXPECT_TRUE(os.kill(-1, SIGTERM));
  EXPECT_TRUE(os.process(child).alive());
  EXPECT_TRUE(os.process(999).alive());
}

}  // namespace
}  // namespace daemonkit::fake
