// What a command hands back to main(): the exit status and the text for stdout and stderr.
// Commands print nothing themselves, so tests read exactly what a user would see.
#pragma once

#include <string>

namespace daemonkit::cli {

struct CommandResult {
  int code = 0;
  std::string out;
  std::string err;
};

}  // namespace daemonkit::cli
