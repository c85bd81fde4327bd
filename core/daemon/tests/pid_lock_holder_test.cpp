// Proving who holds a PID file's lock: the fdinfo parser, the proof and the scan on the fake
// kernel (with each failing call), and the same scenario on the fake and on the real kernel,
// which must read the same.
#include "daemonkit/core/daemon/pid_lock_holder.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using fake::ForkAs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(FdinfoLock, ReadsLinuxsFlockLines) {
  auto write = parse_fdinfo_lock("lock:\t1: FLOCK  ADVISORY  WRITE 3089 fe:00:10952941 0 EOF");
  ASSERT_TRUE(write);
  EXPECT_TRUE(write->flock);
  EXPECT_TRUE(write->exclusive);
  EXPECT_FALSE(write->waiting);
  EXPECT_EQ(write->dev_major, 0xfeU);
  EXPECT_EQ(write->dev_minor, 0U);
  EXPECT_EQ(write->ino, static_cast<ino_t>(10952941));
  auto read =
      parse_fdinfo_lock("lock:\t2: FLOCK  ADVISORY  READ 6838 103:1a:18446744073709551615 0 EOF");
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->exclusive);
  EXPECT_EQ(read->dev_major, 0x103U);
  EXPECT_EQ(read->dev_minor, 0x1aU);
  auto waiting = parse_fdinfo_lock("lock:\t1: -> FLOCK  ADVISORY  WRITE 12 08:03:7 0 EOF");
  ASSERT_TRUE(waiting);
  EXPECT_TRUE(waiting->waiting);
  auto posix = parse_fdinfo_lock("lock:\t1: POSIX  ADVISORY  WRITE 12 08:03:7 0 EOF");
  ASSERT_TRUE(posix);
  EXPECT_FALSE(posix->flock);
}

TEST(FdinfoLock, RejectsWhatIsNotALockLine) {
  for (const char* line : {"pos:\t0", "lock:", "lock:\t1: FLOCK  ADVISORY  WRITE 12",
                           "lock:\tx: FLOCK  ADVISORY  WRITE 1 08:03:7 0 EOF",
                           "lock:\t1: FLOCK  ADVISORY  BOTH 1 08:03:7 0 EOF",
                           "lock:\t1: FLOCK  ADVISORY  WRITE 1 08:7 0 EOF",
                           "lock:\t1: FLOCK  ADVISORY  WRITE 1 zz:03:7 0 EOF",
                           "lock:\t1: FLOCK  ADVISORY  WRITE 1 08:03:7x 0 EOF",
                           "lock:\t1: FLOCK  ADVISORY  WRITE 1 08:03: 0 EOF"}) {
    EXPECT_FALSE(parse_fdinfo_lock(line)) << line;
  }
}

TEST(FdinfoLock, OnlyAnExclusiveFlockHeldOnTheInodeCounts) {
  const std::string head = "pos:\t0\nflags:\t02100000\nmnt_id:\t26\nino:\t7\n";
  EXPECT_TRUE(
      fdinfo_shows_exclusive_flock(head + "lock:\t1: FLOCK  ADVISORY  WRITE 1 08:03:7 0 EOF\n", 7));
  EXPECT_TRUE(
      fdinfo_shows_exclusive_flock(head + "lock:\t1: FLOCK  ADVISORY  WRITE 1 08:03:7 0 EOF", 7));
  EXPECT_FALSE(fdinfo_shows_exclusive_flock(head, 7));
  EXPECT_FALSE(
      fdinfo_shows_exclusive_flock(head + "lock:\t1: FLOCK  ADVISORY  READ 1 08:03:7 0 EOF\n", 7));
  EXPECT_FALSE(
      fdinfo_shows_exclusive_flock(head + "lock:\t1: POSIX  ADVISORY  WRITE 1 08:03:7 0 EOF\n", 7));
  EXPECT_FALSE(fdinfo_shows_exclusive_flock(
      head + "lock:\t1: -> FLOCK  ADVISORY  WRITE 1 08:03:7 0 EOF\n", 7));
  EXPECT_FALSE(
      fdinfo_shows_exclusive_flock(head + "lock:\t1: FLOCK  ADVISORY  WRITE 1 08:03:8 0 EOF\n", 7));
}

