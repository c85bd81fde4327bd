// Proof of fidelity: random operation sequences run on FakeSyscalls and on the real kernel (in
// a forked child, in a fresh temporary directory) must give the same values and errnos, step
// by step. rapidcheck prints its seed first ("Using configuration: seed=..."); a failure
// prints the shrunk sequence with both traces and an RC_PARAMS="reproduce=..." line that
// replays exactly that counterexample. RC_PARAMS="seed=N" replays a whole run.
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "differential_world.h"
#include "operation_gen.h"

namespace daemonkit::fake::differential {
namespace {

// Sequences per property in the default run. RC_PARAMS="max_success=N" overrides it.
// Under AddressSanitizer every fork copies page tables for the shadow memory, which makes a
// sequence about a hundred times dearer, so sanitizer builds (which run the same code for
// memory errors, not for more coverage) check a tenth as many.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif
constexpr int kSequences = 1000 / kScale;
constexpr int kSequencesAsNobody = 400 / kScale;

// rapidcheck's own checkGTest, with a default number of cases other than its global 100.
template <typename Testable>
void check_sequences(Testable&& testable, int default_count) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  rc::detail::TestMetadata metadata;
  metadata.id = std::string(info->test_suite_name()) + "/" + info->name();
  metadata.description = info->name();
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  const char* env = std::getenv("RC_PARAMS");
  if (env == nullptr || std::strstr(env, "max_success") == nullptr) {
    params.maxSuccess = default_count;
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

void sequence_matches_the_kernel(Privilege privilege) {
  const auto ops = *gen_sequence();
  const Comparison comparison = run_both(ops, privilege);
  if (!comparison.same()) RC_FAIL(comparison.report(ops));
}

TEST(DifferentialSequences, SequencesMatchTheKernel) {
  check_sequences([] { sequence_matches_the_kernel(Privilege::kInvoker); }, kSequences);
}

TEST(DifferentialSequences, SequencesMatchTheKernelAsNobody) {
  if (!can_drop_privileges()) {
    GTEST_SKIP() << "needs root to drop a child to nobody; SequencesMatchTheKernel already "
                    "compares this unprivileged user's permission checks";
  }
  check_sequences([] { sequence_matches_the_kernel(Privilege::kNobody); }, kSequencesAsNobody);
}

}  // namespace
}  // namespace daemonkit::fake::differential
