// Process (spawn_process) on the fake kernel, its children played by fake programs: pipes both
// ways, any child fd numbers, exit reasons, exec failures, signals through the pidfd, a PTY,
// every failure while spawning, and the order of the protocol's calls (process_ended once,
// last, after every pipe closed), including under random interleavings.
#include "daemonkit/core/process/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/fake/fake_programs.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::milliseconds;
using testing::ElementsAre;
using testing::HasSubstr;

// Records every call, in order, as text, and what each descriptor carried.
class Recorder : public ProcessProtocol {
 public:
  void connection_made(Process& process) override {
    events.push_back("made");
    made = &process;
  }
  void child_data_received(int child_fd, std::span<const std::byte> data) override {
    received[child_fd].append(reinterpret_cast<const char*>(data.data()), data.size());
  }
  void child_connection_lost(int child_fd) override {
    events.push_back(fmt::format("lost {}", child_fd));
  }
  void process_exited(const ProcessEnd& end) override {
    events.push_back("exited: " + end.describe());
    exited = end;
  }
  void process_ended(const ProcessEnd& end) override {
    events.push_back("ended: " + end.describe());
    ended = end;
    ++ends;
  }

  Process* made = nullptr;
  std::vector<std::string> events;
  std::map<int, std::string> received;
  std::optional<ProcessEnd> exited;
  std::optional<ProcessEnd> ended;
  int ends = 0;
};

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  Recorder protocol;
  pid_t parent = 0;

  World() {
    parent = os.getpid();
    // As a daemon must (Python does it for Twisted): a child gone before its stdin drained
    // would otherwise kill the parent with SIGPIPE instead of failing the write with EPIPE.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    EXPECT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
    // A daemon's standard descriptors: the parent's own pipes then start at 3.
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(os.open("/dev/null", O_RDWR, 0));
    os.install_program("/bin/cat", fake::programs::cat());
    os.install_program("/bin/exit3", fake::programs::exit_with(3));
    os.install_program("/bin/exit127", fake::programs::exit_with(127));
    os.install_program("/bin/hang", fake::programs::never_reads());
    os.install_program("/bin/echo", fake::programs::echo_args());
    os.install_program("/bin/talk", fake::programs::write_then_exit("out\n", "err\n", 0));
    os.install_program("/bin/fd3", fake::programs::write_to_fd(3, "three", 0));
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }

  static SpawnOptions options(std::string path, std::vector<std::string> argv = {}) {
    SpawnOptions o;
    o.executable = std::move(path);
    o.argv = argv.empty() ? std::vector<std::string>{o.executable} : std::move(argv);
    return o;
  }

  std::shared_ptr<Process> spawn(SpawnOptions o) {
    auto made = Process::spawn(*reactor, os, protocol, std::move(o));
    EXPECT_TRUE(made) << (made ? "" : made.error().message);
    return made ? std::move(*made) : nullptr;
  }

  // Turns the loop until the process has ended (or 1000 turns).
  void run() {
    for (int i = 0; i < 1000 && protocol.ends == 0; ++i) turn();
  }
  void turn() {
    ASSERT_THAT(reactor->iterate(milliseconds(0)), IsOk());
    reactor->run_until_current();
  }
  // The parent's descriptors beyond its three standard ones and the reactor's two.
  std::vector<int> extra_fds() {
    std::vector<int> fds;
    for (int fd : os.open_fds(parent)) {
      if (fd > 2 && fd != reactor->epoll_fd() && fd != reactor->waker_fd()) fds.push_back(fd);
    }
    return fds;
  }
};

TEST(Process, CatEchoesWhatIsWrittenAndEndsCleanlyOnceStdinCloses) {
  World w;
  auto process = w.spawn(World::options("/bin/cat"));
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(w.protocol.made, process.get());
  ASSERT_THAT(process->write("hello "), IsOk());
  ASSERT_THAT(process->write_to_child(0, "world"), IsOk());
  w.turn();
  w.turn();
  EXPECT_EQ(w.protocol.received[1], "hello world");
  process->close_stdin();
  w.run();
  ASSERT_EQ(w.protocol.ends, 1);
  EXPECT_TRUE(w.protocol.ended->clean());
  EXPECT_EQ(w.protocol.events.front(), "made");
  EXPECT_EQ(w.protocol.events.back(), "ended: exit status 0");
  // Every pipe was lost before the end, and the exit came before it too.
  std::vector<std::string> middle(w.protocol.events.begin() + 1, w.protocol.events.end() - 1);
  EXPECT_THAT(middle,
              testing::UnorderedElementsAre("lost 0", "lost 1", "lost 2", "exited: exit status 0"));
  EXPECT_TRUE(process->ended());
  EXPECT_THAT(w.extra_fds(), testing::IsEmpty());
  EXPECT_EQ(w.os.process(process->pid()).state, fake::ProcessState::kReaped);
}

