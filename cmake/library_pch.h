// What most of sys and core include, precompiled once for all of their files when
// DAEMONKIT_LIBRARY_PCH is on (see cmake/daemonkit_helpers.cmake). Each file still includes
// what it uses: this header only makes those includes cheap, and a build without it (g++ in CI's
// TSan stage, every default build) is the same and checks that nothing relies on it.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <tl/expected.hpp>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"
