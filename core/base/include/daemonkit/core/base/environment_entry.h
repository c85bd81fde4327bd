// One "KEY=VALUE" entry of an environment array such as `environ`, read the way the service
// manager's variables ($NOTIFY_SOCKET, $LISTEN_PID, $LISTEN_FDS, ...) are read by sd_notify and
// sd_listen_fds: an empty value counts as unset.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace daemonkit::core {

// The value of `entry` if it sets `key` to something non-empty; nothing otherwise.
[[nodiscard]] std::optional<std::string> environment_value(const char* entry, std::string_view key);

}  // namespace daemonkit::core
