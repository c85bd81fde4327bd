// Credentials in the fake kernel: POSIX rules for the set*id calls, supplementary groups, the
// user and group database, rlimits, umask and the manual clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake {
namespace {

using ::testing::ElementsAre;

FakeSyscallsOptions as_user(uid_t uid, gid_t gid) {
  FakeSyscallsOptions options;
  options.uid = uid;
  options.gid = gid;
  return options;
}

TEST(FakeCredentials, RootSetuidChangesAllThreeIdsForGood) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setuid(65534));
  EXPECT_EQ(*os.getresuid(), (sys::ResUids{65534, 65534, 65534}));
  EXPECT_EQ(os.setuid(0).error().code, EPERM);
  EXPECT_EQ(os.seteuid(0).error().code, EPERM);
}

TEST(FakeCredentials, SeteuidKeepsTheSavedIdSoRootCanComeBack) {
  FakeSyscalls os;
  ASSERT_TRUE(os.seteuid(1000));
  EXPECT_EQ(*os.getresuid(), (sys::ResUids{0, 1000, 0}));
  // Unprivileged now: only the real, effective or saved id is allowed.
  EXPECT_EQ(os.seteuid(2000).error().code, EPERM);
  ASSERT_TRUE(os.seteuid(0));
  EXPECT_EQ(*os.getresuid(), (sys::ResUids{0, 0, 0}));
  EXPECT_EQ(os.seteuid(-1).error().code, EINVAL);
  EXPECT_EQ(os.setuid(-1).error().code, EINVAL);
}

TEST(FakeCredentials, UnprivilegedSetuidMayOnlyPickRealOrSaved) {
  FakeSyscalls os(as_user(1000, 1000));
  EXPECT_EQ(os.setuid(0).error().code, EPERM);
  EXPECT_TRUE(os.setuid(1000));
  EXPECT_EQ(os.setresuid(-1, 2000, -1).error().code, EPERM);
}

TEST(FakeCredentials, SetresuidPermutesOwnIdsWithoutPrivilege) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setresuid(1000, 2000, 0));
  EXPECT_EQ(*os.getresuid(), (sys::ResUids{1000, 2000, 0}));
  // euid 2000 is unprivileged, but 0 is still the saved id.
  ASSERT_TRUE(os.setresuid(-1, 0, -1));
  ASSERT_TRUE(os.setresuid(1000, 1000, 1000));
  EXPECT_EQ(os.setresuid(0, -1, -1).error().code, EPERM);
}

TEST(FakeCredentials, GidCallsFollowTheSameRulesWithEuidZeroAsPrivilege) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setgid(100));
  EXPECT_EQ(*os.getresgid(), (sys::ResGids{100, 100, 100}));
  ASSERT_TRUE(os.setegid(200));
  ASSERT_TRUE(os.setresgid(300, -1, -1));
  EXPECT_EQ(*os.getresgid(), (sys::ResGids{300, 200, 100}));
  ASSERT_TRUE(os.setuid(1000));
  EXPECT_EQ(os.setgid(0).error().code, EPERM);
  EXPECT_EQ(os.setegid(5).error().code, EPERM);
  EXPECT_TRUE(os.setegid(300));
  EXPECT_TRUE(os.setgid(100));
  EXPECT_EQ(os.setgid(-1).error().code, EINVAL);
}

TEST(FakeCredentials, SetgroupsNeedsPrivilegeAndIsSorted) {
  FakeSyscalls os;
  const gid_t groups[] = {30, 10, 20, 10};
  ASSERT_TRUE(os.setgroups(groups));
  EXPECT_THAT(*os.getgroups(), ElementsAre(10, 10, 20, 30));
  ASSERT_TRUE(os.setuid(1000));
  EXPECT_EQ(os.setgroups(groups).error().code, EPERM);
}

// svc's primary group 500 names svc too: getgrouplist lists it once, first.
void add_svc(FakeSyscalls& os) {
  os.add_user("svc", 500, 500, "/var/lib/svc");
  os.add_group("svc", 500, {"svc"});
  os.add_group("adm", 4, {"svc", "other"});
  os.add_group("web", 33, {"svc"});
  os.add_group("misc", 77, {"other"});
}

TEST(FakeCredentials, GetgrouplistIsTheGidThenTheGroupsNamingTheUser) {
  FakeSyscalls os;
  add_svc(os);
  EXPECT_THAT(*os.getgrouplist("svc", 500), ElementsAre(500, 4, 33));
  // Another gid goes first; the rest follow the database order, the primary group too when
  // its entry names the user.
  EXPECT_THAT(*os.getgrouplist("svc", 77), ElementsAre(77, 500, 4, 33));
  EXPECT_THAT(*os.getgrouplist("other", 4), ElementsAre(4, 77));
}

TEST(FakeCredentials, GetgrouplistOfAnUnknownUserIsTheGidAlone) {
  FakeSyscalls os;
  add_svc(os);
  EXPECT_THAT(*os.getgrouplist("ghost", 1234), ElementsAre(1234));
  EXPECT_THAT(*os.getgrouplist(nullptr, 1234), ElementsAre(1234));
}

// A database read, not a credential change: it neither needs privilege nor touches the groups.
TEST(FakeCredentials, GetgrouplistNeedsNoPrivilegeAndChangesNothing) {
  FakeSyscallsOptions user = as_user(1000, 1000);
  user.groups = {1000};
  FakeSyscalls os(user);
  add_svc(os);
  EXPECT_THAT(*os.getgrouplist("svc", 500), ElementsAre(500, 4, 33));
  EXPECT_THAT(*os.getgroups(), ElementsAre(1000));
}

