#include "peer_cases.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

namespace daemonkit::bench {
namespace {

bool reap(const char* who, pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::fprintf(stderr, "%s: waitpid: %s\n", who, std::strerror(errno));
      return false;
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::fprintf(stderr, "%s: child ended with wait status %d\n", who, status);
  return false;
}

// posix_spawn with stdin and stdout replaced by the given fds (-1: inherited).
pid_t spawn(const char* who, char* const argv[], char* const envp[], int stdin_fd, int stdout_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv, envp);
  posix_spawn_file_actions_destroy(&actions);
  if (error == 0) return pid;
  std::fprintf(stderr, "%s: posix_spawn(%s): %s\n", who, argv[0], std::strerror(error));
  return -1;
}

struct UvChild {
  uv_process_t process{};
  int64_t exit_status = -1;
  int term_signal = 0;
  bool closed = false;
};

void on_uv_closed(uv_handle_t* handle) { static_cast<UvChild*>(handle->data)->closed = true; }

void on_uv_exit(uv_process_t* process, int64_t exit_status, int term_signal) {
  auto* child = static_cast<UvChild*>(process->data);
  child->exit_status = exit_status;
  child->term_signal = term_signal;
  uv_close(reinterpret_cast<uv_handle_t*>(process), on_uv_closed);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

bool spawn_and_reap_posix_spawn(char* const argv[], char* const envp[]) {
  const pid_t pid = spawn("posix_spawn", argv, envp, -1, -1);
  return pid > 0 && reap("posix_spawn", pid);
}

bool spawn_and_reap_fork(char* const argv[], char* const envp[]) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "fork: %s\n", std::strerror(errno));
    return false;
  }
  if (pid == 0) {
    ::execve(argv[0], argv, envp);
    ::_exit(127);
  }
  return reap("fork", pid);
}

