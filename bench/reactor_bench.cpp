// The reactor's cross-thread path and its timers, against references measured in the same run:
//  * wake-up throughput: one producer thread posts bursts of 10^5 calls, each side the same
//    lambda, until the loop has run them all: call_from_thread vs libuv (a mutex-guarded queue
//    + uv_async_send, which is how a libuv user hands work to the loop) and vs a raw eventfd
//    written per item. The reactor's ring is sized for the burst (BM_Throughput_Reactor), as
//    the other loops' vectors grow to it; BM_Throughput_ReactorDefaultRing keeps the default
//    4096-call ring, so its producer meets kQueueFull, pauses and retries;
//  * ping-pong round trip (median, p99): call_from_thread vs raw eventfd vs uv_async_send, the
//    reply always travelling back on the same raw eventfd so only the outbound path differs;
//  * timers scheduled and fired per second with 10^5 pending: TimerQueue vs a bare
//    std::priority_queue of std::function.
// Method: 5 repetitions of every benchmark in random interleaved order, ratios between the
// medians (override with the usual --benchmark_* flags). The machine these figures come from
// is shared; interleaving spreads other people's load over both sides of each ratio.
// Run: build/bench/reactor_bench   (prints Google Benchmark's table, then the ratios)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "daemonkit/core/reactor/internal/timer_queue.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/real_syscalls.h"

namespace {

using daemonkit::core::Duration;
using daemonkit::core::Reactor;
using daemonkit::core::TimePoint;
using SteadyClock = std::chrono::steady_clock;

constexpr std::int64_t kItems = 100'000;  // per throughput iteration
constexpr int kRounds = 20'000;           // per ping-pong run

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "reactor_bench: %s failed\n", what);
    std::abort();
  }
}

void spin_until(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire)) std::this_thread::yield();
}

// ---- The three loops under test ------------------------------------------------------------

// The daemonkit reactor, running on its own thread.
struct ReactorLoop {
  daemonkit::sys::RealSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::thread thread;

  explicit ReactorLoop(std::size_t capacity = daemonkit::core::ThreadCallQueue::kDefaultCapacity) {
    daemonkit::core::ReactorOptions options;
    options.install_signal_handlers = false;
    options.thread_call_capacity = capacity;
    auto created = Reactor::create(os, std::move(options));
    check(created.has_value(), "Reactor::create");
    reactor = std::move(*created);
    std::atomic<bool> up{false};
    reactor->call_when_running([&] { up.store(true, std::memory_order_release); });
    thread = std::thread([this] { check(reactor->run().has_value(), "Reactor::run"); });
    spin_until(up);
  }
  // The lambda goes into the ring as it is, with no std::function around it. The ring is
  // bounded (the other loops' queues are not): a producer that finds it full waits a little
  // and retries, which call_from_thread allows because a refused call is left untouched. A
  // few short pauses, then yields: pausing longer starved the loop whenever both threads
  // shared a CPU (measured: 4-19M calls/s with 64 pauses of ~1 us before the first yield).
  template <typename F>
  void post(F&& fn) {
    for (int attempt = 0; !reactor->call_from_thread(std::forward<F>(fn)); ++attempt) {
      if (attempt < 4) {
        for (int i = 0; i < 32; ++i) __builtin_ia32_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }
  ~ReactorLoop() {
    // Runs on the loop's own thread while run() is in progress, so it cannot be kNotRunning.
    post([this] { (void)reactor->stop(); });
    thread.join();
  }
};

// libuv: a queue under a mutex, announced with uv_async_send (sends coalesce; the callback
// drains everything queued).
struct UvLoop {
  uv_loop_t loop{};
  uv_async_t async{};
  std::mutex mutex;
  std::vector<std::function<void()>> queue;
  std::vector<std::function<void()>> running;
  bool closing = false;
  std::thread thread;

  UvLoop() {
    check(uv_loop_init(&loop) == 0, "uv_loop_init");
    async.data = this;
    check(uv_async_init(&loop, &async,
                        [](uv_async_t* a) {
                          auto* self = static_cast<UvLoop*>(a->data);
                          {
                            std::lock_guard lock(self->mutex);
                            self->running.swap(self->queue);
                          }
                          for (auto& fn : self->running) fn();
                          self->running.clear();
                          if (self->closing) uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
                        }) == 0,
          "uv_async_init");
    thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
  }
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex);
      queue.push_back(std::move(fn));
    }
    uv_async_send(&async);
  }
  void send() { uv_async_send(&async); }
  ~UvLoop() {
    post([this] { closing = true; });
    thread.join();
    uv_loop_close(&loop);
  }
};

