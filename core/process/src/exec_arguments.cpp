#include "daemonkit/core/process/exec_arguments.h"

#include <set>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/base/c_string_array.h"

namespace daemonkit::core {
namespace {

bool has_nul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

tl::unexpected<StepError> refused(std::string message) {
  return step_failed(StepError::plain(StepKind::kOptions, std::move(message)));
}

}  // namespace

StepResult<ExecArguments> ExecArguments::make(std::string executable, std::vector<std::string> argv,
                                              std::vector<std::string> environment) {
  if (executable.empty()) return refused("no executable to run");
  if (has_nul(executable)) return refused("the executable's path contains a NUL byte");
  if (argv.empty()) return refused("argv is empty: it needs at least the program's name");
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (has_nul(argv[i])) return refused("argv[" + std::to_string(i) + "] contains a NUL byte");
  }
  std::set<std::string_view> keys;
  for (std::size_t i = 0; i < environment.size(); ++i) {
    const std::string& entry = environment[i];
    const std::string which = "environment entry " + std::to_string(i);
    if (has_nul(entry)) return refused(which + " contains a NUL byte");
    const std::size_t equals = entry.find('=');
    if (equals == std::string::npos || equals == 0) {
      return refused(fmt::format("{} is not KEY=VALUE: \"{}\"", which, entry));
    }
    if (!keys.insert(std::string_view(entry).substr(0, equals)).second) {
      return refused(which + ": " + entry.substr(0, equals) + " is given twice");
    }
  }
  ExecArguments out;
  out.executable_ = std::move(executable);
  out.argv_ = std::move(argv);
  out.environment_ = std::move(environment);
  out.argv_pointers_ = c_string_array(out.argv_);
  out.env_pointers_ = c_string_array(out.environment_);
  return out;
}

}  // namespace daemonkit::core
