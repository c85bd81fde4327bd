// ThreadPool on real threads: calls run off the caller's thread, threads start lazily and never
// beyond the limit (at least one), the limit can be raised while calls wait, stop() runs what is
// queued before it joins and refuses calls afterwards, and a call that throws is reported without
// taking its thread down. Every wait is bounded, so a broken pool fails instead of hanging.
#include "daemonkit/core/reactor/internal/thread_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace daemonkit::core {
namespace {

using namespace std::chrono_literals;
using testing::ElementsAre;

constexpr auto kPatience = 10s;

// A one-shot gate calls wait on, and a counter the test waits on; both bounded by kPatience.
// Each test declares them before its pool, so the pool's threads are joined before they go.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  // Returns false if the gate did not open in time (the caller then fails, not hangs).
  bool wait() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

class Counter {
 public:
  void add() {
    {
      std::lock_guard lock(mutex_);
      ++count_;
    }
    changed_.notify_all();
  }
  bool wait_for_at_least(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0;
};

// Collects what the pool reports, from whichever thread reports it.
struct Reports {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(std::string)> sink() {
    return [this](std::string line) {
      std::lock_guard lock(mutex);
      lines.push_back(std::move(line));
    };
  }
  std::vector<std::string> taken() {
    std::lock_guard lock(mutex);
    return lines;
  }
};

TEST(ThreadPool, RunsACallOnAThreadOfItsOwn) {
  Reports reports;
  std::optional<std::thread::id> ran_on;
  Counter done;
  ThreadPool pool(reports.sink());
  EXPECT_EQ(pool.threads(), 0u) << "threads start lazily, on the first call";
  ASSERT_TRUE(pool.call([&] {
    ran_on = std::this_thread::get_id();
    done.add();
  }));
  ASSERT_TRUE(done.wait_for_at_least(1));
  pool.stop();
  ASSERT_TRUE(ran_on.has_value());
  EXPECT_NE(*ran_on, std::this_thread::get_id());
  EXPECT_THAT(reports.taken(), testing::IsEmpty());
}

TEST(ThreadPool, StartsAThreadPerWaitingCallUpToTheLimit) {
  Gate gate;
  Counter started;
  Counter finished;
  ThreadPool pool(nullptr, /*max_threads=*/2);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.call([&] {
      started.add();
      EXPECT_TRUE(gate.wait());
      finished.add();
    }));
  }
  // Two calls block their threads; the third waits in the queue instead of getting a thread.
  ASSERT_TRUE(started.wait_for_at_least(2));
  EXPECT_EQ(pool.threads(), 2u);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(started.count(), 2) << "a third call ran while both threads were busy";
  gate.open();
  ASSERT_TRUE(finished.wait_for_at_least(3));
  EXPECT_EQ(pool.threads(), 2u);
}

TEST(ThreadPool, ALimitOfZeroMeansOneThread) {
  Gate gate;
  Counter started;
  ThreadPool pool(nullptr, /*max_threads=*/0);
  ASSERT_TRUE(pool.call([&] {
    started.add();
    EXPECT_TRUE(gate.wait());
  }));
  ASSERT_TRUE(pool.call([&] { started.add(); }));
  ASSERT_TRUE(started.wait_for_at_least(1));
  EXPECT_EQ(pool.threads(), 1u);
  gate.open();
  ASSERT_TRUE(started.wait_for_at_least(2)) << "the queued call never ran on the one thread";
  EXPECT_EQ(pool.threads(), 1u);
}

TEST(ThreadPool, RaisingTheLimitLetsTheNextCallStartAThread) {
  Gate gate;
  Counter started;
  Counter second;
  ThreadPool pool(nullptr, /*max_threads=*/1);
  ASSERT_TRUE(pool.call([&] {
    started.add();
    EXPECT_TRUE(gate.wait());
  }));
  ASSERT_TRUE(started.wait_for_at_least(1));
  pool.set_max_threads(2);
  // This call runs while the first still blocks: it got the second thread.
  ASSERT_TRUE(pool.call([&] { second.add(); }));
  EXPECT_TRUE(second.wait_for_at_least(1));
  EXPECT_EQ(pool.threads(), 2u);
  gate.open();
}

