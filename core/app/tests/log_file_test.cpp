// LogFile on the fake kernel: sizes and archive names after rotations, the cap, modes, planted
// links, SIGUSR1 and SIGHUP between two writes of a burst, a full disk and its recovery.
#include "daemonkit/core/app/log_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "daemonkit/core/app/log_signals.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/signal_routing.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "log_test_support.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::HasSubstr;

constexpr const char* kPath = "/var/log/app/app.log";
constexpr uid_t kNobody = 65534;

// "line 07 ....\n": 25 bytes each, so a file of rotate_length 100 holds exactly four.
LogFileOptions options(void (*set)(LogFileOptions&)) {
  LogFileOptions o;
  set(o);
  return o;
}

std::string numbered(int n) {
  std::string line = fmt::format("line {:02} ", n);
  line.resize(24, '.');
  return line + "\n";
}

std::string numbered(int from, int to) {
  std::string lines;
  for (int n = from; n <= to; ++n) lines += numbered(n);
  return lines;
}

struct World {
  FakeSyscalls os;
  World() {
    testing_support::set_noon(os);
    os.make_dir("/var/log/app", 0755);
    os.write_file("/etc/shadow", "root:secret\n", 0640);
  }
  std::unique_ptr<LogFile> open(LogFileOptions options = {}) {
    if (!options.daemon_uid) options.daemon_uid = kNobody;
    auto file = LogFile::open(os, kPath, options);
    EXPECT_TRUE(file) << (file ? "" : file.error().message);
    return file ? std::move(*file) : nullptr;
  }
  std::string contents(const std::string& path) { return os.read_file(path).value_or("<none>"); }
  bool exists(const std::string& path) { return os.stat_path(path).has_value(); }
  mode_t mode(const std::string& path) { return os.stat_path(path)->st_mode & 07777; }
  std::size_t calls(const std::string& name) {
    const auto& t = os.transcript();
    return static_cast<std::size_t>(std::count_if(
        t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
  }
};

// ---- Opening --------------------------------------------------------------------------------

TEST(LogFile, NewFileIsCreated0640AndAnOldOneIsAppendedToWithItsMode) {
  World w;
  {
    auto log = w.open();
    log->emit(LogLevel::kInfo, "-", "first");
    EXPECT_EQ(w.mode(kPath), 0640u);
    EXPECT_EQ(w.os.stat_path(kPath)->st_uid, 0u);
  }
  ASSERT_TRUE(w.os.chmod(kPath, 0600));
  auto log = w.open();
  EXPECT_EQ(log->size(), 35u);
  log->emit(LogLevel::kInfo, "stdout#info", "second");
  EXPECT_EQ(w.contents(kPath),
            "2026-12-02T11:00:00+0000 [-] first\n"
            "2026-12-02T11:00:00+0000 [stdout#info] second\n");
  EXPECT_EQ(w.mode(kPath), 0600u);
  // The descriptor is close-on-exec (a spawned child must not inherit the log) and the open
  // never follows a final symbolic link.
  EXPECT_THAT(w.os.transcript().back().name, "write");
  const auto& t = w.os.transcript();
  auto open = std::find_if(t.begin(), t.end(), [](const auto& r) { return r.name == "open"; });
  ASSERT_NE(open, t.end());
  EXPECT_THAT(open->args[1], HasSubstr("O_NOFOLLOW"));
  EXPECT_THAT(open->args[1], HasSubstr("O_CLOEXEC"));
}

TEST(LogFile, TheModeIsExactWhateverTheUmask) {
  World w;
  w.os.umask(077);
  auto log = w.open(options([](LogFileOptions& o) { o.mode = 0664; }));
  EXPECT_EQ(w.mode(kPath), 0664u);
}

TEST(LogFile, FailedFchmodFailsTheOpen) {
  World w;
  w.os.fail_nth("fchmod", 1, EROFS);
  auto log = LogFile::open(w.os, kPath, {});
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message, "fchmod(/var/log/app/app.log): Read-only file system (EROFS)");
}

TEST(LogFile, SymlinkPlantedAtThePathIsRefusedAndNotFollowed) {
  World w;
  w.os.make_symlink("/etc/shadow", kPath);
  auto log = LogFile::open(w.os, kPath, {.daemon_uid = kNobody});
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message,
            "Log file /var/log/app/app.log is a symbolic link; refused (never followed)");
  EXPECT_EQ(w.contents("/etc/shadow"), "root:secret\n");
  EXPECT_EQ(w.mode("/etc/shadow"), 0640u);
}

