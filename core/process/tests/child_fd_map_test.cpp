// ChildFdMap on the fake kernel: the descriptor table a spawned child ends up with, for any map
// (cycles, one source for several children, gaps), and every failure of the calls it makes.
#include "daemonkit/core/process/child_fd_map.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FailsWithMessage;
using fake::FakeSyscalls;
using fake::IsOk;
using ::testing::ElementsAre;

// What each open descriptor of the current process refers to: "pipe:[7]:r" and the like.
std::map<int, std::string> table(const FakeSyscalls& os, pid_t pid) {
  std::map<int, std::string> out;
  for (int fd : os.open_fds(pid)) out[fd] = os.describe_fd(pid, fd);
  return out;
}

// A fake process starts with no descriptor at all: 0-2 on /dev/null, as a shell gives them.
void open_stdio(FakeSyscalls& os) {
  for (int fd = 0; fd < 3; ++fd) ASSERT_EQ(os.open("/dev/null", O_RDWR, 0), fd);
}

// 0-2 on /dev/null, then pipes until `count` more descriptors are open, each end naming its
// own pipe.
void open_pipes(FakeSyscalls& os, int count) {
  open_stdio(os);
  for (int opened = 0; opened < count; opened += 2) ASSERT_TRUE(os.pipe2(0));
}

ChildFdMap make_map(std::vector<FdAssignment> assignments) {
  auto map = ChildFdMap::make(assignments);
  EXPECT_THAT(map, IsOk());
  return *map;
}

TEST(ChildFdMap, SwapsTwoDescriptorsAndClosesTheRest) {
  FakeSyscalls os;
  open_pipes(os, 4);  // 3, 4 | 5, 6
  const pid_t pid = os.getpid();
  const auto before = table(os, pid);
  ASSERT_THAT(make_map({{3, 4}, {4, 3}, {0, 0}}).apply(os), IsOk());
  EXPECT_THAT(os.open_fds(pid), ElementsAre(0, 3, 4));
  EXPECT_EQ(os.describe_fd(pid, 3), before.at(4));
  EXPECT_EQ(os.describe_fd(pid, 4), before.at(3));
  EXPECT_EQ(os.describe_fd(pid, 0), before.at(0));
}

TEST(ChildFdMap, OneSourceServesSeveralChildNumbersAndNumbersAboveTwo) {
  FakeSyscalls os;
  open_pipes(os, 2);  // 3 (read), 4 (write)
  const pid_t pid = os.getpid();
  const auto before = table(os, pid);
  ASSERT_THAT(make_map({{0, 3}, {1, 4}, {2, 4}, {7, 4}}).apply(os), IsOk());
  EXPECT_THAT(os.open_fds(pid), ElementsAre(0, 1, 2, 7));
  EXPECT_EQ(os.describe_fd(pid, 0), before.at(3));
  for (int fd : {1, 2, 7}) EXPECT_EQ(os.describe_fd(pid, fd), before.at(4)) << fd;
}

TEST(ChildFdMap, ADescriptorKeptAtItsOwnNumberLosesCloseOnExec) {
  FakeSyscalls os;
  open_stdio(os);
  auto fd = os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  ASSERT_TRUE(fd);
  ASSERT_EQ(*fd, 3);
  ASSERT_THAT(os.describe_fd(os.getpid(), 3), ::testing::EndsWith("(cloexec)"));
  ASSERT_THAT(make_map({{3, 3}}).apply(os), IsOk());
  EXPECT_EQ(os.describe_fd(os.getpid(), 3), "/dev/null");
}

TEST(ChildFdMap, AnEmptyMapLeavesNothingOpen) {
  FakeSyscalls os;
  open_stdio(os);
  ASSERT_THAT(make_map({}).apply(os), IsOk());
  EXPECT_TRUE(os.open_fds(os.getpid()).empty());
}

TEST(ChildFdMap, BadMapsAreRefusedBeforeAnythingIsCreated) {
  using V = std::vector<FdAssignment>;
  EXPECT_THAT(ChildFdMap::make(V{{1, 3}, {1, 4}}), FailsWithMessage("child fd 1 is given twice"));
  EXPECT_THAT(ChildFdMap::make(V{{-1, 3}}),
              FailsWithMessage("child fd -1: a child descriptor is from 0 to 65535"));
  EXPECT_THAT(ChildFdMap::make(V{{ChildFdMap::kMaxChildFd, 3}}),
              FailsWithMessage("child fd 65536: a child descriptor is from 0 to 65535"));
  EXPECT_THAT(ChildFdMap::make(V{{2, -1}}),
              FailsWithMessage("child fd 2: parent descriptor -1 is not a descriptor"));
  V too_many(ChildFdMap::kMaxAssignments + 1);
  for (std::size_t i = 0; i < too_many.size(); ++i) too_many[i] = {static_cast<int>(i), 0};
  EXPECT_THAT(ChildFdMap::make(too_many),
              FailsWithMessage("child fds: 65 descriptors given, at most 64"));
  EXPECT_THAT(ChildFdMap::make(V{{1, 3}, {1, 4}}), FailsWith(StepKind::kOptions));
}

