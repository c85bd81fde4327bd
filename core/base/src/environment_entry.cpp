#include "daemonkit/core/base/environment_entry.h"

namespace daemonkit::core {

std::optional<std::string> environment_value(const char* entry, std::string_view key) {
  const std::string_view text(entry);
  if (text.size() <= key.size() || !text.starts_with(key) || text[key.size()] != '=') {
    return std::nullopt;
  }
  const std::string_view value = text.substr(key.size() + 1);
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

}  // namespace daemonkit::core
