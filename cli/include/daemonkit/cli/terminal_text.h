// The command prints through core's terminal_text and print (core/status/terminal_text.h): the
// launch writes its daemon's log lines through the same sanitiser.
#pragma once

#include "daemonkit/core/status/terminal_text.h"

namespace daemonkit::cli {

using core::print;
using core::terminal_text;

}  // namespace daemonkit::cli
