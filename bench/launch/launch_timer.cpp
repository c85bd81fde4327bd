// Launch latency of daemonizers, as ratios in one run: the time from starting a launcher to that
// launcher exiting 0, for each peer, at each RLIMIT_NOFILE. Rounds interleave the peers, in an
// order shuffled anew each round, so drift in machine load spreads over all of them and no peer
// always follows the same one: what a launch costs depends on what ran just before it (a
// rotating order once gave every peer a fixed predecessor, which moved ratios by 0.2). After every launch the
// daemon is found through its own PID file and stopped (SIGTERM through a pidfd, SIGKILL if it
// lingers), so no run leaves a process behind.
//
//   launch_timer --spec FILE --dir DIR [--runs N] [--limits 1024,max]
// FILE has one peer a line: NAME, a tab, then the command split on spaces, where {pidfile}
// stands for DIR/NAME.pid. The first peer is the reference the ratios are taken against.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

struct Peer {
  std::string name;
  std::vector<std::string> argv;
};

struct Config {
  std::string spec;
  std::string dir;
  int runs = 15;
  unsigned seed = 1;  // the shuffled order is the same in every run of the bench
  std::vector<rlim_t> limits;
};

long long now_us() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

rlim_t highest_nofile() {
  // Root may raise the hard limit up to fs.nr_open; anyone else up to the current hard limit.
  rlimit current{};
  getrlimit(RLIMIT_NOFILE, &current);
  if (geteuid() != 0) return current.rlim_max;
  std::ifstream nr_open("/proc/sys/fs/nr_open");
  unsigned long long value = 0;
  if (!(nr_open >> value) || value <= current.rlim_max) return current.rlim_max;
  // Root in a container may lack CAP_SYS_RESOURCE: try raising the hard limit, keep what works.
  const rlimit raised{current.rlim_cur, static_cast<rlim_t>(value)};
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_max;
  return current.rlim_max;
}

std::string pidfile_of(const Config& config, const Peer& peer) {
  return config.dir + "/" + peer.name + ".pid";
}

std::vector<std::string> expand(const Peer& peer, const std::string& pidfile) {
  std::vector<std::string> argv;
  for (std::string arg : peer.argv) {
    for (std::size_t at; (at = arg.find("{pidfile}")) != std::string::npos;) {
      arg.replace(at, 9, pidfile);
    }
    argv.push_back(arg);
  }
  return argv;
}

std::optional<pid_t> read_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (in >> pid && pid > 1) return static_cast<pid_t>(pid);
  return std::nullopt;
}

bool wait_pidfd(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

// Finds the daemon through its PID file (which some peers write only after their launcher has
// exited) and stops it. Returns false if no PID file appeared.
bool stop_by_pidfile(const std::string& pidfile) {
  std::optional<pid_t> pid;
  for (int waited = 0; waited < 5000 && !pid; waited += 2) {
    pid = read_pid(pidfile);
    if (!pid) usleep(2000);
  }
  if (!pid) return false;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, *pid, 0));
  if (pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
    if (!wait_pidfd(pidfd, 5000)) {
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
      wait_pidfd(pidfd, 5000);
    }
    close(pidfd);
  }
  // The daemon is ours to reap (see main): reaped, it stops answering kill(pid, 0) at once.
  waitpid(*pid, nullptr, WNOHANG);
  // Peers that exec PROGRAM leave their file behind; twistd removes its own.
  for (int waited = 0; waited < 1000 && access(pidfile.c_str(), F_OK) == 0; waited += 2) {
    if (read_pid(pidfile) != pid) break;
    if (!pid || kill(*pid, 0) != 0) break;
    usleep(2000);
  }
  unlink(pidfile.c_str());
  return true;
}

