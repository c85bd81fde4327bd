// Spawning child programs, as ratios against references measured in the same run:
//  * spawn + reap of /bin/true per second, sequential (start, wait for the exit, reap, next):
//    raw posix_spawn + waitpid (the reference), libuv's uv_spawn, Twisted's spawnProcess,
//    daemonkit (spawn_and_reap_daemonkit), and fork + exec + waitpid;
//  * the same with a parent holding RESIDENT_MIB of touched memory. posix_spawn and daemonkit
//    borrow the parent's memory (CLONE_VM|CLONE_VFORK) and should not notice it; fork copies
//    its page tables, and uv_spawn and Twisted 22.4 fork;
//  * stdin -> /bin/cat -> stdout throughput: a raw poll loop over two pipes (the reference)
//    against daemonkit's reactor driving the same pipes (pump_through_cat_daemonkit). Two raw
//    epoll loops sit between them. When both pipes are ready, serving the write first keeps
//    cat fed while we drain it; a reactor serves them in the order epoll_wait lists them, which
//    put the read first in about 60% of turns here. On this machine that order cost a raw epoll
//    loop 0.04-0.10 of the reference, and the reactor's pipe rate rose from 0.83 to 0.93-0.94
//    of it when a trial build of Reactor::iterate served a batch's writable events first.
// Method: every round runs every case once, in an order shuffled anew each round from a fixed
// seed, the small-parent and large-parent phases alternating which goes first, so load from
// elsewhere on the machine spreads over all cases. Rates are medians over rounds; a ratio is
// the median of the per-round ratios (a case against the reference of the same round).
// large/small compares two phases of a round, run seconds apart, so it is noisier than a ratio
// within a phase: the raw reference's own large/small (it should be 1.00) shows how much.
//
//   daemonkit_spawn_bench [--rounds N] [--spawns N] [--twisted-spawns N] [--pipe-mib N]
//                         [--chunk-kib N] [--resident-mib N] [--twisted SCRIPT] [--python PATH]
// Without --twisted, Twisted's rows are left out. bench/spawn/run.sh builds and runs it all.
#include <gnu/libc-version.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "daemonkit_cases.h"
#include "peer_cases.h"

extern char** environ;

namespace daemonkit::bench {
namespace {

struct Config {
  int rounds = 5;
  int spawns = 40;          // per case per round
  int twisted_spawns = 20;  // Twisted's, per round: it spawns at a tenth of the others' rate
  int pipe_mib = 256;       // per pipe case per round
  int chunk_kib = 64;       // size of each write
  int resident_mib = 256;   // the large parent's extra touched memory
  std::string twisted;      // the script; empty: no Twisted rows
  std::string python = "/usr/bin/python3";
  unsigned seed = 1;
  bool pin = true;  // the bench on CPU 0 and cat on CPU 1, when there are two
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The value at fraction `q` of the sorted samples, interpolated between neighbours.
double quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double at = q * static_cast<double>(samples.size() - 1);
  const auto low = static_cast<std::size_t>(at);
  const std::size_t high = std::min(low + 1, samples.size() - 1);
  return samples[low] + (samples[high] - samples[low]) * (at - static_cast<double>(low));
}

double median(const std::vector<double>& samples) { return quantile(samples, 0.5); }

// A ratio as the table prints it: the median of the per-round ratios, and their quartiles,
// which show how far load from elsewhere moved the rounds.
struct Ratio {
  double median = 0;
  double low = 0;   // first quartile
  double high = 0;  // third quartile

  [[nodiscard]] std::string text() const {
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "%.2f [%.2f-%.2f]", median, low, high);
    return buffer;
  }
};

// Memory this process holds and has written to, so that every page is resident (there is no
// swap to push it out on the machines this runs on; the header prints VmRSS to show it).
class ResidentMemory {
 public:
  explicit ResidentMemory(std::size_t bytes) : bytes_(bytes) {
    if (bytes_ == 0) return;
    void* region =
        ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) {
      std::perror("mmap(resident memory)");
      std::exit(1);
    }
    data_ = static_cast<char*>(region);
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    for (std::size_t at = 0; at < bytes_; at += page) data_[at] = 1;
  }
  ~ResidentMemory() {
    if (data_ != nullptr) ::munmap(data_, bytes_);
  }
  ResidentMemory(const ResidentMemory&) = delete;
  ResidentMemory& operator=(const ResidentMemory&) = delete;

 private:
  std::size_t bytes_;
  char* data_ = nullptr;
};

