#include "daemonkit/core/daemon/privileges.h"

#include <cerrno>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWithMessage;
using fake::IsOk;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::Return;
using ::testing::StrEq;
using ::testing::StrictMock;

PrivilegeRequest ask(std::optional<std::string> user, std::optional<std::string> group = {}) {
  PrivilegeRequest r;
  r.user = std::move(user);
  r.group = std::move(group);
  return r;
}

sys::Passwd nobody() { return sys::Passwd{"nobody", 65534, 65534, "/nonexistent", "/bin/false"}; }

TEST(PrivilegePlan, DescribesLikeTwistd) {
  PrivilegePlan plan;
  plan.uid = 65534;
  plan.gid = 65534;
  EXPECT_EQ(plan.description(), "uid/gid 65534/65534");
  plan.euid = true;
  plan.gid.reset();
  EXPECT_EQ(plan.description(), "euid/egid 65534/None");
}

TEST(ResolvePrivileges, NothingAskedIsAnEmptyPlanWithoutLookups) {
  StrictMock<fake::MockSyscalls> os;
  auto plan = resolve_privileges(os, {});
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->empty());
}

sys::Result<std::vector<gid_t>> gid_list(std::vector<gid_t> list) { return list; }

TEST(ResolvePrivileges, UserNameGivesUidNamePrimaryGroupAndGroupList) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, getpwnam(StrEq("nobody"))).WillOnce(Return(std::optional(nobody())));
  EXPECT_CALL(os, getgrouplist(StrEq("nobody"), 65534u))
      .WillOnce(Return(gid_list({65534, 27, 100})));
  auto plan = resolve_privileges(os, ask("nobody"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->uid, 65534u);
  EXPECT_EQ(plan->gid, 65534u);
  EXPECT_EQ(plan->user_name, "nobody");
  EXPECT_THAT(plan->groups, ElementsAre(65534u, 27u, 100u));
}

TEST(ResolvePrivileges, NumericUidIsLookedUpForItsNameGroupAndGroupList) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, getpwuid(65534u)).WillOnce(Return(std::optional(nobody())));
  EXPECT_CALL(os, getgrouplist(StrEq("nobody"), 65534u)).WillOnce(Return(gid_list({65534})));
  auto plan = resolve_privileges(os, ask("65534"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->user_name, "nobody");
  EXPECT_EQ(plan->gid, 65534u);
  EXPECT_THAT(plan->groups, ElementsAre(65534u));
}

// The given group replaces the primary one at the head of the list, as initgroups would.
TEST(ResolvePrivileges, GivenGroupIsTheOneTheListIsBuiltAround) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, getpwnam(StrEq("nobody"))).WillOnce(Return(std::optional(nobody())));
  EXPECT_CALL(os, getgrouplist(StrEq("nobody"), 100u)).WillOnce(Return(gid_list({100, 27})));
  auto plan = resolve_privileges(os, ask("nobody", "100"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->gid, 100u);
  EXPECT_THAT(plan->groups, ElementsAre(100u, 27u));
}

TEST(ResolvePrivileges, GroupAloneNeedsNoGroupList) {
  StrictMock<fake::MockSyscalls> os;
  auto plan = resolve_privileges(os, ask({}, "100"));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->gid, 100u);
  EXPECT_TRUE(plan->groups.empty());
}

TEST(ResolvePrivileges, FailingGroupListIsAnErrorNamingTheUser) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, getpwnam(StrEq("nobody"))).WillOnce(Return(std::optional(nobody())));
  EXPECT_CALL(os, getgrouplist(_, _)).WillOnce(Return(sys::fail(ENOMEM, "getgrouplist")));
  auto plan = resolve_privileges(os, ask("nobody"));
  ASSERT_THAT(plan,
              FailsWithMessage("getgrouplist(nobody, 65534): Cannot allocate memory (ENOMEM)"));
  EXPECT_EQ(plan.error().error_number(), ENOMEM);
}

TEST(ResolvePrivileges, UnknownUidNeedsAGid) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, getpwuid(12345u)).WillRepeatedly(Return(std::optional<sys::Passwd>()));
  auto plan = resolve_privileges(os, ask("12345"));
  ASSERT_FALSE(plan);
  EXPECT_THAT(plan, FailsWithMessage(HasSubstr("uid 12345 has no passwd entry")));
  auto with_gid = resolve_privileges(os, ask("12345", "100"));
  ASSERT_TRUE(with_gid);
  EXPECT_EQ(with_gid->uid, 12345u);
  EXPECT_EQ(with_gid->gid, 100u);
  EXPECT_EQ(with_gid->user_name, "");
  EXPECT_TRUE(with_gid->groups.empty()) << "no name to look its groups up by";
}

