// Echo servers over loopback, measured in one run and stated as ratios against a raw epoll
// server (the floor, echo_server_epoll.cpp) measured in the same rounds: daemonkit's
// (daemonkit_echo_server, built when core/net is), libuv's, Boost.Asio's and Twisted's. Cases:
//  * 64-byte ping-pong over 1, 64 and 1,000 connections: round trips per second, and the
//    server's CPU time per round trip. On a 2-cpu machine the rate swings 2x with where client
//    and server land; the CPU time per round trip is the steady figure, and the target's;
//  * bulk: one connection written and read at once, MiB/s echoed, and CPU per MiB;
//  * accepts: connect, one 64-byte round trip, close (reset), N in flight: cycles per second
//    and CPU per accept;
//  * idle: the server's VmRSS growth per connection with 10,000 open (each echoed once), and
//    the seconds that burst of connects took (a backlog that overflows stalls it for seconds).
// The server's CPU time comes from /proc/PID/task/*/schedstat, read at both ends of the window.
// Method: every round starts every server afresh (twice: once for the idle case alone, so its
// "before" reading holds no memory the other cases left in the allocator, once for the rest).
// The timed cases run case by case; each case's window is cut into slices (--slices, 8) that
// the servers take in turn, in an order shuffled anew each round from a fixed seed, so load
// from elsewhere falls on all servers alike (run_round). The load runs on one CPU and every
// server on another (--pin, on by default), so no server gains or loses by where the scheduler
// puts it. Figures are medians over rounds; a ratio is the median of the per-round ratios
// against raw epoll in the same round, with the quartiles beside it.
//
//   daemonkit_net_bench --bin-dir DIR [--rounds N] [--seconds S] [--warmup S] [--idle N]
//                       [--in-flight N] [--backlog N] [--twisted SCRIPT] [--python PATH]
//                       [--servers a,b] [--slices N] [--pin 1|0]
// DIR holds echo_server_epoll, echo_server_uv, echo_server_asio and, when built,
// daemonkit_echo_server. bench/net/run.sh builds and runs it all.
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "load_cases.h"
#include "server_process.h"

namespace daemonkit::bench {
namespace {

struct Config {
  std::string bin_dir;
  int rounds = 3;
  Timing timing{.warmup_s = 0.05, .window_s = 1.0};  // warm-up: each slice's
  int slices = 8;  // a timed case's window, cut into this many turns per server
  int idle = 10000;
  int in_flight = 32;
  int backlog = 4096;   // every server's; 50 (Twisted's default) shows the burst stalling
  std::string twisted;  // the script; empty: no Twisted rows
  std::string python = "/usr/bin/python3";
  std::set<std::string> only;  // server names to run; empty: all
  unsigned seed = 1;
  bool pin = true;
  std::optional<int> server_cpu;  // set by pin_driver when pinning took
};

const std::string kRaw = "raw epoll";
const std::string kDaemonkit = "daemonkit";
const std::string kUv = "libuv";
const std::string kAsio = "boost.asio";
const std::string kTwisted = "twisted";

// A server to measure: its command, or why it has none.
struct Server {
  std::string name;
  std::vector<std::string> argv;
  std::string missing;
};

enum class Kind { kPingPong, kBulk, kAccepts, kIdle };

struct CaseSpec {
  std::string name;
  Kind kind;
  int connections;  // ping-pong's
};

const std::vector<CaseSpec>& case_specs() {
  static const std::vector<CaseSpec> specs = {
      {"ping-pong 64 B x 1 conn", Kind::kPingPong, 1},
      {"ping-pong 64 B x 64", Kind::kPingPong, 64},
      {"ping-pong 64 B x 1000", Kind::kPingPong, 1000},
      {"bulk, 1 conn", Kind::kBulk, 1},
      {"accepts", Kind::kAccepts, 0},
      {"idle conns", Kind::kIdle, 0},
  };
  return specs;
}

// Per case, per server: one result a round.
using Results = std::map<std::string, std::map<std::string, std::vector<Measured>>>;

double quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double at = q * static_cast<double>(samples.size() - 1);
  const auto low = static_cast<std::size_t>(at);
  const std::size_t high = std::min(low + 1, samples.size() - 1);
  return samples[low] + (samples[high] - samples[low]) * (at - static_cast<double>(low));
}

std::string first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// Raises this process's soft descriptor limit to the hard one (the servers raise their own);
// the idle case's reason to skip when even that is too low, empty when it fits.
std::string make_room_for(int connections) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  ::getrlimit(RLIMIT_NOFILE, &limit);
  const auto needed = static_cast<rlim_t>(connections) + 64;
  if (limit.rlim_cur >= needed) return "";
  return "skipped: RLIMIT_NOFILE hard limit " + std::to_string(limit.rlim_max) + " < " +
         std::to_string(needed) + " needed";
}

