// Fake programs: code installed at a path that the fake kernel runs as the process after a
// successful execve, in turns, whenever the code under test would wait for it. A parent here
// starts children as spawn_process does (pipes, vfork, the child's dup2s, execve) and talks to
// them through epoll, pidfds and waitpid, without threads or sleeps.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_programs.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::fake {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The parent's ends of a child's stdio, and the child.
struct Child {
  pid_t pid = 0;
  int stdin_w = -1;
  int stdout_r = -1;
  int stderr_r = -1;
};

struct SpawnOptions {
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  // The parent's ends are non-blocking, as a reactor wants them; the child's stay blocking.
  bool parent_nonblocking = true;
  // Extra child descriptors: child fd -> the parent's fd to pass through.
  std::vector<std::pair<int, int>> pass;
};

// What spawn_process does, reduced to its calls: CLOEXEC pipes, vfork, the child's dup2s onto
// 0-2 (which clear CLOEXEC), execve; the parent closes the child's ends. A failed execve ends
// the child with 127.
// The parent gets its own stdio, as a daemon has /dev/null there, so that the pipes do not
// take 0-2 and spawn's dup2s need no cycle breaking (spawn_process's own business).
void give_stdio(FakeSyscalls& os) {
  while (os.open_fds(os.current_pid()).size() < 3) {
    EXPECT_TRUE(os.open("/dev/null", O_RDWR, 0));
  }
}

Child spawn(FakeSyscalls& os, const char* path, SpawnOptions options = {}) {
  give_stdio(os);
  const auto in = *os.pipe2(O_CLOEXEC);
  const auto out = *os.pipe2(O_CLOEXEC);
  const auto err = *os.pipe2(O_CLOEXEC);
  if (options.argv.empty()) options.argv.emplace_back(path);
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : options.envp) envp.push_back(e.data());
  envp.push_back(nullptr);
  const auto pid = os.vfork([&] {
    // The child starts with every signal blocked; the program must start with none.
    sigset_t none;
    sigemptyset(&none);
    if (!os.sigprocmask(SIG_SETMASK, &none, nullptr)) return 126;
    if (!os.dup2(in.read_end, 0) || !os.dup2(out.write_end, 1) || !os.dup2(err.write_end, 2)) {
      return 126;
    }
    for (auto [child_fd, parent_fd] : options.pass) {
      if (!os.dup2(parent_fd, child_fd)) return 126;
    }
    static_cast<void>(os.execve(path, argv.data(), envp.data()));
    return 127;
  });
  EXPECT_TRUE(pid);
  EXPECT_TRUE(os.close(in.read_end));
  EXPECT_TRUE(os.close(out.write_end));
  EXPECT_TRUE(os.close(err.write_end));
  if (options.parent_nonblocking) {
    for (int fd : {in.write_end, out.read_end, err.read_end}) {
      EXPECT_TRUE(os.fcntl(fd, F_SETFL, O_NONBLOCK));
    }
  }
  return {pid.value_or(-1), in.write_end, out.read_end, err.read_end};
}

std::string drain(FakeSyscalls& os, int fd) {
  std::string text;
  std::string chunk(65536, '\0');
  for (;;) {
    auto n = os.read(fd, chunk.data(), chunk.size());
    if (!n || *n == 0) return text;
    text.append(chunk.data(), *n);
  }
}

// The calls a process made, by name.
std::vector<std::string> calls_of(const FakeSyscalls& os, pid_t pid) {
  std::vector<std::string> names;
  for (const auto& record : os.transcript()) {
    if (record.pid == pid) names.push_back(record.name);
  }
  return names;
}

std::size_t count_calls(const FakeSyscalls& os, pid_t pid, const std::string& name) {
  return static_cast<std::size_t>(
      std::count_if(os.transcript().begin(), os.transcript().end(),
                    [&](const CallRecord& r) { return r.pid == pid && r.name == name; }));
}

int wait_events(FakeSyscalls& os, int ep, std::vector<epoll_event>& events, int timeout = -1) {
  events.assign(8, epoll_event{});
  auto n = os.epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
  EXPECT_TRUE(n) << (n ? "" : sys::to_string(n.error()));
  events.resize(n ? static_cast<std::size_t>(*n) : 0);
  return n.value_or(-1);
}

void watch(FakeSyscalls& os, int ep, int fd, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &event));
}

bool reported(const std::vector<epoll_event>& events, int fd, std::uint32_t bits) {
  return std::any_of(events.begin(), events.end(), [&](const epoll_event& e) {
    return e.data.fd == fd && (e.events & bits) == bits;
  });
}

