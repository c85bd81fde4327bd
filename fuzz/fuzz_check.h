// FUZZ_CHECK: how a fuzz target states an invariant. It works the same in the libFuzzer build
// and the GCC replay build, which has no sanitizer to catch a broken one: a finding aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                            \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
