#include "daemonkit/core/app/application.h"

#include <utility>

namespace daemonkit::core {

Application::Application(std::string name, std::optional<std::string> user,
                         std::optional<std::string> group)
    : service_(std::make_shared<MultiService>(std::move(name))),
      user_(std::move(user)),
      group_(std::move(group)) {}

}  // namespace daemonkit::core
