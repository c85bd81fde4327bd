// The sample unit files (examples/systemd/) run as systemd would run them, without systemd: each
// ExecStart= is read from its file, its paths moved into a scratch directory owned by the
// unit's user (as a RuntimeDirectory= would be) and its port made 0, and it is started as its
// Type= says. Type=forking: the start command must exit 0 only once echod answers, leaving a
// live pid in PIDFile=; Type=notify: the main pid itself must say READY=1 (NotifyAccess=main,
// checked by its credentials), keep the watchdog fed at WATCHDOG_USEC / 2, and say STOPPING=1
// when systemd's SIGTERM arrives. echod's own log (app::run) is rotated by SIGUSR1 and reopened
// by SIGHUP on the way. Each ends by that SIGTERM (or by its ExecStop=), which a
// manager counts as a clean stop. The test is the subreaper, so a daemon that double-forked
// is its child and can be waited for, and signalling it cannot reach a stranger.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "cli_runner.h"

namespace {

using namespace daemonkit_cli_test;
using ::testing::HasSubstr;

struct Unit {
  std::string type;
  std::vector<std::string> exec_start;
  std::vector<std::string> exec_stop;
  std::string pid_file;
};

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

// The [Service] keys these units use; a line ending in '\' continues on the next.
Unit read_unit(const fs::path& path) {
  std::istringstream in(read_file(path));
  Unit unit;
  std::string logical;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\\') {
      logical += line.substr(0, line.size() - 1);
      continue;
    }
    logical += line;
    const auto eq = logical.find('=');
    if (!logical.starts_with('#') && eq != std::string::npos) {
      const std::string key = logical.substr(0, eq);
      const std::string value = logical.substr(eq + 1);
      if (key == "Type") unit.type = value;
      if (key == "ExecStart") unit.exec_start = words(value);
      if (key == "ExecStop") unit.exec_stop = words(value);
      if (key == "PIDFile") unit.pid_file = value;
    }
    logical.clear();
  }
  return unit;
}

class EchodUnits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the units drop to the user nobody: needs root";
    const passwd* nobody = getpwnam("nobody");
    if (nobody == nullptr) GTEST_SKIP() << "no user nobody on this machine";
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char tmpl[] = "/tmp/daemonkit-units-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(chown(tmpl, nobody->pw_uid, nobody->pw_gid), 0);
    ASSERT_EQ(chmod(tmpl, 0755), 0);
  }
  void TearDown() override {
    for (pid_t pid : started_) {
      if (waitpid(pid, nullptr, WNOHANG) == 0) kill(pid, SIGKILL);  // ours, still unreaped
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  // The unit's command with this machine's binaries, the scratch directory for /run and
  // /var/log, and a port the kernel picks.
  std::vector<std::string> localize(const std::vector<std::string>& command) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < command.size(); ++i) {
      std::string word = command[i];
      if (word == "/usr/local/bin/daemonkit") word = daemonkit_bin();
      if (word == "/usr/local/bin/echod") word = ECHOD_BIN;
      if (word.starts_with("/run/") || word.starts_with("/var/log/")) {
        word = (dir_ / fs::path(word).filename()).string();
      }
      if (i > 0 && command[i - 1] == "--port") word = "0";
      out.push_back(word);
    }
    return out;
  }

  // Forks and execs `command` with `env` added, stdout and stderr into files of the scratch
  // directory. "NAME=" entries are filled with the child's pid, as systemd sets LISTEN_PID
  // and WATCHDOG_PID to the pid it starts.
  pid_t start(const std::vector<std::string>& command, std::vector<std::string> env = {},
              const std::vector<std::string>& pid_valued = {}) {
    std::vector<std::string> all;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (!entry.starts_with("NOTIFY_SOCKET=") && !entry.starts_with("WATCHDOG_") &&
          !entry.starts_with("LISTEN_") && !entry.starts_with("DAEMONKIT_")) {
        all.push_back(entry);
      }
    }
    for (auto& e : env) all.push_back(e);
    std::vector<std::size_t> fill;
    for (const auto& name : pid_valued) {
      all.push_back(name + "=" + std::string(16, '\0'));
      fill.push_back(all.size() - 1);
    }
    std::vector<std::string> argv_s = command;
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : all) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string out_path = (dir_ / "stdout").string();
    const std::string err_path = (dir_ / "stderr").string();
    const pid_t child = fork();
    if (child == 0) {
      // ---- Child: async-signal-safe calls only until exec. ----
      for (std::size_t index : fill)
        write_own_pid(envp[index] + std::string_view(envp[index]).size());
      const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0 || dup2(out, 1) != 1 || dup2(err, 2) != 2) _exit(126);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    if (child > 0) started_.push_back(child);
    return child;
  }

  // The wait status of our child `pid`, or nullopt if it did not end within `limit`.
  static std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds limit) {
    int status = 0;
    if (eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, limit)) return status;
    return std::nullopt;
  }

  // The port echod logged ("listening on 127.0.0.1:N") in `file`.
  static int logged_port(const fs::path& file) {
    std::smatch match;
    std::string text;
    eventually([&] {
      text = read_file(file);
      return std::regex_search(text, match, std::regex("listening on 127\\.0\\.0\\.1:([0-9]+)"));
    });
    return match.empty() ? 0 : std::stoi(match[1].str());
  }

  fs::path dir_;
  std::vector<pid_t> started_;
};

