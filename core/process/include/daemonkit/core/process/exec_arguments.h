// ExecArguments: the program, argv and environment a spawned child passes to execve, checked
// and laid out in the parent, before anything is created. The child then only reads the
// pointers: it allocates nothing between fork and exec.
//
// The environment is exactly what is given; nothing is inherited unless the caller copies it
// in (Twisted's spawnProcess passes env as given, and an empty one for None on POSIX).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/base/step_error.h"

namespace daemonkit::core {

class ExecArguments {
 public:
  // Refused, with a kOptions error naming the entry: an empty executable, an empty argv, a NUL
  // byte anywhere (execve would cut the string there), an environment entry that is not
  // KEY=VALUE with a non-empty KEY, and a KEY given twice (which value the program sees would
  // depend on how it searches).
  [[nodiscard]] static StepResult<ExecArguments> make(std::string executable,
                                                      std::vector<std::string> argv,
                                                      std::vector<std::string> environment);

  // The pointers stay valid as long as this object, moved or not.
  ExecArguments(ExecArguments&&) noexcept = default;
  ExecArguments& operator=(ExecArguments&&) noexcept = default;
  ExecArguments(const ExecArguments&) = delete;
  ExecArguments& operator=(const ExecArguments&) = delete;
  ~ExecArguments() = default;

  [[nodiscard]] const char* executable() const { return executable_.c_str(); }
  // Null-terminated arrays, as execve takes them.
  [[nodiscard]] char* const* argv() const { return argv_pointers_.data(); }
  [[nodiscard]] char* const* envp() const { return env_pointers_.data(); }

  [[nodiscard]] const std::vector<std::string>& argv_strings() const { return argv_; }
  [[nodiscard]] const std::vector<std::string>& environment() const { return environment_; }

 private:
  ExecArguments() = default;

  // Heap storage whose addresses a move keeps: the vectors' buffers move as a whole, and each
  // string's characters stay where its buffer put them (SSO strings live inside that buffer).
  std::string executable_;
  std::vector<std::string> argv_;
  std::vector<std::string> environment_;
  std::vector<char*> argv_pointers_;
  std::vector<char*> env_pointers_;
};

}  // namespace daemonkit::core
