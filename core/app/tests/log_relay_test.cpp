// LogRelay: lines said before the log exists reach it when it is attached, in order; beyond
// the bound they are counted, and the count is written; after detaching they are kept again.
#include "daemonkit/core/app/log_relay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

using ::testing::ElementsAre;

struct Recorder : LogObserver {
  std::vector<std::string> lines;
  void emit(LogLevel level, std::string_view system, std::string_view text) override {
    lines.push_back(fmt::format("{}#{} {}", system, to_string(level), text));
  }
};

TEST(LogRelay, KeepsLinesUntilALogIsAttachedThenWritesThemInOrder) {
  LogRelay relay;
  const LogSink sink = relay.sink("-");
  sink("one");
  sink("two");
  Recorder log;
  relay.attach(&log);
  sink("three");
  EXPECT_THAT(log.lines, ElementsAre("-#info one", "-#info two", "-#info three"));
  relay.attach(nullptr);
  sink("four");
  EXPECT_EQ(log.lines.size(), 3u);
  Recorder next;
  relay.attach(&next);
  EXPECT_THAT(next.lines, ElementsAre("-#info four"));
}

TEST(LogRelay, CountsWhatItCannotKeep) {
  LogRelay relay;
  const LogSink sink = relay.sink();
  for (std::size_t i = 0; i < LogRelay::kMaxPending + 5; ++i) sink("x");
  Recorder log;
  relay.attach(&log);
  ASSERT_EQ(log.lines.size(), LogRelay::kMaxPending + 1);
  EXPECT_EQ(log.lines.back(), "-#warn 5 lines said before the log was open were lost");
}

TEST(LogRelay, ASinkThatOutlivesItsRelayDropsWhatItIsTold) {
  LogSink sink;
  {
    LogRelay relay;
    sink = relay.sink();
  }
  sink("nobody hears this");  // must not touch freed memory (ASan would say)
  SUCCEED();
}

}  // namespace
}  // namespace daemonkit::core
