// Running the `daemonkit` binary as a user would, for the black-box tests: exit status, stdout
// and stderr, with a 30 s guard so a hang fails one test instead of the run; plus small helpers
// to read files and wait for processes.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace daemonkit_cli_test {

namespace fs = std::filesystem;

inline std::string daemonkit_bin() {
  const char* installed = std::getenv("DAEMONKIT_BIN");
  return installed != nullptr && installed[0] != '\0' ? installed : DAEMONKIT_BUILD_BIN;
}

struct Outcome {
  int code = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
  pid_t pid = 0;
};

struct RunSpec {
  std::vector<std::string> env_extra;  // KEY=VALUE added (or replacing) in the environment
  std::vector<std::string> env_drop;   // keys removed
  std::optional<uid_t> as_uid;         // run daemonkit itself as this user (needs root)
  std::optional<mode_t> umask;
  std::string cwd;
  // A descriptor daemonkit inherits at this number, open on /dev/null without FD_CLOEXEC, as a
  // careless caller leaves one.
  std::optional<int> inherited_fd;
  // A command that execs daemonkit with the rest of its argv (to start it in a state a shell or
  // supervisor may leave, e.g. with SIGCHLD ignored); its argv[0] is an absolute path.
  std::vector<std::string> prefix;
};

// Runs `daemonkit ARGS...` and collects its exit status and output; kills it after 30 s so a
// hang fails the test instead of the whole run.
inline Outcome run_with(const std::vector<std::string>& args, const RunSpec& spec = {}) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) std::abort();
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& d : spec.env_drop) drop = drop || d == key;
    for (const auto& x : spec.env_extra) drop = drop || x.substr(0, x.find('=')) == key;
    if (!drop) env.push_back(entry);
  }
  for (const auto& x : spec.env_extra) env.push_back(x);
  std::vector<std::string> argv_s = spec.prefix;
  argv_s.push_back(daemonkit_bin());
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    // ---- Child: async-signal-safe calls only until exec. ----
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    const int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    if (spec.inherited_fd && dup2(null_fd, *spec.inherited_fd) < 0) _exit(124);
    if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) _exit(125);
    if (spec.umask) umask(*spec.umask);
    if (spec.as_uid) {
      const gid_t g = 65534;
      if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 ||
          setresuid(*spec.as_uid, *spec.as_uid, *spec.as_uid) != 0) {
        _exit(126);
      }
    }
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  Outcome run;
  run.pid = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  int open_count = 2;
  while (open_count > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << "daemonkit did not finish within 30 s";
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (auto& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

inline Outcome run(const std::vector<std::string>& args) { return run_with(args); }

inline RunSpec spec_umask(mode_t mask) {
  RunSpec spec;
  spec.umask = mask;
  return spec;
}
inline RunSpec spec_env(std::vector<std::string> extra) {
  RunSpec spec;
  spec.env_extra = std::move(extra);
  return spec;
}
inline RunSpec spec_cwd(std::string cwd) {
  RunSpec spec;
  spec.cwd = std::move(cwd);
  return spec;
}
inline RunSpec spec_uid(uid_t uid) {
  RunSpec spec;
  spec.as_uid = uid;
  return spec;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::map<std::string, std::string> parse_report(const std::string& text) {
  std::map<std::string, std::string> report;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) report[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return report;
}

// Alive and not a zombie: a daemon's exit is reaped by whichever ancestor adopted it, maybe
// later than the test looks, and a zombie has already stopped for every purpose here.
inline bool process_alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  const std::string stat = [&] {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }();
  const auto close_paren = stat.rfind(')');
  return close_paren == std::string::npos || stat.size() < close_paren + 3 ||
         stat[close_paren + 2] != 'Z';
}

// Sends `line` to a TCP server on 127.0.0.1:port and returns what came back, up to as many
// bytes; each read waits at most 5 s, so a server that never answers fails the test, not the run.
inline std::string echo_through(int port, const std::string& line) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval bound{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
    char buffer[256];
    while (reply.size() < line.size()) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      reply.append(buffer, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return reply;
}

// In a forked child before exec (async-signal-safe): getpid()'s digits at `at`, then a NUL, as
// systemd fills LISTEN_PID and WATCHDOG_PID with the pid it starts. `at` needs 11 bytes.
inline void write_own_pid(char* at) {
  char digits[16];
  int n = 0;
  for (pid_t p = getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
  while (n > 0) *at++ = digits[--n];
  *at = '\0';
}

// Waits for `pred` up to `limit`.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace daemonkit_cli_test
