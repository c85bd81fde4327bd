// daemonkit: options in, core calls out. main() owns the one RealSyscalls.
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include "daemonkit/cli/options.h"

namespace {

int print_and_exit(const daemonkit::cli::EarlyExit& early) {
  std::fputs(early.out.c_str(), stdout);
  std::fputs(early.err.c_str(), stderr);
  return early.code;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv, argv + argc);
  const daemonkit::cli::Parsed parsed = daemonkit::cli::parse_command_line(args);
  if (const auto* early = std::get_if<daemonkit::cli::EarlyExit>(&parsed)) {
    return print_and_exit(*early);
  }
  std::fputs("daemonkit: this command is not built yet\n", stderr);
  return 1;
}