TEST(FakePrograms, CatEchoesThroughPipesAndExitsZeroAtEof) {
  FakeSyscalls os;
  os.install_program("/bin/cat", programs::cat());
  const Child child = spawn(os, "/bin/cat");
  // The parent resumed right after the execve; the program has not run yet.
  EXPECT_THAT(calls_of(os, child.pid),
              ElementsAre("sigprocmask", "dup2", "dup2", "dup2", "execve"));
  const int pidfd = *os.pidfd_open(child.pid, 0);
  const int ep = *os.epoll_create1(EPOLL_CLOEXEC);
  watch(os, ep, child.stdout_r, EPOLLIN);
  watch(os, ep, pidfd, EPOLLIN);

  ASSERT_TRUE(os.write(child.stdin_w, "hello\n", 6));
  std::vector<epoll_event> events;
  ASSERT_EQ(wait_events(os, ep, events), 1);
  EXPECT_TRUE(reported(events, child.stdout_r, EPOLLIN));
  EXPECT_EQ(drain(os, child.stdout_r), "hello\n");

  ASSERT_TRUE(os.close(child.stdin_w));
  ASSERT_EQ(wait_events(os, ep, events), 2);
  EXPECT_TRUE(reported(events, child.stdout_r, EPOLLHUP));
  EXPECT_TRUE(reported(events, pidfd, EPOLLIN));
  char byte = 0;
  EXPECT_EQ(os.read(child.stdout_r, &byte, 1).value_or(99), 0u);
  auto waited = os.waitpid(child.pid, WNOHANG);
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->pid, child.pid);
  EXPECT_TRUE(WIFEXITED(waited->status));
  EXPECT_EQ(WEXITSTATUS(waited->status), 0);
  // Its calls are in the transcript under its own pid, made on its own descriptors.
  EXPECT_THAT(os.transcript(),
              Contains(AllOf(Field(&CallRecord::pid, child.pid), Field(&CallRecord::name, "write"),
                             Field(&CallRecord::args, Contains("1")))));
  EXPECT_EQ(calls_of(os, child.pid).back(), "exit_now");
  EXPECT_EQ(os.current_pid(), 1000);
}

TEST(FakePrograms, ExitWithEndsWithItsCodeWhileTheParentWaits) {
  FakeSyscalls os;
  os.install_program("/bin/false3", programs::exit_with(3));
  const Child child = spawn(os, "/bin/false3");
  EXPECT_TRUE(os.process(child.pid).alive());
  // A blocking waitpid is where the parent would wait: the program runs first.
  auto waited = os.waitpid(child.pid, 0);
  ASSERT_TRUE(waited);
  EXPECT_TRUE(WIFEXITED(waited->status));
  EXPECT_EQ(WEXITSTATUS(waited->status), 3);
}

TEST(FakePrograms, SigtermThroughThePidfdKillsAProgramThatNeverReads) {
  FakeSyscalls os;
  os.install_program("/bin/stuck", programs::never_reads());
  const Child child = spawn(os, "/bin/stuck");
  const int pidfd = *os.pidfd_open(child.pid, 0);
  EXPECT_EQ(os.waitpid(child.pid, WNOHANG)->pid, 0);  // it ran, and waits on
  ASSERT_TRUE(os.pidfd_send_signal(pidfd, SIGTERM, 0));
  auto waited = os.waitpid(child.pid, WNOHANG);
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->pid, child.pid);
  EXPECT_TRUE(WIFSIGNALED(waited->status));
  EXPECT_EQ(WTERMSIG(waited->status), SIGTERM);
}

TEST(FakePrograms, ASignalItHasAHandlerForIsRecordedAndItRunsOn) {
  FakeSyscalls os;
  // A program of the test's own: it catches SIGTERM on its first turn, then waits forever.
  os.install_program("/bin/stubborn", [](const ExecRecord&) -> ProgramStep {
    return [installed = false](sys::Syscalls& child_os) mutable {
      if (installed) return Turn::kWaiting;
      struct sigaction act {};
      act.sa_handler = [](int) {};
      EXPECT_TRUE(child_os.sigaction(SIGTERM, &act, nullptr));
      installed = true;
      return Turn::kRunning;
    };
  });
  const Child child = spawn(os, "/bin/stubborn");
  os.run_programs();
  ASSERT_TRUE(os.kill(child.pid, SIGTERM));
  EXPECT_EQ(os.waitpid(child.pid, WNOHANG)->pid, 0);
  const ProcessInfo info = os.process(child.pid);
  EXPECT_TRUE(info.alive());
  ASSERT_FALSE(info.signals.empty());
  EXPECT_EQ(info.signals.back().signal, SIGTERM);
  EXPECT_EQ(info.signals.back().action, SignalAction::kCaught);
}

