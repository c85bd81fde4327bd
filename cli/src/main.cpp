// daemonkit: options in, core calls out. main() owns the one RealSyscalls.
#include <unistd.h>

#include <string>
#include <variant>
#include <vector>

#include "daemonkit/cli/command_result.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/cli/run_command.h"
#include "daemonkit/cli/status_command.h"
#include "daemonkit/cli/stop_command.h"
#include "daemonkit/cli/terminal_text.h"
#include "daemonkit/sys/real_syscalls.h"

extern char** environ;

namespace {

int finish(daemonkit::sys::Syscalls& os, const daemonkit::cli::CommandResult& result) {
  // Every word the command prints leaves through print(), which escapes what a terminal would
  // obey: option values and paths are the user's, and reports come from other processes.
  daemonkit::cli::print(os, 1, result.out);
  daemonkit::cli::print(os, 2, result.err);
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