TEST(Process, StdoutAndStderrArriveOnTheirOwnNumbers) {
  World w;
  auto process = w.spawn(World::options("/bin/talk"));
  w.run();
  EXPECT_EQ(w.protocol.received[1], "out\n");
  EXPECT_EQ(w.protocol.received[2], "err\n");
  EXPECT_TRUE(w.protocol.ended->clean());
}

TEST(Process, AnExitCodeIsTheEndsReason) {
  World w;
  auto process = w.spawn(World::options("/bin/exit3"));
  w.run();
  ASSERT_EQ(w.protocol.ends, 1);
  EXPECT_TRUE(w.protocol.ended->started());
  EXPECT_EQ(w.protocol.ended->exit().exit_code(), 3);
  EXPECT_FALSE(w.protocol.ended->clean());
}

// A program that ran and exited 127 is not one that could not be exec'd.
TEST(Process, AnExecFailureEndsTheProcessWithTheStepAndErrnoNotAnExitCode) {
  World w;
  auto missing = w.spawn(World::options("/no/such"));
  ASSERT_NE(missing, nullptr);
  EXPECT_THAT(w.protocol.events, ElementsAre("made"));
  w.run();
  ASSERT_EQ(w.protocol.ends, 1);
  EXPECT_FALSE(w.protocol.ended->started());
  EXPECT_EQ(w.protocol.ended->describe(), "exec /no/such: No such file or directory (ENOENT)");
  EXPECT_EQ(w.protocol.ended->exec_failure()->step, ChildStep::kExec);
  EXPECT_THAT(missing->signal(SIGTERM), testing::Not(IsOk()));
  EXPECT_THAT(w.extra_fds(), testing::IsEmpty());

  World v;
  auto ran = v.spawn(World::options("/bin/exit127"));
  v.run();
  EXPECT_TRUE(v.protocol.ended->started());
  EXPECT_EQ(v.protocol.ended->describe(), "exit status 127");
}

TEST(Process, SignalGoesThroughThePidfdAndFailsClearlyOnceTheProcessIsGone) {
  World w;
  auto process = w.spawn(World::options("/bin/hang"));
  w.turn();
  EXPECT_FALSE(process->exited());
  ASSERT_THAT(process->signal(SIGTERM), IsOk());
  w.run();
  ASSERT_EQ(w.protocol.ends, 1);
  EXPECT_EQ(w.protocol.ended->exit().signal(), SIGTERM);
  EXPECT_EQ(w.protocol.ended->describe(), "killed by signal 15 (SIGTERM)");
  w.os.clear_transcript();
  auto again = process->signal(SIGTERM);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ProcessErrc::kExitedAlready);
  EXPECT_EQ(to_string(again.error()), "process exited already");
  EXPECT_TRUE(w.os.transcript().empty());
}