// A raw eventfd written once per item, read by a thread blocked in epoll_wait.
struct EventfdLoop {
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  std::mutex mutex;
  std::vector<std::function<void()>> queue;
  std::vector<std::function<void()>> running;
  std::function<void()> on_wake;  // the ping-pong replies from here, with no queue
  std::atomic<bool> stop{false};
  std::thread thread;

  EventfdLoop() {
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    check(epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) == 0, "epoll_ctl");
    thread = std::thread([this] {
      struct epoll_event out[8];
      while (!stop.load(std::memory_order_acquire)) {
        if (epoll_wait(epfd, out, 8, -1) <= 0) continue;
        std::uint64_t n;
        (void)!read(efd, &n, sizeof n);
        if (on_wake) on_wake();
        {
          std::lock_guard lock(mutex);
          running.swap(queue);
        }
        for (auto& fn : running) fn();
        running.clear();
      }
    });
  }
  void ring() {
    const std::uint64_t one = 1;
    (void)!write(efd, &one, sizeof one);
  }
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex);
      queue.push_back(std::move(fn));
    }
    ring();
  }
  ~EventfdLoop() {
    stop.store(true, std::memory_order_release);
    ring();
    thread.join();
    close(efd);
    close(epfd);
  }
};

// ---- Throughput ----------------------------------------------------------------------------

