// ExecArguments: what execve gets, and every argument refused before anything is created.
#include "daemonkit/core/process/exec_arguments.h"

#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FailsWithMessage;
using fake::IsOk;
using V = std::vector<std::string>;

std::vector<std::string> read_array(char* const* array) {
  std::vector<std::string> out;
  for (; *array != nullptr; ++array) out.emplace_back(*array);
  return out;
}

TEST(ExecArguments, LaysOutNullTerminatedArraysThatSurviveAMove) {
  // "a" fits in std::string's inline buffer, the long value does not: both must survive.
  auto made = ExecArguments::make("/bin/echo", V{"echo", "a", std::string(100, 'x')},
                                  V{"HOME=/", "LONG=" + std::string(100, 'y')});
  ASSERT_THAT(made, IsOk());
  ExecArguments moved = std::move(*made);
  EXPECT_STREQ(moved.executable(), "/bin/echo");
  EXPECT_EQ(read_array(moved.argv()), (V{"echo", "a", std::string(100, 'x')}));
  EXPECT_EQ(read_array(moved.envp()), (V{"HOME=/", "LONG=" + std::string(100, 'y')}));
}

TEST(ExecArguments, AnEmptyEnvironmentIsAnEmptyArray) {
  auto made = ExecArguments::make("/bin/true", V{"true"}, V{});
  ASSERT_THAT(made, IsOk());
  EXPECT_EQ(made->envp()[0], nullptr);
}

TEST(ExecArguments, EveryBadArgumentIsRefusedByName) {
  const std::string nul("a\0b", 3);
  EXPECT_THAT(ExecArguments::make("", V{"x"}, V{}), FailsWithMessage("no executable to run"));
  EXPECT_THAT(ExecArguments::make(nul, V{"x"}, V{}),
              FailsWithMessage("the executable's path contains a NUL byte"));
  EXPECT_THAT(ExecArguments::make("/bin/true", V{}, V{}),
              FailsWithMessage("argv is empty: it needs at least the program's name"));
  EXPECT_THAT(ExecArguments::make("/bin/true", V{"true", nul}, V{}),
              FailsWithMessage("argv[1] contains a NUL byte"));
  EXPECT_THAT(ExecArguments::make("/bin/true", V{"true"}, V{"A=1", nul}),
              FailsWithMessage("environment entry 1 contains a NUL byte"));
  EXPECT_THAT(ExecArguments::make("/bin/true", V{"true"}, V{"NOEQUALS"}),
              FailsWithMessage("environment entry 0 is not KEY=VALUE: \"NOEQUALS\""));
  EXPECT_THAT(ExecArguments::make("/bin/true", V{"true"}, V{"=value"}),
              FailsWithMessage("environment entry 0 is not KEY=VALUE: \"=value\""));
  EXPECT_THAT(ExecArguments::make("/bin/true", V{"true"}, V{"A=1", "B=2", "A=3"}),
              FailsWithMessage("environment entry 2: A is given twice"));
  EXPECT_THAT(ExecArguments::make("", V{}, V{}), FailsWith(StepKind::kOptions));
}

TEST(ExecArguments, AnEmptyValueAndAnEqualsSignInTheValueAreFine) {
  auto made = ExecArguments::make("/bin/true", V{"true", ""}, V{"EMPTY=", "EQ=a=b"});
  ASSERT_THAT(made, IsOk());
  EXPECT_EQ(read_array(made->argv()), (V{"true", ""}));
  EXPECT_EQ(read_array(made->envp()), (V{"EMPTY=", "EQ=a=b"}));
}

}  // namespace
}  // namespace daemonkit::core
