// start_child on the real kernel: what the program finds when it starts (its descriptors, its
// directory, its signal dispositions and mask, its ids), an exec failure against a program
// exiting 127, and spawning while another thread forks and spawns.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/process/child_steps.h"
#include "daemonkit/core/process/start_child.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using ::testing::ElementsAre;

ChildPlan plan_for(std::string program, std::vector<std::string> argv,
                   std::vector<FdAssignment> fds, ChildOptions options = {}) {
  auto exec = ExecArguments::make(std::move(program), std::move(argv), {"PATH=/usr/bin:/bin"});
  EXPECT_TRUE(exec) << exec.error().message;
  auto map = ChildFdMap::make(fds);
  EXPECT_TRUE(map) << map.error().message;
  auto plan = ChildPlan::make(std::move(*exec), *map, std::move(options));
  EXPECT_TRUE(plan) << plan.error().message;
  return std::move(*plan);
}

// This process's open descriptors, without the one listing them.
std::set<int> open_fds() {
  std::set<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const int fd = std::atoi(entry->d_name);
    if (fd != ::dirfd(dir)) fds.insert(fd);
  }
  ::closedir(dir);
  return fds;
}

std::string link_of(const std::string& path) {
  std::array<char, PATH_MAX> buffer{};
  const ssize_t n = ::readlink(path.c_str(), buffer.data(), buffer.size() - 1);
  return n < 0 ? std::string() : std::string(buffer.data(), static_cast<std::size_t>(n));
}

struct Ran {
  std::optional<ExecFailure> failure;  // set: the child never ran the program
  std::string output;                  // what it wrote on child fd 1
  int status = -1;                     // its wait status, when it ran
};