std::vector<Server> servers_of(const Config& config) {
  const auto binary = [&](const std::string& name, const std::string& file,
                          const std::string& missing) {
    const std::string path = config.bin_dir + "/" + file;
    return executable(path) ? Server{name, {path}, ""} : Server{name, {}, missing};
  };
  std::vector<Server> servers = {
      binary(kRaw, "echo_server_epoll", "not built"),
      binary(kDaemonkit, "daemonkit_echo_server", "not built (core/net missing)"),
      binary(kUv, "echo_server_uv", "not built"),
      binary(kAsio, "echo_server_asio", "not built"),
  };
  if (!config.twisted.empty()) {
    servers.push_back({kTwisted, {config.python, config.twisted}, ""});
  }
  if (!config.only.empty()) {
    std::erase_if(servers, [&](const Server& s) { return config.only.count(s.name) == 0; });
  }
  return servers;
}

Measured run_case(const CaseSpec& spec, ServerProcess& server, const Config& config) {
  switch (spec.kind) {
    case Kind::kPingPong:
      return ping_pong(server, spec.connections, 64, config.timing);
    case Kind::kBulk:
      return bulk(server, config.timing);
    case Kind::kAccepts:
      return accepts(server, config.in_flight, config.timing);
    case Kind::kIdle:
      return idle_memory(server, config.idle, 30.0);
  }
  return {};
}

void record(const Server& server, const CaseSpec& spec, Measured m, Results& results) {
  if (!m.failed.empty()) {
    std::fprintf(stderr, "%s, %s: %s\n", server.name.c_str(), spec.name.c_str(), m.failed.c_str());
  }
  results[spec.name][server.name].push_back(std::move(m));
}

// One round. The timed cases go case by case, every server answering the same case (one
// process each, started together), and each case's window is cut into slices taken in turn:
// raw, daemonkit, libuv, raw, daemonkit... A ratio then compares windows interleaved a fraction
// of a second apart, and load from elsewhere that comes and goes falls on every server alike.
// (Server by server, raw's window and daemonkit's were a whole turn of five cases apart, and
// identical binaries in two slots differed by 0.03; case by case with one 2 s window each, by
// up to 0.04 over 9 rounds.) The idle case then runs with a fresh process per server, one at a
// time.
void run_round(const std::vector<const Server*>& order, const Config& config,
               const std::string& idle_skip, Results& results) {
  std::vector<std::optional<ServerProcess>> processes;
  for (const Server* server : order) {
    processes.push_back(
        ServerProcess::start(server->argv, config.backlog, 20.0, config.server_cpu));
  }
  Measured not_started;
  not_started.failed = "did not start";
  Config slice = config;
  slice.timing.window_s = config.timing.window_s / config.slices;
  for (const CaseSpec& spec : case_specs()) {
    if (spec.kind == Kind::kIdle) continue;
    std::vector<std::vector<Measured>> windows(order.size());
    for (int turn = 0; turn < config.slices; ++turn) {
      for (std::size_t i = 0; i < order.size(); ++i) {
        if (processes[i]) windows[i].push_back(run_case(spec, *processes[i], slice));
      }
    }
    for (std::size_t i = 0; i < order.size(); ++i) {
      record(*order[i], spec, processes[i] ? pooled(windows[i]) : not_started, results);
    }
  }
  processes.clear();
  if (!idle_skip.empty()) return;
  for (const Server* server : order) {
    auto process = ServerProcess::start(server->argv, config.backlog, 20.0, config.server_cpu);
    for (const CaseSpec& spec : case_specs()) {
      if (spec.kind != Kind::kIdle) continue;
      record(*server, spec, process ? run_case(spec, *process, config) : not_started, results);
    }
  }
}

