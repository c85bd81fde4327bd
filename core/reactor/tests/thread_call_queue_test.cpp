// ThreadCallQueue: FIFO, Twisted's "only the calls queued when the batch began" rule, the full
// ring, slot reuse and unwinding, prepared calls and their coalescing, a model-based property
// on one thread; and producers on several threads, with a real signal handler pushing too
// (run under ThreadSanitizer by ci/test.sh's tsan stage).
#include "daemonkit/core/reactor/internal/thread_call_queue.h"

#include <pthread.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <cerrno>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace daemonkit::core {
namespace {

using testing::ElementsAre;

TEST(ThreadCallQueue, RunsCallsFifo) {
  ThreadCallQueue queue;
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.try_push([&ran, i] { ran.push_back(i); }));
  EXPECT_TRUE(queue.ready());
  EXPECT_EQ(queue.run_batch({}), 5u);
  EXPECT_THAT(ran, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.ready());
  EXPECT_EQ(queue.run_batch({}), 0u);
}

TEST(ThreadCallQueue, CallQueuedByACallRunsInTheNextBatch) {
  ThreadCallQueue queue;
  std::vector<std::string> ran;
  ASSERT_TRUE(queue.try_push([&] {
    ran.push_back("first");
    EXPECT_TRUE(queue.try_push([&] { ran.push_back("nested"); }));
  }));
  ASSERT_TRUE(queue.try_push([&] { ran.push_back("second"); }));
  EXPECT_EQ(queue.run_batch({}), 2u);
  EXPECT_THAT(ran, ElementsAre("first", "second"));
  EXPECT_TRUE(queue.ready());
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_THAT(ran, ElementsAre("first", "second", "nested"));
}

TEST(ThreadCallQueue, FailingCallIsLoggedAndOthersRun) {
  ThreadCallQueue queue;
  std::vector<std::string> lines;
  int ran = 0;
  ASSERT_TRUE(queue.try_push([] { throw std::runtime_error("nope"); }));
  ASSERT_TRUE(queue.try_push([&] { ++ran; }));
  EXPECT_EQ(queue.run_batch([&](std::string_view l) { lines.emplace_back(l); }), 2u);
  EXPECT_EQ(ran, 1);
  EXPECT_THAT(lines, ElementsAre("while calling from thread: nope"));
}

TEST(ThreadCallQueue, CapacityIsRoundedUpToAPowerOfTwo) {
  EXPECT_EQ(ThreadCallQueue(0).capacity(), 2u);
  EXPECT_EQ(ThreadCallQueue(5).capacity(), 8u);
  EXPECT_EQ(ThreadCallQueue(64).capacity(), 64u);
  EXPECT_EQ(ThreadCallQueue().capacity(), ThreadCallQueue::kDefaultCapacity);
}

TEST(ThreadCallQueue, FullRingRefusesAndLeavesTheCallWithTheCaller) {
  ThreadCallQueue queue(4);
  int ran = 0;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(queue.try_push([&] { ++ran; }));
  auto token = std::make_shared<int>(7);
  auto extra = [&ran, token] { ran += *token; };
  EXPECT_FALSE(queue.try_push(std::move(extra)));
  // Refused before anything was moved: the caller still holds the call and may retry.
  EXPECT_EQ(token.use_count(), 2);
  EXPECT_EQ(queue.run_batch({}), 4u);
  EXPECT_EQ(ran, 4);
  EXPECT_TRUE(queue.try_push(std::move(extra)));
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_EQ(ran, 11);
}

TEST(ThreadCallQueue, FullRingRefusesACallQueuedByACallUntilSlotsAreReleased) {
  ThreadCallQueue queue(2);
  std::vector<bool> pushed;
  ASSERT_TRUE(queue.try_push([&] { pushed.push_back(queue.try_push([] {})); }));
  ASSERT_TRUE(queue.try_push([&] { pushed.push_back(queue.try_push([] {})); }));
  // While the first runs both slots are taken; once it is done, its slot is free again.
  EXPECT_EQ(queue.run_batch({}), 2u);
  EXPECT_THAT(pushed, ElementsAre(false, true));
  EXPECT_EQ(queue.run_batch({}), 1u);
}

TEST(ThreadCallQueue, SlotsAreReusedLapAfterLap) {
  ThreadCallQueue queue(2);
  std::vector<int> ran;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(queue.try_push([&ran, i] { ran.push_back(i); }));
    if (i % 2 == 1) {
      ASSERT_EQ(queue.run_batch({}), 2u);
    }
  }
  ASSERT_EQ(ran.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(ran[static_cast<std::size_t>(i)], i);
}