const fs::path kUnits = ECHOD_UNITS_DIR;

TEST_F(EchodUnits, EachForkingUnitIsReadyWhenItsStartExitsAndStopsAsItsUnitSays) {
  for (const char* name : {"echod-app.service", "echod-forking.service"}) {
    SCOPED_TRACE(name);
    const Unit unit = read_unit(kUnits / name);
    ASSERT_EQ(unit.type, "forking");
    ASSERT_FALSE(unit.exec_start.empty());
    ASSERT_FALSE(unit.pid_file.empty());
    const fs::path pid_file = localize({unit.pid_file}).front();
    const fs::path log = dir_ / "echod.log";
    fs::remove(log);

    const pid_t command = start(localize(unit.exec_start));
    ASSERT_GT(command, 0);
    const auto started = wait_for(command, std::chrono::seconds(30));
    ASSERT_TRUE(started) << "the start command did not exit";
    ASSERT_TRUE(WIFEXITED(*started) && WEXITSTATUS(*started) == 0)
        << "status " << *started << ": " << read_file(dir_ / "stderr");
    // Type=forking reads PIDFile= as soon as the start command exits: it must be there, and
    // name a live process of this start (our descendant, so our child as the subreaper).
    const pid_t main_pid = std::atoi(read_file(pid_file).c_str());
    ASSERT_GT(main_pid, 1) << "no pid in " << pid_file;
    started_.push_back(main_pid);
    ASSERT_EQ(waitpid(main_pid, nullptr, WNOHANG), 0) << "PIDFile= names no child of ours";
    const int port = logged_port(log);
    ASSERT_GT(port, 0) << read_file(log);
    EXPECT_EQ(echo_through(port, "unit\n"), "unit\n");
    if (unit.exec_start.front().ends_with("/echod")) {
      // An app::run daemon's own log: SIGUSR1 rotates it (twistd), SIGHUP reopens it by name
      // after a logrotate-style rename, as the dropped user.
      ASSERT_EQ(kill(main_pid, SIGUSR1), 0);
      EXPECT_TRUE(eventually([&] { return fs::exists(log.string() + ".1"); }))
          << "SIGUSR1 did not rotate the log";
      EXPECT_THAT(read_file(log.string() + ".1"), HasSubstr("listening on"));
      fs::rename(log, dir_ / "echod.log.renamed");
      ASSERT_EQ(kill(main_pid, SIGHUP), 0);
      EXPECT_TRUE(eventually([&] { return fs::exists(log); })) << "SIGHUP did not reopen";
    }

    std::optional<int> ended;
    if (unit.exec_stop.empty()) {
      // No ExecStop=: systemd sends SIGTERM to the main pid.
      ASSERT_EQ(kill(main_pid, SIGTERM), 0);
      ended = wait_for(main_pid, std::chrono::seconds(10));
      ASSERT_TRUE(ended) << "the daemon did not stop on SIGTERM";
      EXPECT_TRUE(WIFSIGNALED(*ended) && WTERMSIG(*ended) == SIGTERM) << "status " << *ended;
    } else {
      const pid_t stop = start(localize(unit.exec_stop));
      const auto stopped = wait_for(stop, std::chrono::seconds(20));
      ASSERT_TRUE(stopped) << "ExecStop= did not exit";
      EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << read_file(dir_ / "stderr");
      ended = wait_for(main_pid, std::chrono::seconds(10));
      ASSERT_TRUE(ended) << "the daemon outlived ExecStop=";
    }
    EXPECT_FALSE(fs::exists(pid_file)) << "PIDFile= left behind";
    EXPECT_THAT(read_file(log), HasSubstr("Server Shut Down."));
  }
}