struct Summary {
  int ok = 0;
  int rounds = 0;
  std::string failed;  // the last failure's reason
  double rate = 0;     // medians over the rounds that succeeded
  double cpu = 0;
  double extra = 0;
};

Summary summarize(const std::vector<Measured>& runs) {
  Summary s;
  std::vector<double> rates;
  std::vector<double> cpus;
  std::vector<double> extras;
  for (const Measured& m : runs) {
    ++s.rounds;
    if (!m.failed.empty()) {
      s.failed = m.failed;
      continue;
    }
    ++s.ok;
    rates.push_back(m.rate);
    cpus.push_back(m.cpu_ns_per);
    extras.push_back(m.extra);
  }
  s.rate = quantile(rates, 0.5);
  s.cpu = quantile(cpus, 0.5);
  s.extra = quantile(extras, 0.5);
  return s;
}

// Per-round ratios of `of` against `reference` (rounds where both succeeded), as
// "median [quartiles]"; `field` picks the figure.
std::string ratio_text(const std::vector<Measured>& of, const std::vector<Measured>& reference,
                       double Measured::*field, double* median_out) {
  std::vector<double> ratios;
  for (std::size_t i = 0; i < of.size() && i < reference.size(); ++i) {
    if (!of[i].failed.empty() || !reference[i].failed.empty() || reference[i].*field == 0) {
      continue;
    }
    ratios.push_back(of[i].*field / reference[i].*field);
  }
  if (ratios.empty()) return "-";
  if (median_out != nullptr) *median_out = quantile(ratios, 0.5);
  char text[48];
  std::snprintf(text, sizeof text, "%.2f [%.2f-%.2f]", quantile(ratios, 0.5),
                quantile(ratios, 0.25), quantile(ratios, 0.75));
  return text;
}

// The target for daemonkit's row of `kind`, with its verdict; false when missed.
std::string target_text(Kind kind, const Summary& s, double rate_ratio, double cpu_ratio,
                        bool& missed) {
  char text[64];
  switch (kind) {
    case Kind::kPingPong:
    case Kind::kAccepts:
      missed = cpu_ratio > 1.05;
      std::snprintf(text, sizeof text, "CPU <=1.05x %s", missed ? "MISSED" : "ok");
      break;
    case Kind::kBulk:
      missed = rate_ratio < 0.90;
      std::snprintf(text, sizeof text, "rate >=0.90x %s", missed ? "MISSED" : "ok");
      break;
    case Kind::kIdle:
      missed = s.rate > 256;
      std::snprintf(text, sizeof text, "<=256 B %s", missed ? "MISSED" : "ok");
      break;
  }
  return text;
}

