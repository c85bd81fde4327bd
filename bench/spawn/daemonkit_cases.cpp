#include "daemonkit_cases.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/process/process.h"
#include "peer_cases.h"

namespace daemonkit::bench {
namespace {

using std::chrono::seconds;

// Turns the reactor until `done` holds. False if `limit` passes first (a child that hangs must
// not hang the bench) or epoll_wait fails.
bool turn_until(core::Reactor& reactor, seconds limit, const std::function<bool()>& done) {
  auto turned = reactor.turn_until(done, limit);
  if (!turned) {
    fmt::print(stderr, "daemonkit: {}\n", turned.error());
    return false;
  }
  if (!*turned) fmt::print(stderr, "daemonkit: no end after {} s\n", limit.count());
  return *turned;
}

// The protocol of one spawned child: counts what comes back and notes the end.
struct Counter : core::ProcessProtocol {
  std::size_t came_back = 0;
  std::optional<core::ProcessEnd> end;
  void child_data_received(int /*child_fd*/, std::span<const std::byte> data) override {
    came_back += data.size();
  }
  void process_ended(const core::ProcessEnd& e) override { end = e; }
};

core::SpawnOptions options_for(char* const argv[], char* const envp[]) {
  core::SpawnOptions options;
  options.executable = argv[0];
  for (char* const* arg = argv; *arg != nullptr; ++arg) options.argv.emplace_back(*arg);
  for (char* const* entry = envp; *entry != nullptr; ++entry) {
    options.environment.emplace_back(*entry);
  }
  return options;
}

bool ended_cleanly(const char* program, const std::optional<core::ProcessEnd>& end) {
  if (end && end->clean()) return true;
  fmt::print(stderr, "daemonkit: {}: {}\n", program, end ? end->describe() : "not ended");
  return false;
}

// Feeds cat's stdin from the stream transport's pull-producer calls: one chunk each time the
// pipe has taken everything written, then the close.
struct Feeder : core::Producer {
  core::Process* process = nullptr;
  std::string chunk;
  std::size_t left = 0;
  void pause_producing() override {}
  void stop_producing() override { left = 0; }
  void resume_producing() override {
    if (left == 0) return;
    const std::size_t n = std::min(left, chunk.size());
    left -= n;
    (void)process->write(std::string_view(chunk.data(), n));
    if (left == 0) {
      process->unregister_producer(0);
      process->close_stdin();
    }
  }
};

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
  core::SpawnOptions options = options_for(argv, envp);
  // As the posix_spawn reference: the child inherits our standard descriptors, no pipes.
  options.child_fds = {{0, core::ChildFd::inherit(0)},
                       {1, core::ChildFd::inherit(1)},
                       {2, core::ChildFd::inherit(2)}};
  Counter counter;
  auto process = core::Process::spawn(*loop.reactor, loop.os, counter, std::move(options));
  if (!process) {
    fmt::print(stderr, "daemonkit: {}\n", process.error().message);
    return false;
  }
  if (!turn_until(*loop.reactor, seconds(10), [&] { return counter.end.has_value(); })) {
    (void)(*process)->signal(SIGKILL);
    (void)turn_until(*loop.reactor, seconds(10), [&] { return counter.end.has_value(); });
    return false;
  }
  return ended_cleanly(argv[0], counter.end);
}

bool pump_through_cat_daemonkit(DaemonkitLoop& loop, std::size_t total, std::size_t chunk,
                                char* const envp[], int cat_cpu) {
  char cat_path[] = "/bin/cat";
  char* const argv[] = {cat_path, nullptr};
  core::SpawnOptions options = options_for(argv, envp);
  options.child_fds = {
      {0, core::ChildFd::write()}, {1, core::ChildFd::read()}, {2, core::ChildFd::inherit(2)}};
  Counter counter;
  auto process = core::Process::spawn(*loop.reactor, loop.os, counter, std::move(options));
  if (!process) {
    fmt::print(stderr, "daemonkit: {}\n", process.error().message);
    return false;
  }
  move_to_cpu((*process)->pid(), cat_cpu);
  Feeder feeder;
  feeder.process = process->get();
  feeder.chunk.assign(chunk, 'x');
  feeder.left = total;
  if (auto registered = (*process)->register_producer(0, feeder, false); !registered) {
    fmt::print(stderr, "daemonkit: {}\n", to_string(registered.error()));
    (void)(*process)->signal(SIGKILL);
  }
  if (!turn_until(*loop.reactor, seconds(60), [&] { return counter.end.has_value(); })) {
    (void)(*process)->signal(SIGKILL);
    (void)turn_until(*loop.reactor, seconds(10), [&] { return counter.end.has_value(); });
    return false;
  }
  if (!ended_cleanly(argv[0], counter.end)) return false;
  if (counter.came_back != total) {
    fmt::print(stderr, "daemonkit: cat gave back {} of {} bytes\n", counter.came_back, total);
    return false;
  }
  return true;
}

}  // namespace daemonkit::bench