// One launch: returns the microseconds until the launcher exited, or nothing if it failed.
std::optional<long long> launch_once(const Config& config, const Peer& peer) {
  const std::string pidfile = pidfile_of(config, peer);
  unlink(pidfile.c_str());
  const std::vector<std::string> args = expand(peer, pidfile);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const std::string log = config.dir + "/" + peer.name + ".stderr";

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t child = 0;
  const long long start = now_us();
  const int spawned = posix_spawn(&child, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    std::fprintf(stderr, "%s: spawn %s: %s\n", peer.name.c_str(), argv[0], std::strerror(spawned));
    return std::nullopt;
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  const long long elapsed = now_us() - start;
  const bool stopped = stop_by_pidfile(pidfile);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {  // whatever else the peer left to us
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream err(log);
    std::stringstream text;
    text << err.rdbuf();
    std::fprintf(stderr, "%s: launcher failed (wait status %d): %s\n", peer.name.c_str(), status,
                 text.str().c_str());
    return std::nullopt;
  }
  if (!stopped) {
    std::fprintf(stderr, "%s: no PID file at %s after launch\n", peer.name.c_str(),
                 pidfile.c_str());
    return std::nullopt;
  }
  return elapsed;
}

double median(std::vector<long long> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const std::size_t mid = samples.size() / 2;
  if (samples.size() % 2 == 1) return static_cast<double>(samples[mid]);
  return (static_cast<double>(samples[mid - 1]) + static_cast<double>(samples[mid])) / 2;
}

std::vector<Peer> read_spec(const std::string& path) {
  std::vector<Peer> peers;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    Peer peer{line.substr(0, tab), {}};
    std::istringstream words(line.substr(tab + 1));
    for (std::string word; words >> word;) peer.argv.push_back(word);
    if (!peer.argv.empty()) peers.push_back(peer);
  }
  return peers;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --spec FILE --dir DIR [--runs N] [--limits 1024,max]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  std::string limits = "1024,max";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--spec") {
      config.spec = argv[i + 1];
    } else if (flag == "--dir") {
      config.dir = argv[i + 1];
    } else if (flag == "--runs") {
      config.runs = std::atoi(argv[i + 1]);
    } else if (flag == "--limits") {
      limits = argv[i + 1];
    } else {
      return usage(argv[0]);
    }
  }
  if (config.spec.empty() || config.dir.empty() || config.runs < 1) return usage(argv[0]);
  std::istringstream limit_words(limits);
  for (std::string word; std::getline(limit_words, word, ',');) {
    config.limits.push_back(word == "max"
                                ? highest_nofile()
                                : static_cast<rlim_t>(std::strtoull(word.c_str(), nullptr, 10)));
  }
  // Lowering a hard limit cannot be undone without privilege, so the highest goes first.
  std::sort(config.limits.rbegin(), config.limits.rend());
  const std::vector<Peer> peers = read_spec(config.spec);
  if (peers.empty()) {
    std::fprintf(stderr, "no peers in %s\n", config.spec.c_str());
    return 2;
  }

  // Orphaned daemons come to us rather than to init, so a stopped one is reaped as soon as it
  // dies. Left to an init that reaps lazily, its zombie kept the PID-file wait below spinning
  // for a second after every launch.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    std::fprintf(stderr, "prctl(PR_SET_CHILD_SUBREAPER): %s\n", std::strerror(errno));
    return 1;
  }

  // medians[limit][peer]
  std::map<rlim_t, std::vector<double>> medians;
  bool all_ok = true;
  for (rlim_t limit : config.limits) {
    const rlimit wanted{limit, limit};
    if (setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
      std::fprintf(stderr, "setrlimit(RLIMIT_NOFILE, %llu): %s\n",
                   static_cast<unsigned long long>(limit), std::strerror(errno));
      return 1;
    }
    std::vector<std::vector<long long>> samples(peers.size());
    std::vector<std::size_t> order(peers.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::mt19937 shuffler(config.seed);
    for (int round = 0; round < config.runs; ++round) {
      std::shuffle(order.begin(), order.end(), shuffler);
      for (const std::size_t p : order) {
        if (auto us = launch_once(config, peers[p])) {
          samples[p].push_back(*us);
        } else {
          all_ok = false;
        }
      }
    }
    for (const auto& s : samples) medians[limit].push_back(median(s));
  }

  std::printf("launch latency: start -> launcher exits 0; median of %d runs; ratio to %s\n",
              config.runs, peers[0].name.c_str());
  std::printf("%-18s", "peer");
  for (auto it = config.limits.rbegin(); it != config.limits.rend(); ++it) {
    std::printf("  %12s %8s", ("us@" + std::to_string(*it)).c_str(), "ratio");
  }
  if (config.limits.size() >= 2) std::printf("  %12s", "high/low");
  std::printf("\n");
  for (std::size_t p = 0; p < peers.size(); ++p) {
    std::printf("%-18s", peers[p].name.c_str());
    // Printed low limit first, the way people read "from 1024 to the maximum".
    for (auto it = config.limits.rbegin(); it != config.limits.rend(); ++it) {
      const double m = medians[*it][p];
      const double ref = medians[*it][0];
      std::printf("  %12.0f %8.2f", m, ref > 0 ? m / ref : 0.0);
    }
    if (config.limits.size() >= 2) {
      const double low = medians[config.limits.back()][p];
      const double high = medians[config.limits.front()][p];
      std::printf("  %12.2f", low > 0 ? high / low : 0.0);
    }
    std::printf("\n");
  }
  return all_ok ? 0 : 1;
}
