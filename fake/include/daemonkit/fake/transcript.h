// The transcript: every call the code under test made into a FakeSyscalls, in order, with its
// arguments rendered as text and its result. Tests assert on it (see transcript_matchers.h),
// fault predicates inspect the entry of the call being made, and it prints like strace.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace daemonkit::fake {

// One call. While a fault predicate runs, `finished` is false and the result fields are unset.
struct CallRecord {
  // Position in the whole transcript, from 0.
  std::size_t index = 0;
  // The libc name: "open", "setuid", "exit_now", ...
  std::string name;
  // The pid of the process that made the call (0 if none was current).
  pid_t pid = 0;
  // Each argument rendered as text: paths unquoted, flags symbolic (O_WRONLY|O_CREAT), modes
  // in octal (0644), everything else in decimal.
  std::vector<std::string> args;
  // Counted from 1 per name: the 2nd call of "setuid" has nth == 2.
  int nth = 0;

  bool finished = false;
  // On success the returned value rendered as text ("3", "0", "{pid=1001 status=0x100}").
  std::string value;
  // 0 on success, else the errno the call failed with.
  int error = 0;
  // Set when the failure was injected; says which rule injected it (and the seed, if random).
  std::string injected_by;
  // Anything else worth knowing about the result, e.g. why a call that would block forever
  // failed with EDEADLK.
  std::string note;

  [[nodiscard]] bool ok() const { return finished && error == 0; }
  // "setuid(65534)".
  [[nodiscard]] std::string call_text() const;
  // "setuid(65534) = -1 EPERM [injected: nth 1 of setuid]", strace-like.
  [[nodiscard]] std::string to_string() const;
};

using Transcript = std::vector<CallRecord>;

// The whole transcript, one call per line.
[[nodiscard]] std::string to_string(const Transcript& transcript);

// gtest prints records with this when an assertion over a transcript fails.
void PrintTo(const CallRecord& record, std::ostream* os);

}  // namespace daemonkit::fake