TEST(ThreadCallQueue, CallThrowingThroughReleasesItsSlotAndKeepsTheRestQueued) {
  ThreadCallQueue queue(4);
  auto token = std::make_shared<int>(1);
  int ran = 0;
  ASSERT_TRUE(queue.try_push([token] { throw 42; }));
  ASSERT_TRUE(queue.try_push([&] { ++ran; }));
  EXPECT_THROW(queue.run_batch({}), int);
  EXPECT_EQ(token.use_count(), 1);  // the call that threw was destroyed
  EXPECT_EQ(ran, 0);
  EXPECT_TRUE(queue.ready());
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_EQ(ran, 1);
  // Every slot is usable again.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(queue.try_push([] {}));
}

TEST(ThreadCallQueue, DestroyingWithQueuedCallsDestroysThemUnrun) {
  auto token = std::make_shared<int>(1);
  bool ran = false;
  PreparedCall prepared([&] { ran = true; });
  {
    ThreadCallQueue queue;
    ASSERT_TRUE(queue.try_push([token, &ran] { ran = true; }));
    queue.push(prepared);
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);  // and ASan sees no leak
  EXPECT_FALSE(ran);
  EXPECT_FALSE(prepared.queued());
}

TEST(ThreadCallQueue, PreparedCallCoalescesUntilItRuns) {
  ThreadCallQueue queue;
  int ran = 0;
  PreparedCall call([&] { ++ran; });
  EXPECT_TRUE(queue.push(call));
  EXPECT_FALSE(queue.push(call));
  EXPECT_TRUE(call.queued());
  EXPECT_TRUE(queue.ready());
  EXPECT_EQ(queue.run_batch({}), 1u);
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(call.queued());
  EXPECT_TRUE(queue.empty());
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

TEST(ThreadCallQueue, PreparedCallIsNotRefusedByAFullRing) {
  ThreadCallQueue queue(2);
  std::vector<int> ran;
  ASSERT_TRUE(queue.try_push([&] { ran.push_back(3); }));
  ASSERT_TRUE(queue.try_push([&] { ran.push_back(4); }));
  ASSERT_FALSE(queue.try_push([] {}));
  PreparedCall first([&] { ran.push_back(1); });
  PreparedCall second([&] { ran.push_back(2); });
  EXPECT_TRUE(queue.push(first));
  EXPECT_TRUE(queue.push(second));
  // Prepared calls run first in a batch, then the ring's.
  EXPECT_EQ(queue.run_batch({}), 4u);
  EXPECT_THAT(ran, ElementsAre(1, 2, 3, 4));
}

// ---- The ring against a model -----------------------------------------------------------

// Every push is recorded as (producer, number). A call may be "nested": when it runs it pushes
// one more call, as a callback calling call_from_thread does.
struct Pushed {
  int producer;
  int number;
  bool nested;
};

RC_GTEST_PROP(ThreadCallQueue, BehavesLikeABoundedFifoWithTwistedsBatchRule, ()) {
  const auto capacity = std::size_t{1} << *rc::gen::inRange(1, 4);
  ThreadCallQueue queue(capacity);
  std::vector<std::pair<int, int>> ran;  // what the queue ran
  std::vector<bool> nested_pushes;       // what nested pushes returned, in order
  std::deque<Pushed> model;              // what the model holds
  std::vector<std::pair<int, int>> model_ran;
  std::vector<bool> model_nested_pushes;
  int numbers[3] = {0, 0, 0};
  int nested_number = 0;

  // The real call for a Pushed; a nested one pushes a child numbered like the model's.
  const auto push_real = [&](Pushed p) {
    return queue.try_push([&ran, &nested_pushes, &queue, &nested_number, p] {
      ran.emplace_back(p.producer, p.number);
      if (p.nested) {
        const int n = 1000 + nested_number++;
        nested_pushes.push_back(queue.try_push([&ran, n] { ran.emplace_back(9, n); }));
      }
    });
  };

  const int steps = *rc::gen::inRange(1, 60);
  int model_nested_number = 0;
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 5);
    if (op < 4) {
      const int producer = op % 3;
      const Pushed p{producer, numbers[producer]++, op == 3};
      const bool ok = push_real(p);
      RC_ASSERT(ok == (model.size() < capacity));
      if (ok) model.push_back(p);
    } else {
      // The model batch: the calls queued now, in order. While call i runs, it and the calls
      // after it (and any it pushed) occupy slots; the ones before it were released.
      const std::size_t n = model.size();
      for (std::size_t i = 0; i < n; ++i) {
        const Pushed p = model.front();
        model.pop_front();
        model_ran.emplace_back(p.producer, p.number);
        if (p.nested) {
          const int child = 1000 + model_nested_number++;
          const bool ok = model.size() + 1 < capacity;
          model_nested_pushes.push_back(ok);
          if (ok) model.push_back(Pushed{9, child, false});
        }
      }
      RC_ASSERT(queue.run_batch({}) == n);
      RC_ASSERT(ran == model_ran);
      RC_ASSERT(nested_pushes == model_nested_pushes);
    }
    RC_ASSERT(queue.empty() == model.empty());
    RC_ASSERT(queue.ready() == !model.empty());
  }
}

// ---- Several threads ----------------------------------------------------------------------