TEST(LogFile, HardLinkOrAStrangersFileAtThePathIsRefused) {
  {
    World w;
    w.os.make_hard_link("/etc/shadow", kPath);
    auto log = LogFile::open(w.os, kPath, {.daemon_uid = kNobody});
    ASSERT_FALSE(log);
    EXPECT_EQ(log.error().message,
              "Log file /var/log/app/app.log has 2 hard links; refused (must have exactly 1)");
  }
  World w;
  w.os.write_file(kPath, "", 0644, 1234, 1234);
  auto log = LogFile::open(w.os, kPath, {.daemon_uid = kNobody});
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message,
            "Log file /var/log/app/app.log is owned by uid 1234; refused (must be root's or uid "
            "65534's)");
  // The daemon's own file is its own.
  EXPECT_TRUE(LogFile::open(w.os, kPath, {.daemon_uid = 1234}));
}

TEST(LogFile, OpenFailureNamesThePath) {
  World w;
  auto log = LogFile::open(w.os, "/var/log/missing/app.log", {});
  ASSERT_FALSE(log);
  EXPECT_EQ(log.error().message,
            "open(/var/log/missing/app.log): No such file or directory (ENOENT)");
  EXPECT_EQ(log.error().error_number(), ENOENT);
}

// ---- Rotation by size -----------------------------------------------------------------------

TEST(LogFile, RotatesBeforeTheLineThatWouldPassTheLengthAndShiftsArchives) {
  World w;
  auto log = w.open(options([](LogFileOptions& o) {
    o.rotate_length = 100;
    o.max_archives = 0;
  }));
  for (int n = 1; n <= 14; ++n) log->write_lines(numbered(n));
  EXPECT_EQ(w.contents(kPath), numbered(13, 14));
  EXPECT_EQ(w.contents(std::string(kPath) + ".1"), numbered(9, 12));
  EXPECT_EQ(w.contents(std::string(kPath) + ".2"), numbered(5, 8));
  EXPECT_EQ(w.contents(std::string(kPath) + ".3"), numbered(1, 4));
  EXPECT_FALSE(w.exists(std::string(kPath) + ".4"));
  EXPECT_EQ(log->size(), 50u);
  // Every archive is exactly the length: no file passed it, no line was split.
  for (const char* suffix : {".1", ".2", ".3"}) {
    EXPECT_EQ(w.os.stat_path(std::string(kPath) + suffix)->st_size, 100);
  }
}

TEST(LogFile, CapKeepsTheNewestArchivesAndDeletesTheOldest) {
  World w;
  auto log = w.open(options([](LogFileOptions& o) {
    o.rotate_length = 100;
    o.max_archives = 2;
  }));
  log->write_lines(numbered(1, 22));  // one call, many lines: rotation still goes between lines
  EXPECT_EQ(w.contents(kPath), numbered(21, 22));
  EXPECT_EQ(w.contents(std::string(kPath) + ".1"), numbered(17, 20));
  EXPECT_EQ(w.contents(std::string(kPath) + ".2"), numbered(13, 16));
  EXPECT_FALSE(w.exists(std::string(kPath) + ".3"));
}

TEST(LogFile, ALineLongerThanTheLengthGoesWholeIntoAFileOfItsOwn) {
  World w;
  auto log = w.open(options([](LogFileOptions& o) { o.rotate_length = 30; }));
  log->write_lines("short\n");
  const std::string long_line(50, 'x');
  log->write_lines(long_line);
  log->write_lines("after\n");
  EXPECT_EQ(w.contents(std::string(kPath) + ".2"), "short\n");
  EXPECT_EQ(w.contents(std::string(kPath) + ".1"), long_line + "\n");
  EXPECT_EQ(w.contents(kPath), "after\n");
}