TEST(FakePrograms, AChildThatNeverReadsFillsItsStdinAndTheParentGetsEagain) {
  FakeSyscalls os;
  os.install_program("/bin/stuck", programs::never_reads());
  const Child child = spawn(os, "/bin/stuck");
  const std::string chunk(4096, 'x');
  std::size_t written = 0;
  for (int i = 0; i < 100; ++i) {
    auto n = os.write(child.stdin_w, chunk.data(), chunk.size());
    if (!n) {
      EXPECT_EQ(n.error().code, EAGAIN);
      break;
    }
    written += *n;
  }
  EXPECT_EQ(written, 65536u);
  const int ep = *os.epoll_create1(0);
  watch(os, ep, child.stdin_w, EPOLLOUT);
  std::vector<epoll_event> events;
  EXPECT_EQ(wait_events(os, ep, events, 0), 0);
  EXPECT_TRUE(os.process(child.pid).alive());
  // Killed, its read end closes: the parent's end reports the error.
  os.send_signal(child.pid, SIGKILL);
  ASSERT_EQ(wait_events(os, ep, events, 0), 1);
  EXPECT_TRUE(reported(events, child.stdin_w, EPOLLERR));
}

TEST(FakePrograms, CatWaitsWhileItsStdoutIsFullAndLosesNoByte) {
  FakeSyscalls os;
  os.install_program("/bin/cat", programs::cat());
  const Child child = spawn(os, "/bin/cat");
  std::string sent;
  for (int i = 0; i < 48; ++i) sent += std::string(4096, static_cast<char>('a' + i % 26));
  std::size_t offset = 0;
  auto feed = [&] {
    while (offset < sent.size()) {
      auto n = os.write(child.stdin_w, sent.data() + offset, sent.size() - offset);
      if (!n) break;
      offset += *n;
    }
  };
  const int ep = *os.epoll_create1(0);
  watch(os, ep, child.stdout_r, EPOLLIN);
  std::vector<epoll_event> events;
  // Fill cat's stdin twice before reading anything back: its stdout fills, and it must wait
  // with what it read, then go on where it stopped.
  feed();
  ASSERT_EQ(wait_events(os, ep, events, 0), 1);
  feed();
  ASSERT_EQ(wait_events(os, ep, events, 0), 1);
  EXPECT_THAT(os.transcript(),
              Contains(AllOf(Field(&CallRecord::pid, child.pid), Field(&CallRecord::name, "write"),
                             Field(&CallRecord::error, EAGAIN))));
  EXPECT_LT(offset, sent.size());
  std::string received;
  bool closed = false;
  while (received.size() < sent.size()) {
    received += drain(os, child.stdout_r);
    feed();
    if (offset == sent.size() && !closed) {
      ASSERT_TRUE(os.close(child.stdin_w));
      closed = true;
    }
    if (received.size() < sent.size()) {
      ASSERT_GE(wait_events(os, ep, events), 1);
    }
  }
  EXPECT_EQ(received, sent);
}

TEST(FakePrograms, AWaitingProgramGetsNoTurnWhileNothingChanges) {
  FakeSyscalls os;
  os.install_program("/bin/cat", programs::cat());
  const Child child = spawn(os, "/bin/cat");
  const int ep = *os.epoll_create1(0);
  watch(os, ep, child.stdout_r, EPOLLIN);
  std::vector<epoll_event> events;
  EXPECT_EQ(wait_events(os, ep, events, 0), 0);
  const std::size_t reads = count_calls(os, child.pid, "read");
  EXPECT_EQ(reads, 1u);  // its stdin is empty: one read, EAGAIN, and it waits
  for (int i = 0; i < 3; ++i) EXPECT_EQ(wait_events(os, ep, events, 0), 0);
  EXPECT_EQ(count_calls(os, child.pid, "read"), reads);
  // A change it may wait for (bytes in its stdin) gives it its turn again.
  ASSERT_TRUE(os.write(child.stdin_w, "x", 1));
  EXPECT_EQ(wait_events(os, ep, events, 0), 1);
  EXPECT_GT(count_calls(os, child.pid, "read"), reads);
}

TEST(FakePrograms, ABlockingReadOfTheParentGivesTheProgramsTheirTurn) {
  FakeSyscalls os;
  os.install_program("/bin/hello", programs::write_then_exit("hi\n", "oops\n", 2));
  SpawnOptions options;
  options.parent_nonblocking = false;
  const Child child = spawn(os, "/bin/hello", options);
  char buf[16];
  auto n = os.read(child.stdout_r, buf, sizeof buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "hi\n");
  EXPECT_EQ(drain(os, child.stderr_r), "oops\n");
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 2);
}

