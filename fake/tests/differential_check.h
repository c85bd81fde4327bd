// How the random differential tests run: rapidcheck's own checkGTest, but with a default
// number of cases of the test's choosing (RC_PARAMS="max_success=N" still overrides it), and
// scaled down under AddressSanitizer.
#pragma once

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
// memory errors, not for more coverage) check a tenth as many.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr int kSanitizerScale = 10;
#else
inline constexpr int kSanitizerScale = 1;
#endif

// Checks `testable` `default_count` times (divided by kSanitizerScale), failing the current
// gtest with rapidcheck's report, which names the seed.
template <typename Testable>
void check_sequences(Testable&& testable, int default_count) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  const char* env = std::getenv("RC_PARAMS");
  if (env == nullptr || std::strstr(env, "max_success") == nullptr) {
    params.maxSuccess = default_count / kSanitizerScale;
  }
  const auto result =
      rc::detail::checkTestable(std::forward<Testable>(testable), metadata, params);
  if (!result.template is<rc::detail::SuccessResult>()) {
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    FAIL() << message.str();
  }
  const auto success = result.template get<rc::detail::SuccessResult>();
  std::cout << "checked " << success.numSuccess << " sequences\n";
}

}  // namespace daemonkit::fake::differential