TEST(Process, ChildFdsGiveAnyNumbersAndPassParentDescriptorsThrough) {
  World w;
  SpawnOptions o = World::options("/bin/fd3");
  const int file = *w.os.open("/tmp/out", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  o.child_fds = {{3, ChildFd::read()}, {1, ChildFd::inherit(file)}};
  auto process = w.spawn(std::move(o));
  w.run();
  EXPECT_EQ(w.protocol.received[3], "three");
  EXPECT_TRUE(w.protocol.ended->clean());
  // The parent keeps what it passed through; nothing else of the spawn is left open.
  EXPECT_THAT(w.extra_fds(), ElementsAre(file));
  auto wrong = process->write_to_child(3, "x");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(to_string(wrong.error()), "child fd 3 is not a pipe the parent writes to");
}

TEST(Process, TheEnvironmentIsExactlyWhatIsGiven) {
  World w;
  SpawnOptions o = World::options("/bin/echo", {"echo", "a b"});
  o.environment = {"HOME=/srv", "LANG=C"};
  auto process = w.spawn(std::move(o));
  w.run();
  EXPECT_EQ(w.protocol.received[1], "echo\na b\n\nHOME=/srv\nLANG=C\n");
}

TEST(Process, WorkingDirectoryAndIdsAreTheChilds) {
  World w;
  w.os.make_dir("/srv/app");
  SpawnOptions o = World::options("/bin/hang");
  o.working_directory = "/srv/app";
  o.uid = 65534;
  auto process = w.spawn(std::move(o));
  const fake::ProcessInfo child = w.os.process(process->pid());
  EXPECT_EQ(child.cwd, "/srv/app");
  EXPECT_EQ(child.uids, (sys::ResUids{65534, 65534, 65534}));
  EXPECT_EQ(child.gids, (sys::ResGids{65534, 65534, 65534}));  // nobody's primary group
  EXPECT_EQ(w.os.process(w.parent).uids.effective, 0u);
  ASSERT_THAT(process->signal(SIGKILL), IsOk());
  w.run();
}

// Nobody holds the process: it still ends, is reaped, and tells its protocol.
TEST(Process, DroppingTheProcessNeitherKillsNorLeavesAZombie) {
  World w;
  pid_t pid = 0;
  {
    auto process = w.spawn(World::options("/bin/talk"));
    pid = process->pid();
  }
  w.run();
  EXPECT_EQ(w.protocol.ends, 1);
  EXPECT_EQ(w.os.process(pid).state, fake::ProcessState::kReaped);
  EXPECT_THAT(w.extra_fds(), testing::IsEmpty());
}

TEST(Process, APtyChildSeesATerminalAndItsOutputComesOnOne) {
  World w;
  SpawnOptions o = World::options("/bin/echo", {"echo", "hi"});
  o.use_pty = true;
  o.window_size = {40, 100, 0, 0};
  auto process = w.spawn(std::move(o));
  ASSERT_NE(process, nullptr);
  const fake::ProcessInfo child = w.os.process(process->pid());
  EXPECT_EQ(child.sid, process->pid());  // a session of its own
  EXPECT_THAT(child.controlling_terminal, HasSubstr("/dev/pts/"));
  w.run();
  // The terminal turns "\n" into "\r\n", as a real one does.
  EXPECT_EQ(w.protocol.received[1], "echo\r\nhi\r\n\r\n");
  ASSERT_EQ(w.protocol.ends, 1);
  EXPECT_TRUE(w.protocol.ended->clean());
  EXPECT_THAT(w.protocol.events, testing::Contains("lost 1"));
  EXPECT_THAT(w.extra_fds(), testing::IsEmpty());
}

TEST(Process, APtyTakesInputOnZeroAndIgnoresClosingOneNumber) {
  World w;
  SpawnOptions o = World::options("/bin/cat");
  o.use_pty = true;
  auto process = w.spawn(std::move(o));
  ASSERT_THAT(process->write("ping\n"), IsOk());
  process->close_stdin();  // ignored: the terminal is 0, 1 and 2 at once
  w.turn();
  w.turn();
  // The terminal echoes the input, then cat writes it back.
  EXPECT_EQ(w.protocol.received[1], "ping\r\nping\r\n");
  ASSERT_THAT(process->signal(SIGKILL), IsOk());
  w.run();
  EXPECT_EQ(w.protocol.ends, 1);
}

// A pull producer feeds stdin each time the pipe has taken what was written: 1 MiB through cat
// without ever queueing it all.
TEST(Process, APullProducerFeedsStdinAsThePipeDrains) {
  struct Feeder : Producer {
    Process* process = nullptr;
    int chunks_left = 16;
    void pause_producing() override {}
    void stop_producing() override { chunks_left = 0; }
    void resume_producing() override {
      if (chunks_left == 0) return;
      --chunks_left;
      (void)process->write(std::string(64 * 1024, 'z'));
      if (chunks_left == 0) {
        process->unregister_producer(0);
        process->close_stdin();
      }
    }
  };
  World w;
  auto process = w.spawn(World::options("/bin/cat"));
  Feeder feeder;
  feeder.process = process.get();
  ASSERT_THAT(process->register_producer(0, feeder, false), IsOk());
  auto twice = process->register_producer(0, feeder, false);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().os.code, EBUSY);
  EXPECT_EQ(process->register_producer(1, feeder, false).error().code, ProcessErrc::kNoSuchChildFd);
  w.run();
  EXPECT_EQ(feeder.chunks_left, 0);
  EXPECT_EQ(w.protocol.received[1], std::string(16 * 64 * 1024, 'z'));
  EXPECT_TRUE(w.protocol.ended->clean());
}