// What a Type=notify manager reads on $NOTIFY_SOCKET: each datagram's text and its sender.
struct Notification {
  std::string text;
  pid_t sender = 0;
};

std::optional<Notification> next_notification(int socket_fd, std::chrono::milliseconds limit) {
  pollfd p{socket_fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(limit.count())) != 1) return std::nullopt;
  char buffer[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  iovec iov{buffer, sizeof buffer};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = recvmsg(socket_fd, &msg, MSG_DONTWAIT);
  if (n < 0) return std::nullopt;
  Notification note{std::string(buffer, static_cast<std::size_t>(n))};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      note.sender = cred.pid;
    }
  }
  return note;
}

// Notifications until one contains `wanted` (each must come from `main_pid`); the count of
// WATCHDOG=1 among them goes to `keep_alives`.
bool await_notification(int socket_fd, pid_t main_pid, const std::string& wanted, int& keep_alives,
                        std::vector<std::string>& heard) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto note = next_notification(socket_fd, left);
    if (!note) return false;
    heard.push_back(note->text);
    EXPECT_EQ(note->sender, main_pid) << "NotifyAccess=main: from another pid: " << note->text;
    if (note->text.find("WATCHDOG=1") != std::string::npos) ++keep_alives;
    if (note->text.find(wanted) != std::string::npos) return true;
  }
  return false;
}

TEST_F(EchodUnits, TheNotifyUnitsMainPidSaysReadyFeedsTheWatchdogAndSaysStopping) {
  const Unit unit = read_unit(kUnits / "echod-notify.service");
  ASSERT_EQ(unit.type, "notify");
  const int manager = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(manager, 0);
  const int on = 1;
  ASSERT_EQ(setsockopt(manager, SOL_SOCKET, SO_PASSCRED, &on, sizeof on), 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = (dir_ / "notify").string();
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(manager, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);  // the daemon sends as nobody

  // Keep-alives at half of WATCHDOG_USEC: every 100 ms here.
  const pid_t main_pid = start(localize(unit.exec_start),
                               {"NOTIFY_SOCKET=" + path, "WATCHDOG_USEC=200000"}, {"WATCHDOG_PID"});
  ASSERT_GT(main_pid, 0);
  int keep_alives = 0;
  std::vector<std::string> heard;
  ASSERT_TRUE(await_notification(manager, main_pid, "READY=1", keep_alives, heard))
      << "no READY=1; stderr: " << read_file(dir_ / "stderr");
  const int port = logged_port(dir_ / "stdout");
  ASSERT_GT(port, 0) << read_file(dir_ / "stdout");
  EXPECT_EQ(echo_through(port, "notify\n"), "notify\n");
  int fed = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(await_notification(manager, main_pid, "WATCHDOG=1", fed, heard));
  }
  EXPECT_EQ(fed, 3);

  ASSERT_EQ(kill(main_pid, SIGTERM), 0);  // ours, unreaped
  EXPECT_TRUE(await_notification(manager, main_pid, "STOPPING=1", keep_alives, heard))
      << testing::PrintToString(heard);
  const auto ended = wait_for(main_pid, std::chrono::seconds(10));
  ASSERT_TRUE(ended) << "the main pid did not stop on SIGTERM";
  EXPECT_TRUE(WIFSIGNALED(*ended) && WTERMSIG(*ended) == SIGTERM) << "status " << *ended;
  EXPECT_THAT(read_file(dir_ / "stdout"), HasSubstr("Server Shut Down."));
  close(manager);
}

}  // namespace
