// daemonkit: options in, core calls out. main() owns the one RealSyscalls.
#include <unistd.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemonkit/cli/command_result.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/cli/run_command.h"
#include "daemonkit/cli/status_command.h"
#include "daemonkit/cli/stop_command.h"
#include "daemonkit/sys/real_syscalls.h"

extern char** environ;

namespace {

void write_all(daemonkit::sys::Syscalls& os, int fd, std::string_view text) {
  while (!text.empty()) {
    auto n = os.write(fd, text.data(), text.size());
    if (!n) {
      if (n.error().code == EINTR) continue;
      return;  // Nowhere left to say it; the exit status still tells.
    }
    text.remove_prefix(*n);
  }
}

int finish(daemonkit::sys::Syscalls& os, const daemonkit::cli::CommandResult& result) {
  write_all(os, 1, result.out);
  write_all(os, 2, result.err);
  return result.code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace daemonkit::cli;
  daemonkit::sys::RealSyscalls os;
  const std::vector<std::string> args(argv, argv + argc);
  const Parsed parsed = parse_command_line(args);
  if (const auto* early = std::get_if<EarlyExit>(&parsed)) {
    return finish(os, CommandResult{early->code, early->out, early->err});
  }
  if (const auto* stop = std::get_if<StopOptions>(&parsed)) return finish(os, run_stop(os, *stop));
  if (const auto* status = std::get_if<StatusOptions>(&parsed)) {
    return finish(os, run_status(os, *status));
  }
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) environment.emplace_back(*entry);
  return finish(os, run_run(os, std::get<RunOptions>(parsed), environment));
}
