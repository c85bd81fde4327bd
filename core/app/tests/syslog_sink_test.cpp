// Syslog records on the fake kernel's /dev/log: the bytes, a missing socket, a full one, a
// syslog daemon that restarts.
#include "daemonkit/core/app/syslog_sink.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"
#include "log_test_support.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::ElementsAre;
using testing::IsEmpty;

// A syslog daemon: a datagram socket bound at /dev/log.
struct World {
  FakeSyscalls os;
  int server = -1;
  World() {
    testing_support::set_noon(os);
    os.make_dir("/dev", 0755);
  }
  void start_syslogd() {
    server = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un at{};
    at.sun_family = AF_UNIX;
    std::strcpy(at.sun_path, "/dev/log");
    ASSERT_TRUE(os.bind(server, reinterpret_cast<sockaddr*>(&at), sizeof at));
  }
  void stop_syslogd() {
    ASSERT_TRUE(os.close(server));
    ASSERT_TRUE(os.unlink("/dev/log"));
  }
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[16384];
    while (auto n = os.recvfrom(server, buf, sizeof buf, 0, nullptr, nullptr)) {
      out.emplace_back(buf, *n);
    }
    return out;
  }
  std::size_t calls(const std::string& name) {
    const auto& t = os.transcript();
    return static_cast<std::size_t>(std::count_if(
        t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
  }
};

SyslogOptions echod() {
  SyslogOptions options;
  options.ident = "echod";
  options.facility = LOG_DAEMON;
  return options;
}

TEST(SyslogSink, RecordsAreRfc3164WithIdentPidFacilityAndSeverity) {
  World w;
  w.start_syslogd();
  SyslogSink sink(w.os, echod());
  sink.emit(LogLevel::kInfo, "-", "echod 1.0 (/usr/sbin/echod) starting up.");
  sink.emit(LogLevel::kError, "stderr#error", "Traceback:\n  boom\n");
  sink.emit(LogLevel::kInfo, "-", "");  // nothing to say, nothing sent
  EXPECT_THAT(w.received(),
              ElementsAre("<30>Dec  2 11:00:00 echod[1000]: [-] echod 1.0 (/usr/sbin/echod) "
                          "starting up.",
                          "<27>Dec  2 11:00:00 echod[1000]: [stderr#error] Traceback:",
                          "<27>Dec  2 11:00:00 echod[1000]: [stderr#error] \t  boom"));
  EXPECT_EQ(sink.dropped(), 0u);
  // Never blocks: every send says MSG_DONTWAIT.
  for (const auto& call : w.os.transcript()) {
    if (call.name == "sendto") {
      EXPECT_THAT(call.args[3], testing::HasSubstr("MSG_DONTWAIT"));
    }
  }
}

TEST(SyslogSink, RecordShapeWithoutPidAtAnOffsetAndCutAtTheLimit) {
  SyslogOptions options;
  options.ident = "demo";
  options.include_pid = false;
  options.utc_offset = std::chrono::minutes(-660);
  options.max_record = 39;
  const WallTime noon{testing_support::kNoon};
  EXPECT_EQ(syslog_record(options, LOG_WARNING, noon, 7, "-", "short"),
            "<12>Dec  2 00:00:00 demo: [-] short");
  // 39 bytes would end inside "é" (2 bytes): the cut goes before it.
  EXPECT_EQ(syslog_record(options, LOG_INFO, noon, 7, "-", "abcdefghé"),
            "<14>Dec  2 00:00:00 demo: [-] abcdefgh");
  options.utc_offset = std::chrono::minutes(0);
  EXPECT_EQ(
      syslog_record(options, LOG_DEBUG, WallTime{std::chrono::seconds(1'798'761'599)}, 7, "x", "y"),
      "<15>Dec 31 23:59:59 demo: [x] y");
}

TEST(SyslogSink, MissingSocketDropsAndCountsThenReportsOnceItIsThere) {
  World w;
  SyslogSink sink(w.os, echod());
  sink.emit(LogLevel::kInfo, "-", "one");
  sink.emit(LogLevel::kInfo, "-", "two");
  EXPECT_EQ(sink.dropped(), 2u);
  EXPECT_FALSE(sink.connected());
  EXPECT_EQ(w.calls("connect"), 1u);  // no new connect for every record
  w.start_syslogd();
  sink.emit(LogLevel::kInfo, "-", "three");  // still inside reconnect_delay
  EXPECT_EQ(w.calls("connect"), 1u);
  w.os.clock().advance(std::chrono::seconds(1));
  sink.emit(LogLevel::kInfo, "-", "four");
  EXPECT_TRUE(sink.connected());
  EXPECT_THAT(w.received(),
              ElementsAre("<28>Dec  2 11:00:01 echod[1000]: [-] 3 syslog records dropped "
                          "(connect(/dev/log): No such file or directory (ENOENT))",
                          "<30>Dec  2 11:00:01 echod[1000]: [-] four"));
  EXPECT_EQ(sink.dropped(), 3u);
}

TEST(SyslogSink, FullSyslogDropsWithoutBlockingAndSaysHowMany) {
  World w;
  w.start_syslogd();
  SyslogSink sink(w.os, echod());
  for (int i = 0; i < 15; ++i) sink.emit(LogLevel::kInfo, "-", "burst");
  EXPECT_EQ(w.received().size(), 11u);  // the queue's length; the rest were dropped
  EXPECT_EQ(sink.dropped(), 4u);
  sink.emit(LogLevel::kInfo, "-", "calm again");
  EXPECT_THAT(w.received(),
              ElementsAre("<28>Dec  2 11:00:00 echod[1000]: [-] 4 syslog records dropped "
                          "(sendto(/dev/log): Resource temporarily unavailable (EAGAIN))",
                          "<30>Dec  2 11:00:00 echod[1000]: [-] calm again"));
}

TEST(SyslogSink, ReconnectsWhenTheSyslogDaemonRestarts) {
  World w;
  w.start_syslogd();
  SyslogSink sink(w.os, echod());
  sink.emit(LogLevel::kInfo, "-", "before");
  EXPECT_THAT(w.received(), ElementsAre(testing::EndsWith("[-] before")));
  w.stop_syslogd();
  w.start_syslogd();
  sink.emit(LogLevel::kInfo, "-", "after");
  EXPECT_THAT(w.received(), ElementsAre(testing::EndsWith("[-] after")));
  EXPECT_EQ(sink.dropped(), 0u);
  EXPECT_EQ(w.calls("connect"), 2u);
  // Gone for good: one reconnect per record, then the record is counted.
  w.stop_syslogd();
  sink.emit(LogLevel::kInfo, "-", "lost");
  EXPECT_EQ(sink.dropped(), 1u);
}

TEST(SyslogSink, SocketFailureIsCountedToo) {
  World w;
  w.start_syslogd();
  w.os.fail_nth("socket", 2, EMFILE);  // the first was the syslog daemon's
  SyslogSink sink(w.os, echod());
  sink.emit(LogLevel::kInfo, "-", "x");
  EXPECT_EQ(sink.dropped(), 1u);
  EXPECT_THAT(w.received(), IsEmpty());
}

}  // namespace
}  // namespace daemonkit::core