// A "Name:   value" line's value from a /proc file.
std::string proc_field(const char* path, const char* name) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) == 0) {
      const std::size_t value = line.find_first_not_of(" \t", std::strlen(name));
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "?";
}

std::string first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// One measured case: runs its work once (a round's worth) and returns its rate, or nothing
// when it failed (the bench then stops: a figure from a failing case means nothing).
struct Case {
  std::string name;
  std::function<std::optional<double>(bool large_parent)> run;
};

// Times `spawns` calls of `spawn_once`; spawns per second.
std::optional<double> time_spawns(int spawns, const std::function<bool()>& spawn_once) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < spawns; ++i) {
    if (!spawn_once()) return std::nullopt;
  }
  return spawns / seconds_since(start);
}

// Times one pump of `mib` MiB; MiB per second.
std::optional<double> time_pump(int mib, const std::function<bool()>& pump_once) {
  const auto start = std::chrono::steady_clock::now();
  if (!pump_once()) return std::nullopt;
  return mib / seconds_since(start);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--rounds N] [--spawns N] [--twisted-spawns N] [--pipe-mib N] "
               "[--chunk-kib N] "
               "[--resident-mib N] [--twisted SCRIPT] [--python PATH] [--pin 0|1]\n",
               argv0);
  return 2;
}

std::optional<Config> parse(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return std::nullopt;
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--rounds") {
      config.rounds = std::atoi(value.c_str());
    } else if (flag == "--spawns") {
      config.spawns = std::atoi(value.c_str());
    } else if (flag == "--twisted-spawns") {
      config.twisted_spawns = std::atoi(value.c_str());
    } else if (flag == "--pipe-mib") {
      config.pipe_mib = std::atoi(value.c_str());
    } else if (flag == "--chunk-kib") {
      config.chunk_kib = std::atoi(value.c_str());
    } else if (flag == "--resident-mib") {
      config.resident_mib = std::atoi(value.c_str());
    } else if (flag == "--twisted") {
      config.twisted = value;
    } else if (flag == "--python") {
      config.python = value;
    } else if (flag == "--pin") {
      config.pin = value != "0";
    } else {
      return std::nullopt;
    }
  }
  if (config.rounds < 1 || config.spawns < 1 || config.twisted_spawns < 1 || config.pipe_mib < 1 ||
      config.chunk_kib < 1 || config.resident_mib < 0) {
    return std::nullopt;
  }
  return config;
}

// Rates by case, one per round, and the per-round ratios derived from them.
using Samples = std::map<std::string, std::vector<double>>;

const char* verdict(double value, double target) { return value >= target ? "ok" : "MISSED"; }

}  // namespace