TEST(ChildFdMap, ADescriptorKeptBesideTheMapStaysAsItIsCloseOnExecIncluded) {
  FakeSyscalls os;
  open_pipes(os, 2);  // 3, 4
  auto kept = os.fcntl(4, F_DUPFD_CLOEXEC, 10);
  ASSERT_THAT(kept, IsOk());
  const pid_t pid = os.getpid();
  const std::string kept_was = os.describe_fd(pid, *kept);
  const auto map = make_map({{0, 3}, {1, 4}});
  ASSERT_EQ(map.first_free_fd(), 5);
  ASSERT_THAT(map.apply(os, *kept), IsOk());
  EXPECT_THAT(os.open_fds(pid), ElementsAre(0, 1, *kept));
  EXPECT_EQ(os.describe_fd(pid, *kept), kept_was);
  EXPECT_THAT(kept_was, ::testing::EndsWith("(cloexec)"));
}

TEST(ChildFdMap, ADescriptorKeptWhereTheMapCouldLandIsRefusedBeforeAnyChange) {
  FakeSyscalls os;
  open_pipes(os, 2);  // 3, 4
  const pid_t pid = os.getpid();
  const auto before = table(os, pid);
  os.clear_transcript();
  EXPECT_THAT(make_map({{0, 3}, {1, 4}}).apply(os, 4), FailsWith(EINVAL, "child fds"));
  EXPECT_EQ(table(os, pid), before);
  EXPECT_TRUE(os.transcript().empty());
}

TEST(ChildFdMap, AParentDescriptorThatIsNotOpenFailsWithEbadf) {
  FakeSyscalls os;
  EXPECT_THAT(make_map({{0, 9}}).apply(os), FailsWith(EBADF, "fcntl"));
}

// Every call apply makes, failed in turn with the errnos it can really return.
TEST(ChildFdMap, EachFailingCallIsReturnedAsItFailed) {
  struct Case {
    const char* call;
    int nth;
    int error;
  };
  for (const Case& c : {Case{"fcntl", 1, EMFILE}, Case{"fcntl", 2, EINVAL}, Case{"dup2", 1, EMFILE},
                        Case{"dup2", 2, EBUSY}, Case{"close_range", 1, EINVAL}}) {
    FakeSyscalls os;
    open_pipes(os, 2);
    os.fail_nth(c.call, c.nth, c.error);
    EXPECT_THAT(make_map({{0, 3}, {1, 4}}).apply(os), FailsWith(c.error, c.call))
        << c.call << " #" << c.nth;
  }
}

// For any map over the open descriptors: each child number ends up referring to what its parent
// descriptor referred to, nothing else stays open, and nothing kept is close-on-exec.
RC_GTEST_PROP(ChildFdMapProperties, TheChildGetsExactlyTheMap, ()) {
  FakeSyscalls os;
  for (int fd = 0; fd < 3; ++fd) RC_ASSERT(os.open("/dev/null", O_RDWR, 0) == fd);
  const int pipes = *rc::gen::inRange(0, 5);
  for (int i = 0; i < pipes; ++i) RC_ASSERT(os.pipe2(0));
  const pid_t pid = os.getpid();
  // Gaps: some descriptors closed before the map is applied.
  for (int fd : *rc::gen::container<std::vector<int>>(rc::gen::inRange(0, 3 + 2 * pipes))) {
    (void)os.close(fd);
  }
  const auto before = table(os, pid);
  std::vector<int> open;
  for (const auto& [fd, what] : before) open.push_back(fd);
  RC_PRE(!open.empty());
  const auto children = *rc::gen::unique<std::vector<int>>(rc::gen::inRange(0, 16));
  std::vector<FdAssignment> assignments;
  for (int child : children) assignments.push_back({child, *rc::gen::elementOf(open)});
  auto map = ChildFdMap::make(assignments);
  RC_ASSERT(map.has_value());
  RC_ASSERT(map->apply(os).has_value());

  std::vector<int> expected = children;
  std::sort(expected.begin(), expected.end());
  RC_ASSERT(os.open_fds(pid) == expected);
  for (const FdAssignment& a : assignments) {
    RC_ASSERT(os.describe_fd(pid, a.child) == before.at(a.parent));
  }
}

}  // namespace
}  // namespace daemonkit::core