TEST(FakeCredentials, GetgrouplistIsRecordedAndCanFail) {
  FakeSyscalls os;
  add_svc(os);
  os.fail_nth("getgrouplist", 2, FakeSyscalls::typical_errno("getgrouplist"));
  ASSERT_TRUE(os.getgrouplist("svc", 500));
  const auto failed = os.getgrouplist("svc", 500);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ENOMEM);
  EXPECT_STREQ(failed.error().call, "getgrouplist");
  ASSERT_EQ(os.transcript().size(), 2u);
  const CallRecord& first = os.transcript()[0];
  EXPECT_EQ(first.name, "getgrouplist");
  EXPECT_THAT(first.args, ElementsAre("svc", "500"));
  EXPECT_TRUE(first.ok());
  EXPECT_EQ(first.value, "[500, 4, 33]");
  EXPECT_EQ(os.transcript()[1].error, ENOMEM);
  EXPECT_EQ(os.transcript()[1].injected_by, "nth 2 of getgrouplist");
}

TEST(FakeCredentials, DatabaseLookups) {
  FakeSyscalls os;
  os.add_user("svc", 500, 501, "/var/lib/svc", "/bin/false");
  os.add_group("svcgrp", 501, {"svc"});
  auto pw = *os.getpwnam("svc");
  ASSERT_TRUE(pw);
  EXPECT_EQ(pw->uid, 500u);
  EXPECT_EQ(pw->gid, 501u);
  EXPECT_EQ(pw->dir, "/var/lib/svc");
  EXPECT_EQ(pw->shell, "/bin/false");
  EXPECT_EQ((*os.getpwuid(500))->name, "svc");
  EXPECT_FALSE(*os.getpwnam("nobody-here"));
  EXPECT_FALSE(*os.getpwuid(4242));
  EXPECT_EQ((*os.getgrnam("svcgrp"))->gid, 501u);
  EXPECT_THAT((*os.getgrgid(501))->members, ElementsAre("svc"));
  EXPECT_FALSE(*os.getgrgid(4242));
  EXPECT_EQ((*os.getpwnam("nobody"))->uid, 65534u) << "default users";
  EXPECT_EQ((*os.getgrnam("nogroup"))->gid, 65534u);
}

TEST(FakeCredentials, WithoutDefaultUsersTheDatabaseIsEmpty) {
  FakeSyscallsOptions options;
  options.default_users = false;
  FakeSyscalls os(options);
  EXPECT_FALSE(*os.getpwnam("root"));
}

TEST(FakeLimits, RlimitRules) {
  FakeSyscalls os;
  auto nofile = *os.getrlimit(RLIMIT_NOFILE);
  EXPECT_EQ(nofile.rlim_cur, 1024u);
  EXPECT_EQ(nofile.rlim_max, 4096u);
  EXPECT_EQ(os.setrlimit(RLIMIT_NOFILE, {10, 5}).error().code, EINVAL);
  EXPECT_EQ(os.getrlimit(99).error().code, EINVAL);
  EXPECT_EQ(os.setrlimit(RLIMIT_NOFILE, {10, 2'000'000}).error().code, EPERM);
  ASSERT_TRUE(os.setrlimit(RLIMIT_NOFILE, {65536, 65536}));
  ASSERT_TRUE(os.setuid(1000));
  ASSERT_TRUE(os.setrlimit(RLIMIT_NOFILE, {100, 200}));
  EXPECT_EQ(os.setrlimit(RLIMIT_NOFILE, {100, 300}).error().code, EPERM);
  EXPECT_TRUE(os.setrlimit(RLIMIT_NOFILE, {200, 200}));
  EXPECT_EQ(os.process(os.getpid()).nofile.rlim_cur, 200u);
}

TEST(FakeLimits, UmaskReturnsThePreviousMask) {
  FakeSyscalls os;
  EXPECT_EQ(os.umask(077), 022u);
  EXPECT_EQ(os.umask(01777), 077u);
  EXPECT_EQ(os.umask(0), 0777u);
}

TEST(FakeClock, AdvancesOnlyWhenTold) {
  FakeSyscalls os;
  auto m0 = *os.clock_gettime(CLOCK_MONOTONIC);
  auto r0 = *os.clock_gettime(CLOCK_REALTIME);
  EXPECT_EQ(m0.tv_sec, 1000);
  EXPECT_EQ(r0.tv_sec, 1'700'000'000);
  os.clock().advance(std::chrono::milliseconds(1500));
  auto m1 = *os.clock_gettime(CLOCK_MONOTONIC);
  EXPECT_EQ(m1.tv_sec, 1001);
  EXPECT_EQ(m1.tv_nsec, 500'000'000);
  EXPECT_EQ(os.clock_gettime(CLOCK_PROCESS_CPUTIME_ID).error().code, EINVAL);
  os.clock().set_realtime(std::chrono::seconds(5));
  EXPECT_EQ(os.clock_gettime(CLOCK_REALTIME)->tv_sec, 5);
  EXPECT_EQ(os.clock_gettime(CLOCK_MONOTONIC)->tv_sec, 1001);
}

TEST(FakeClock, FileTimesComeFromTheClock) {
  FakeSyscalls os;
  os.clock().set_realtime(std::chrono::seconds(42));
  const int fd = *os.open("/tmp/f", O_WRONLY | O_CREAT, 0644);
  EXPECT_EQ(os.fstat(fd)->st_mtim.tv_sec, 42);
  os.clock().advance(std::chrono::seconds(8));
  ASSERT_TRUE(os.write(fd, "x", 1));
  EXPECT_EQ(os.fstat(fd)->st_mtim.tv_sec, 50);
}

}  // namespace
}  // namespace daemonkit::fake
