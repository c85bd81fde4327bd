// The daemon's stdout and stderr captured into the log through a pipe the reactor reads.
#include "daemonkit/core/app/log_capture.h"

#include <fcntl.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "log_test_support.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::ElementsAre;
using testing::IsEmpty;
using testing_support::Collector;
using testing_support::Event;

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  Collector log;
  // The process starts with 0, 1 and 2 closed, so the pipe's own ends land there unless the
  // capture moves them away first.
  World() {
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }
  std::unique_ptr<LogCapture> capture(CapturedStream stream, LogCaptureOptions options = {}) {
    auto made = LogCapture::open(*reactor, os, log, stream, options);
    EXPECT_TRUE(made) << (made ? "" : to_string(made.error()));
    return made ? std::move(*made) : nullptr;
  }
  void print(int fd, std::string_view text) {
    auto n = os.write(fd, text.data(), text.size());
    ASSERT_TRUE(n);
    ASSERT_EQ(*n, text.size());
  }
  void spin(int turns = 3) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }
};

Event out(std::string text) { return Event{LogLevel::kInfo, "stdout#info", std::move(text)}; }
Event err(std::string text) { return Event{LogLevel::kError, "stderr#error", std::move(text)}; }

TEST(LogCapture, LinesOfStdoutAndStderrBecomeTwistdsEvents) {
  World w;
  auto stdout_capture = w.capture(CapturedStream::kStdout);
  auto stderr_capture = w.capture(CapturedStream::kStderr);
  EXPECT_EQ(w.os.describe_fd(w.os.getpid(), 1).substr(0, 5), "pipe:");
  w.print(1, "hello from print\nsecond\n");
  w.print(2, "err line\n");
  w.spin();
  EXPECT_THAT(w.log.events, ElementsAre(out("hello from print"), out("second"), err("err line")));
}

TEST(LogCapture, PartialLineWaitsForItsNewline) {
  World w;
  auto capture = w.capture(CapturedStream::kStdout);
  w.print(1, "partial ");
  w.spin();
  EXPECT_THAT(w.log.events, IsEmpty());
  EXPECT_EQ(capture->pending(), 8u);
  w.print(1, "line\nnext ");
  w.spin();
  EXPECT_THAT(w.log.events, ElementsAre(out("partial line")));
  w.print(1, "one\n");
  w.spin();
  EXPECT_THAT(w.log.events, ElementsAre(out("partial line"), out("next one")));
  EXPECT_EQ(capture->pending(), 0u);
}

TEST(LogCapture, APartialLineIsBoundedByMaxLine) {
  World w;
  auto capture = w.capture(CapturedStream::kStdout, {.max_line = 8});
  w.print(1, "abcdefghijklmnopqrs");
  w.spin();
  EXPECT_THAT(w.log.events, ElementsAre(out("abcdefgh"), out("ijklmnop")));
  EXPECT_EQ(capture->pending(), 3u);
  w.print(1, "t\n");
  w.spin();
  EXPECT_THAT(w.log.events, ElementsAre(out("abcdefgh"), out("ijklmnop"), out("qrst")));
}

TEST(LogCapture, WhatWaitsWhenTheLastWriterClosesIsLoggedNotDropped) {
  World w;
  auto capture = w.capture(CapturedStream::kStderr);
  w.print(2, "no newline at the end");
  ASSERT_TRUE(w.os.close(2));
  w.spin();
  EXPECT_THAT(w.log.events, ElementsAre(err("no newline at the end")));
  EXPECT_FALSE(capture->capturing());
}

TEST(LogCapture, FailuresLeaveTheStreamAsItWas) {
  World w;
  w.os.fail_nth("pipe2", 1, EMFILE);
  auto made = LogCapture::open(*w.reactor, w.os, w.log, CapturedStream::kStdout);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().error_number(), EMFILE);
  w.os.fail_nth("dup2", 1, EBUSY);
  const auto before = w.os.open_fds(w.os.getpid());
  made = LogCapture::open(*w.reactor, w.os, w.log, CapturedStream::kStdout);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().error_number(), EBUSY);
  EXPECT_EQ(w.os.open_fds(w.os.getpid()), before);  // both ends closed again
  w.os.clear_transcript();
  w.os.fail_nth("fcntl", 1, EMFILE);  // moving an end above 2
  made = LogCapture::open(*w.reactor, w.os, w.log, CapturedStream::kStdout);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().error_number(), EMFILE);
  EXPECT_EQ(w.os.open_fds(w.os.getpid()), before);
}

}  // namespace
}  // namespace daemonkit::core
