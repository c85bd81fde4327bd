#include "daemonkit/core/app/service_maker.h"

#include <algorithm>

namespace daemonkit::core {

bool MakerOptions::has(std::string_view long_name) const { return value(long_name).has_value(); }

std::optional<std::string> MakerOptions::value(std::string_view long_name) const {
  auto found = std::find_if(values.begin(), values.end(),
                            [&](const auto& given) { return given.first == long_name; });
  if (found == values.end()) return std::nullopt;
  return found->second;
}

}  // namespace daemonkit::core