bool spawn_and_reap_uv(uv_loop_t& loop, char* const argv[], char* const envp[]) {
  UvChild child;
  child.process.data = &child;
  uv_stdio_container_t stdio[3];
  for (int fd = 0; fd < 3; ++fd) {
    stdio[fd].flags = UV_INHERIT_FD;
    stdio[fd].data.fd = fd;
  }
  uv_process_options_t options{};
  options.exit_cb = on_uv_exit;
  options.file = argv[0];
  options.args = const_cast<char**>(argv);
  options.env = const_cast<char**>(envp);
  options.stdio_count = 3;
  options.stdio = stdio;
  const int spawned = uv_spawn(&loop, &child.process, &options);
  if (spawned != 0) {
    // The handle is initialised even when uv_spawn fails, and must be closed.
    uv_close(reinterpret_cast<uv_handle_t*>(&child.process), on_uv_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    std::fprintf(stderr, "uv_spawn(%s): %s\n", argv[0], uv_strerror(spawned));
    return false;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (child.closed && child.exit_status == 0 && child.term_signal == 0) return true;
  std::fprintf(stderr, "uv_spawn: child exit status %lld, signal %d\n",
               static_cast<long long>(child.exit_status), child.term_signal);
  return false;
}

void move_to_cpu(pid_t pid, int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(pid, sizeof set, &set) != 0) {
    std::fprintf(stderr, "sched_setaffinity(%d, cpu %d): %s\n", static_cast<int>(pid), cpu,
                 std::strerror(errno));
  }
}

bool pump_through_cat_raw(std::size_t total, std::size_t chunk, char* const envp[], RawWait wait,
                          int cat_cpu) {
  int to_cat[2];
  int from_cat[2];
  if (::pipe2(to_cat, O_CLOEXEC) != 0) return false;
  if (::pipe2(from_cat, O_CLOEXEC) != 0) {
    ::close(to_cat[0]);
    ::close(to_cat[1]);
    return false;
  }
  char cat_path[] = "/bin/cat";
  char* const argv[] = {cat_path, nullptr};
  const pid_t pid = spawn("raw pipe", argv, envp, to_cat[0], from_cat[1]);
  if (pid > 0) move_to_cpu(pid, cat_cpu);
  close_fd(to_cat[0]);
  close_fd(from_cat[1]);
  int& input = to_cat[1];
  int& output = from_cat[0];
  if (pid < 0) {
    close_fd(input);
    close_fd(output);
    return false;
  }
  ::fcntl(input, F_SETFL, O_NONBLOCK);
  ::fcntl(output, F_SETFL, O_NONBLOCK);
  int epfd = -1;
  if (wait != RawWait::kPoll) {
    epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
      std::fprintf(stderr, "raw pipe: epoll_create1: %s\n", std::strerror(errno));
      close_fd(input);  // cat sees end of file and ends
      close_fd(output);
      (void)reap("raw pipe", pid);
      return false;
    }
    epoll_event in_event{EPOLLOUT, {.fd = input}};
    epoll_event out_event{EPOLLIN, {.fd = output}};
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, input, &in_event);
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, output, &out_event);
  }
  // An epoll set forgets a descriptor only once every reference to its file is closed: removed
  // first, so no stale event names a number that is closed.
  const auto drop = [&](int& fd) {
    if (epfd >= 0) ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    close_fd(fd);
  };
  const std::vector<char> source(chunk, 'x');
  std::vector<char> sink(chunk);
  std::size_t written = 0;
  std::size_t came_back = 0;
  bool failed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  // One write of at most a chunk, or one read of at most a chunk.
  const auto write_once = [&] {
    const ssize_t n = ::write(input, source.data(), std::min(chunk, total - written));
    if (n > 0) {
      written += static_cast<std::size_t>(n);
      if (written == total) drop(input);
    } else if (errno != EAGAIN) {
      std::fprintf(stderr, "raw pipe: write: %s\n", std::strerror(errno));
      failed = true;
    }
  };
  const auto read_once = [&] {
    const ssize_t n = ::read(output, sink.data(), sink.size());
    if (n > 0) {
      came_back += static_cast<std::size_t>(n);
    } else if (n == 0) {
      drop(output);
    } else if (errno != EAGAIN) {
      std::fprintf(stderr, "raw pipe: read: %s\n", std::strerror(errno));
      failed = true;
    }
  };
  while ((input >= 0 || output >= 0) && !failed) {
    // The ready descriptors, in the order they are served.
    int order[2] = {-1, -1};
    int ready = 0;
    if (epfd >= 0) {
      epoll_event events[2];
      ready = ::epoll_wait(epfd, events, 2, 100);
      for (int i = 0; i < ready; ++i) order[i] = events[i].data.fd;
      if (wait == RawWait::kEpoll && ready == 2 && order[0] == output)
        std::swap(order[0], order[1]);
    } else {
      pollfd fds[2] = {{input, POLLOUT, 0}, {output, POLLIN, 0}};
      ready = ::poll(fds, 2, 100);
      int served = 0;
      for (const pollfd& p : fds) {
        if (ready > 0 && p.revents != 0) order[served++] = p.fd;
      }
    }
    if (ready < 0 && errno != EINTR) {
      std::fprintf(stderr, "raw pipe: wait: %s\n", std::strerror(errno));
      failed = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "raw pipe: no end after 60 s\n");
      failed = true;
    }
    for (const int fd : order) {
      if (failed || fd < 0) break;
      if (fd == input) {
        write_once();
      } else if (fd == output) {
        read_once();
      }
    }
  }
  close_fd(input);
  close_fd(output);
  close_fd(epfd);
  // With both pipes closed cat ends (end of file, or EPIPE on its next write), so this wait is
  // bounded even after a failure.
  const bool reaped = reap("raw pipe", pid);
  if (failed || !reaped) return false;
  if (came_back != total) {
    std::fprintf(stderr, "raw pipe: cat gave back %zu of %zu bytes\n", came_back, total);
    return false;
  }
  return true;
}

std::optional<double> twisted_spawn_rate(const std::string& python, const std::string& script,
                                         int spawns, int resident_mib, std::string& versions) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
  const std::string spawns_arg = std::to_string(spawns);
  const std::string resident_arg = std::to_string(resident_mib);
  const char* const args[] = {
      python.c_str(),   script.c_str(),       "--spawns", spawns_arg.c_str(),
      "--resident-mib", resident_arg.c_str(), nullptr};
  const pid_t pid = spawn("twisted", const_cast<char* const*>(args), environ, -1, out[1]);
  ::close(out[1]);
  std::string text;
  bool timed_out = false;
  if (pid > 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    char buffer[4096];
    for (;;) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 1000) < 0 && errno != EINTR) break;
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        ::kill(pid, SIGKILL);  // unreaped, so the pid is still our child's
        break;
      }
      if ((p.revents & (POLLIN | POLLHUP)) == 0) continue;
      const ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(out[0]);
  if (pid <= 0) return std::nullopt;
  const bool ok = reap("twisted", pid);
  if (timed_out) std::fprintf(stderr, "twisted: no end after 5 minutes\n");
  const std::size_t at = text.find(" spawns_per_s ");
  if (!ok || timed_out || at == std::string::npos) {
    std::fprintf(stderr, "twisted: unexpected output: %s\n", text.c_str());
    return std::nullopt;
  }
  versions = text.substr(0, at);
  return std::strtod(text.c_str() + at + 14, nullptr);
}

}  // namespace daemonkit::bench
