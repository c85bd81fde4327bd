// twistd's line format, its timestamps, and the start-up and shut-down lines.
#include "daemonkit/core/app/log_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/app/log_lifecycle.h"
#include "daemonkit/core/app/log_observer.h"
#include "log_test_support.h"

namespace daemonkit::core {
namespace {

using std::chrono::minutes;
using testing::ElementsAre;
using testing_support::Collector;
using testing_support::Event;
using testing_support::kNoon;

const WallTime kAt{kNoon + std::chrono::milliseconds(999)};

TEST(LogFormat, TimestampIsTwistdsShapeAtTheStatedOffset) {
  EXPECT_EQ(format_log_time(kAt), "2026-12-02T11:00:00+0000");
  EXPECT_EQ(format_log_time(kAt, minutes(60)), "2026-12-02T12:00:00+0100");
  EXPECT_EQ(format_log_time(kAt, minutes(-330)), "2026-12-02T05:30:00-0530");
  // Across midnight and a year's end.
  EXPECT_EQ(format_log_time(WallTime{std::chrono::seconds(1'798'761'599)}, minutes(60)),
            "2027-01-01T00:59:59+0100");
  EXPECT_EQ(format_log_time(WallTime{}), "1970-01-01T00:00:00+0000");
}

TEST(LogFormat, LineCarriesSystemAndTabsContinuationLines) {
  EXPECT_EQ(format_log_line(kAt, "-", "hello"), "2026-12-02T11:00:00+0000 [-] hello\n");
  EXPECT_EQ(format_log_line(kAt, "stderr#error", "Traceback:\n  line 1\n"),
            "2026-12-02T11:00:00+0000 [stderr#error] Traceback:\n\t  line 1\n");
  EXPECT_EQ(format_log_line(kAt, "x", "a\n\nb"), "2026-12-02T11:00:00+0000 [x] a\n\t\n\tb\n");
}

TEST(LogFormat, WallClockIsReadThroughTheSeam) {
  fake::FakeSyscalls os;
  testing_support::set_noon(os);
  EXPECT_EQ(format_log_time(wall_clock_now(os)), "2026-12-02T11:00:00+0000");
  os.fail_nth("clock_gettime", 2, EINVAL);
  EXPECT_EQ(wall_clock_now(os), WallTime{});
}

TEST(LogLifecycle, StartUpAndShutDownLinesAreTwistds) {
  Collector log;
  log_start_up(log, "echod", "1.2", "/usr/sbin/echod");
  log_start_up(log, "bare", "", "");
  log_shut_down(log);
  const std::string s(kLifecycleSystem);
  EXPECT_THAT(log.events,
              ElementsAre(Event{LogLevel::kInfo, s, "echod 1.2 (/usr/sbin/echod) starting up."},
                          Event{LogLevel::kInfo, s, "reactor class: daemonkit::core::Reactor."},
                          Event{LogLevel::kInfo, s, "bare starting up."},
                          Event{LogLevel::kInfo, s, "reactor class: daemonkit::core::Reactor."},
                          Event{LogLevel::kInfo, s, "Server Shut Down."}));
}

TEST(LogObserver, SinkSpeaksAsItsSystemAndLevel) {
  Collector log;
  LogSink sink = log_sink_to(log, "reactor", LogLevel::kWarn);
  log_line(sink, "Main loop terminated.");
  EXPECT_THAT(log.events, ElementsAre(Event{LogLevel::kWarn, "reactor", "Main loop terminated."}));
  EXPECT_EQ(to_string(LogLevel::kCritical), "critical");
}

}  // namespace
}  // namespace daemonkit::core
