// Helpers shared by the fake kernel's own tests.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake::testing_support {

// Runs `body`, which must end the current process, and returns how it ended.
template <typename Body>
ProcessEnded ends(Body&& body) {
  try {
    body();
  } catch (const ProcessEnded& ended) {
    return ended;
  }
  ADD_FAILURE() << "the process did not end";
  return {};
}

inline std::string read_all(FakeSyscalls& os, int fd) {
  std::string out;
  char buf[64];
  for (;;) {
    auto n = os.read(fd, buf, sizeof buf);
    if (!n || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

}  // namespace daemonkit::fake::testing_support
