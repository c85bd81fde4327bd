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

#include "differential_check.h"
#include "differential_world.h"
#include "operation_gen.h"

namespace daemonkit::fake::differential {
namespace {

// Sequences per property in the default run (a tenth under ASan: differential_check.h). Under
// ctest the seed is fixed, so this run is a regression check, and the search for new
// differences is ci/explore_seeds.sh's, whose rounds are shorter for it: 1000 sequences took
// 85-110 s, the longest test of CI, while rapidcheck's sizes span their whole range at any count.
constexpr int kSequences = 400;
constexpr int kSequencesAsNobody = 400;

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