template <typename Loop, typename... Args>
void throughput(benchmark::State& state, Args... args) {
  Loop loop(args...);
  // The loop thread's counter and the flag the producer waits on get cache lines of their own:
  // on the producer's stack, next to its locals, every call would bounce a line between the
  // two threads (this cost every loop alike, and hid what the queues themselves cost).
  struct alignas(64) Count {
    std::int64_t value = 0;
  };
  struct alignas(64) Done {
    std::atomic<bool> value{false};
  };
  auto count = std::make_unique<Count>();
  auto done = std::make_unique<Done>();
  for (auto _ : state) {
    done->value.store(false, std::memory_order_relaxed);
    count->value = 0;
    Count* c = count.get();
    Done* d = done.get();
    for (std::int64_t i = 0; i < kItems; ++i) {
      loop.post([c, d] {
        if (++c->value == kItems) d->value.store(true, std::memory_order_release);
      });
    }
    spin_until(d->value);
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}

// Like with like: a ring that holds the whole burst, as the other loops' vectors do.
void BM_Throughput_Reactor(benchmark::State& s) {
  throughput<ReactorLoop>(s, static_cast<std::size_t>(kItems));
}
// The default ring (4096 calls): the producer meets kQueueFull and yields during the burst.
void BM_Throughput_ReactorDefaultRing(benchmark::State& s) { throughput<ReactorLoop>(s); }
void BM_Throughput_LibuvAsync(benchmark::State& s) { throughput<UvLoop>(s); }
void BM_Throughput_RawEventfd(benchmark::State& s) { throughput<EventfdLoop>(s); }

// ---- Ping-pong -----------------------------------------------------------------------------

// The reply path: the loop writes this eventfd, the client blocks reading it.
struct Reply {
  int fd = eventfd(0, EFD_CLOEXEC);
  ~Reply() { close(fd); }
  void send() const {
    const std::uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
  }
  void wait() const {
    std::uint64_t n;
    (void)!read(fd, &n, sizeof n);
  }
};

template <typename Ping>
void ping_pong(benchmark::State& state, Ping&& ping, const Reply& reply) {
  std::vector<double> samples;
  samples.reserve(kRounds);
  for (auto _ : state) {
    const auto start = SteadyClock::now();
    ping();
    reply.wait();
    const auto end = SteadyClock::now();
    const double ns = std::chrono::duration<double, std::nano>(end - start).count();
    samples.push_back(ns);
    state.SetIterationTime(ns / 1e9);
  }
  std::sort(samples.begin(), samples.end());
  state.counters["p50_ns"] = samples[samples.size() / 2];
  state.counters["p99_ns"] = samples[samples.size() * 99 / 100];
}

void BM_PingPong_RawEventfd(benchmark::State& state) {
  Reply reply;
  EventfdLoop loop;
  loop.on_wake = [&] { reply.send(); };
  ping_pong(
      state, [&] { loop.ring(); }, reply);
  loop.on_wake = nullptr;
}

void BM_PingPong_Reactor(benchmark::State& state) {
  Reply reply;
  ReactorLoop loop;
  ping_pong(
      state, [&] { loop.post([&] { reply.send(); }); }, reply);
}

void BM_PingPong_LibuvAsync(benchmark::State& state) {
  Reply reply;
  UvLoop loop;
  // A second handle carries the ping, so its callback replies with no queue in the way. It
  // is initialised and closed on the loop's thread, as libuv requires.
  uv_async_t ping{};
  ping.data = &reply;
  std::atomic<bool> ready{false};
  loop.post([&] {
    uv_async_init(&loop.loop, &ping, [](uv_async_t* a) { static_cast<Reply*>(a->data)->send(); });
    ready.store(true, std::memory_order_release);
  });
  spin_until(ready);
  ping_pong(
      state, [&] { uv_async_send(&ping); }, reply);
  std::atomic<bool> closed{false};
  loop.post([&] {
    uv_close(reinterpret_cast<uv_handle_t*>(&ping), nullptr);
    closed.store(true, std::memory_order_release);
  });
  spin_until(closed);
}

// ---- Timers --------------------------------------------------------------------------------

constexpr std::size_t kPendingTimers = 100'000;
constexpr std::int64_t kTimerSpanNs = 1'000'000'000;  // due times spread over one second
constexpr std::int64_t kStepNs = 1'000'000;           // the clock moves 1 ms per pass

// Keeps kPendingTimers pending: every call that fires schedules a new one.
void BM_Timers_TimerQueue(benchmark::State& state) {
  TimePoint now{std::chrono::seconds(1)};
  daemonkit::core::TimerQueue queue([&] { return now; }, {});
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> delay(0, kTimerSpanNs);
  std::int64_t fired = 0;
  std::function<void()> rearm = [&] {
    ++fired;
    queue.call_later(Duration(delay(rng)), rearm);
  };
  for (std::size_t i = 0; i < kPendingTimers; ++i) queue.call_later(Duration(delay(rng)), rearm);
  (void)queue.timeout();
  for (auto _ : state) {
    now += Duration(kStepNs);
    queue.run_due();
  }
  state.SetItemsProcessed(fired);
}

void BM_Timers_PriorityQueue(benchmark::State& state) {
  struct Item {
    std::int64_t due;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Item& o) const { return due > o.due || (due == o.due && seq > o.seq); }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  std::int64_t now = 1'000'000'000;
  std::uint64_t seq = 0;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> delay(0, kTimerSpanNs);
  std::int64_t fired = 0;
  std::function<void()> rearm;
  rearm = [&] {
    ++fired;
    heap.push(Item{now + delay(rng), seq++, rearm});
  };
  for (std::size_t i = 0; i < kPendingTimers; ++i) heap.push(Item{now + delay(rng), seq++, rearm});
  for (auto _ : state) {
    now += kStepNs;
    std::vector<std::function<void()>> due;
    while (!heap.empty() && heap.top().due <= now) {
      due.push_back(heap.top().fn);
      heap.pop();
    }
    for (auto& fn : due) fn();
  }
  state.SetItemsProcessed(fired);
}

BENCHMARK(BM_Throughput_Reactor)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_Throughput_ReactorDefaultRing)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_Throughput_LibuvAsync)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_Throughput_RawEventfd)->UseRealTime()->MinTime(1.0);
BENCHMARK(BM_PingPong_RawEventfd)->UseManualTime()->Iterations(kRounds);
BENCHMARK(BM_PingPong_Reactor)->UseManualTime()->Iterations(kRounds);
BENCHMARK(BM_PingPong_LibuvAsync)->UseManualTime()->Iterations(kRounds);
BENCHMARK(BM_Timers_TimerQueue)->Iterations(2000);
BENCHMARK(BM_Timers_PriorityQueue)->Iterations(2000);