int run(const Config& config) {
  // A cat that died early would otherwise kill the bench with SIGPIPE on our next write; the
  // write's EPIPE is reported instead. Every child inherits the same disposition.
  ::signal(SIGPIPE, SIG_IGN);

  char true_path[] = "/bin/true";
  char* const true_argv[] = {true_path, nullptr};
  char* const* envp = environ;
  const std::size_t pipe_bytes = static_cast<std::size_t>(config.pipe_mib) << 20;
  const std::size_t chunk = static_cast<std::size_t>(config.chunk_kib) << 10;

  // Pinned, every case's processes start on CPU 0 (children inherit the mask) and the pipe
  // cases move cat to CPU 1.
  int cat_cpu = -1;
  if (config.pin && ::sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (::sched_setaffinity(0, sizeof set, &set) == 0) {
      cat_cpu = 1;
    } else {
      std::fprintf(stderr, "sched_setaffinity(cpu 0): %s; not pinned\n", std::strerror(errno));
    }
  }
  std::printf("%s\n", cat_cpu >= 0 ? "pinned: the bench and its children on cpu 0, cat on cpu 1"
                                   : "not pinned");

  auto loop = make_daemonkit_loop();
  if (!loop) return 1;
  std::string twisted_versions = "not run";

  const std::string kRaw = "raw posix_spawn+waitpid";
  const std::string kUv = "libuv uv_spawn";
  const std::string kTwisted = "twisted spawnProcess";
  const std::string kDaemonkit = "daemonkit";
  const std::string kFork = "fork+exec+waitpid";
  std::vector<Case> spawn_cases = {
      {kRaw,
       [&](bool) {
         return time_spawns(config.spawns,
                            [&] { return spawn_and_reap_posix_spawn(true_argv, envp); });
       }},
      {kUv,
       [&](bool) -> std::optional<double> {
         // A loop of its own each round: closing it takes libuv's SIGCHLD handler away again,
         // so the other cases never run with it installed.
         uv_loop_t uv;
         if (uv_loop_init(&uv) != 0) return std::nullopt;
         auto rate =
             time_spawns(config.spawns, [&] { return spawn_and_reap_uv(uv, true_argv, envp); });
         if (uv_loop_close(&uv) != 0) {
           std::fprintf(stderr, "uv_loop_close: a handle is still open\n");
           return std::nullopt;
         }
         return rate;
       }},
      {kDaemonkit,
       [&](bool) {
         return time_spawns(config.spawns,
                            [&] { return spawn_and_reap_daemonkit(*loop, true_argv, envp); });
       }},
      {kFork,
       [&](bool) {
         return time_spawns(config.spawns, [&] { return spawn_and_reap_fork(true_argv, envp); });
       }},
  };
  if (!config.twisted.empty()) {
    // Twisted's process allocates its own resident memory: ours is not its parent's.
    spawn_cases.push_back({kTwisted, [&](bool large_parent) {
                             return twisted_spawn_rate(
                                 config.python, config.twisted, config.twisted_spawns,
                                 large_parent ? config.resident_mib : 0, twisted_versions);
                           }});
  }
  const std::string kRawPipe = "raw poll loop";
  const std::string kEpollPipe = "raw epoll loop";
  const std::string kEpollOrderPipe = "raw epoll, kernel order";
  const std::string kDaemonkitPipe = "daemonkit Process::spawn";
  std::vector<Case> pipe_cases = {
      {kRawPipe,
       [&](bool) {
         return time_pump(config.pipe_mib, [&] {
           return pump_through_cat_raw(pipe_bytes, chunk, envp, RawWait::kPoll, cat_cpu);
         });
       }},
      {kEpollPipe,
       [&](bool) {
         return time_pump(config.pipe_mib, [&] {
           return pump_through_cat_raw(pipe_bytes, chunk, envp, RawWait::kEpoll, cat_cpu);
         });
       }},
      {kEpollOrderPipe,
       [&](bool) {
         return time_pump(config.pipe_mib, [&] {
           return pump_through_cat_raw(pipe_bytes, chunk, envp, RawWait::kEpollKernelOrder,
                                       cat_cpu);
         });
       }},
      {kDaemonkitPipe,
       [&](bool) {
         return time_pump(config.pipe_mib, [&] {
           return pump_through_cat_daemonkit(*loop, pipe_bytes, chunk, envp, cat_cpu);
         });
       }},
  };

  // Machine facts first, then a warm-up round (page cache, libuv's and Python's first-use costs)
  // whose figures are dropped.
  utsname machine{};
  ::uname(&machine);
  std::printf("kernel %s, %ld cpus, glibc %s, libuv %s, loadavg %s\n", machine.release,
              ::sysconf(_SC_NPROCESSORS_ONLN), gnu_get_libc_version(), uv_version_string(),
              first_line("/proc/loadavg").c_str());
  std::string rss_large;
  {
    const ResidentMemory memory(static_cast<std::size_t>(config.resident_mib) << 20);
    rss_large = proc_field("/proc/self/status", "VmRSS:");
  }
  std::printf("parent VmRSS %s small, %s large (%d MiB touched); swap %s; THP %s\n",
              proc_field("/proc/self/status", "VmRSS:").c_str(), rss_large.c_str(),
              config.resident_mib, proc_field("/proc/meminfo", "SwapTotal:").c_str(),
              first_line("/sys/kernel/mm/transparent_hugepage/enabled").c_str());
  for (const Case& c : spawn_cases) {
    if (!c.run(false)) return 1;
  }
  for (const Case& c : pipe_cases) {
    if (!c.run(false)) return 1;
  }
  std::printf("twisted: %s\n", twisted_versions.c_str());
  std::fflush(stdout);

  Samples small;
  Samples large;
  Samples pipes;
  std::mt19937 shuffler(config.seed);
  const auto run_phase = [&](std::vector<Case>& cases, bool large_parent, Samples& into) {
    std::shuffle(cases.begin(), cases.end(), shuffler);
    for (const Case& c : cases) {
      auto rate = c.run(large_parent);
      if (!rate) return false;
      into[c.name].push_back(*rate);
    }
    return true;
  };
  const auto run_large_phase = [&] {
    const ResidentMemory memory(static_cast<std::size_t>(config.resident_mib) << 20);
    return run_phase(spawn_cases, true, large);
  };
  for (int round = 0; round < config.rounds; ++round) {
    const bool small_first = round % 2 == 0;
    bool ok = small_first ? run_phase(spawn_cases, false, small) && run_large_phase()
                          : run_large_phase() && run_phase(spawn_cases, false, small);
    ok = ok && run_phase(pipe_cases, false, pipes);
    if (!ok) {
      std::fprintf(stderr, "round %d failed\n", round + 1);
      return 1;
    }
  }

  // Per-round ratios of `name` against `reference` in the same samples (or another phase).
  const auto ratio = [](const Samples& of, const std::string& name, const Samples& against,
                        const std::string& reference) {
    std::vector<double> ratios;
    const auto& a = of.at(name);
    const auto& b = against.at(reference);
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) ratios.push_back(a[i] / b[i]);
    return Ratio{median(ratios), quantile(ratios, 0.25), quantile(ratios, 0.75)};
  };

  std::printf(
      "\nspawn + reap of /bin/true, sequential: median of %d rounds x %d spawns (Twisted %d); "
      "x raw = median [quartiles] of per-round ratios to %s in the same phase; large/small = "
      "the case with %d MiB resident against itself without\n",
      config.rounds, config.spawns, config.twisted_spawns, kRaw.c_str(), config.resident_mib);
  std::printf("%-24s %-7s %9s %-17s %-10s %-17s %-10s\n", "case", "parent", "spawns/s", "x raw",
              "target", "large/small", "target");
  std::vector<std::string> order = {kRaw, kDaemonkit, kUv};
  if (!config.twisted.empty()) order.push_back(kTwisted);
  order.push_back(kFork);
  std::vector<std::string> missed;
  for (int phase = 0; phase < 2; ++phase) {
    const Samples& samples = phase == 0 ? small : large;
    const std::string parent = phase == 0 ? "small" : std::to_string(config.resident_mib) + "MiB";
    for (const std::string& name : order) {
      const Ratio x_raw = ratio(samples, name, samples, kRaw);
      std::string target = name == kRaw ? "reference" : "";
      if (name == kDaemonkit) {
        target = std::string(">=0.95 ") + verdict(x_raw.median, 0.95);
        if (x_raw.median < 0.95) missed.push_back("daemonkit x raw, " + parent);
      }
      std::printf("%-24s %-7s %9.0f %-17s %-10s", name.c_str(), parent.c_str(),
                  median(samples.at(name)), x_raw.text().c_str(), target.c_str());
      if (phase == 1) {
        const Ratio growth = ratio(large, name, small, name);
        std::string growth_target;
        if (name == kDaemonkit) {
          growth_target = std::string(">=0.95 ") + verdict(growth.median, 0.95);
          if (growth.median < 0.95) missed.push_back("daemonkit large/small");
        }
        std::printf(" %-17s %-10s", growth.text().c_str(), growth_target.c_str());
      }
      std::printf("\n");
    }
  }

  std::printf(
      "\nstdin -> /bin/cat -> stdout: median of %d rounds x %d MiB in %d KiB writes; x raw = "
      "median [quartiles] of per-round ratios to %s\n",
      config.rounds, config.pipe_mib, config.chunk_kib, kRawPipe.c_str());
  std::printf("%-24s %-7s %9s %-17s %-10s\n", "case", "", "MiB/s", "x raw", "target");
  for (const std::string& name : {kRawPipe, kEpollPipe, kEpollOrderPipe, kDaemonkitPipe}) {
    const Ratio x_raw = ratio(pipes, name, pipes, kRawPipe);
    std::string target = name == kRawPipe ? "reference" : "";
    if (name == kDaemonkitPipe) {
      target = std::string(">=0.90 ") + verdict(x_raw.median, 0.90);
      if (x_raw.median < 0.90) missed.push_back("daemonkit pipe x raw");
    }
    std::printf("%-24s %-7s %9.0f %-17s %-10s\n", name.c_str(), "", median(pipes.at(name)),
                x_raw.text().c_str(), target.c_str());
  }
  std::printf("\nloadavg at the end %s; targets missed: %zu\n", first_line("/proc/loadavg").c_str(),
              missed.size());
  for (const std::string& m : missed) std::printf("  missed: %s\n", m.c_str());
  return 0;
}

}  // namespace daemonkit::bench

int main(int argc, char** argv) {
  const auto config = daemonkit::bench::parse(argc, argv);
  if (!config) return daemonkit::bench::usage(argv[0]);
  return daemonkit::bench::run(*config);
}
