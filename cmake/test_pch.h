// What nearly every test file includes, precompiled once for all of them when
// DAEMONKIT_TEST_PCH is on (see cmake/daemonkit_helpers.cmake). Each test still includes what it
// uses: this header only makes those includes cheap, and a build without it is the same.
#pragma once

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "daemonkit/fake/transcript_matchers.h"