// One thread per entry of `seen`, each pushing `calls` calls that append their number to its
// entry, retrying (after a yield) on a full ring; `done` counts the threads that finished.
std::vector<std::thread> start_producers(ThreadCallQueue& queue,
                                         std::vector<std::vector<int>>& seen, int calls,
                                         std::atomic<int>& done) {
  std::vector<std::thread> producers;
  for (std::size_t t = 0; t < seen.size(); ++t) {
    producers.emplace_back([&queue, &seen, &done, t, calls] {
      for (int i = 0; i < calls; ++i) {
        auto call = [&seen, t, i] { seen[t].push_back(i); };
        while (!queue.try_push(std::move(call))) std::this_thread::yield();
      }
      done.fetch_add(1, std::memory_order_release);
    });
  }
  return producers;
}

// Every producer's calls ran once each, in the order it pushed them.
void expect_each_producer_in_order(const std::vector<std::vector<int>>& seen, int calls) {
  for (const auto& ran : seen) {
    ASSERT_EQ(ran.size(), static_cast<std::size_t>(calls));
    for (int i = 0; i < calls; ++i) ASSERT_EQ(ran[static_cast<std::size_t>(i)], i);
  }
}

TEST(ThreadCallQueue, SeveralProducersKeepTheirOrderAndEveryCallRunsOnce) {
  ThreadCallQueue queue(64);  // small, so producers keep meeting a full ring
  constexpr int kProducers = 3;
  constexpr int kCalls = 20000;
  std::vector<std::vector<int>> seen(kProducers);  // consumer thread only
  std::atomic<int> done{0};
  std::vector<std::thread> producers = start_producers(queue, seen, kCalls, done);
  std::size_t total = 0;
  while (done.load(std::memory_order_acquire) < kProducers || !queue.empty()) {
    total += queue.run_batch({});
  }
  for (auto& p : producers) p.join();
  total += queue.run_batch({});
  EXPECT_EQ(total, std::size_t{kProducers} * kCalls);
  expect_each_producer_in_order(seen, kCalls);
}

// A real signal handler pushing into the queue, interrupting producers in the middle of their
// pushes. The handler finds its queue through a global: the OS gives it nothing else.
std::atomic<ThreadCallQueue*> g_signal_queue{nullptr};
std::atomic<int> g_handler_pushed{0};
std::atomic<int> g_handler_refused{0};
std::atomic<int> g_handler_ran{0};  // touched by the consumer only, atomic for the final read

void push_from_handler(int) {
  ThreadCallQueue* queue = g_signal_queue.load(std::memory_order_acquire);
  if (queue == nullptr) return;
  const int saved_errno = errno;
  if (queue->try_push([] { g_handler_ran.fetch_add(1, std::memory_order_relaxed); })) {
    g_handler_pushed.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_handler_refused.fetch_add(1, std::memory_order_relaxed);
  }
  errno = saved_errno;
}

TEST(ThreadCallQueue, SignalHandlerPushesWhileProducersPush) {
  struct sigaction action {};
  action.sa_handler = push_from_handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &saved), 0);

  ThreadCallQueue queue(256);
  g_handler_pushed = 0;
  g_handler_refused = 0;
  g_handler_ran = 0;
  g_signal_queue.store(&queue, std::memory_order_release);

  constexpr int kProducers = 2;
  constexpr int kCalls = 100000;
  std::vector<std::vector<int>> seen(kProducers);
  std::atomic<int> done{0};
  std::vector<std::thread> producers = start_producers(queue, seen, kCalls, done);
  // Signals aimed at the producers, so the handler interrupts them mid-push.
  std::atomic<bool> stop_signalling{false};
  std::thread signaller([&] {
    while (!stop_signalling.load(std::memory_order_acquire)) {
      for (auto& p : producers) {
        if (done.load(std::memory_order_acquire) < kProducers) {
          (void)pthread_kill(p.native_handle(), SIGUSR1);
        }
      }
      std::this_thread::yield();
    }
  });
  std::size_t total = 0;
  while (done.load(std::memory_order_acquire) < kProducers) total += queue.run_batch({});
  stop_signalling.store(true, std::memory_order_release);
  signaller.join();
  for (auto& p : producers) p.join();
  while (!queue.empty()) total += queue.run_batch({});
  g_signal_queue.store(nullptr, std::memory_order_release);
  ASSERT_EQ(::sigaction(SIGUSR1, &saved, nullptr), 0);

  const int pushed = g_handler_pushed.load();
  EXPECT_GT(pushed, 0) << "no signal arrived while the producers pushed";
  EXPECT_EQ(g_handler_ran.load(), pushed);  // every call the handler queued ran, once
  EXPECT_EQ(total, std::size_t{kProducers} * kCalls + static_cast<std::size_t>(pushed));
  expect_each_producer_in_order(seen, kCalls);
  RecordProperty("handler_pushed", pushed);
  RecordProperty("handler_refused", g_handler_refused.load());
}

}  // namespace
}  // namespace daemonkit::core