TEST(ResolvePrivileges, UnknownNamesAreErrorsThatSaySo) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, getpwnam(StrEq("ghost"))).WillOnce(Return(std::optional<sys::Passwd>()));
  EXPECT_CALL(os, getgrnam(StrEq("ghosts"))).WillOnce(Return(std::optional<sys::Group>()));
  EXPECT_EQ(resolve_privileges(os, ask("ghost")).error().message, "Unknown user ghost");
  EXPECT_EQ(resolve_privileges(os, ask({}, "ghosts")).error().message, "Unknown group ghosts");
}

TEST(ResolvePrivileges, MinusOneAndOverflowAreInvalidIds) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_EQ(resolve_privileges(os, ask("4294967295")).error().message, "Invalid uid 4294967295");
  EXPECT_EQ(resolve_privileges(os, ask({}, "99999999999")).error().message,
            "Invalid gid 99999999999");
}

TEST(ResolvePrivileges, DatabaseErrorsNameTheLookup) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, getpwnam(_)).WillOnce(Return(sys::fail(EIO, "getpwnam")));
  EXPECT_EQ(resolve_privileges(os, ask("nobody")).error().message,
            "getpwnam(nobody): Input/output error (EIO)");
}

PrivilegePlan nobody_plan(bool euid = false) {
  PrivilegePlan plan;
  plan.uid = 65534;
  plan.gid = 65534;
  plan.user_name = "nobody";
  plan.groups = {65534, 27};
  plan.euid = euid;
  return plan;
}

TEST(ShedPrivileges, GroupsThenGidThenUidThenProvesRootIsGone) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<std::string> lines;
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u, 27u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(65534u, 65534u, 65534u)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresuid(65534u, 65534u, 65534u)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{65534, 65534, 65534}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{65534, 65534, 65534}));
  EXPECT_CALL(os, setuid(0u)).WillOnce(Return(sys::fail(EPERM, "setuid")));
  auto done =
      shed_privileges(os, nobody_plan(), [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_THAT(done, IsOk());
  EXPECT_THAT(lines, ElementsAre("set uid/gid 65534/65534"));
}

TEST(ShedPrivileges, WithoutGroupListGroupsBecomeTheGidAlone) {
  StrictMock<fake::MockSyscalls> os;
  PrivilegePlan plan = nobody_plan();
  plan.user_name.clear();
  plan.groups.clear();
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresuid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{65534, 65534, 65534}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{65534, 65534, 65534}));
  EXPECT_CALL(os, setuid(0u)).WillOnce(Return(sys::fail(EPERM, "setuid")));
  EXPECT_TRUE(shed_privileges(os, plan, {}));
}

TEST(ShedPrivileges, EuidModeSetsOnlyEffectiveIdsAndLogsEuid) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<std::string> lines;
  const uid_t keep = static_cast<uid_t>(-1);
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u, 27u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(keep, 65534u, keep)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresuid(keep, 65534u, keep)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 65534, 0}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{0, 65534, 0}));
  auto done =
      shed_privileges(os, nobody_plan(true), [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_THAT(done, IsOk());
  EXPECT_THAT(lines, ElementsAre("set euid/egid 65534/65534"));
}

TEST(ShedPrivileges, EachFailureNamesItsStepAndLogsTwistdsLine) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<std::string> lines;
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u, 27u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresuid(_, _, _)).WillOnce(Return(sys::fail(EAGAIN, "setresuid")));
  auto done =
      shed_privileges(os, nobody_plan(), [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_THAT(done,
              FailsWithMessage("setresuid(65534): Resource temporarily unavailable (EAGAIN)"));
  EXPECT_THAT(lines, ElementsAre("failed to set uid/gid 65534/65534: setresuid(65534): Resource "
                                 "temporarily unavailable (EAGAIN) (are you root?) -- exiting."));
}

// Nothing after a refused setgroups: the gid and uid stay root's, and the line says which list.
TEST(ShedPrivileges, SetgroupsFailuresNameTheListAndStopThere) {
  for (const int error : {EPERM, ENOMEM}) {
    StrictMock<fake::MockSyscalls> os;
    std::vector<std::string> lines;
    InSequence order;
    EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
    EXPECT_CALL(os, setgroups(ElementsAre(65534u, 27u)))
        .WillOnce(Return(sys::fail(error, "setgroups")));
    auto done =
        shed_privileges(os, nobody_plan(), [&](std::string_view l) { lines.emplace_back(l); });
    ASSERT_FALSE(done);
    const std::string expected = "setgroups(65534, 27): " + sys::errno_description(error) + " (" +
                                 sys::errno_name(error) + ")";
    EXPECT_EQ(done.error().message, expected);
    EXPECT_EQ(done.error().error_number(), error);
    EXPECT_THAT(lines, ElementsAre("failed to set uid/gid 65534/65534: " + expected +
                                   " (are you root?) -- exiting."));
  }
}

TEST(ShedPrivileges, SetgroupsToTheGidAloneNamesIt) {
  StrictMock<fake::MockSyscalls> os;
  PrivilegePlan plan = nobody_plan();
  plan.groups.clear();
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u))).WillOnce(Return(sys::fail(EPERM, "setgroups")));
  auto done = shed_privileges(os, plan, {});
  ASSERT_THAT(done, FailsWithMessage("setgroups(65534): Operation not permitted (EPERM)"));
}