TEST(FakePrograms, AWriteFailedByFaultInjectionEndsTheProgramWithOne) {
  FakeSyscalls os;
  os.install_program("/bin/hello", programs::write_then_exit("hi\n"));
  pid_t child_pid = 0;
  os.fail_when(
      "write", [&](const CallRecord& r) { return r.pid == child_pid; }, ENOSPC);
  const Child child = spawn(os, "/bin/hello");
  child_pid = child.pid;
  auto waited = os.waitpid(child.pid, 0);
  ASSERT_TRUE(waited);
  EXPECT_EQ(WEXITSTATUS(waited->status), 1);
  EXPECT_THAT(os.transcript(), CallFailedWith("write", ENOSPC));
  EXPECT_EQ(drain(os, child.stdout_r), "");
}

TEST(FakePrograms, AnExecThatFailsRunsNoProgram) {
  for (const bool missing : {true, false}) {
    SCOPED_TRACE(missing ? "ENOENT" : "EACCES");
    FakeSyscalls os;
    if (!missing) os.install_program("/bin/cat", programs::cat(), 0644);
    const Child child = spawn(os, "/bin/cat");
    EXPECT_THAT(os.transcript(), CallFailedWith("execve", missing ? ENOENT : EACCES));
    os.run_programs();
    EXPECT_THAT(calls_of(os, child.pid),
                ElementsAre("sigprocmask", "dup2", "dup2", "dup2", "execve", "exit_now"));
    EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 127);
  }
}

TEST(FakePrograms, AProgramlessInstallKeepsTheProcessForTheTestToPlay) {
  FakeSyscalls os;
  os.install_program("/bin/cat", programs::cat());
  os.install_program("/bin/cat");  // replaced: an executable with no code behind it
  const Child child = spawn(os, "/bin/cat");
  os.run_programs();
  EXPECT_EQ(calls_of(os, child.pid).back(), "execve");
  EXPECT_TRUE(os.process(child.pid).alive());
  os.end_process(child.pid, 4);
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 4);
}

TEST(FakePrograms, EchoArgsWritesItsArgvAndEnvironment) {
  FakeSyscalls os;
  os.install_program("/usr/bin/echo-args", programs::echo_args());
  SpawnOptions options;
  options.argv = {"echo-args", "one", "two words"};
  options.envp = {"HOME=/", "LANG=C"};
  const Child child = spawn(os, "/usr/bin/echo-args", options);
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 0);
  EXPECT_EQ(drain(os, child.stdout_r), "echo-args\none\ntwo words\n\nHOME=/\nLANG=C\n");
}

TEST(FakePrograms, WriteToFdUsesADescriptorAChildFdsMapPassed) {
  FakeSyscalls os;
  os.install_program("/bin/report", programs::write_to_fd(3, "status ok", 5));
  give_stdio(os);
  const auto extra = *os.pipe2(O_CLOEXEC | O_NONBLOCK);
  SpawnOptions options;
  options.pass = {{3, extra.write_end}};
  const Child child = spawn(os, "/bin/report", options);
  ASSERT_TRUE(os.close(extra.write_end));
  EXPECT_THAT(os.open_fds(child.pid), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 5);
  EXPECT_EQ(drain(os, extra.read_end), "status ok");
}

TEST(FakePrograms, TheBeforeCallHookPlaysFirstThenTheProgramsRun) {
  FakeSyscalls os;
  os.install_program("/bin/cat", programs::cat());
  const Child child = spawn(os, "/bin/cat");
  const int ep = *os.epoll_create1(0);
  watch(os, ep, child.stdout_r, EPOLLIN);
  // Just before the parent waits, the hook writes as the parent; cat echoes during the wait.
  os.before_each_call([&](std::string_view name, pid_t caller) {
    if (name == "epoll_wait" && caller == 1000) {
      EXPECT_TRUE(os.write(child.stdin_w, "ping", 4));
    }
  });
  std::vector<epoll_event> events;
  ASSERT_EQ(wait_events(os, ep, events, 0), 1);
  os.before_each_call({});
  EXPECT_EQ(drain(os, child.stdout_r), "ping");
}

