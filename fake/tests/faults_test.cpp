// Fault injection in the fake kernel: the nth call, predicates over the call record, a call
// at a transcript position, and seeded random faults that a seed reproduces exactly.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(FakeFaults, NthCallOfANameFails) {
  FakeSyscalls os;
  os.fail_nth("setgid", 2, EPERM);
  EXPECT_TRUE(os.setgid(10));
  auto second = os.setgid(20);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, EPERM);
  EXPECT_STREQ(second.error().call, "setgid");
  EXPECT_EQ(os.getresgid()->real, 10u) << "the injected failure changed nothing";
  EXPECT_TRUE(os.setgid(30));
  EXPECT_EQ(os.transcript()[1].injected_by, "nth 2 of setgid");
}

TEST(FakeFaults, InjectedFailuresHappenBeforeAnyStateChanges) {
  FakeSyscalls os;
  os.fail_nth("open", 1, ENOSPC);
  os.fail_nth("fork", 1, EAGAIN);
  os.fail_nth("exit_now", 1, EIO);  // cannot fail: ignored
  EXPECT_EQ(os.open("/tmp/new", O_WRONLY | O_CREAT, 0644).error().code, ENOSPC);
  EXPECT_FALSE(os.stat_path("/tmp/new"));
  EXPECT_THAT(os.open_fds(os.getpid()), IsEmpty());
  EXPECT_EQ(os.fork().error().code, EAGAIN);
  EXPECT_EQ(os.last_forked_pid(), 0);
  EXPECT_FALSE(os.process_exists(1001));
}

TEST(FakeFaults, PredicatesSeeTheRenderedArguments) {
  FakeSyscalls os;
  os.fail_when(
      "open", [](const CallRecord& call) { return call.args.at(0) == "/run/app.pid"; }, EACCES);
  EXPECT_TRUE(os.open("/run/other.pid", O_WRONLY | O_CREAT, 0644));
  EXPECT_EQ(os.open("/run/app.pid", O_WRONLY | O_CREAT, 0644).error().code, EACCES);
  EXPECT_EQ(os.open("/run/app.pid", O_WRONLY | O_CREAT, 0644).error().code, EACCES)
      << "every matching call fails";
}

TEST(FakeFaults, APredicateForAnyCallCanSelectByProcess) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.fail_when(
      "", [child](const CallRecord& call) { return call.pid == child; }, EIO);
  EXPECT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  os.switch_to(child);
  EXPECT_EQ(os.open("/dev/null", O_RDONLY, 0).error().code, EIO);
  EXPECT_EQ(os.getpid(), child) << "getpid cannot fail";
  os.switch_to(parent);
}

TEST(FakeFaults, FailCallAtAnIndexUsesTheTypicalErrno) {
  FakeSyscalls os;
  os.fail_call_at(2);
  EXPECT_TRUE(os.pipe2(0));
  EXPECT_TRUE(os.setgid(5));
  EXPECT_EQ(os.setuid(5).error().code, EPERM);
  EXPECT_EQ(os.transcript()[2].injected_by, "call at index 2");
  EXPECT_EQ(FakeSyscalls::typical_errno("setuid"), EPERM);
  EXPECT_EQ(FakeSyscalls::typical_errno("pipe2"), EMFILE);
  EXPECT_EQ(FakeSyscalls::typical_errno("getpid"), 0);
}

TEST(FakeFaults, ClearFaultsStopsInjecting) {
  FakeSyscalls os;
  os.fail_when(
      "setuid", [](const CallRecord&) { return true; }, EPERM);
  os.fail_randomly(1, 1.0);
  EXPECT_FALSE(os.setuid(0));
  os.clear_faults();
  EXPECT_TRUE(os.setuid(0));
}

// A scenario that keeps going whatever fails, so runs can be compared call by call.
std::vector<std::string> run_scenario(FakeSyscalls& os) {
  static_cast<void>(os.mkdir("/srv", 0755));
  auto fd = os.open("/srv/state", O_RDWR | O_CREAT, 0600);
  for (int i = 0; i < 20; ++i) {
    if (fd) static_cast<void>(os.write(*fd, "x", 1));
    static_cast<void>(os.setgid(static_cast<gid_t>(i)));
    static_cast<void>(os.pipe2(O_CLOEXEC));
  }
  std::vector<std::string> lines;
  for (const auto& record : os.transcript()) lines.push_back(record.to_string());
  return lines;
}

TEST(FakeFaults, ASeedReproducesTheSameFaultsExactly) {
  FakeSyscalls first;
  first.fail_randomly(20261121, 0.3);
  FakeSyscalls second;
  second.fail_randomly(20261121, 0.3);
  const auto a = run_scenario(first);
  EXPECT_EQ(a, run_scenario(second));
  const auto injected = std::count_if(a.begin(), a.end(), [](const std::string& line) {
    return line.find("injected: random, seed=20261121") != std::string::npos;
  });
  EXPECT_GT(injected, 5);
  EXPECT_LT(injected, 40);

  FakeSyscalls other;
  other.fail_randomly(7, 0.3);
  EXPECT_NE(a, run_scenario(other));
}

TEST(FakeFaults, RandomFaultsCanBeLimitedToSomeCalls) {
  FakeSyscalls os;
  os.fail_randomly(3, 1.0, {"pipe2"});
  EXPECT_TRUE(os.setgid(1));
  EXPECT_EQ(os.pipe2(0).error().code, EMFILE);
}

TEST(FakeFaults, ProbabilityZeroInjectsNothingAndOneInjectsEverything) {
  FakeSyscalls never;
  never.fail_randomly(99, 0.0);
  for (const auto& line : run_scenario(never)) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("injected")));
  }
  FakeSyscalls always;
  always.fail_randomly(99, 1.0);
  for (const auto& record : always.transcript()) EXPECT_FALSE(record.ok());
  run_scenario(always);
  for (const auto& record : always.transcript()) EXPECT_FALSE(record.ok()) << record.to_string();
}

TEST(FakeFaults, GtestFailuresNameTheSeedWhileRandomFaultsAreOn) {
  EXPECT_NONFATAL_FAILURE(
      {
        FakeSyscalls os;
        os.fail_randomly(4242, 0.5);
        ADD_FAILURE() << "some assertion in a test";
      },
      "seed=4242");
}

}  // namespace
}  // namespace daemonkit::fake
