// How gtest shows the status pipe's verdicts and outcomes in failure messages. Test-only; used
// by the unit tests and the integration tests.
#pragma once

#include <ostream>

#include "daemonkit/core/status/status_codec.h"

namespace daemonkit::core {

// How gtest shows the decoder's verdicts in failure messages.
inline void PrintTo(const NeedMore&, std::ostream* os) { *os << "NeedMore"; }
inline void PrintTo(const Ready&, std::ostream* os) { *os << "Ready"; }
inline void PrintTo(const Failed& failed, std::ostream* os) {
  *os << "Failed{\"" << failed.message << "\"}";
}
inline void PrintTo(const ProtocolError& error, std::ostream* os) {
  *os << "ProtocolError{" << describe(error.kind) << "}";
}

}  // namespace daemonkit::core
