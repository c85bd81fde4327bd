// childlog: a daemon that runs one program and streams its output into its own log, line by
// line ("out: ...", "err: ..."), then exits as the program did. SIGTERM or SIGINT to childlog
// passes SIGTERM on to the program and waits for it. Run it under `daemonkit run`:
//   daemonkit run --logfile /tmp/childlog.log -- childlog /bin/sh -c 'echo hi; echo oops >&2'
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "child_logger.h"
#include "daemonkit/core/process/process.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/real_syscalls.h"

extern char** environ;  // NOLINT: the program gets childlog's environment, on purpose

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: childlog PROGRAM [ARG...]\n", stderr);
    return 2;
  }
  daemonkit::sys::RealSyscalls os;
  // A child that ends before it has read what it was sent must not kill us with SIGPIPE.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, nullptr);

  auto log = [](std::string_view line) {
    const std::string text = fmt::format("childlog[{}]: {}\n", getpid(), line);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  auto reactor = daemonkit::core::Reactor::create(os);
  if (!reactor) {
    log(fmt::format("cannot start the loop: {}", to_string(reactor.error())));
    return 1;
  }
  daemonkit::core::Reactor& loop = **reactor;
  std::optional<daemonkit::core::EventHold> hold_slot;
  ChildLogger logger(log, [&] {
    // Ending during shutdown releases its hold; otherwise the child's end stops the loop.
    if (hold_slot) {
      hold_slot.reset();
    } else {
      (void)loop.stop();
    }
  });

  daemonkit::core::SpawnOptions options;
  options.executable = argv[1];
  options.argv.assign(argv + 1, argv + argc);
  for (char** entry = environ; *entry != nullptr; ++entry) options.environment.emplace_back(*entry);
  // The program's stdin is /dev/null: childlog has nothing to tell it.
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  options.child_fds = {{0, daemonkit::core::ChildFd::inherit(null_fd)},
                       {1, daemonkit::core::ChildFd::read()},
                       {2, daemonkit::core::ChildFd::read()}};
  auto child = daemonkit::core::Process::spawn(loop, os, logger, std::move(options));
  ::close(null_fd);
  if (!child) {
    log(fmt::format("cannot run {}: {}", argv[1], child.error().message));
    return 1;
  }
  log(fmt::format("running {} as pid {}", argv[1], (*child)->pid()));
  // SIGTERM stops the reactor; its shutdown waits (Twisted's before-shutdown hold) until the
  // child, told in turn, has ended and its last output is logged.
  loop.add_holding_trigger("shutdown", [&](daemonkit::core::EventHold h) {
    if (logger.end()) return;  // the child's end stopped the loop: nothing to wait for
    log("stopping: SIGTERM sent to the child");
    (void)(*child)->signal(SIGTERM);
    hold_slot = std::move(h);
  });
  if (auto ran = loop.run(); !ran) log(fmt::format("loop: {}", to_string(ran.error())));
  const auto& end = logger.end();
  if (!end || !end->started()) return 1;
  if (end->exit().killed()) return 128 + end->exit().signal();
  return end->exit().exit_code();
}