TEST(LockTruthMessage, NamesOneOrManyHolders) {
  LockTruth exited{LockTruth::Kind::kNamedExited, {8, 9}, std::nullopt};
  EXPECT_EQ(
      lock_truth_message("/run/x.pid", 7, exited),
      "PID 7 has exited, but PIDs 8, 9 still hold the lock on /run/x.pid (left behind by it)");
  LockTruth reused{LockTruth::Kind::kNamedNotHolder, {8}, std::nullopt};
  EXPECT_EQ(lock_truth_message("/run/x.pid", 7, reused),
            "PID 7 does not hold the lock on /run/x.pid (it is not the daemon), but PID 8 does");
}

// ---- On the fake kernel -----------------------------------------------------------------------

struct Locked {
  dev_t dev = 0;
  ino_t ino = 0;
};

// Process `holder` opens /run/p.pid and takes `operation` on it; the test process (1000) is
// current again afterwards.
Locked lock_as(FakeSyscalls& os, pid_t holder, int operation = LOCK_EX) {
  const pid_t self = os.current_pid();
  os.switch_to(holder);
  const int fd = os.open("/run/p.pid", O_RDONLY | O_CREAT, 0644).value();
  EXPECT_TRUE(os.flock(fd, operation | LOCK_NB));
  const struct stat st = os.fstat(fd).value();
  os.switch_to(self);
  return {st.st_dev, st.st_ino};
}

pid_t fork_of(FakeSyscalls& os, pid_t parent) {
  const pid_t self = os.current_pid();
  os.switch_to(parent);
  os.script_fork(ForkAs::kParent);
  const pid_t child = os.fork().value();
  os.switch_to(self);
  return child;
}

TEST(ProvesLockHolder, TheProcessWhoseDescriptorShowsTheLockHoldsIt) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999);
  const pid_t child = fork_of(os, 999);  // inherits the open file description, and the lock
  EXPECT_EQ(proves_lock_holder(os, 999, file.dev, file.ino), true);
  EXPECT_EQ(proves_lock_holder(os, child, file.dev, file.ino), true);
  EXPECT_EQ(proves_lock_holder(os, 1000, file.dev, file.ino), false);
  EXPECT_EQ(proves_lock_holder(os, 4242, file.dev, file.ino), false) << "no such process";
  EXPECT_EQ(proves_lock_holder(os, 0, file.dev, file.ino), false);
  EXPECT_EQ(proves_lock_holder(os, 999, file.dev, file.ino + 1), false) << "another file";
  // The process that took the lock is gone; the child that inherited it still holds it.
  os.end_process(999, 0);
  EXPECT_EQ(proves_lock_holder(os, 999, file.dev, file.ino), false);
  EXPECT_EQ(proves_lock_holder(os, child, file.dev, file.ino), true);
}

TEST(ProvesLockHolder, AnOpenDescriptorWithoutTheLockOrWithASharedOneIsNotProof) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999, LOCK_SH);
  EXPECT_EQ(proves_lock_holder(os, 999, file.dev, file.ino), false);
  const int plain = os.open("/run/p.pid", O_RDONLY, 0).value();
  (void)plain;
  EXPECT_EQ(proves_lock_holder(os, 1000, file.dev, file.ino), false);
}

TEST(ProvesLockHolder, AnotherUsersProcessCannotBeExaminedWithoutPrivilege) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999);
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  auto proven = proves_lock_holder(os, 999, file.dev, file.ino);
  ASSERT_FALSE(proven);
  EXPECT_EQ(to_string(proven.error()), "open(/proc/999/fd): Permission denied (EACCES)");
}

TEST(ProvesLockHolder, EachFailingCallIsAnErrorNotAVerdict) {
  struct Case {
    const char* call;
    int nth;
    const char* says;
  };
  for (const Case c : {Case{"open", 1, "open(/proc/999/fd): Input/output error (EIO)"},
                       Case{"getdents64", 1, "getdents64(/proc/999/fd): Input/output error (EIO)"},
                       Case{"stat", 1, "stat(/proc/999/fd/0): Input/output error (EIO)"},
                       Case{"open", 2, "open(/proc/999/fdinfo/0): Input/output error (EIO)"},
                       Case{"read", 1, "read(/proc/999/fdinfo/0): Input/output error (EIO)"}}) {
    FakeSyscalls os;
    const Locked file = lock_as(os, 999);
    os.clear_transcript();
    os.fail_nth(c.call, c.nth, EIO);
    auto proven = proves_lock_holder(os, 999, file.dev, file.ino);
    ASSERT_FALSE(proven) << c.call;
    EXPECT_EQ(to_string(proven.error()), c.says);
    EXPECT_EQ(os.open_fds(1000), std::vector<int>{}) << c.call << ": nothing left open";
  }
}

