#include "daemonkit/core/status/status_exit.h"

#include <string_view>

#include <fmt/format.h>

#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

ParentExit parent_exit(const StatusOutcome& outcome) {
  if (std::holds_alternative<Ready>(outcome)) return ParentExit{0, {}};
  return ParentExit{1, fmt::format("An error has occurred: {}\n"
                                   "Please look at log file for more information.\n",
                                   std::get<Failed>(outcome).message)};
}

int write_parent_exit(sys::Syscalls& os, const StatusOutcome& outcome) {
  const ParentExit exit = parent_exit(outcome);
  std::string_view rest = exit.stderr_text;
  while (!rest.empty()) {
    const sys::Result<std::size_t> written =
        sys::retry_on_eintr([&] { return os.write(2, rest.data(), rest.size()); });
    if (!written || *written == 0) break;
    rest.remove_prefix(*written);
  }
  return exit.code;
}

}  // namespace daemonkit::core