TEST(LogFile, ZeroLengthNeverRotatesBySize) {
  World w;
  auto log = w.open(options([](LogFileOptions& o) { o.rotate_length = 0; }));
  log->write_lines(numbered(1, 100));
  EXPECT_FALSE(w.exists(std::string(kPath) + ".1"));
  EXPECT_EQ(log->size(), 2500u);
}

// ---- Modes of archives and new files --------------------------------------------------------

TEST(LogFile, ArchivesKeepTheModeAndTheNewFileTakesTheOldOnes) {
  World w;
  w.os.write_file(kPath, "", 0604, 0, 0);
  auto log = w.open(options([](LogFileOptions& o) { o.rotate_length = 100; }));
  log->write_lines(numbered(1, 9));
  EXPECT_EQ(w.mode(std::string(kPath) + ".2"), 0604u);
  EXPECT_EQ(w.mode(std::string(kPath) + ".1"), 0604u);
  EXPECT_EQ(w.mode(kPath), 0604u);
  // Created by root before privileges were shed: root's, as the first file was.
  EXPECT_EQ(w.os.stat_path(kPath)->st_uid, 0u);
}

// twistd's new live file is 0600 after the first SIGUSR1 while its archive is 0644.
TEST(LogFile, TheDaemonsUmaskDoesNotChangeTheFilesRotationCreates) {
  World w;
  auto log = w.open(options([](LogFileOptions& o) { o.rotate_length = 100; }));
  log->write_lines(numbered(1, 4));
  w.os.umask(077);  // daemonize's default, after the log was opened in the launching process
  ASSERT_TRUE(log->rotate());
  EXPECT_EQ(w.mode(std::string(kPath) + ".1"), 0640u);
  EXPECT_EQ(w.mode(kPath), 0640u);
}

// ---- Rotation and reopen on demand ----------------------------------------------------------

TEST(LogFile, SymlinkPlantedAfterTheRenameIsRefusedAndLinesGoOnIntoTheArchive) {
  World w;
  auto log = w.open();
  log->write_lines("before\n");
  // The daemon's user owns the directory and races the rotation: a link appears at PATH
  // between the rename and the new open.
  w.os.before_each_call([&](std::string_view name, pid_t) {
    if (name == "open" && !w.exists(kPath)) w.os.make_symlink("/etc/shadow", kPath);
  });
  auto rotated = log->rotate();
  w.os.before_each_call({});
  ASSERT_FALSE(rotated);
  EXPECT_EQ(rotated.error().message,
            "Log file /var/log/app/app.log is a symbolic link; refused (never followed)");
  log->write_lines("after\n");
  EXPECT_EQ(w.contents("/etc/shadow"), "root:secret\n");
  EXPECT_EQ(w.contents(std::string(kPath) + ".1"),
            "before\n"
            "2026-12-02T11:00:00+0000 [-] Log file /var/log/app/app.log not rotated: Log file "
            "/var/log/app/app.log is a symbolic link; refused (never followed)\n"
            "after\n");
}

// Twisted #5296: the log was opened by root, the daemon runs as nobody and may not rename in
// root's directory.
TEST(LogFile, FailedRenameIsLoggedAndWritingGoesOnInTheSameFile) {
  World w;
  auto log = w.open(options([](LogFileOptions& o) { o.rotate_length = 100; }));
  ASSERT_TRUE(w.os.setresuid(kNobody, kNobody, kNobody));
  const std::string failure =
      "2026-12-02T11:00:00+0000 [-] Log file /var/log/app/app.log not rotated: "
      "rename(/var/log/app/app.log): Permission denied (EACCES)\n";
  log->write_lines(numbered(1, 6));
  EXPECT_EQ(w.contents(kPath), numbered(1, 4) + failure + numbered(5, 6));
  // Tried once, not for every line past the length; again after another rotate_length bytes
  // (counted after the failure's own line).
  log->write_lines(numbered(7, 9));
  EXPECT_EQ(w.contents(kPath),
            numbered(1, 4) + failure + numbered(5, 8) + failure + numbered(9, 9));
  EXPECT_FALSE(w.exists(std::string(kPath) + ".1"));
}