TEST(Process, OptionsThatCannotBeCarriedOutAreRefusedBeforeAnythingIsMade) {
  World w;
  const auto refused = [&](SpawnOptions o, const std::string& words) {
    w.os.clear_transcript();
    auto made = Process::spawn(*w.reactor, w.os, w.protocol, std::move(o));
    ASSERT_FALSE(made);
    EXPECT_EQ(made.error().kind, StepKind::kOptions);
    EXPECT_THAT(made.error().message, HasSubstr(words));
    EXPECT_TRUE(w.os.transcript().empty()) << words;
  };
  SpawnOptions empty_argv = World::options("/bin/cat");
  empty_argv.argv.clear();
  refused(empty_argv, "argv");
  SpawnOptions nul = World::options("/bin/cat", {"cat", std::string("a\0b", 3)});
  refused(nul, "NUL");
  SpawnOptions env = World::options("/bin/cat");
  env.environment = {"NOEQUALS"};
  refused(env, "NOEQUALS");
  SpawnOptions pty = World::options("/bin/cat");
  pty.use_pty = true;
  pty.child_fds = {{0, ChildFd::write()}};
  refused(pty, "child_fds cannot be combined with use_pty");
  SpawnOptions negative = World::options("/bin/cat");
  negative.child_fds = {{-1, ChildFd::read()}};
  refused(negative, "child fd -1");
  EXPECT_EQ(w.protocol.events.size(), 0u);
}

// Each call spawn makes, failed: a clear error, nothing left open, no child left unreaped.
TEST(Process, EveryFailingCallWhileSpawningLeavesNothingBehind) {
  for (const auto& [name, error] :
       std::vector<std::pair<std::string, int>>{{"pipe2", EMFILE},
                                                {"vfork_with_pidfd", EAGAIN},
                                                {"epoll_ctl", ENOMEM},
                                                {"open", ENOENT},
                                                {"ioctl", ENOTTY}}) {
    for (bool pty : {false, true}) {
      SCOPED_TRACE(name + (pty ? " with a pty" : ""));
      World w;
      w.os.clear_transcript();
      w.os.fail_nth(name, 1, error);
      SpawnOptions o = World::options("/bin/hang");
      o.use_pty = pty;
      auto made = Process::spawn(*w.reactor, w.os, w.protocol, std::move(o));
      const bool calls_it = (name != "open" && name != "ioctl") || pty;
      if (!calls_it) {
        EXPECT_TRUE(made);
        if (made) {
          ASSERT_THAT((*made)->signal(SIGKILL), IsOk());
        }
        w.run();
        continue;
      }
      ASSERT_FALSE(made);
      EXPECT_EQ(made.error().error_number(), error);
      EXPECT_THAT(w.extra_fds(), testing::IsEmpty());
      for (pid_t pid = w.parent + 1; w.os.process_exists(pid); ++pid) {
        EXPECT_NE(w.os.process(pid).state, fake::ProcessState::kRunning) << pid;
        EXPECT_NE(w.os.process(pid).state, fake::ProcessState::kZombie) << pid;
      }
      EXPECT_TRUE(w.protocol.events.empty());
    }
  }
}

// Random interleavings of writes, closes, signals and the child's own exit: the protocol hears
// made first, each pipe lost once, the exit once, and the end exactly once and last; nothing
// stays open in the parent.
RC_GTEST_PROP(ProcessProperty, TheEndComesOnceLastAfterEveryPipeWithNoLeak, ()) {
  World w;
  const bool hang = *rc::gen::arbitrary<bool>();
  auto process = w.spawn(World::options(hang ? "/bin/hang" : "/bin/cat"));
  RC_ASSERT(process != nullptr);
  const auto steps = *rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 7));
  bool killed = false;
  for (int step : steps) {
    switch (step) {
      case 0:
        (void)process->write("data\n");
        break;
      case 1:
        process->close_stdin();
        break;
      case 2:
        process->close_stdout();
        break;
      case 3:
        process->close_stderr();
        break;
      case 4:
        if (!killed) killed = process->signal(SIGTERM).has_value() || process->exited();
        break;
      case 5:
        process->lose_connection();
        break;
      default:
        w.turn();
    }
  }
  if (!process->exited()) (void)process->signal(SIGKILL);
  w.run();
  RC_ASSERT(w.protocol.ends == 1);
  RC_ASSERT(w.protocol.events.front() == std::string("made"));
  RC_ASSERT(w.protocol.events.back().rfind("ended: ", 0) == 0);
  std::map<std::string, int> counts;
  for (const auto& e : w.protocol.events) ++counts[e.substr(0, e.find(':'))];
  RC_ASSERT(counts["lost 0"] == 1 && counts["lost 1"] == 1 && counts["lost 2"] == 1);
  RC_ASSERT(counts["exited"] == 1);
  RC_ASSERT(w.extra_fds().empty());
  RC_ASSERT(w.os.process(process->pid()).state == fake::ProcessState::kReaped);
}

}  // namespace
}  // namespace daemonkit::core
