// ChildWatch on the real kernel: a pidfd made with the child (CLONE_PIDFD) reports its exit on
// the reactor; a thousand children ending at once are all reaped, with none lost and no zombie
// left; a signal sent through the watch reaches the child.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "daemonkit/core/process/child_watch.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using std::chrono::milliseconds;

// Starts `argv[0]` with stdin from `stdin_fd` and stdout/stderr on /dev/null, every signal
// unblocked; returns the child and its pidfd. Exits 127 if the exec fails.
sys::Result<sys::ChildWithPidFd> start(sys::Syscalls& os, const char* const* argv, int stdin_fd,
                                       int null_fd) {
  return os.vfork_with_pidfd([&] {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(stdin_fd, 0) < 0 || ::dup2(null_fd, 1) < 0 || ::dup2(null_fd, 2) < 0) return 126;
    char* const envp[] = {nullptr};
    ::execve(argv[0], const_cast<char* const*>(argv), envp);
    return 127;
  });
}

std::unique_ptr<Reactor> make_reactor(sys::Syscalls& os) {
  ReactorOptions options;
  options.install_signal_handlers = false;  // the pidfd needs no SIGCHLD
  auto made = Reactor::create(os, std::move(options));
  EXPECT_TRUE(made);
  return made ? std::move(*made) : nullptr;
}

// Turns the reactor until `done` holds; false after ten seconds or on an epoll failure.
template <typename Done>
bool turn_until(Reactor& reactor, Done done) {
  auto turned = reactor.turn_until(done, std::chrono::seconds(10));
  return turned && *turned;
}

TEST(ChildWatchOnLinux, ReportsTheExitCodeAndTheKillingSignal) {
  sys::RealSyscalls os;
  auto reactor = make_reactor(os);
  ASSERT_NE(reactor, nullptr);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  std::vector<ProcessExit> exits;
  auto on_exit = [&](const ProcessExit& e) { exits.push_back(e); };

  const char* const exit3[] = {"/bin/sh", "-c", "exit 3", nullptr};
  auto first = start(os, exit3, null_fd, null_fd);
  ASSERT_TRUE(first);
  ASSERT_GE(first->pidfd, 0) << "no CLONE_PIDFD on this kernel";
  auto watch1 = ChildWatch::start(*reactor, os, first->pid, OwnedFd(os, first->pidfd), on_exit);
  ASSERT_TRUE(watch1);

  const char* const sleeper[] = {"/bin/sleep", "30", nullptr};
  auto second = start(os, sleeper, null_fd, null_fd);
  ASSERT_TRUE(second);
  auto watch2 = ChildWatch::start(*reactor, os, second->pid, OwnedFd(os, second->pidfd), on_exit);
  ASSERT_TRUE(watch2);
  ASSERT_TRUE((*watch2)->signal(SIGTERM));

  ASSERT_TRUE(turn_until(*reactor, [&] { return exits.size() == 2; }));
  ::close(null_fd);
  const ProcessExit& code = exits[0].exited() ? exits[0] : exits[1];
  const ProcessExit& killed = exits[0].exited() ? exits[1] : exits[0];
  EXPECT_EQ(code.exit_code(), 3);
  EXPECT_EQ(killed.signal(), SIGTERM);
  EXPECT_EQ(::waitpid(first->pid, nullptr, WNOHANG), -1);  // reaped already
  EXPECT_EQ(errno, ECHILD);
  EXPECT_FALSE((*watch2)->signal(SIGTERM));  // ESRCH, without a call
}

// In a forked child, so that "no zombie left" speaks of these children only: a thousand cats
// read one pipe; closing its write end ends them all at once.
TEST(ChildWatchOnLinux, AThousandChildrenEndingAtOnceAreAllReapedAndNoneIsLeft) {
  constexpr int kChildren = 1000;
  const pid_t tester = ::fork();
  ASSERT_GE(tester, 0);
  if (tester == 0) {
    sys::RealSyscalls os;
    rlimit nofile{};
    ::getrlimit(RLIMIT_NOFILE, &nofile);
    if (nofile.rlim_max < kChildren + 64) ::_exit(90);  // cannot hold a pidfd per child
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
    auto reactor = make_reactor(os);
    if (!reactor) ::_exit(91);
    int gate[2];
    if (::pipe2(gate, O_CLOEXEC) != 0) ::_exit(92);
    const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int exits = 0;
    int clean = 0;
    std::vector<std::unique_ptr<ChildWatch>> watches;
    const char* const cat[] = {"/bin/cat", nullptr};
    for (int i = 0; i < kChildren; ++i) {
      auto child = start(os, cat, gate[0], null_fd);
      if (!child || child->pidfd < 0) ::_exit(93);
      auto watch = ChildWatch::start(*reactor, os, child->pid, OwnedFd(os, child->pidfd),
                                     [&](const ProcessExit& e) {
                                       ++exits;
                                       clean += e.clean() ? 1 : 0;
                                     });
      if (!watch) ::_exit(94);
      watches.push_back(std::move(*watch));
    }
    ::close(gate[1]);  // every cat sees EOF now
    if (!turn_until(*reactor, [&] { return exits == kChildren; })) ::_exit(95);
    if (clean != kChildren) ::_exit(96);
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != -1 || errno != ECHILD) ::_exit(97);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(tester, &status, 0), tester);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 90) GTEST_SKIP() << "the hard RLIMIT_NOFILE is below 1064";
  // 91 reactor, 92 pipe, 93 spawn, 94 watch, 95 not all reaped in 10 s, 96 an unclean exit,
  // 97 a child left unreaped.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace daemonkit::core
