// Text that came from another process (a STATUS= line, a PID file) is made safe before it is
// printed on the user's terminal: control bytes, DEL and bytes that are not UTF-8 become \xNN.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace daemonkit::cli {

// At most `max_bytes` long, cut between whole characters and escapes.
[[nodiscard]] std::string sanitize_for_terminal(std::string_view raw, std::size_t max_bytes = 512);

}  // namespace daemonkit::cli