void print_table(const std::vector<Server>& servers, const Results& results, const Config& config,
                 const std::string& idle_skip) {
  std::printf(
      "\nmedians of %d rounds (%.1f s windows in %d interleaved slices, each after %.2f s "
      "warm-up; idle: %d connections); x raw = median [quartiles] of per-round ratios to %s; "
      "CPU = the server's, per operation\n",
      config.rounds, config.timing.window_s, config.slices, config.timing.warmup_s, config.idle,
      kRaw.c_str());
  std::printf("%-24s %-11s %14s %-17s %12s %-17s %s\n", "case", "server", "rate", "x raw", "CPU/op",
              "CPU x raw", "target");
  std::vector<std::string> missed;
  for (const CaseSpec& spec : case_specs()) {
    const char* unit = "req/s";
    const char* cpu_unit = "us";
    double cpu_scale = 1e-3;  // ns -> us
    if (spec.kind == Kind::kBulk) {
      unit = "MiB/s";
      cpu_unit = "ms/GiB";
      cpu_scale = 1024 * 1e-6;  // ns per MiB -> ms per GiB
    } else if (spec.kind == Kind::kAccepts) {
      unit = "conn/s";
    } else if (spec.kind == Kind::kIdle) {
      unit = "B/conn";
    }
    if (spec.kind == Kind::kIdle && !idle_skip.empty()) {
      std::printf("%-24s %s\n", spec.name.c_str(), idle_skip.c_str());
      continue;
    }
    const auto& by_server = results.count(spec.name)
                                ? results.at(spec.name)
                                : std::map<std::string, std::vector<Measured>>{};
    const auto raw = by_server.find(kRaw);
    for (const Server& server : servers) {
      std::printf("%-24s %-11s ", spec.name.c_str(), server.name.c_str());
      if (!server.missing.empty()) {
        std::printf("%s\n", server.missing.c_str());
        continue;
      }
      const auto runs = by_server.find(server.name);
      if (runs == by_server.end()) {
        std::printf("not run\n");
        continue;
      }
      const Summary s = summarize(runs->second);
      if (s.ok == 0) {
        std::printf("failed in every round: %s\n", s.failed.c_str());
        continue;
      }
      double rate_ratio = 0;
      double cpu_ratio = 0;
      std::string rate_x = "-";
      std::string cpu_x = "-";
      if (raw != by_server.end()) {
        rate_x = ratio_text(runs->second, raw->second, &Measured::rate, &rate_ratio);
        cpu_x = ratio_text(runs->second, raw->second, &Measured::cpu_ns_per, &cpu_ratio);
      }
      char rate[32];
      std::snprintf(rate, sizeof rate, "%.0f %s", s.rate, unit);
      char cpu[32];
      if (spec.kind == Kind::kIdle) {
        // No CPU figure here: the column holds the seconds the burst of connects took.
        std::snprintf(cpu, sizeof cpu, "burst %.2f s", s.extra);
        rate_x = "";  // the target is absolute, and raw's few bytes make ratios meaningless
        cpu_x = "";
      } else {
        std::snprintf(cpu, sizeof cpu, "%.2f %s", s.cpu * cpu_scale, cpu_unit);
      }
      std::string target = server.name == kRaw ? "reference" : "";
      if (server.name == kDaemonkit) {
        bool miss = false;
        target = target_text(spec.kind, s, rate_ratio, cpu_ratio, miss);
        if (miss) missed.push_back(spec.name);
      }
      if (s.ok < s.rounds) {
        target += " (failed " + std::to_string(s.rounds - s.ok) + "/" + std::to_string(s.rounds) +
                  ": " + s.failed + ")";
      }
      std::printf("%14s %-17s %12s %-17s %s\n", rate, rate_x.c_str(), cpu, cpu_x.c_str(),
                  target.c_str());
    }
  }
  std::printf("\nloadavg at the end %s; daemonkit targets missed: %zu\n",
              first_line("/proc/loadavg").c_str(), missed.size());
  for (const std::string& m : missed) std::printf("  missed: %s\n", m.c_str());
}

// Puts this process (the load) on the first CPU it may use and leaves the second for the
// servers, so every server meets the same placement: unpinned, where the scheduler puts client
// and server (one CPU or two) changes the cost of each wake-up, and it changes within a run.
// What was done, for the header.
std::string pin_driver(Config& config) {
  if (!config.pin) return "not pinned (--pin 0)";
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) return "not pinned: sched_getaffinity";
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  if (cpus.size() < 2) return "not pinned: fewer than 2 cpus allowed";
  cpu_set_t load;
  CPU_ZERO(&load);
  CPU_SET(cpus[0], &load);
  if (::sched_setaffinity(0, sizeof load, &load) != 0) return "not pinned: sched_setaffinity";
  config.server_cpu = cpus[1];
  return "load on cpu " + std::to_string(cpus[0]) + ", servers on cpu " + std::to_string(cpus[1]);
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --bin-dir DIR [--rounds N] [--seconds S] [--warmup S] [--idle N] "
               "[--in-flight N] [--backlog N] [--twisted SCRIPT] [--python PATH] "
               "[--servers a,b] [--slices N] [--pin 1|0]\n",
               argv0);
  return 2;
}