TEST(FindLockHolders, ListsEveryProcessHoldingTheLock) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999);
  const pid_t child = fork_of(os, 999);
  const pid_t grandchild = fork_of(os, child);
  auto holders = find_lock_holders(os, file.dev, file.ino);
  ASSERT_TRUE(holders);
  EXPECT_THAT(holders->pids, ElementsAre(999, child, grandchild));
  EXPECT_EQ(holders->unreadable, 0U);
}

TEST(FindLockHolders, SkipsWhatItMayNotExamineAndSaysHowMany) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999);
  os.switch_to(999);
  os.script_fork(ForkAs::kParent);
  const pid_t nobody = os.fork().value();
  os.switch_to(nobody);
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  // Changing ids made it undumpable, and so closed to other users, as on Linux; an exec (or
  // this) opens it again.
  ASSERT_TRUE(os.prctl(PR_SET_DUMPABLE, 1));
  os.switch_to(1000);
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  auto holders = find_lock_holders(os, file.dev, file.ino);
  ASSERT_TRUE(holders);
  EXPECT_THAT(holders->pids, ElementsAre(nobody));
  EXPECT_GE(holders->unreadable, 2U) << "init and the shell, root's";
}

TEST(FindLockHolders, AnUnreadableProcIsAnError) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999);
  for (const char* call : {"open", "getdents64"}) {
    os.clear_transcript();
    os.fail_nth(call, 1, EMFILE);
    auto holders = find_lock_holders(os, file.dev, file.ino);
    ASSERT_FALSE(holders);
    EXPECT_EQ(to_string(holders.error()),
              fmt::format("{}(/proc): Too many open files (EMFILE)", call));
    os.clear_faults();
  }
}

TEST(JudgeLock, SaysWhetherTheNamedPidHoldsItHasExitedOrIsSomeoneElse) {
  FakeSyscalls os;
  const Locked file = lock_as(os, 999);
  EXPECT_EQ(judge_lock(os, 999, file.dev, file.ino).kind, LockTruth::Kind::kNamedHolds);
  const LockTruth reused = judge_lock(os, 1, file.dev, file.ino);
  EXPECT_EQ(reused.kind, LockTruth::Kind::kNamedNotHolder);
  EXPECT_THAT(reused.holders, ElementsAre(999));
  const pid_t child = fork_of(os, 999);
  os.end_process(999, 0);
  const LockTruth exited = judge_lock(os, 999, file.dev, file.ino);
  EXPECT_EQ(exited.kind, LockTruth::Kind::kNamedExited);
  EXPECT_THAT(exited.holders, ElementsAre(child));
  os.end_process(child, 0);
  const LockTruth nobody = judge_lock(os, 999, file.dev, file.ino);
  EXPECT_EQ(nobody.kind, LockTruth::Kind::kUnknown);
  EXPECT_FALSE(nobody.error);
  EXPECT_THAT(nobody.holders, IsEmpty());
}

// ---- The fake against the real kernel ---------------------------------------------------------

// What this process's fdinfo says about a file it locked through one descriptor and opened
// again through another, as far as the proof reads it.
struct Seen {
  std::vector<std::string> lock_lines;  // the locked descriptor's, with dev and ino checked
  std::string flags_line;
  std::string pos_line;
  bool other_has_lock_line = true;
  bool holder_proven = false;
  bool proven_after_unlock = true;
  bool shared_proven = true;

  bool operator==(const Seen&) const = default;
};

std::string fdinfo_of(sys::Syscalls& os, int fd) {
  const int info = os.open(fmt::format("/proc/self/fdinfo/{}", fd).c_str(), O_RDONLY, 0).value();
  std::string text(4096, '\0');
  const std::size_t n = os.read(info, text.data(), text.size()).value();
  (void)os.close(info);
  text.resize(n);
  return text;
}

