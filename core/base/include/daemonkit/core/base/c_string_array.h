// The null-terminated array of C strings that execve takes for argv and envp, pointing into
// `strings`: valid while `strings` lives and is not resized (moving the vector keeps it valid).
#pragma once

#include <string>
#include <vector>

namespace daemonkit::core {

[[nodiscard]] inline std::vector<char*> c_string_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace daemonkit::core
