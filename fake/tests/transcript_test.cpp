// The transcript of calls and the gmock matchers over it.
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::fake {
namespace {

using ::testing::_;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(FakeTranscript, RecordsEveryCallWithArgumentsAndResults) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  const int fd = *os.open("/run/app.pid", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_TRUE(os.write(fd, "42\n", 3));
  EXPECT_FALSE(os.unlink("/nope"));
  const Transcript& t = os.transcript();
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].name, "getpid");
  EXPECT_EQ(t[0].value, std::to_string(self));
  EXPECT_EQ(t[1].name, "open");
  EXPECT_EQ(t[1].pid, self);
  EXPECT_THAT(t[1].args, ElementsAre("/run/app.pid", "O_WRONLY|O_CREAT|O_CLOEXEC", "0644"));
  EXPECT_EQ(t[1].value, "0");
  EXPECT_EQ(t[1].index, 1u);
  EXPECT_EQ(t[2].call_text(), "write(0, \"42\\n\", 3)");
  EXPECT_EQ(t[3].error, ENOENT);
  EXPECT_EQ(t[3].to_string(), "[1000] unlink(/nope) = -1 ENOENT");
  EXPECT_THAT(to_string(t),
              HasSubstr("open(/run/app.pid, O_WRONLY|O_CREAT|O_CLOEXEC, 0644) = 0\n"));
}

TEST(FakeTranscript, CountsCallsPerNameAndNamesTheCallingProcess) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.setsid());
  static_cast<void>(os.fork());
  const Transcript& t = os.transcript();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].nth, 1);
  EXPECT_EQ(t[2].nth, 2);
  EXPECT_EQ(t[1].pid, child);
  EXPECT_EQ(t[0].pid, 1000);
}

TEST(FakeTranscript, RendersSignalsAndIds) {
  FakeSyscalls os;
  ASSERT_TRUE(os.kill(os.getpid(), 0));
  ASSERT_TRUE(os.setresuid(-1, 5, -1));
  EXPECT_THAT(os.transcript(), HasCallWithArgs("kill", ElementsAre("1000", "0")));
  EXPECT_THAT(os.transcript(), HasCallWithArgs("setresuid", ElementsAre("-1", "5", "-1")));
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
  EXPECT_THAT(os.transcript(),
              HasCallWithArgs("sigaction", ElementsAre("SIGPIPE", "SIG_IGN", "NULL")));
}

TEST(FakeTranscript, ClearTranscriptForgetsButCountsAgain) {
  FakeSyscalls os;
  static_cast<void>(os.getpid());
  os.clear_transcript();
  EXPECT_TRUE(os.transcript().empty());
  static_cast<void>(os.getpid());
  EXPECT_EQ(os.transcript().at(0).nth, 1);
}

TEST(FakeTranscript, WithRecordingOffCallsAreNotKeptButFaultsStillApply) {
  FakeSyscalls os;
  os.set_recording(false);
  os.fail_nth("setgid", 2, EPERM);
  EXPECT_TRUE(os.setgid(1));
  EXPECT_EQ(os.setgid(2).error().code, EPERM);
  EXPECT_TRUE(os.transcript().empty());
  os.set_recording(true);
  EXPECT_TRUE(os.setgid(3));
  ASSERT_EQ(os.transcript().size(), 1u);
  EXPECT_EQ(os.transcript()[0].nth, 3);
  EXPECT_EQ(os.transcript()[0].index, 2u);
}

TEST(TranscriptMatchers, HasCallAndHasCallWithArgs) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setgid(65534));
  EXPECT_THAT(os.transcript(), HasCall("setgid"));
  EXPECT_THAT(os.transcript(), Not(HasCall("setuid")));
  EXPECT_THAT(os.transcript(), HasCallWithArgs("setgid", ElementsAre("65534")));
  EXPECT_THAT(os.transcript(), Not(HasCallWithArgs("setgid", ElementsAre("0"))));
}

TEST(TranscriptMatchers, CalledBeforeAndCallsInOrder) {
  FakeSyscalls os;
  const gid_t none[] = {65534};
  ASSERT_TRUE(os.setgroups(none));
  ASSERT_TRUE(os.setgid(65534));
  ASSERT_TRUE(os.setuid(65534));
  EXPECT_THAT(os.transcript(), CalledBefore("setgid", "setuid"));
  EXPECT_THAT(os.transcript(), Not(CalledBefore("setuid", "setgid")));
  EXPECT_THAT(os.transcript(), Not(CalledBefore("setgid", "chroot")));
  EXPECT_THAT(os.transcript(), CallsInOrder({"setgroups", "setgid", "setuid"}));
  EXPECT_THAT(os.transcript(), Not(CallsInOrder({"setuid", "setgroups"})));
}

TEST(TranscriptMatchers, CallFailedWithAndAllSucceeded) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setuid(1000));
  EXPECT_FALSE(os.setuid(0));
  EXPECT_THAT(os.transcript(), CallFailedWith("setuid", EPERM));
  EXPECT_THAT(os.transcript(), Not(CallFailedWith("setuid", EINVAL)));
  EXPECT_THAT(os.transcript(), Not(AllSucceeded("setuid")));
  EXPECT_THAT(os.transcript(), AllSucceeded("open"));
}

TEST(TranscriptMatchers, FailuresExplainThemselves) {
  EXPECT_NONFATAL_FAILURE(
      {
        FakeSyscalls os;
        static_cast<void>(os.setuid(1));
        EXPECT_THAT(os.transcript(), CalledBefore("setgid", "setuid"));
      },
      "no call of setgid");
  EXPECT_NONFATAL_FAILURE(
      {
        FakeSyscalls os;
        EXPECT_THAT(os.transcript(), HasCallWithArgs("open", Contains(HasSubstr("O_NOFOLLOW"))));
      },
      "has a call of open whose arguments contains at least one element");
}

TEST(TranscriptMatchers, HasOpenFdsChecksAProcessDescriptorTable) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  const int fd = *os.open("/dev/null", O_RDONLY, 0);
  EXPECT_THAT(os, HasOpenFds(self, ElementsAre(fd)));
  ASSERT_TRUE(os.close(fd));
  EXPECT_THAT(os, HasOpenFds(self, ::testing::IsEmpty()));
  EXPECT_THAT(os, Not(HasOpenFds(self, ElementsAre(_))));
}

TEST(TranscriptMatchers, HasOpenFdsNamesWhatLeaked) {
  EXPECT_NONFATAL_FAILURE(
      {
        FakeSyscalls os;
        static_cast<void>(os.pipe2(O_CLOEXEC));
        EXPECT_THAT(os, HasOpenFds(1000, ::testing::IsEmpty()));
      },
      "1 -> pipe:[");
}

}  // namespace
}  // namespace daemonkit::fake