// Starts `plan` (whose map gives child fd 1 as `out.write_end`), reads what the program writes
// until it closes its output (10 s at most), and reaps it.
Ran run(const ChildPlan& plan, const std::array<int, 2>& out) {
  sys::RealSyscalls os;
  Ran ran;
  auto start = start_child(os, plan);
  ::close(out[1]);
  EXPECT_TRUE(start) << sys::to_string(start.error());
  if (!start) {
    ::close(out[0]);
    return ran;
  }
  if (const auto* failed = std::get_if<ChildNotStarted>(&*start)) {
    ran.failure = failed->failure;
    ::close(out[0]);
    return ran;
  }
  std::array<char, 4096> buffer{};
  for (;;) {
    pollfd ready{out[0], POLLIN, 0};
    if (::poll(&ready, 1, 10000) != 1) {
      ADD_FAILURE() << "the program wrote nothing and kept its output open for 10 s";
      break;
    }
    const ssize_t n = ::read(out[0], buffer.data(), buffer.size());
    if (n <= 0) break;
    ran.output.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  const pid_t pid = std::get<ChildStarted>(*start).pid;
  EXPECT_EQ(::waitpid(pid, &ran.status, 0), pid);
  ::close(std::get<ChildStarted>(*start).pidfd);
  return ran;
}

std::array<int, 2> output_pipe() {
  std::array<int, 2> out{-1, -1};
  EXPECT_EQ(::pipe2(out.data(), O_CLOEXEC), 0);
  return out;
}

// "SigIgn:\t0000000000001000" -> the hex field of that line of /proc/<pid>/status text.
std::string status_field(const std::string& status, const std::string& name) {
  std::istringstream lines(status);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + ":", 0) == 0) {
      const auto start = line.find_first_not_of(" \t", name.size() + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  }
  return "<no " + name + ">";
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/daemonkit-spawn-XXXXXX";
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() {
    for (const std::string& file : files_) ::unlink(file.c_str());
    ::rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Creates `name` and opens it close-on-exec, as a careful parent holds what it passes on.
  int open_file(const std::string& name) {
    const std::string file = path_ + "/" + name;
    files_.push_back(file);
    return ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

TEST(SpawnChildOnLinux, TheProgramSeesExactlyItsMapWithASwapAndACycle) {
  TempDir dir;
  // 3 and 4 when the test starts with only 0-2 open: they trade places; c, d, e turn a cycle.
  std::map<char, int> fd;
  for (char name : {'a', 'b', 'c', 'd', 'e'}) {
    fd[name] = dir.open_file(std::string(1, name));
    ASSERT_GE(fd[name], 0);
  }
  auto out = output_pipe();
  const std::string out_link = link_of("/proc/self/fd/" + std::to_string(out[1]));
  const std::set<int> before = open_fds();
  const ChildPlan plan = plan_for("/bin/ls", {"ls", "-l", "/proc/self/fd/"},
                                  {{fd['a'], fd['b']},
                                   {fd['b'], fd['a']},
                                   {fd['c'], fd['d']},
                                   {fd['d'], fd['e']},
                                   {fd['e'], fd['c']},
                                   {1, out[1]}});
  const Ran ran = run(plan, out);
  ASSERT_FALSE(ran.failure) << describe(*ran.failure, "/bin/ls");
  EXPECT_TRUE(WIFEXITED(ran.status) && WEXITSTATUS(ran.status) == 0) << ran.output;
  // "lr-x------ 1 root root 64 Dec  2 08:40 3 -> /tmp/.../b", but for the directory ls reads.
  std::map<int, std::string> seen;
  std::istringstream lines(ran.output);
  for (std::string line; std::getline(lines, line);) {
    const auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    const std::string target = line.substr(arrow + 4);
    if (target.rfind("/proc/", 0) == 0) continue;
    const auto number = line.rfind(' ', arrow - 1);
    seen[std::atoi(line.c_str() + number + 1)] = target;
  }
  const std::string& base = dir.path();
  EXPECT_EQ(seen, (std::map<int, std::string>{{1, out_link},
                                              {fd['a'], base + "/b"},
                                              {fd['b'], base + "/a"},
                                              {fd['c'], base + "/d"},
                                              {fd['d'], base + "/e"},
                                              {fd['e'], base + "/c"}}))
      << ran.output;
  for (const auto& [name, number] : fd) ::close(number);
  std::set<int> expected = before;
  for (const auto& [name, number] : fd) expected.erase(number);
  expected.erase(out[1]);
  expected.erase(out[0]);
  EXPECT_EQ(open_fds(), expected);
}

TEST(SpawnChildOnLinux, TheProgramStartsInItsWorkingDirectory) {
  TempDir dir;
  auto out = output_pipe();
  ChildOptions options;
  options.working_directory = dir.path();
  const Ran ran = run(plan_for("/bin/pwd", {"pwd", "-P"}, {{1, out[1]}}, options), out);
  ASSERT_FALSE(ran.failure) << describe(*ran.failure, "/bin/pwd");
  std::array<char, PATH_MAX> real{};
  ASSERT_NE(::realpath(dir.path().c_str(), real.data()), nullptr);
  EXPECT_EQ(ran.output, std::string(real.data()) + "\n");
}

// A parent ignoring SIGTERM, catching SIGUSR1 and blocking SIGINT: its child's program sees
// every disposition at default and the mask it was given (empty unless asked).
TEST(SpawnChildOnLinux, TheProgramStartsWithDefaultDispositionsAndItsOwnMask) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction handler {};
  handler.sa_handler = [](int) {};
  struct sigaction old_term {};
  struct sigaction old_usr1 {};
  ASSERT_EQ(::sigaction(SIGTERM, &ignore, &old_term), 0);
  ASSERT_EQ(::sigaction(SIGUSR1, &handler, &old_usr1), 0);
  sigset_t blocked;
  sigset_t old_mask;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &old_mask), 0);

  auto out = output_pipe();
  const Ran plain = run(plan_for("/bin/cat", {"cat", "/proc/self/status"}, {{1, out[1]}}), out);
  out = output_pipe();
  ChildOptions masked;
  sigaddset(&masked.signal_mask, SIGUSR2);
  const Ran with_mask =
      run(plan_for("/bin/cat", {"cat", "/proc/self/status"}, {{1, out[1]}}, masked), out);

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);

  ASSERT_FALSE(plain.failure);
  EXPECT_EQ(status_field(plain.output, "SigIgn"), "0000000000000000");
  EXPECT_EQ(status_field(plain.output, "SigCgt"), "0000000000000000");
  EXPECT_EQ(status_field(plain.output, "SigBlk"), "0000000000000000");
  ASSERT_FALSE(with_mask.failure);
  EXPECT_EQ(status_field(with_mask.output, "SigBlk"), "0000000000000800");  // SIGUSR2 = 12
  EXPECT_EQ(status_field(with_mask.output, "SigIgn"), "0000000000000000");
}

TEST(SpawnChildOnLinux, AsRootTheProgramRunsAsNobodyWithOnlyItsGroups) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching to nobody needs root";
  auto out = output_pipe();
  ChildOptions options;
  options.ids = ChildIds{65534, 65534, {}};
  const Ran ran =
      run(plan_for("/bin/cat", {"cat", "/proc/self/status"}, {{1, out[1]}}, options), out);
  ASSERT_FALSE(ran.failure) << describe(*ran.failure, "/bin/cat");
  EXPECT_EQ(status_field(ran.output, "Uid"), "65534\t65534\t65534\t65534");
  EXPECT_EQ(status_field(ran.output, "Gid"), "65534\t65534\t65534\t65534");
  EXPECT_EQ(status_field(ran.output, "Groups"), "65534 ");
  EXPECT_EQ(::geteuid(), 0U);  // the parent's ids are its own
}

