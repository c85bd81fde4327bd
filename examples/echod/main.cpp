// echod: a small TCP echo server on loopback, the sample daemon for `daemonkit run`.
// It reports readiness through daemonkit's readiness API once it listens, so the same binary
// works with `daemonkit run --ready=pipe` (the status pipe in $DAEMONKIT_STATUS_FD), with
// `--ready=notify` and under systemd Type=notify ($NOTIFY_SOCKET), and with neither. It stops
// cleanly on SIGTERM or SIGINT.
//   echod [--host 127.0.0.1] [--port 7007]      (--port 0: any free port; the log says which)
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "daemonkit/core/daemon/environment.h"
#include "daemonkit/core/daemon/readiness.h"
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

  echod::EchoServer server(os);
  if (auto listening = server.listen(host, static_cast<std::uint16_t>(port)); !listening) {
    log_line(listening.error().message);
    (void)readiness.fail(listening.error());
    return 1;
  }
  log_line(fmt::format("listening on {}", server.address()));
  (void)readiness.ready(fmt::format("listening on {}", server.address()));

  auto stopped = server.serve();
  if (!stopped) {
    log_line(stopped.error().message);
    return 1;
  }
  log_line(fmt::format("stopping on signal {}", *stopped));
  return 0;
}
