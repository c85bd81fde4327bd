// Flag words as the transcript (and the fake's own differential tests) show them: the named
// bits joined by '|', in the order given, then any bits left over in hex; "0" when none is set.
#pragma once

#include <initializer_list>
#include <string>

namespace daemonkit::fake::detail {

struct FlagName {
  unsigned bit;
  const char* name;
};
std::string flags_text(unsigned flags, std::initializer_list<FlagName> names);

// open's and F_SETFL's flags: the access mode first ("O_RDWR"), then the other bits.
std::string open_flags_text(int flags);

}  // namespace daemonkit::fake::detail
