// StepError: its text is what the user reads, its kind is what code branches on.
#include "daemonkit/core/base/step_error.h"

#include <cerrno>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/result_matchers.h"
#include "daemonkit/sys/error_text.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FailsWithMessage;

TEST(StepError, AFailedCallReadsAsEveryFailedCallDoes) {
  const sys::Error cause{EACCES, "open", {}};
  const StepError error = StepError::from(StepKind::kPidFile, call_on("open", "/run/x.pid"), cause);
  EXPECT_EQ(error.message, "open(/run/x.pid): Permission denied (EACCES)");
  EXPECT_EQ(error.message, sys::describe_failure("open(/run/x.pid)", EACCES));
  EXPECT_EQ(error.kind, StepKind::kPidFile);
  EXPECT_EQ(error.cause, cause);
  EXPECT_EQ(error.error_number(), EACCES);
}

TEST(StepError, APlainFailureKeepsItsTextAndHasNoErrno) {
  const StepError error = StepError::plain(StepKind::kPrivileges, "Unknown user nosuchuser");
  EXPECT_EQ(error.message, "Unknown user nosuchuser");
  EXPECT_EQ(error.kind, StepKind::kPrivileges);
  EXPECT_FALSE(error.cause);
  EXPECT_EQ(error.error_number(), 0);
}

TEST(StepError, EveryKindHasItsOwnName) {
  const StepKind kinds[] = {StepKind::kOptions,    StepKind::kPrivileges, StepKind::kPidFile,
                            StepKind::kStatusPipe, StepKind::kDetach,     StepKind::kStdio,
                            StepKind::kCloseFds,   StepKind::kSignals,    StepKind::kChroot,
                            StepKind::kChdir,      StepKind::kCoreDumps,  StepKind::kReadiness,
                            StepKind::kApplication};
  std::set<std::string> names;
  for (StepKind kind : kinds) names.emplace(to_string(kind));
  EXPECT_EQ(names.size(), std::size(kinds));
  EXPECT_EQ(names.count("unknown step"), 0u);
  EXPECT_EQ(to_string(StepKind::kPidFile), "pidfile");
}

TEST(StepResult, CarriesTheErrorThroughMonadicChains) {
  const StepResult<int> failed =
      StepResult<int>(step_failed(StepError::from(StepKind::kChdir, "chdir(/srv)",
                                                  sys::Error{ENOENT, "chdir", {}})))
          .map([](int v) { return v + 1; });
  EXPECT_THAT(failed, FailsWith(StepKind::kChdir));
  EXPECT_THAT(failed, FailsWith(ENOENT, "chdir"));
  EXPECT_THAT(failed, FailsWithMessage("chdir(/srv): No such file or directory (ENOENT)"));
  const StepResult<int> doubled =
      StepResult<int>(21).and_then([](int v) -> StepResult<int> { return v * 2; });
  EXPECT_EQ(*doubled, 42);
}

}  // namespace
}  // namespace daemonkit::core