TEST(SpawnChildOnLinux, AMissingProgramIsAnExecFailureNotAnExitStatus) {
  sys::RealSyscalls os;
  const std::set<int> before = open_fds();
  auto start = start_child(os, plan_for("/no/such", {"such"}, {}));
  ASSERT_TRUE(start) << sys::to_string(start.error());
  const auto* failed = std::get_if<ChildNotStarted>(&*start);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->failure, (ExecFailure{ChildStep::kExec, ENOENT}));
  EXPECT_EQ(describe(failed->failure, "/no/such"),
            "exec /no/such: No such file or directory (ENOENT)");
  // Already reaped: nothing is left to wait for.
  EXPECT_EQ(::waitpid(failed->pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_EQ(open_fds(), before);
}

TEST(SpawnChildOnLinux, AProgramExiting127HasStarted) {
  sys::RealSyscalls os;
  auto start = start_child(os, plan_for("/bin/sh", {"sh", "-c", "exit 127"}, {}));
  ASSERT_TRUE(start) << sys::to_string(start.error());
  const auto* started = std::get_if<ChildStarted>(&*start);
  ASSERT_NE(started, nullptr);
  int status = 0;
  ASSERT_EQ(::waitpid(started->pid, &status, 0), started->pid);
  ::close(started->pidfd);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 127);
}

// Another thread forks (a child that exits at once, holding copies of every descriptor
// meanwhile, the report pipe's write end included) and posix_spawns, in a loop, while this one
// starts programs and fails to start one in five: no hang, no crash, every status right.
TEST(SpawnChildOnLinux, SpawnsWhileAnotherThreadForksAndSpawns) {
  std::atomic<bool> stop{false};
  std::atomic<int> other_rounds{0};
  std::atomic<int> other_wrong{0};
  std::thread other([&] {
    char true_name[] = "true";
    char* const argv[] = {true_name, nullptr};
    char* const envp[] = {nullptr};
    while (!stop.load()) {
      const pid_t forked = ::fork();
      if (forked == 0) ::_exit(7);
      int status = 0;
      if (forked < 0 || ::waitpid(forked, &status, 0) != forked || !WIFEXITED(status) ||
          WEXITSTATUS(status) != 7) {
        ++other_wrong;
      }
      pid_t spawned = 0;
      if (::posix_spawn(&spawned, "/bin/true", nullptr, nullptr, argv, envp) != 0 ||
          ::waitpid(spawned, &status, 0) != spawned || !WIFEXITED(status) ||
          WEXITSTATUS(status) != 0) {
        ++other_wrong;
      }
      ++other_rounds;
    }
  });
  sys::RealSyscalls os;
  constexpr int kRounds = 200;
  for (int i = 0; i < kRounds; ++i) {
    if (i % 5 == 4) {
      auto start = start_child(os, plan_for("/no/such", {"such"}, {}));
      ASSERT_TRUE(start) << sys::to_string(start.error());
      ASSERT_TRUE(std::holds_alternative<ChildNotStarted>(*start)) << "round " << i;
      EXPECT_EQ(std::get<ChildNotStarted>(*start).failure, (ExecFailure{ChildStep::kExec, ENOENT}));
      continue;
    }
    const int code = i % 100;
    auto start =
        start_child(os, plan_for("/bin/sh", {"sh", "-c", "exit " + std::to_string(code)}, {}));
    ASSERT_TRUE(start) << sys::to_string(start.error());
    const auto* started = std::get_if<ChildStarted>(&*start);
    ASSERT_NE(started, nullptr) << "round " << i << ": "
                                << describe(std::get<ChildNotStarted>(*start).failure, "/bin/sh");
    int status = 0;
    ASSERT_EQ(::waitpid(started->pid, &status, 0), started->pid);
    ::close(started->pidfd);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == code) << "round " << i;
  }
  stop = true;
  other.join();
  EXPECT_GT(other_rounds.load(), 0);
  EXPECT_EQ(other_wrong.load(), 0);
}

// The id switch in the child changes the child alone, not the threads of the parent whose
// memory it runs in (glibc's set*id would broadcast the change to "every thread").
TEST(SpawnChildOnLinux, ASwitchOfIdsWhileAnotherThreadRunsLeavesThatThreadAlone) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching to nobody needs root";
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread other([&] {
    tid = ::gettid();
    while (!stop.load()) std::this_thread::yield();
  });
  while (tid.load() == 0) std::this_thread::yield();
  sys::RealSyscalls os;
  ChildOptions options;
  options.ids = ChildIds{65534, 65534, {}};
  for (int i = 0; i < 20; ++i) {
    auto start = start_child(os, plan_for("/bin/true", {"true"}, {}, options));
    ASSERT_TRUE(start) << sys::to_string(start.error());
    const auto* started = std::get_if<ChildStarted>(&*start);
    ASSERT_NE(started, nullptr);
    int status = 0;
    ASSERT_EQ(::waitpid(started->pid, &status, 0), started->pid);
    ::close(started->pidfd);
    EXPECT_EQ(status, 0);
  }
  std::array<char, 8192> text{};
  const std::string path = "/proc/self/task/" + std::to_string(tid.load()) + "/status";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const ssize_t n = ::read(fd, text.data(), text.size() - 1);
  ::close(fd);
  stop = true;
  other.join();
  ASSERT_GT(n, 0);
  const std::string status(text.data(), static_cast<std::size_t>(n));
  EXPECT_EQ(status_field(status, "Uid"), "0\t0\t0\t0");
  EXPECT_EQ(status_field(status, "Gid"), "0\t0\t0\t0");
  EXPECT_EQ(::geteuid(), 0U);
}

}  // namespace
}  // namespace daemonkit::core
