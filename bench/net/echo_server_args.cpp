#include "echo_server_args.h"

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace daemonkit::bench {

std::optional<EchoServerArgs> parse_echo_server_args(int argc, char** argv) {
  EchoServerArgs args;
  for (int i = 1; i < argc; i += 2) {
    const bool has_value = i + 1 < argc;
    const long value = has_value ? std::strtol(argv[i + 1], nullptr, 10) : -1;
    if (has_value && std::strcmp(argv[i], "--port") == 0 && value >= 0 && value <= 65535) {
      args.port = static_cast<std::uint16_t>(value);
    } else if (has_value && std::strcmp(argv[i], "--backlog") == 0 && value > 0) {
      args.backlog = static_cast<int>(value);
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--backlog N]\n", argv[0]);
      return std::nullopt;
    }
  }
  return args;
}

void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) std::perror("setrlimit(RLIMIT_NOFILE)");
}

void announce_port(std::uint16_t port) {
  std::printf("%u\n", static_cast<unsigned>(port));
  std::fflush(stdout);
}

}  // namespace daemonkit::bench
