#include "server_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

extern char** environ;

namespace daemonkit::bench {
namespace {

// Reaps `pid` if it has exited within `timeout_s`; true when it has.
bool reaped_within(pid_t pid, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Reads the port line from `fd` within `timeout_s`: digits, then a newline.
std::optional<std::uint16_t> read_port(int fd, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string line;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char chunk[64];
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got <= 0) return std::nullopt;
    line.append(chunk, static_cast<std::size_t>(got));
    const std::size_t end = line.find('\n');
    if (end == std::string::npos) continue;
    const long port = std::strtol(line.c_str(), nullptr, 10);
    if (port <= 0 || port > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(port);
  }
}

}  // namespace

std::optional<ServerProcess> ServerProcess::start(const std::vector<std::string>& argv, int backlog,
                                                  double timeout_s, std::optional<int> cpu) {
  std::vector<std::string> args = argv;
  args.emplace_back("--backlog");
  args.push_back(std::to_string(backlog));
  std::vector<char*> pointers;
  for (std::string& a : args) pointers.push_back(a.data());
  pointers.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    return std::nullopt;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  pid_t pid = 0;
  const int failed = ::posix_spawn(&pid, pointers[0], &actions, nullptr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (failed != 0) {
    ::close(out[0]);
    std::fprintf(stderr, "posix_spawn(%s): %s\n", pointers[0], std::strerror(failed));
    return std::nullopt;
  }
  // From here the pid is our unreaped child: signalling it cannot reach anyone else.
  ServerProcess server(pid, 0);
  if (cpu) {
    // Set before its port is read: everything the driver measures runs on this CPU.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*cpu, &set);
    if (::sched_setaffinity(pid, sizeof set, &set) != 0) {
      std::fprintf(stderr, "%s: sched_setaffinity(cpu %d): %s\n", pointers[0], *cpu,
                   std::strerror(errno));
      return std::nullopt;
    }
  }
  const auto port = read_port(out[0], timeout_s);
  ::close(out[0]);  // a server that prints more later gets EPIPE, not a stall
  if (!port) {
    std::fprintf(stderr, "%s: no port announced within %.0f s\n", pointers[0], timeout_s);
    return std::nullopt;
  }
  server.port_ = *port;
  return server;
}

ServerProcess::ServerProcess(ServerProcess&& other) noexcept
    : pid_(other.pid_), port_(other.port_) {
  other.pid_ = -1;
}

ServerProcess::~ServerProcess() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  if (!reaped_within(pid_, 2.0)) {
    ::kill(pid_, SIGKILL);
    reaped_within(pid_, 10.0);
  }
}

bool ServerProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
  pid_ = -1;
  return false;
}

std::optional<std::uint64_t> ServerProcess::cpu_ns() const {
  const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
  DIR* dir = ::opendir(tasks.c_str());
  if (dir == nullptr) return std::nullopt;
  std::uint64_t total = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(tasks + "/" + entry->d_name + "/schedstat");
    std::uint64_t on_cpu = 0;
    if (in >> on_cpu) total += on_cpu;
  }
  ::closedir(dir);
  return total;
}

std::optional<std::uint64_t> ServerProcess::rss_kib() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

}  // namespace daemonkit::bench