TEST(LogFile, ReopenFollowsLogrotateToTheNewFileAndKeepsTheOldOneOnFailure) {
  World w;
  auto log = w.open();
  log->write_lines("one\n");
  ASSERT_TRUE(w.os.rename(kPath, "/var/log/app/app.log-20261202"));  // logrotate's move
  log->write_lines("two\n");                                         // still the old file
  w.os.fail_nth("open", 2, EMFILE);                                  // the first was LogFile::open
  auto failed = log->reopen();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message, "open(/var/log/app/app.log): Too many open files (EMFILE)");
  log->write_lines("three\n");
  ASSERT_TRUE(log->reopen());
  log->write_lines("four\n");
  EXPECT_EQ(w.contents("/var/log/app/app.log-20261202"),
            "one\ntwo\n"
            "2026-12-02T11:00:00+0000 [-] Log file /var/log/app/app.log not reopened: "
            "open(/var/log/app/app.log): Too many open files (EMFILE)\n"
            "three\n");
  EXPECT_EQ(w.contents(kPath), "four\n");
  EXPECT_EQ(w.mode(kPath), 0640u);
}

// The signals come through the reactor: the handler only sets a bit, and the loop rotates or
// reopens on its next turn, between two whole lines, whatever was being written.
struct LoopWorld : World {
  std::unique_ptr<Reactor> reactor;
  LoopWorld() {
    auto created = Reactor::create(os);
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }
  void deliver(int sig) {
    struct sigaction current {};
    ASSERT_TRUE(os.sigaction(sig, nullptr, &current));
    ASSERT_EQ(current.sa_handler, &SignalRouting::handle) << "signal " << sig << " not routed";
    current.sa_handler(sig);
  }
};

