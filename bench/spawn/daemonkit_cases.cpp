#include "daemonkit_cases.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/process/child_watch.h"

namespace daemonkit::bench {
namespace {

using std::chrono::seconds;

// Turns the reactor until `done` holds. False if `limit` passes first (a child that hangs must
// not hang the bench) or epoll_wait fails.
template <typename Done>
bool turn_until(core::Reactor& reactor, seconds limit, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      fmt::print(stderr, "daemonkit: no end after {} s\n", limit.count());
      return false;
    }
    if (auto turned = reactor.iterate(std::chrono::milliseconds(100)); !turned) {
      fmt::print(stderr, "daemonkit: {}\n", turned.error());
      return false;
    }
    reactor.run_until_current();
  }
  return true;
}

// ---- In the vfork child: async-signal-safe calls only, nothing allocated ------------------
// What spawn_process's child does at the least: the mask the clone left full is emptied, the
// given descriptors become stdin and stdout (-1: inherited), and the program replaces us.
sys::Result<sys::ChildWithPidFd> start_child(sys::Syscalls& os, char* const argv[],
                                             char* const envp[], int stdin_fd, int stdout_fd) {
  return os.vfork_with_pidfd([&] {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (stdin_fd >= 0 && ::dup2(stdin_fd, 0) < 0) return 126;
    if (stdout_fd >= 0 && ::dup2(stdout_fd, 1) < 0) return 126;
    ::execve(argv[0], argv, envp);
    return 127;
  });
}
// ---- End of the vfork child ---------------------------------------------------------------

// Watches the child on the reactor; `exit` is set once it is reaped. On failure the child is
// reaped here, blocking, so that no zombie outlives a failed case.
std::unique_ptr<core::ChildWatch> watch(DaemonkitLoop& loop, const sys::ChildWithPidFd& child,
                                        std::optional<core::ProcessExit>& exit) {
  auto watched = core::ChildWatch::start(*loop.reactor, loop.os, child.pid,
                                         core::OwnedFd(loop.os, child.pidfd),
                                         [&exit](const core::ProcessExit& e) { exit = e; });
  if (watched) return std::move(*watched);
  fmt::print(stderr, "daemonkit: watching child {}: {}\n", child.pid, watched.error());
  (void)loop.os.waitpid(child.pid, 0);
  return nullptr;
}

bool ended_cleanly(const char* program, const std::optional<core::ProcessExit>& exit) {
  if (exit && exit->clean()) return true;
  fmt::print(stderr, "daemonkit: {}: {}\n", program, exit ? exit->describe() : "not reaped");
  return false;
}

// A pipe whose parent end is non-blocking (the child's end stays blocking: cat would not
// expect EAGAIN), both close-on-exec until the child's end is dup2'd onto 0 or 1.
struct ParentPipe {
  core::OwnedFd parent;
  core::OwnedFd child;
};

std::optional<ParentPipe> make_pipe(sys::Syscalls& os, bool parent_writes) {
  auto fds = os.pipe2(O_CLOEXEC);
  if (!fds) {
    fmt::print(stderr, "daemonkit: {}\n", fds.error());
    return std::nullopt;
  }
  core::OwnedFd read_end(os, fds->read_end);
  core::OwnedFd write_end(os, fds->write_end);
  ParentPipe pipe{parent_writes ? std::move(write_end) : std::move(read_end),
                  parent_writes ? std::move(read_end) : std::move(write_end)};
  if (auto set = os.fcntl(pipe.parent.get(), F_SETFL, O_NONBLOCK); !set) {
    fmt::print(stderr, "daemonkit: {}\n", set.error());
    return std::nullopt;
  }
  return pipe;
}

}  // namespace

std::unique_ptr<DaemonkitLoop> make_daemonkit_loop() {
  auto loop = std::make_unique<DaemonkitLoop>();
  core::ReactorOptions options;
  options.install_signal_handlers = false;
  auto reactor = core::Reactor::create(loop->os, std::move(options));
  if (!reactor) {
    fmt::print(stderr, "daemonkit: reactor: {}\n", reactor.error());
    return nullptr;
  }
  loop->reactor = std::move(*reactor);
  return loop;
}

