// The option table lives in core/options, shared with app::run's command line; the daemonkit
// command names its parts here as it always has.
#pragma once

#include "daemonkit/core/options/option_table.h"

namespace daemonkit::cli {

using core::CommandSpec;
using core::help_text;
using core::HelpEntry;
using core::option_name;
using core::OptionSpec;
using core::OptionValue;
using core::read_options;
using core::ReadOptions;

}  // namespace daemonkit::cli
