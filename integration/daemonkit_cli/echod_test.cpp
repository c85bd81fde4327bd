// The README's main job as a test: echod started by the daemonkit binary with each readiness
// protocol it speaks, echoing over loopback, stopped through its PID file; and its one startup
// failure (a busy port) reaching the shell in echod's own words; and echod serving on a socket
// handed to it by socket activation through `daemonkit run --nodaemon`, as systemd does.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "cli_runner.h"

namespace {

using namespace daemonkit_cli_test;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::string kEchod = ECHOD_BIN;

class Echod : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/daemonkit-echod-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (fs::exists(dir_ / "echod.pid"))
      (void)run({"stop", "--pidfile", pidfile(), "--timeout", "2"});
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string pidfile() const { return (dir_ / "echod.pid").string(); }
  std::string logfile() const { return (dir_ / "echod.log").string(); }

  // The port echod logged once it listened.
  int logged_port() {
    std::smatch match;
    std::string log;
    EXPECT_TRUE(eventually([&] {
      log = read_file(logfile());
      return std::regex_search(log, match, std::regex("listening on 127\\.0\\.0\\.1:([0-9]+)"));
    }));
    return match.empty() ? 0 : std::stoi(match[1].str());
  }

  fs::path dir_;
};

TEST_F(Echod, EchoesUnderEachReadinessProtocolAndStopsCleanly) {
  for (const char* mode : {"--ready=pipe", "--ready=notify", "--ready=exec"}) {
    std::filesystem::remove(logfile());
    std::vector<std::string> args = {"run",     "--pidfile", pidfile(),   "--logfile",
                                     logfile(), mode,        "--timeout", "10",
                                     "--",      kEchod,      "--nodaemon"};
    // An application speaks sd_notify only when asked to.
    if (std::string_view(mode) == "--ready=notify") args.emplace_back("--ready");
    for (const char* word : {"echo", "--port", "0"}) args.emplace_back(word);
    Outcome started = run(args);
    ASSERT_EQ(started.code, 0) << mode << ": " << started.err;
    EXPECT_THAT(started.err, IsEmpty());
    const int port = logged_port();
    ASSERT_GT(port, 0) << mode;
    EXPECT_EQ(echo_through(port, "hello, daemon\n"), "hello, daemon\n") << mode;
    Outcome status = run({"status", "--pidfile", pidfile()});
    EXPECT_EQ(status.code, 0) << mode;
    Outcome stopped = run({"stop", "--pidfile", pidfile()});
    EXPECT_EQ(stopped.code, 0) << mode << ": " << stopped.err;
    EXPECT_THAT(read_file(logfile()), HasSubstr("Server Shut Down.")) << mode;
  }
}

TEST_F(Echod, BusyPortIsReportedInTheShell) {
  const int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const std::string expected =
      "An error has occurred: service 'echo': tcp: bind(127.0.0.1:" + port +
      "): Address already in use (EADDRINUSE)\nPlease look at log file for more information.\n";
  for (const char* mode : {"--ready=pipe", "--ready=notify"}) {
    std::vector<std::string> args = {"run", "--pidfile", pidfile(),   mode,
                                     "--",  kEchod,      "--nodaemon"};
    if (std::string_view(mode) == "--ready=notify") args.emplace_back("--ready");
    for (const std::string& word : {std::string("echo"), std::string("--port"), port}) {
      args.push_back(word);
    }
    Outcome failed = run(args);
    EXPECT_EQ(failed.code, 1) << mode;
    EXPECT_EQ(failed.err, expected) << mode;
    EXPECT_FALSE(fs::exists(pidfile())) << mode;
  }
  close(holder);
}

// A socket unit's ExecStart: systemd opens the listening socket, sets LISTEN_PID to the pid it
// starts and LISTEN_FDS=1, and the service gets it as descriptor 3. `daemonkit run --nodaemon`
// execs echod in that same process, so echod finds the socket meant for it and serves on it.
TEST_F(Echod, ServesOnASocketPassedBySocketActivation) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  std::vector<std::string> args = {daemonkit_bin(), "run",        "--nodaemon",
                                   "--logfile",     logfile(),    "--",
                                   kEchod,          "--nodaemon", "echo"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.rfind("LISTEN_", 0) != 0 && entry.rfind("NOTIFY_SOCKET=", 0) != 0 &&
        entry.rfind("DAEMONKIT_STATUS_FD=", 0) != 0) {
      env.push_back(entry);
    }
  }
  env.emplace_back("LISTEN_FDS=1");
  env.emplace_back("LISTEN_PID=");  // the child's pid is written in after fork
  std::string& listen_pid = env.back();
  listen_pid.resize(listen_pid.size() + 16, '\0');
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // ---- Child: async-signal-safe calls only until exec. ----
    write_own_pid(listen_pid.data() + std::string_view("LISTEN_PID=").size());
    // dup2 clears close-on-exec, but does nothing when the socket is descriptor 3 already.
    if (listener == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(listener, 3) != 3) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(listener);

  EXPECT_EQ(logged_port(), port) << read_file(logfile());
  EXPECT_EQ(echo_through(port, "activated\n"), "activated\n");

  // Our own child, not yet reaped: the pid cannot have been reused.
  ASSERT_EQ(kill(child, SIGTERM), 0);
  int status = -1;
  const bool exited = eventually([&] { return waitpid(child, &status, WNOHANG) == child; },
                                 std::chrono::milliseconds(10000));
  if (!exited) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
  }
  ASSERT_TRUE(exited) << "echod did not stop on SIGTERM";
  // twistd's way: a daemon stopped by a signal ends by that signal.
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
  EXPECT_THAT(read_file(logfile()), HasSubstr("Server Shut Down."));
}

}  // namespace