std::string line_starting(const std::string& text, const std::string& key) {
  const std::size_t at = text.find("\n" + key);
  if (at == std::string::npos) return text.starts_with(key) ? text.substr(0, text.find('\n')) : "";
  return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

Seen look(sys::Syscalls& os, const std::string& path) {
  Seen seen;
  const int fd = os.open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644).value();
  EXPECT_TRUE(os.write(fd, "12345\n", 6));
  const struct stat st = os.fstat(fd).value();
  EXPECT_TRUE(os.flock(fd, LOCK_EX | LOCK_NB));
  const int other = os.open(path.c_str(), O_RDONLY | O_NONBLOCK, 0).value();
  const std::string info = fdinfo_of(os, fd);
  for (std::size_t at = 0; (at = info.find("lock:", at)) != std::string::npos; ++at) {
    const std::string line = info.substr(at, info.find('\n', at) - at);
    const auto lock = parse_fdinfo_lock(line);
    const bool same_file = lock && lock->dev_major == major(st.st_dev) &&
                           lock->dev_minor == minor(st.st_dev) && lock->ino == st.st_ino;
    seen.lock_lines.push_back(fmt::format("flock={} exclusive={} waiting={} same_file={}",
                                          lock && lock->flock, lock && lock->exclusive,
                                          lock && lock->waiting, same_file));
  }
  seen.flags_line = line_starting(info, "flags:");
  seen.pos_line = line_starting(info, "pos:");
  seen.other_has_lock_line = fdinfo_of(os, other).find("lock:") != std::string::npos;
  seen.holder_proven = proves_lock_holder(os, os.getpid(), st.st_dev, st.st_ino).value_or(false);
  EXPECT_TRUE(os.flock(fd, LOCK_UN));
  seen.proven_after_unlock =
      proves_lock_holder(os, os.getpid(), st.st_dev, st.st_ino).value_or(true);
  EXPECT_TRUE(os.flock(other, LOCK_SH | LOCK_NB));
  seen.shared_proven = proves_lock_holder(os, os.getpid(), st.st_dev, st.st_ino).value_or(true);
  (void)os.close(other);
  (void)os.close(fd);
  return seen;
}

TEST(DifferentialFdinfo, TheFakesLockLinesReadAsLinuxs) {
  FakeSyscalls fake;
  const Seen simulated = look(fake, "/tmp/p.pid");

  char dir[] = "/tmp/daemonkit-fdinfo-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  sys::RealSyscalls real;
  const std::string path = std::string(dir) + "/p.pid";
  const Seen actual = look(real, path);
  unlink(path.c_str());
  rmdir(dir);

  EXPECT_THAT(actual.lock_lines,
              ElementsAre("flock=true exclusive=true waiting=false same_file=true"));
  EXPECT_EQ(actual.flags_line, "flags:\t02100002");
  EXPECT_EQ(actual.pos_line, "pos:\t6");
  EXPECT_TRUE(actual.holder_proven);
  EXPECT_FALSE(actual.proven_after_unlock);
  EXPECT_FALSE(actual.shared_proven);
  EXPECT_FALSE(actual.other_has_lock_line);
  EXPECT_EQ(simulated.lock_lines, actual.lock_lines);
  EXPECT_EQ(simulated.flags_line, actual.flags_line);
  EXPECT_EQ(simulated.pos_line, actual.pos_line);
  EXPECT_EQ(simulated, actual);
}

// The real kernel's /proc, scanned whole: this process is found holding the lock.
TEST(FindLockHoldersOnLinux, FindsThisProcess) {
  char dir[] = "/tmp/daemonkit-holders-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  sys::RealSyscalls os;
  const std::string path = std::string(dir) + "/p.pid";
  const int fd = os.open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644).value();
  ASSERT_TRUE(os.flock(fd, LOCK_EX | LOCK_NB));
  const struct stat st = os.fstat(fd).value();
  auto holders = find_lock_holders(os, st.st_dev, st.st_ino);
  (void)os.close(fd);
  unlink(path.c_str());
  rmdir(dir);
  ASSERT_TRUE(holders);
  EXPECT_THAT(holders->pids, ElementsAre(getpid()));
}

}  // namespace
}  // namespace daemonkit::core