TEST(ThreadPool, LoweringTheLimitStartsNoThreadAndStopsNone) {
  Gate gate;
  Counter started;
  Counter third;
  ThreadPool pool(nullptr, /*max_threads=*/2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.call([&] {
      started.add();
      EXPECT_TRUE(gate.wait());
    }));
  }
  ASSERT_TRUE(started.wait_for_at_least(2));
  pool.set_max_threads(0);
  // Both threads are busy and over the new limit of one: a third call waits for one of them.
  ASSERT_TRUE(pool.call([&] { third.add(); }));
  EXPECT_EQ(pool.threads(), 2u) << "threads already running stay, and no third one starts";
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(third.count(), 0) << "the third call ran while both threads were busy";
  gate.open();
  EXPECT_TRUE(third.wait_for_at_least(1));
  EXPECT_EQ(pool.threads(), 2u);
}

TEST(ThreadPool, StopRunsQueuedCallsInOrderThenJoins) {
  Gate gate;
  std::mutex ran_mutex;
  std::vector<int> ran;
  auto record = [&](int i) {
    std::lock_guard lock(ran_mutex);
    ran.push_back(i);
  };
  ThreadPool pool(nullptr, /*max_threads=*/1);
  ASSERT_TRUE(pool.call([&] {
    EXPECT_TRUE(gate.wait());
    record(0);
  }));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(pool.call([&, i] { record(i); }));
  gate.open();
  pool.stop();
  // stop() returned, so every thread has been joined: what ran is final.
  EXPECT_THAT(ran, ElementsAre(0, 1, 2, 3));
  EXPECT_TRUE(pool.stopped());
  EXPECT_EQ(pool.threads(), 0u);
}

TEST(ThreadPool, RefusesCallsOnceStoppedAndStopsAgainHarmlessly) {
  bool ran = false;
  ThreadPool pool(nullptr);
  EXPECT_FALSE(pool.stopped());
  pool.stop();
  EXPECT_TRUE(pool.stopped());
  EXPECT_FALSE(pool.call([&] { ran = true; }));
  pool.stop();
  EXPECT_TRUE(pool.stopped());
  EXPECT_EQ(pool.threads(), 0u) << "a refused call started a thread";
  EXPECT_FALSE(ran);
}

TEST(ThreadPool, DestructionRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(nullptr, /*max_threads=*/1);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.call([&] { ran.fetch_add(1); }));
  }
  EXPECT_EQ(ran.load(), 5);
}

TEST(ThreadPool, ACallThatThrowsIsReportedAndItsThreadCarriesOn) {
  Reports reports;
  Counter after;
  ThreadPool pool(reports.sink(), /*max_threads=*/1);
  ASSERT_TRUE(pool.call([] { throw std::runtime_error("disk on fire"); }));
  ASSERT_TRUE(pool.call([&] { after.add(); }));
  ASSERT_TRUE(after.wait_for_at_least(1)) << "the thread died with the exception";
  pool.stop();
  EXPECT_THAT(reports.taken(), ElementsAre("Unhandled error in thread pool call: disk on fire"));
  EXPECT_EQ(pool.threads(), 0u);
}

TEST(ThreadPool, ACallThatThrowsWithNoReportSinkIsDropped) {
  Counter after;
  ThreadPool pool(nullptr, /*max_threads=*/1);
  ASSERT_TRUE(pool.call([] { throw std::logic_error("nobody listens"); }));
  ASSERT_TRUE(pool.call([&] { after.add(); }));
  EXPECT_TRUE(after.wait_for_at_least(1)) << "the thread died with the exception";
}

}  // namespace
}  // namespace daemonkit::core
