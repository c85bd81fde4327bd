// How fast FakeSyscalls is next to the kernel it simulates: single calls (getpid, open+close,
// a write and read through a pipe) and a 50-call scenario shaped like a daemon's start (PID
// file opened, locked, checked, truncated and written; a status pipe made, moved with dup2,
// flagged with fcntl, written and read; everything closed and removed). Each fake benchmark
// has a real twin; the real scenario runs in a forked child so its locks, umask and
// descriptors never touch the benchmark process. The run ends with fake/real ratios.
//
//   cmake -S . -B build -G Ninja -DDAEMONKIT_BUILD_BENCH=ON && cmake --build build --target fake_bench
//   build/bench/fake/fake_bench
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include <benchmark/benchmark.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/real_syscalls.h"

namespace {

using daemonkit::fake::FakeSyscalls;
using daemonkit::sys::RealSyscalls;
using daemonkit::sys::Syscalls;

// The fake records every call; its transcript is cleared every this many calls so that a
// long benchmark measures calls, not an ever-growing transcript (begin_call counts earlier
// calls of the same name, which is linear in the transcript's length).
constexpr int kClearEvery = 256;

constexpr int kScenarioCalls = 50;

// The scenario: exactly kScenarioCalls calls through `os`, which must leave nothing behind.
// Returns the number of calls made, or -1 if one failed.
int pid_file_scenario(Syscalls& os, const std::string& dir) {
  const std::string path = dir + "/bench.pid";
  int calls = 0;
  bool ok = true;
  auto check = [&](bool success) {
    ++calls;
    ok = ok && success;
  };
  char buf[16];
  static_cast<void>(os.umask(022));
  ++calls;
  auto pipe = os.pipe2(O_CLOEXEC);
  check(pipe.has_value());
  if (!pipe) return -1;
  auto fd = os.open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  check(fd.has_value());
  if (!fd) return -1;
  check(os.flock(*fd, LOCK_EX | LOCK_NB).has_value());
  check(os.fstat(*fd).has_value());
  check(os.lstat(path.c_str()).has_value());
  check(os.ftruncate(*fd, 0).has_value());
  check(os.write(*fd, "12345\n", 6).has_value());
  check(os.fcntl(*fd, F_GETFD, 0).has_value());
  check(os.fcntl(*fd, F_GETFL, 0).has_value());
  // A second description of the same file: the lock must refuse it.
  auto other = os.open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  check(other.has_value());
  if (!other) return -1;
  check(!os.flock(*other, LOCK_EX | LOCK_NB).has_value());
  check(os.read(*other, buf, sizeof buf).has_value());
  check(os.close(*other).has_value());
  // The status pipe, moved onto a fixed number as a daemonizer does.
  check(os.dup2(pipe->write_end, 20).has_value());
  check(os.fcntl(20, F_SETFD, FD_CLOEXEC).has_value());
  check(os.fcntl(pipe->read_end, F_SETFL, O_NONBLOCK).has_value());
  check(os.write(20, "0", 1).has_value());
  check(os.read(pipe->read_end, buf, sizeof buf).has_value());
  check(!os.read(pipe->read_end, buf, sizeof buf).has_value());  // EAGAIN: empty
  check(os.dup3(pipe->read_end, 21, O_CLOEXEC).has_value());
  check(os.fcntl(21, F_GETFD, 0).has_value());
  check(os.close(21).has_value());
  for (int i = 0; i < 8; ++i) {
    check(os.write(20, "1 step failed", 13).has_value());
    check(os.read(pipe->read_end, buf, sizeof buf).has_value());
  }
  static_cast<void>(os.getpid());
  ++calls;
  check(os.kill(os.getpid(), 0).has_value());
  ++calls;  // the getpid inside
  check(os.close(20).has_value());
  check(os.close(pipe->write_end).has_value());
  check(os.read(pipe->read_end, buf, sizeof buf).has_value());  // EOF
  check(os.close(pipe->read_end).has_value());
  check(os.flock(*fd, LOCK_UN).has_value());
  check(os.close(*fd).has_value());
  check(os.unlink(path.c_str()).has_value());
  check(!os.close(*fd).has_value());  // EBADF
  return ok ? calls : -1;
}

// A fake with the scenario's directory.
void prepare(FakeSyscalls& os) {
  os.make_dir("/run/bench", 0755);
  os.set_would_block(daemonkit::fake::WouldBlock::kFail);
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/dk-fake-bench-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- Single calls ------------------------------------------------------------------------

void BM_FakeGetpid(benchmark::State& state) {
  FakeSyscalls os;
  int n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(os.getpid());
    if (++n % kClearEvery == 0) os.clear_transcript();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FakeGetpid);

void BM_RealGetpid(benchmark::State& state) {
  RealSyscalls os;
  for (auto _ : state) benchmark::DoNotOptimize(os.getpid());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RealGetpid);

template <typename Os>
void open_close(benchmark::State& state, Os& os, const std::string& path, auto&& after_each) {
  for (auto _ : state) {
    auto fd = os.open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
    if (!fd) {
      state.SkipWithError("open failed");
      break;
    }
    static_cast<void>(os.close(*fd));
    after_each();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FakeOpenClose(benchmark::State& state) {
  FakeSyscalls os;
  os.write_file("/run/bench/file", "x");
  int n = 0;
  open_close(state, os, "/run/bench/file", [&] {
    if (++n % (kClearEvery / 2) == 0) os.clear_transcript();
  });
}
BENCHMARK(BM_FakeOpenClose);

void BM_RealOpenClose(benchmark::State& state) {
  TempDir dir;
  const std::string path = dir.path() + "/file";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f != nullptr) std::fclose(f);
  RealSyscalls os;
  open_close(state, os, path, [] {});
}
BENCHMARK(BM_RealOpenClose);

template <typename Os>
void pipe_write_read(benchmark::State& state, Os& os, auto&& after_each) {
  auto fds = os.pipe2(O_CLOEXEC);
  if (!fds) {
    state.SkipWithError("pipe2 failed");
    return;
  }
  char buf[64];
  for (auto _ : state) {
    static_cast<void>(os.write(fds->write_end, "0123456789", 10));
    benchmark::DoNotOptimize(os.read(fds->read_end, buf, sizeof buf));
    after_each();
  }
  static_cast<void>(os.close(fds->read_end));
  static_cast<void>(os.close(fds->write_end));
  state.SetItemsProcessed(state.iterations());
}

void BM_FakePipeWriteRead(benchmark::State& state) {
  FakeSyscalls os;
  int n = 0;
  pipe_write_read(state, os, [&] {
    if (++n % (kClearEvery / 2) == 0) os.clear_transcript();
  });
}
BENCHMARK(BM_FakePipeWriteRead);

void BM_RealPipeWriteRead(benchmark::State& state) {
  RealSyscalls os;
  pipe_write_read(state, os, [] {});
}
BENCHMARK(BM_RealPipeWriteRead);

// ---- The 50-call scenario ----------------------------------------------------------------

void BM_FakeScenario(benchmark::State& state) {
  FakeSyscalls os;
  prepare(os);
  for (auto _ : state) {
    if (pid_file_scenario(os, "/run/bench") != kScenarioCalls) {
      state.SkipWithError("the scenario failed on the fake");
      break;
    }
    os.clear_transcript();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FakeScenario);

// Scenarios per forked child: enough to make the fork's own cost vanish.
constexpr int kScenariosPerChild = 5000;

// Runs `count` scenarios in a forked child and returns the CPU seconds they took there (CPU
// time, as the in-process benchmarks report, so that a loaded machine skews neither side).
double real_scenarios_in_child(int count, const std::string& dir) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    // ---- child of a single-threaded benchmark process: may allocate, ends in _exit ----
    ::close(report[0]);
    RealSyscalls os;
    auto cpu_now = [] {
      timespec ts{};
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
    };
    const double start = cpu_now();
    bool ok = true;
    for (int i = 0; i < count && ok; ++i) ok = pid_file_scenario(os, dir) == kScenarioCalls;
    const double seconds = ok ? cpu_now() - start : -1;
    const bool sent = ::write(report[1], &seconds, sizeof seconds) == sizeof seconds;
    ::_exit(sent ? 0 : 1);
  }
  ::close(report[1]);
  double seconds = -1;
  const bool got = ::read(report[0], &seconds, sizeof seconds) == sizeof seconds;
  ::close(report[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return got ? seconds : -1;
}

// Each iteration is one forked child running kScenariosPerChild scenarios.
void BM_RealScenarioInForkedChild(benchmark::State& state) {
  TempDir dir;
  for (auto _ : state) {
    const double seconds = real_scenarios_in_child(kScenariosPerChild, dir.path());
    if (seconds <= 0) {
      state.SkipWithError("the scenario failed on the kernel");
      break;
    }
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(state.iterations() * kScenariosPerChild);
}
BENCHMARK(BM_RealScenarioInForkedChild)->UseManualTime()->Iterations(4);

// ---- Ratios ------------------------------------------------------------------------------

// The console output, then each fake benchmark's rate over its real twin's.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second.value;
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    const std::pair<const char*, const char*> pairs[] = {
        {"BM_FakeGetpid", "BM_RealGetpid"},
        {"BM_FakeOpenClose", "BM_RealOpenClose"},
        {"BM_FakePipeWriteRead", "BM_RealPipeWriteRead"},
        {"BM_FakeScenario", "BM_RealScenarioInForkedChild"},
    };
    std::printf("\nfake/real (items per second; above 1 means the fake is faster):\n");
    for (const auto& [fake, real] : pairs) {
      auto f = find(fake);
      auto r = find(real);
      if (f > 0 && r > 0) std::printf("  %-22s %10.3f\n", fake + 3, f / r);
    }
    if (auto f = find("BM_FakeScenario"); f > 0) {
      std::printf("  fake calls per second in the %d-call scenario: %.3g\n", kScenarioCalls,
                  f * kScenarioCalls);
    }
  }

 private:
  double find(const std::string& prefix) const {
    for (const auto& [name, rate] : rates_) {
      if (name == prefix || name.rfind(prefix + "/", 0) == 0) return rate;
    }
    return -1;
  }
  std::map<std::string, double> rates_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
