// LogFlushService on the fake kernel: a backlog left by a full disk reaches the file once space
// returns, with no new line to carry it; idle ticks make no system call; stop tries once more.
#include "daemonkit/core/app/log_flush_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "log_test_support.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::seconds;
using testing::HasSubstr;

constexpr const char* kPath = "/var/log/app/app.log";

struct Disk {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::unique_ptr<LogFile> log;

  Disk() {
    testing_support::set_noon(os);
    os.make_dir("/var/log/app", 0755);
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
    auto opened = LogFile::open(os, kPath, {.daemon_uid = 65534});
    EXPECT_TRUE(opened);
    if (opened) log = std::move(*opened);
  }
  // Writes to the log file fail with ENOSPC until space().
  void fill() {
    const std::string fd = std::to_string(log->fd());
    os.fail_when(
        "write", [fd](const fake::CallRecord& c) { return !c.args.empty() && c.args[0] == fd; },
        ENOSPC);
  }
  void space() { os.clear_faults(); }
  void pass(seconds how_long) {
    for (auto s = seconds(0); s < how_long; s += seconds(1)) {
      os.clock().advance(seconds(1));
      reactor->run_until_current();
    }
  }
  std::string contents() { return os.read_file(kPath).value_or("<none>"); }
  std::size_t writes() {
    const auto& t = os.transcript();
    return static_cast<std::size_t>(std::count_if(
        t.begin(), t.end(), [](const fake::CallRecord& r) { return r.name == "write"; }));
  }
};

TEST(LogFlushService, ABacklogDrainsOnceSpaceReturnsWithoutANewLine) {
  Disk d;
  LogFlushService flusher(*d.reactor, *d.log);
  ASSERT_THAT(flusher.start(), IsOk());
  d.fill();
  d.log->write_lines("the last words\n");
  EXPECT_EQ(d.contents(), "");
  d.pass(seconds(3));
  EXPECT_EQ(d.contents(), "") << "the disk is still full";
  EXPECT_GT(d.log->backlog_bytes(), 0u);
  d.space();
  d.pass(seconds(1));
  EXPECT_EQ(d.contents(), "the last words\n");
  EXPECT_EQ(d.log->backlog_bytes(), 0u);
}

TEST(LogFlushService, LostLinesAreReportedWithoutANewLine) {
  Disk d;
  auto opened =
      LogFile::open(d.os, "/var/log/app/small.log", {.daemon_uid = 65534, .backlog_limit = 10});
  ASSERT_TRUE(opened);
  LogFile& small = **opened;
  LogFlushService flusher(*d.reactor, small, seconds(5));
  ASSERT_THAT(flusher.start(), IsOk());
  d.os.fail_when(
      "write", [](const fake::CallRecord&) { return true; }, ENOSPC);
  small.write_lines("kept\ndropped\n");
  EXPECT_EQ(small.lines_lost(), 1u);
  d.space();
  d.pass(seconds(5));
  EXPECT_THAT(*d.os.read_file("/var/log/app/small.log"),
              HasSubstr("kept\n2026-12-02T11:00:05+0000 [-] 1 log line lost (write("));
}

TEST(LogFlushService, IdleTicksMakeNoSystemCall) {
  Disk d;
  LogFlushService flusher(*d.reactor, *d.log);
  ASSERT_THAT(flusher.start(), IsOk());
  d.log->write_lines("one\n");
  d.os.clear_transcript();
  d.pass(seconds(10));
  EXPECT_EQ(d.writes(), 0u);
}

TEST(LogFlushService, StopTriesOnceMore) {
  Disk d;
  LogFlushService flusher(*d.reactor, *d.log, seconds(60));
  ASSERT_THAT(flusher.start(), IsOk());
  d.fill();
  d.log->write_lines("at shutdown\n");
  d.space();
  EXPECT_TRUE(flusher.stop().completed());
  EXPECT_EQ(d.contents(), "at shutdown\n");
  EXPECT_THAT(d.reactor->delayed_calls(), testing::IsEmpty());
}

}  // namespace
}  // namespace daemonkit::core
