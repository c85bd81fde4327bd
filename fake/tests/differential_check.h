// How the random differential tests run: rapidcheck's own checkGTest, but with a default
// number of cases of the test's choosing (RC_PARAMS="max_success=N" still overrides it), and
// scaled down under AddressSanitizer; and how a seed that once failed is replayed cheaply.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <rapidcheck.h>

namespace daemonkit::fake::differential {

// Under AddressSanitizer every fork copies page tables for the shadow memory, which makes a
// sequence about a hundred times dearer, so sanitizer builds (which run the same code for
// memory errors, not for more coverage) check a tenth as many. g++ says ASan is on with
// __SANITIZE_ADDRESS__, clang only through __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DAEMONKIT_DIFFERENTIAL_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(DAEMONKIT_DIFFERENTIAL_UNDER_ASAN)
inline constexpr int kSanitizerScale = 10;
#else
inline constexpr int kSanitizerScale = 1;
#endif

// Runs rapidcheck on `testable` with `params`, failing the current gtest with rapidcheck's
// report, which names the seed.
template <typename Testable>
void check_with(Testable&& testable, const rc::detail::TestParams& params) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  const auto result = rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    FAIL() << message.str();
  }
  const auto success = result.template get<rc::detail::SuccessResult>();
  std::cout << "checked " << success.numSuccess << " sequences\n";
}

// Checks `testable` `default_count` times (divided by kSanitizerScale).
template <typename Testable>
void check_sequences(Testable&& testable, int default_count) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  const char* env = std::getenv("RC_PARAMS");
  if (env == nullptr || std::strstr(env, "max_success") == nullptr) {
    params.maxSuccess = default_count / kSanitizerScale;
  }
  check_with(std::forward<Testable>(testable), params);
}

// A seed that once found a difference, kept as a regression case: case `case_number` (the N of
// rapidcheck's "Falsifiable after N tests") of the run that `seed` draws with `count` cases.
// Sizes depend on the count, so it is the test's own count, unscaled; only that case runs
// (the others return before generating anything, which leaves each case's random stream as it
// was), so a seed costs one sequence instead of a whole run. If the case fails again,
// shrinking runs as usual. The seed draws the same case only while the generator is
// unchanged: the shrunk sequence, pinned as a named test, is what survives edits to it.
template <typename Testable>
void replay_seed(Testable testable, int count, std::uint64_t seed, int case_number) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.seed = seed;
  params.maxSuccess = count;
  int calls = 0;
  bool shrinking = false;
  check_with(
      [&] {
        const int call = ++calls;
        if (call < case_number || (call > case_number && !shrinking)) return;
        shrinking = true;  // stays set only if the case throws (fails)
        testable();
        if (call == case_number) shrinking = false;
      },
      params);
  EXPECT_GE(calls, case_number) << "the run has fewer cases than the one to replay";
}

}  // namespace daemonkit::fake::differential