// Collects the counters so the ratios can be printed after the table: the median over the
// repetitions when there are several, else the single run's.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      const std::string& name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      auto& into = run.run_type == Run::RT_Aggregate ? medians_[name] : singles_[name];
      for (const auto& [counter, value] : run.counters) into[counter] = value.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  double get(const std::string& bench, const std::string& counter) const {
    for (const auto* source : {&medians_, &singles_}) {
      auto b = source->find(bench);
      if (b == source->end()) continue;
      auto c = b->second.find(counter);
      if (c != b->second.end()) return c->second;
    }
    return 0;
  }

 private:
  using Counters = std::map<std::string, double>;
  std::map<std::string, Counters> medians_;
  std::map<std::string, Counters> singles_;
};

bool has_flag(int argc, char** argv, std::string_view flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with(flag)) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // Defaults: 5 repetitions of each benchmark, run in random interleaved order, and the ratios
  // taken between medians. The machine is shared: load that comes and goes then hits both
  // sides of a ratio alike, instead of whichever benchmark happened to run during it.
  std::vector<char*> args(argv, argv + argc);
  std::string reps = "--benchmark_repetitions=5";
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  std::string aggregates = "--benchmark_display_aggregates_only=true";
  if (!has_flag(argc, argv, "--benchmark_repetitions")) args.push_back(reps.data());
  if (!has_flag(argc, argv, "--benchmark_enable_random_interleaving")) {
    args.push_back(interleave.data());
  }
  if (!has_flag(argc, argv, "--benchmark_display_aggregates_only")) {
    args.push_back(aggregates.data());
  }
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  const double reactor_tp = reporter.get("BM_Throughput_Reactor", "items_per_second");
  const double uv_tp = reporter.get("BM_Throughput_LibuvAsync", "items_per_second");
  const double raw_tp = reporter.get("BM_Throughput_RawEventfd", "items_per_second");
  std::printf(
      "\nRatios (medians, same run; > 1 means the reactor is faster for throughput,"
      " < 1 means lower latency):\n");
  std::printf("  throughput  call_from_thread / libuv uv_async_send : %.2f  (target >= 1)\n",
              ratio(reactor_tp, uv_tp));
  std::printf("  throughput  call_from_thread / raw eventfd        : %.2f\n",
              ratio(reactor_tp, raw_tp));
  std::printf("  throughput  default 4096-call ring / libuv          : %.2f\n",
              ratio(reporter.get("BM_Throughput_ReactorDefaultRing", "items_per_second"), uv_tp));
  for (const char* q : {"p50_ns", "p99_ns"}) {
    const double r = reporter.get("BM_PingPong_Reactor", q);
    const double raw = reporter.get("BM_PingPong_RawEventfd", q);
    const double uv = reporter.get("BM_PingPong_LibuvAsync", q);
    std::printf("  ping-pong %s call_from_thread / raw eventfd  : %.2f  (target <= 1.3)\n", q,
                ratio(r, raw));
    std::printf("  ping-pong %s call_from_thread / libuv         : %.2f\n", q, ratio(r, uv));
  }
  const double timers = reporter.get("BM_Timers_TimerQueue", "items_per_second");
  std::printf("  timers (1e5 pending) TimerQueue / priority_queue   : %.2f  (%.2fM timers/s)\n",
              ratio(timers, reporter.get("BM_Timers_PriorityQueue", "items_per_second")),
              timers / 1e6);
  benchmark::Shutdown();
  return 0;
}