std::optional<Config> parse(int argc, char** argv) {
  Config config;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return std::nullopt;
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--bin-dir") {
      config.bin_dir = value;
    } else if (flag == "--rounds") {
      config.rounds = std::atoi(value.c_str());
    } else if (flag == "--seconds") {
      config.timing.window_s = std::atof(value.c_str());
    } else if (flag == "--warmup") {
      config.timing.warmup_s = std::atof(value.c_str());
    } else if (flag == "--idle") {
      config.idle = std::atoi(value.c_str());
    } else if (flag == "--in-flight") {
      config.in_flight = std::atoi(value.c_str());
    } else if (flag == "--backlog") {
      config.backlog = std::atoi(value.c_str());
    } else if (flag == "--twisted") {
      config.twisted = value;
    } else if (flag == "--python") {
      config.python = value;
    } else if (flag == "--slices") {
      config.slices = std::atoi(value.c_str());
    } else if (flag == "--pin") {
      if (value != "0" && value != "1") return std::nullopt;
      config.pin = value == "1";
    } else if (flag == "--servers") {
      std::stringstream names(value);
      for (std::string name; std::getline(names, name, ',');) config.only.insert(name);
    } else {
      return std::nullopt;
    }
  }
  if (config.bin_dir.empty() || config.rounds < 1 || config.timing.window_s <= 0 ||
      config.slices < 1 || config.timing.warmup_s < 0 || config.idle < 1 || config.in_flight < 1 ||
      config.backlog < 1) {
    return std::nullopt;
  }
  return config;
}

}  // namespace

int run(Config config) {
  const std::string placement = pin_driver(config);
  const std::vector<Server> servers = servers_of(config);
  const std::string idle_skip = make_room_for(config.idle);
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  utsname machine{};
  ::uname(&machine);
  std::printf("kernel %s, %ld cpus, libuv %s, loadavg %s\n", machine.release,
              ::sysconf(_SC_NPROCESSORS_ONLN), uv_version_string(),
              first_line("/proc/loadavg").c_str());
  std::printf("RLIMIT_NOFILE %llu/%llu, somaxconn %s, local ports %s, listen backlog %d\n",
              static_cast<unsigned long long>(limit.rlim_cur),
              static_cast<unsigned long long>(limit.rlim_max),
              first_line("/proc/sys/net/core/somaxconn").c_str(),
              first_line("/proc/sys/net/ipv4/ip_local_port_range").c_str(), config.backlog);
  std::printf("%s\n", placement.c_str());
  std::fflush(stdout);

  std::vector<const Server*> order;
  for (const Server& s : servers) {
    if (s.missing.empty()) order.push_back(&s);
  }
  if (std::none_of(order.begin(), order.end(), [](const Server* s) { return s->name == kRaw; })) {
    std::fprintf(stderr, "no %s server: the ratios have no reference\n", kRaw.c_str());
  }
  Results results;
  std::mt19937 shuffler(config.seed);
  for (int round = 0; round < config.rounds; ++round) {
    std::shuffle(order.begin(), order.end(), shuffler);
    run_round(order, config, idle_skip, results);
    std::fprintf(stderr, "round %d of %d done\n", round + 1, config.rounds);
  }
  print_table(servers, results, config, idle_skip);
  return 0;
}

}  // namespace daemonkit::bench

int main(int argc, char** argv) {
  const auto config = daemonkit::bench::parse(argc, argv);
  if (!config) return daemonkit::bench::usage(argv[0]);
  return daemonkit::bench::run(*config);
}
