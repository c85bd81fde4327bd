// The result matchers on each result type they serve, and what they say when they fail: a
// matcher whose failure message reads as raw bytes would be worse than the comparison it
// replaces.
#include "daemonkit/fake/result_matchers.h"

#include <cerrno>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/reactor/reactor_error.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::fake {
namespace {

using core::ReactorErrc;
using core::ReactorResult;
using core::StepError;
using core::StepKind;
using core::StepResult;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

sys::Result<int> ok_int() { return 7; }
sys::Result<void> failed_open() { return sys::fail(sys::Error{ENOENT, "open", {}}.about("/x")); }
sys::Result<void> failed_setuid() { return sys::fail(EPERM, "setuid"); }
StepResult<void> pidfile_refusal() {
  return core::step_failed(
      StepError::plain(StepKind::kPidFile, "Pidfile /run/x.pid contains non-numeric value"));
}
StepResult<int> chdir_failure() {
  return core::step_failed(
      StepError::from(StepKind::kChdir, "chdir(/srv)", sys::Error{ENOENT, "chdir", {}}));
}
ReactorResult<void> not_running() { return core::reactor_fail(ReactorErrc::kNotRunning); }
ReactorResult<void> epoll_failed() {
  return core::reactor_fail(sys::Error{EMFILE, "epoll_create1", {}});
}

// The explanation a matcher gives for `value`, and whether it matched.
template <typename M, typename R>
std::pair<bool, std::string> explain(const M& matcher, const R& value) {
  ::testing::StringMatchResultListener listener;
  const bool matched = ::testing::Matcher<const R&>(matcher).MatchAndExplain(value, &listener);
  return {matched, listener.str()};
}

TEST(IsOk, MatchesAValueOfEveryResultType) {
  EXPECT_THAT(ok_int(), IsOk());
  EXPECT_THAT(sys::Result<void>{}, IsOk());
  EXPECT_THAT(StepResult<int>(3), IsOk());
  EXPECT_THAT(ReactorResult<void>{}, IsOk());
  EXPECT_THAT(failed_open(), Not(IsOk()));
  EXPECT_THAT(pidfile_refusal(), Not(IsOk()));
  EXPECT_THAT(not_running(), Not(IsOk()));
}

TEST(IsOk, AFailureExplainsItselfWithTheErrorsMessage) {
  EXPECT_EQ(explain(IsOk(), failed_open()),
            std::make_pair(false, std::string("which failed with open(/x): No such file or "
                                              "directory (ENOENT)")));
  EXPECT_EQ(explain(IsOk(), pidfile_refusal()).second,
            "which failed with Pidfile /run/x.pid contains non-numeric value");
  EXPECT_EQ(explain(IsOk(), not_running()).second,
            "which failed with Can't stop reactor that isn't running.");
  EXPECT_EQ(::testing::DescribeMatcher<sys::Result<int>>(IsOk()), "is ok");
  EXPECT_EQ(::testing::DescribeMatcher<sys::Result<int>>(IsOk(), true), "fails");
}

TEST(FailsWithErrno, MatchesTheErrnoOfEachErrorType) {
  EXPECT_THAT(failed_setuid(), FailsWith(EPERM));
  EXPECT_THAT(failed_setuid(), Not(FailsWith(EACCES)));
  EXPECT_THAT(chdir_failure(), FailsWith(ENOENT));
  EXPECT_THAT(epoll_failed(), FailsWith(EMFILE));
  EXPECT_THAT(ok_int(), Not(FailsWith(EPERM)));
}

TEST(FailsWithErrno, AFailureWithNoErrnoNeverMatchesOne) {
  // A StepError without a cause, and reactor misuse, report error number 0; FailsWith(0)
  // must not pass them off as a failed call.
  EXPECT_THAT(pidfile_refusal(), Not(FailsWith(0)));
  EXPECT_THAT(not_running(), Not(FailsWith(0)));
  EXPECT_EQ(explain(FailsWith(EPERM), pidfile_refusal()).second,
            "which failed with Pidfile /run/x.pid contains non-numeric value, with no errno "
            "behind it");
}

TEST(FailsWithErrno, NamesTheErrnoItWantsAndTheErrorItGot) {
  EXPECT_EQ(::testing::DescribeMatcher<sys::Result<void>>(FailsWith(EPERM)), "fails with EPERM");
  EXPECT_EQ(explain(FailsWith(EACCES), failed_setuid()),
            std::make_pair(
                false, std::string("which failed with setuid: Operation not permitted (EPERM)")));
  EXPECT_EQ(explain(FailsWith(EACCES), ok_int()).second, "which is ok");
}

TEST(FailsWithErrnoAndCall, MatchesOnlyThatCall) {
  EXPECT_THAT(failed_open(), FailsWith(ENOENT, "open"));
  EXPECT_THAT(failed_open(), Not(FailsWith(ENOENT, "openat")));
  EXPECT_THAT(chdir_failure(), FailsWith(ENOENT, "chdir"));
  EXPECT_THAT(epoll_failed(), FailsWith(EMFILE, "epoll_create1"));
  EXPECT_EQ(::testing::DescribeMatcher<sys::Result<void>>(FailsWith(ENOENT, "open")),
            "fails in open with ENOENT");
}

TEST(FailsWithKind, MatchesAReactorErrcOrAStepKind) {
  EXPECT_THAT(not_running(), FailsWith(ReactorErrc::kNotRunning));
  EXPECT_THAT(not_running(), Not(FailsWith(ReactorErrc::kAlreadyRunning)));
  EXPECT_THAT(epoll_failed(), FailsWith(ReactorErrc::kOs));
  EXPECT_THAT(pidfile_refusal(), FailsWith(StepKind::kPidFile));
  EXPECT_THAT(chdir_failure(), Not(FailsWith(StepKind::kChroot)));
  EXPECT_THAT(ReactorResult<void>{}, Not(FailsWith(ReactorErrc::kNotRunning)));
}

TEST(FailsWithKind, SpellsTheKindAsTheCodeDoes) {
  EXPECT_EQ(::testing::DescribeMatcher<ReactorResult<void>>(FailsWith(ReactorErrc::kNotRunning)),
            "fails with kNotRunning");
  EXPECT_EQ(::testing::DescribeMatcher<StepResult<void>>(FailsWith(StepKind::kPidFile)),
            "fails with pidfile");
  EXPECT_EQ(explain(FailsWith(ReactorErrc::kAlreadyCalled), not_running()).second,
            "which failed with Can't stop reactor that isn't running.");
}

TEST(FailsWithMessage, TakesAStringOrAMatcher) {
  EXPECT_THAT(pidfile_refusal(), FailsWithMessage("Pidfile /run/x.pid contains non-numeric value"));
  EXPECT_THAT(chdir_failure(), FailsWithMessage(HasSubstr("(ENOENT)")));
  EXPECT_THAT(failed_setuid(), FailsWithMessage(StartsWith("setuid: ")));
  EXPECT_THAT(not_running(), FailsWithMessage(HasSubstr("isn't running")));
  EXPECT_THAT(ok_int(), Not(FailsWithMessage(HasSubstr(""))));
  EXPECT_EQ(explain(FailsWithMessage(HasSubstr("EACCES")), failed_setuid()).second,
            "whose message is \"setuid: Operation not permitted (EPERM)\"");
  EXPECT_EQ(::testing::DescribeMatcher<sys::Result<void>>(FailsWithMessage(HasSubstr("x"))),
            "fails with a message that has substring \"x\"");
}

// What a user of EXPECT_THAT reads: the result itself is printed as text, not as bytes.
TEST(ResultMatchers, AFailedExpectationPrintsTheResultAsText) {
  EXPECT_NONFATAL_FAILURE(EXPECT_THAT(failed_setuid(), FailsWith(EACCES)),
                          "Actual: failed: setuid: Operation not permitted (EPERM)");
  EXPECT_NONFATAL_FAILURE(EXPECT_THAT(ok_int(), FailsWith(EACCES)), "Actual: ok: 7, which is ok");
  EXPECT_NONFATAL_FAILURE(EXPECT_THAT(pidfile_refusal(), IsOk()),
                          "Actual: failed: Pidfile /run/x.pid contains non-numeric value");
  EXPECT_NONFATAL_FAILURE(EXPECT_THAT(ReactorResult<void>{}, FailsWith(ReactorErrc::kNotRunning)),
                          "Expected: fails with kNotRunning\n  Actual: ok");
}

}  // namespace
}  // namespace daemonkit::fake