bool spawn_and_reap_daemonkit(DaemonkitLoop& loop, char* const argv[], char* const envp[]) {
  auto child = start_child(loop.os, argv, envp, -1, -1);
  if (!child) {
    fmt::print(stderr, "daemonkit: {}\n", child.error());
    return false;
  }
  std::optional<core::ProcessExit> exit;
  const auto watching = watch(loop, *child, exit);
  if (!watching) return false;
  if (!turn_until(*loop.reactor, seconds(10), [&] { return exit.has_value(); })) return false;
  return ended_cleanly(argv[0], exit);
}

bool pump_through_cat_daemonkit(DaemonkitLoop& loop, std::size_t total, std::size_t chunk,
                                char* const envp[]) {
  sys::Syscalls& os = loop.os;
  core::Reactor& reactor = *loop.reactor;
  auto to_cat = make_pipe(os, true);
  auto from_cat = make_pipe(os, false);
  if (!to_cat || !from_cat) return false;
  char cat_path[] = "/bin/cat";
  char* const argv[] = {cat_path, nullptr};
  auto child = start_child(os, argv, envp, to_cat->child.get(), from_cat->child.get());
  if (!child) {
    fmt::print(stderr, "daemonkit: {}\n", child.error());
    return false;
  }
  to_cat->child.reset();
  from_cat->child.reset();
  std::optional<core::ProcessExit> exit;
  const auto watching = watch(loop, *child, exit);
  if (!watching) return false;

  const std::vector<char> source(chunk, 'x');
  std::vector<char> sink(chunk);
  std::size_t written = 0;
  std::size_t came_back = 0;
  bool failed = false;
  core::OwnedFd& input = to_cat->parent;
  core::OwnedFd& output = from_cat->parent;
  // Each direction is dropped from the reactor before its descriptor closes; on a failure
  // whatever is still registered is dropped at the end.
  const auto stop_writing = [&] {
    (void)reactor.remove_writer(input.get());
    input.reset();  // cat sees end of file
  };
  const auto stop_reading = [&] {
    (void)reactor.remove_reader(output.get());
    output.reset();
  };
  const auto on_writable = [&] {
    auto n = os.write(input.get(), source.data(), std::min(chunk, total - written));
    if (!n) {
      if (n.error().code == EAGAIN) return;
      fmt::print(stderr, "daemonkit: {}\n", n.error());
      failed = true;
      stop_writing();
      return;
    }
    written += *n;
    if (written == total) stop_writing();
  };
  const auto on_readable = [&] {
    auto n = os.read(output.get(), sink.data(), sink.size());
    if (!n) {
      if (n.error().code == EAGAIN) return;
      fmt::print(stderr, "daemonkit: {}\n", n.error());
      failed = true;
      stop_reading();
      return;
    }
    if (*n == 0) {
      stop_reading();
      return;
    }
    came_back += *n;
  };
  auto added = reactor.add_writer(input.get(), on_writable);
  if (added) added = reactor.add_reader(output.get(), on_readable);
  bool turned = false;
  if (added) {
    turned = turn_until(reactor, seconds(60),
                        [&] { return failed || (!input && !output && exit.has_value()); });
  } else {
    fmt::print(stderr, "daemonkit: {}\n", added.error());
  }
  if (input) stop_writing();
  if (output) stop_reading();
  if (!turned || failed) {
    // Ours, unreaped, and watched through its pidfd: the signal cannot reach anyone else.
    (void)watching->signal(SIGKILL);
    (void)turn_until(reactor, seconds(10), [&] { return exit.has_value(); });
    return false;
  }
  if (!ended_cleanly(argv[0], exit)) return false;
  if (came_back != total) {
    fmt::print(stderr, "daemonkit: cat gave back {} of {} bytes\n", came_back, total);
    return false;
  }
  return true;
}

}  // namespace daemonkit::bench
