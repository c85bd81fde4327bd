// The one way out to the user's terminal: everything the command prints passes through here,
// so that no word of anyone else's (an argument, a path, a daemon's report) can reach the
// terminal as an escape sequence, a control character, broken UTF-8 or a bidi override.
#pragma once

#include <string>
#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// `text` made safe to print, line by line: each line as sanitize_message makes a status
// message safe (controls and invalid UTF-8 as \xNN, bidi controls as \u{202E}), with the '\n'
// between lines kept. Idempotent, like sanitize_message, so a message that was sanitised
// already (a daemon's report) prints exactly as it was.
[[nodiscard]] std::string terminal_text(std::string_view text);

// Writes terminal_text(text) to `fd` whole, retrying EINTR and short writes. A failure is
// dropped: there is nowhere left to report it, and the exit status still tells.
void print(sys::Syscalls& os, int fd, std::string_view text);

}  // namespace daemonkit::core