TEST(LogFile, SigusrOneAndSighupBetweenTwoWritesOfABurstSplitNoLine) {
  LoopWorld w;
  auto log = w.open();
  route_log_signals(*w.reactor, *log);
  w.reactor->call_when_running([&] {
    log->write_lines(numbered(1, 2));
    w.deliver(SIGUSR1);                // arrives mid-burst
    log->write_lines(numbered(3, 4));  // the burst goes on into the same file
  });
  w.reactor->call_later(std::chrono::seconds(1), [&] {
    log->write_lines(numbered(5, 6));
    ASSERT_TRUE(w.os.rename(kPath, "/var/log/app/rotated"));
    log->write_lines(numbered(7, 7));
    w.deliver(SIGHUP);
    log->write_lines(numbered(8, 8));
  });
  w.reactor->call_later(std::chrono::seconds(2), [&] {
    log->write_lines(numbered(9, 9));
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(w.contents(std::string(kPath) + ".1"), numbered(1, 4));
  EXPECT_EQ(w.contents("/var/log/app/rotated"), numbered(5, 8));
  EXPECT_EQ(w.contents(kPath), numbered(9, 9));
}

TEST(LogFile, RouteLogSignalsLeavesSighupAloneWhenAsked) {
  LoopWorld w;
  auto log = w.open();
  route_log_signals(*w.reactor, *log, {.reopen_on_sighup = false});
  w.reactor->call_when_running([&] {
    struct sigaction hup {};
    ASSERT_TRUE(w.os.sigaction(SIGHUP, nullptr, &hup));
    EXPECT_EQ(hup.sa_handler, SIG_DFL);
    w.deliver(SIGUSR1);
  });
  w.reactor->call_later(std::chrono::seconds(1), [&] { ASSERT_TRUE(w.reactor->stop()); });
  log->write_lines("x\n");
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(w.contents(std::string(kPath) + ".1"), "x\n");
}

// ---- A full disk ----------------------------------------------------------------------------

bool writes_to(const fake::CallRecord& call, int fd) {
  return call.name == "write" && !call.args.empty() && call.args[0] == std::to_string(fd);
}

TEST(LogFile, FullDiskKeepsABoundedBacklogCountsLossesAndSaysSoWhenSpaceReturns) {
  for (int error : {ENOSPC, EDQUOT, EIO}) {
    SCOPED_TRACE(error);
    World w;
    auto log = w.open(options([](LogFileOptions& o) { o.backlog_limit = 100; }));
    log->write_lines(numbered(1));
    const int fd = log->fd();
    w.os.fail_when(
        "write", [fd](const fake::CallRecord& c) { return writes_to(c, fd); }, error);
    log->write_lines(numbered(2, 9));  // 4 lines fit in 100 bytes; 4 are lost
    EXPECT_EQ(log->backlog_bytes(), 100u);
    EXPECT_EQ(log->lines_lost(), 4u);
    EXPECT_FALSE(log->flush());
    EXPECT_EQ(w.contents(kPath), numbered(1));
    w.os.clear_faults();
    // Space again: the backlog, then where the lost lines were, at once.
    EXPECT_TRUE(log->flush());
    const std::string marker = fmt::format(
        "2026-12-02T11:00:00+0000 [-] 4 log lines lost (write(/var/log/app/"
        "app.log): {} ({}))\n",
        sys::errno_description(error), sys::errno_name(error));
    EXPECT_EQ(w.contents(kPath), numbered(1, 5) + marker);
    log->write_lines(numbered(10));
    EXPECT_EQ(log->backlog_bytes(), 0u);
    EXPECT_EQ(w.contents(kPath), numbered(1, 5) + marker + numbered(10));
  }
}

TEST(LogFile, FlushWritesTheBacklogWithoutANewLine) {
  World w;
  auto log = w.open();
  w.os.fail_nth("write", 1, ENOSPC);
  log->write_lines("waiting\n");
  EXPECT_EQ(w.contents(kPath), "");
  EXPECT_TRUE(log->flush());
  EXPECT_EQ(w.contents(kPath), "waiting\n");
}

// A disk that fills mid-line: write(2) takes part of a line, then says ENOSPC.
class ShortWriteSyscalls : public FakeSyscalls {
 public:
  int fd = -1;
  std::optional<std::size_t> room;  // bytes the disk still takes; unset: unlimited
  sys::Result<std::size_t> write(int f, const void* buf, std::size_t count) override {
    if (f != fd || !room) return FakeSyscalls::write(f, buf, count);
    if (*room == 0) return sys::fail(ENOSPC, "write");
    const std::size_t take = std::min(count, *room);
    *room -= take;
    return FakeSyscalls::write(f, buf, take);
  }
};

TEST(LogFile, RotationAskedWhileALineIsHalfWrittenWaitsForTheLineToBeWhole) {
  ShortWriteSyscalls os;
  testing_support::set_noon(os);
  os.make_dir("/var/log/app", 0755);
  auto opened = LogFile::open(os, kPath, {.daemon_uid = kNobody});
  ASSERT_TRUE(opened);
  auto& log = **opened;
  os.fd = log.fd();
  os.room = 30;
  log.write_lines(numbered(1, 2));  // 25 bytes, then 5 of the second line
  EXPECT_EQ(*os.read_file(kPath), numbered(1) + numbered(2).substr(0, 5));
  ASSERT_TRUE(log.rotate());  // SIGUSR1 now: deferred
  EXPECT_FALSE(os.stat_path(std::string(kPath) + ".1"));
  log.write_lines(numbered(3));
  os.room.reset();  // space again
  ASSERT_TRUE(log.flush());
  EXPECT_EQ(*os.read_file(std::string(kPath) + ".1"), numbered(1, 2));
  EXPECT_EQ(*os.read_file(kPath), numbered(3));
}

}  // namespace
}  // namespace daemonkit::core
