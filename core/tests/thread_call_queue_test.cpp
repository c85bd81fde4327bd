// ThreadCallQueue on one thread: FIFO, Twisted's "only the calls queued when the batch began"
// rule, prepared (signal-safe) calls and their coalescing. Several threads: see the reactor's
// real-kernel tests.
#include "daemonkit/core/thread_call_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace daemonkit {
namespace {

using testing::ElementsAre;

TEST(ThreadCallQueue, RunsCallsFifo) {
  ThreadCallQueue queue;
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) queue.push([&ran, i] { ran.push_back(i); });
  EXPECT_EQ(queue.run_batch({}), 5u);
  EXPECT_THAT(ran, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.run_batch({}), 0u);
}

TEST(ThreadCallQueue, CallQueuedByACallRunsInTheNextBatch) {
  ThreadCallQueue queue;
  std::vector<std::string> ran;
  queue.push([&] {
    ran.push_back("first");
    queue.push([&] { ran.push_back("nested"); });
  });
  queue.push([&] { ran.push_back("second"); });
  EXPECT_EQ(queue.run_batch({}), 2u);
  EXPECT_THAT(ran, ElementsAre("first", "second"));
  EXPECT_FALSE(queue.empty());
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_THAT(ran, ElementsAre("first", "second", "nested"));
}

TEST(ThreadCallQueue, FailingCallIsLoggedAndOthersRun) {
  ThreadCallQueue queue;
  std::vector<std::string> lines;
  int ran = 0;
  queue.push([] { throw std::runtime_error("nope"); });
  queue.push([&] { ++ran; });
  queue.run_batch([&](std::string_view l) { lines.emplace_back(l); });
  EXPECT_EQ(ran, 1);
  EXPECT_THAT(lines, ElementsAre("while calling from thread: nope"));
}

TEST(ThreadCallQueue, PreparedCallCoalescesUntilItRuns) {
  ThreadCallQueue queue;
  int ran = 0;
  PreparedCall call([&] { ++ran; });
  EXPECT_TRUE(queue.push(call));
  EXPECT_FALSE(queue.push(call));
  EXPECT_TRUE(call.queued());
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(call.queued());
  EXPECT_TRUE(queue.push(call));  // usable again once it ran
  queue.run_batch({});
  EXPECT_EQ(ran, 2);
}

TEST(ThreadCallQueue, PreparedCallPostedWhileRunningRunsAgainNextBatch) {
  ThreadCallQueue queue;
  int ran = 0;
  PreparedCall* self = nullptr;
  PreparedCall call([&] {
    if (++ran == 1) {
      EXPECT_TRUE(queue.push(*self));
    }
  });
  self = &call;
  queue.push(call);
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_EQ(ran, 2);
}

TEST(ThreadCallQueue, PreparedCallsRunBeforeOrdinaryOnesOfTheSameBatch) {
  ThreadCallQueue queue;
  std::vector<int> ran;
  PreparedCall first([&] { ran.push_back(1); });
  PreparedCall second([&] { ran.push_back(2); });
  queue.push([&] { ran.push_back(3); });
  queue.push(first);
  queue.push([&] { ran.push_back(4); });
  queue.push(second);
  queue.run_batch({});
  EXPECT_THAT(ran, ElementsAre(1, 2, 3, 4));
}

TEST(ThreadCallQueue, DestroyingWithQueuedCallsFreesThem) {
  auto token = std::make_shared<int>(1);
  PreparedCall prepared([] {});
  {
    ThreadCallQueue queue;
    queue.push([token] {});
    queue.push(prepared);
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);  // and ASan sees no leak
  EXPECT_FALSE(prepared.queued());
}

}  // namespace
}  // namespace daemonkit