TEST(FakePrograms, AProgramThatKillsItsParentEndsTheWaitingCaller) {
  FakeSyscalls os;
  os.install_program("/bin/parricide", [](const ExecRecord&) -> ProgramStep {
    return [](sys::Syscalls& child_os) {
      EXPECT_TRUE(child_os.kill(child_os.getppid(), SIGKILL));
      return Turn::kWaiting;
    };
  });
  const Child child = spawn(os, "/bin/parricide");
  try {
    static_cast<void>(os.waitpid(child.pid, WNOHANG));
    FAIL() << "the parent should have died while waiting";
  } catch (const ProcessEnded& ended) {
    EXPECT_EQ(ended.pid, 1000);
    EXPECT_TRUE(ended.killed());
    EXPECT_EQ(ended.signal(), SIGKILL);
  }
  EXPECT_EQ(os.current_pid(), 0);
  EXPECT_EQ(count_calls(os, 1000, "waitpid"), 0u);  // it died before making the call
}

TEST(FakePrograms, AProgramCannotSleepOutOfItsTurn) {
  FakeSyscalls os;
  std::vector<int> results;
  os.install_program("/bin/sleepy", [&](const ExecRecord&) -> ProgramStep {
    return [&](sys::Syscalls& child_os) {
      // A timeout moves no clock in a program's turn: the program waits for its next turn.
      auto n = child_os.poll(nullptr, 0, 5000);
      results.push_back(n ? *n : -n.error().code);
      return Turn::kWaiting;
    };
  });
  const auto before = os.clock().monotonic();
  const Child child = spawn(os, "/bin/sleepy");
  os.run_programs();
  EXPECT_EQ(os.clock().monotonic(), before);
  EXPECT_THAT(results, ElementsAre(-EAGAIN));
  EXPECT_THAT(os.transcript(), Contains(AllOf(Field(&CallRecord::pid, child.pid),
                                              Field(&CallRecord::note, HasSubstr("next turn")))));
}

TEST(FakePrograms, AProgramThatExecsRunsTheNewProgramFromItsNextTurn) {
  FakeSyscalls os;
  os.install_program("/usr/bin/echo-args", programs::echo_args());
  // A shell of the test's own: it execs echo-args with arguments of its own.
  os.install_program("/bin/sh", [](const ExecRecord& exec) -> ProgramStep {
    return [script = exec.argv.back()](sys::Syscalls& child_os) {
      std::string arg0 = "echo-args";
      std::string arg1 = script;
      char* argv[] = {arg0.data(), arg1.data(), nullptr};
      char* envp[] = {nullptr};
      static_cast<void>(child_os.execve("/usr/bin/echo-args", argv, envp));
      child_os.exit_now(127);
      return Turn::kWaiting;  // not reached: exit_now ends the process
    };
  });
  SpawnOptions options;
  options.argv = {"sh", "-c"};
  const Child child = spawn(os, "/bin/sh", options);
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 0);
  EXPECT_EQ(drain(os, child.stdout_r), "echo-args\n-c\n\n");
  EXPECT_EQ(os.process(child.pid).execs.size(), 2u);
}

TEST(FakePrograms, AProgramBelongsToTheFileSoAHardLinkRunsIt) {
  FakeSyscalls os;
  os.install_program("/bin/false3", programs::exit_with(3));
  os.make_hard_link("/bin/false3", "/usr/bin/also-false3");
  const Child child = spawn(os, "/usr/bin/also-false3");
  EXPECT_EQ(WEXITSTATUS(os.waitpid(child.pid, 0)->status), 3);
}

TEST(FakePrograms, AnExceptionFromAStepKillsTheProgramAndReachesTheTest) {
  FakeSyscalls os;
  os.install_program("/bin/buggy", [](const ExecRecord&) -> ProgramStep {
    return [](sys::Syscalls&) -> Turn { throw std::runtime_error("bug in the program"); };
  });
  const Child child = spawn(os, "/bin/buggy");
  EXPECT_THROW(static_cast<void>(os.waitpid(child.pid, WNOHANG)), std::runtime_error);
  EXPECT_EQ(os.current_pid(), 1000);
  EXPECT_EQ(os.process(child.pid).wait_status, SIGABRT);
  EXPECT_TRUE(WIFSIGNALED(os.waitpid(child.pid, WNOHANG)->status));
}

TEST(FakePrograms, AProgramThatNeverSettlesAbortsNamingIt) {
  EXPECT_DEATH(
      {
        FakeSyscalls os;
        os.install_program("/bin/spin", [](const ExecRecord&) -> ProgramStep {
          return [](sys::Syscalls&) { return Turn::kRunning; };
        });
        spawn(os, "/bin/spin");
        os.run_programs();
      },
      "did not settle.*pid 1001 \\(/bin/spin\\)");
}

}  // namespace
}  // namespace daemonkit::fake