// Root asking to stay root keeps no supplementary group but the gid, as before the group list.
TEST(ShedPrivileges, RootStayingRootGetsTheGidAloneAsGroups) {
  StrictMock<fake::MockSyscalls> os;
  PrivilegePlan plan;
  plan.uid = 0;
  plan.gid = 0;
  plan.user_name = "root";
  plan.groups = {0, 4, 27};
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(0u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(0u, 0u, 0u)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{0, 0, 0}));
  EXPECT_TRUE(shed_privileges(os, plan, {}));
}

TEST(ShedPrivileges, RegainableRootIsAFailure) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u, 27u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresuid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{65534, 65534, 65534}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{65534, 65534, 65534}));
  EXPECT_CALL(os, setuid(0u)).WillOnce(Return(sys::Result<void>{}));
  auto done = shed_privileges(os, nobody_plan(), {});
  ASSERT_FALSE(done);
  EXPECT_THAT(done, FailsWithMessage(HasSubstr("privileges could be regained")));
}

TEST(ShedPrivileges, IdsThatDoNotMatchAfterwardsAreAFailure) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{0, 0, 0}));
  EXPECT_CALL(os, setgroups(ElementsAre(65534u, 27u))).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresuid(_, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{65534, 65534, 0}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{65534, 65534, 65534}));
  auto done = shed_privileges(os, nobody_plan(), {});
  ASSERT_FALSE(done);
  EXPECT_THAT(done, FailsWithMessage(HasSubstr("getresuid reports 65534/65534/0")));
}

TEST(ShedPrivileges, AskingForTheCurrentUidWarnsAndChangesOnlyTheGid) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<std::string> lines;
  PrivilegePlan plan;
  plan.uid = 1000;
  plan.gid = 1000;
  plan.user_name = "me";
  InSequence order;
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{1000, 1000, 1000}));
  EXPECT_CALL(os, setresgid(1000u, 1000u, 1000u)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, getresuid()).WillOnce(Return(sys::ResUids{1000, 1000, 1000}));
  EXPECT_CALL(os, getresgid()).WillOnce(Return(sys::ResGids{1000, 1000, 1000}));
  auto done = shed_privileges(os, plan, [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_THAT(done, IsOk());
  EXPECT_THAT(lines, ElementsAre("tried to drop privileges and setuid 1000 but uid is already "
                                 "1000; should we be root? Continuing.",
                                 "set uid/gid 1000/1000"));
}

TEST(ShedPrivileges, EmptyPlanDoesNothingAndLogsNothing) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<std::string> lines;
  EXPECT_TRUE(shed_privileges(os, {}, [&](std::string_view l) { lines.emplace_back(l); }));
  EXPECT_TRUE(lines.empty());
}

// On the fake kernel: the database is read while resolving, and shedding only sets what was read.
TEST(PrivilegesOnFake, ResolvedGroupListIsWhatTheProcessEndsUpWith) {
  fake::FakeSyscalls os;
  os.add_user("svc", 500, 500);
  os.add_group("svc", 500);
  os.add_group("adm", 4, {"svc"});
  os.add_group("web", 33, {"svc", "other"});
  os.add_group("misc", 77, {"other"});
  auto plan = resolve_privileges(os, ask("svc"));
  ASSERT_THAT(plan, IsOk());
  EXPECT_THAT(plan->groups, ElementsAre(500u, 4u, 33u));
  const std::size_t resolved = os.transcript().size();
  ASSERT_TRUE(shed_privileges(os, *plan, {}));
  std::vector<std::string> shed_calls;
  for (std::size_t i = resolved; i < os.transcript().size(); ++i) {
    shed_calls.push_back(os.transcript()[i].name);
  }
  EXPECT_THAT(shed_calls, ElementsAre("getresuid", "setgroups", "setresgid", "setresuid",
                                      "getresuid", "getresgid", "setuid"));
  EXPECT_THAT(*os.getgroups(), ElementsAre(4u, 33u, 500u));
  EXPECT_EQ(*os.getresuid(), (sys::ResUids{500, 500, 500}));
}

TEST(PrivilegesOnFake, InjectedGroupListFailureIsAResolveError) {
  fake::FakeSyscalls os;
  os.fail_nth("getgrouplist", 1, fake::FakeSyscalls::typical_errno("getgrouplist"));
  auto plan = resolve_privileges(os, ask("nobody"));
  ASSERT_THAT(plan,
              FailsWithMessage("getgrouplist(nobody, 65534): Cannot allocate memory (ENOMEM)"));
  EXPECT_THAT(os.transcript(), fake::CalledBefore("getpwnam", "getgrouplist"));
}

}  // namespace
}  // namespace daemonkit::core
