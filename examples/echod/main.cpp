// echod: a small TCP echo server on loopback, the sample daemon for `daemonkit run`.
// It reports readiness through daemonkit's readiness API once it listens, so the same binary
// works with `daemonkit run --ready=pipe` (the status pipe in $DAEMONKIT_STATUS_FD), with
// `--ready=notify` and under systemd Type=notify ($NOTIFY_SOCKET), and with neither. It stops
// cleanly on SIGTERM or SIGINT, which its reactor routes through the loop. Handed listening
// sockets by socket activation ($LISTEN_FDS from systemd, kept by `daemonkit run --nodaemon`),
// it serves on the first one instead of listening itself.
//   echod [--host 127.0.0.1] [--port 7007]      (--port 0: any free port; the log says which)
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "daemonkit/core/daemon/environment.h"
#include "daemonkit/core/daemon/readiness.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/real_syscalls.h"
#include "echo_server.h"

namespace {

// The status pipe a launcher (`daemonkit run --ready=pipe`) passes down, if any.
int inherited_status_fd() {
  const char* text = std::getenv("DAEMONKIT_STATUS_FD");
  if (text == nullptr || *text == '\0') return -1;
  char* end = nullptr;
  const long fd = std::strtol(text, &end, 10);
  if (*end != '\0' || fd < 3 || fd > 65535) return -1;
  return static_cast<int>(fd);
}

void log_line(std::string_view line) {
  // The log file is stdout and stderr under `daemonkit run --logfile`; one write per line.
  const std::string text = fmt::format("echod[{}]: {}\n", getpid(), line);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

daemonkit::core::StepError start_failed(const daemonkit::core::ReactorError& error) {
  auto failed = daemonkit::core::StepError::plain(daemonkit::core::StepKind::kApplication,
                                                  daemonkit::core::to_string(error));
  if (error.code == daemonkit::core::ReactorErrc::kOs) failed.cause = error.os;
  return failed;
}

daemonkit::core::StepError start_failed(const daemonkit::sys::Error& error) {
  return start_failed(daemonkit::core::ReactorError{daemonkit::core::ReactorErrc::kOs, error});
}

// Serves on the first socket a service manager passed, or else listens on host:port.
daemonkit::core::StepResult<std::unique_ptr<echod::EchoServer>> start_server(
    daemonkit::core::Reactor& reactor, daemonkit::sys::Syscalls& os,
    daemonkit::core::ActivatedSockets& passed, const std::string& host, std::uint16_t port,
    const daemonkit::core::LogSink& log) {
  if (passed.empty()) return echod::EchoServer::listen(reactor, os, host, port, log);
  auto first = passed.take(std::size_t{0});
  if (!first) return daemonkit::core::step_failed(start_failed(first.error()));
  return echod::EchoServer::adopt(reactor, os, std::move(*first), log);
}

int usage() {
  std::fputs("usage: echod [--host ADDRESS] [--port PORT]\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  long port = 7007;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else if (arg == "--port" && i + 1 < argc) {
      char* end = nullptr;
      port = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) return usage();
    } else {
      return usage();
    }
  }

  daemonkit::sys::RealSyscalls os;
  const auto env = daemonkit::core::Environment::from_envp(environ);
  daemonkit::core::Readiness readiness(os, {.status_fd = inherited_status_fd(),
                                            .notify_socket = env.notify_socket,
                                            .main_pid = std::nullopt,
                                            .log = [](std::string_view line) { log_line(line); }});

  const auto fail = [&](const daemonkit::core::StepError& error) {
    log_line(error.message);
    (void)readiness.fail(error);
    return 1;
  };
  // Taken before anything opens a descriptor: the sockets passed are 3, 4, ..., and the
  // variables are removed from the environment (sd_listen_fds).
  auto passed = daemonkit::core::listen_fds(
      os, daemonkit::core::ActivationVariables::take_from_environment());
  if (!passed) return fail(start_failed(passed.error()));

  const daemonkit::core::LogSink log = [](std::string_view line) { log_line(line); };
  auto reactor = daemonkit::core::Reactor::create(os, {.log = log});
  if (!reactor) return fail(start_failed(reactor.error()));
  auto server = start_server(**reactor, os, *passed, host, static_cast<std::uint16_t>(port), log);
  if (!server) return fail(server.error());

  // Ready once the loop runs: from then on SIGTERM is routed through it, so a stop that follows
  // the readiness report always ends in a clean exit.
  const std::string listening = fmt::format("listening on {}", (*server)->address());
  (*reactor)->call_when_running([&] {
    log_line(listening);
    (void)readiness.ready(listening);
  });
  if (auto ran = (*reactor)->run(); !ran) {
    log_line(daemonkit::core::to_string(ran.error()));
    return 1;
  }
  log_line(fmt::format("stopping on signal {}", (*reactor)->exit_signal()));
  return 0;
}
