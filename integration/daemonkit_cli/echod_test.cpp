// The README's main job as a test: echod started by the daemonkit binary with each readiness
// protocol it speaks, echoing over loopback, stopped through its PID file; and its one startup
// failure (a busy port) reaching the shell in echod's own words.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

std::string echo_through(int port, const std::string& line) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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

TEST_F(Echod, EchoesUnderEachReadinessProtocolAndStopsCleanly) {
  for (const char* mode : {"--ready=pipe", "--ready=notify", "--ready=exec"}) {
    std::filesystem::remove(logfile());
    Outcome started = run({"run", "--pidfile", pidfile(), "--logfile", logfile(), mode, "--timeout",
                           "10", "--", kEchod, "--port", "0"});
    ASSERT_EQ(started.code, 0) << mode << ": " << started.err;
    EXPECT_THAT(started.err, IsEmpty());
    const int port = logged_port();
    ASSERT_GT(port, 0) << mode;
    EXPECT_EQ(echo_through(port, "hello, daemon\n"), "hello, daemon\n") << mode;
    Outcome status = run({"status", "--pidfile", pidfile()});
    EXPECT_EQ(status.code, 0) << mode;
    Outcome stopped = run({"stop", "--pidfile", pidfile()});
    EXPECT_EQ(stopped.code, 0) << mode << ": " << stopped.err;
    EXPECT_THAT(read_file(logfile()), HasSubstr("stopping on signal 15")) << mode;
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
      "An error has occurred: bind(127.0.0.1:" + port +
      "): Address already in use (EADDRINUSE)\nPlease look at log file for more information.\n";
  for (const char* mode : {"--ready=pipe", "--ready=notify"}) {
    Outcome failed = run({"run", "--pidfile", pidfile(), mode, "--", kEchod, "--port", port});
    EXPECT_EQ(failed.code, 1) << mode;
    EXPECT_EQ(failed.err, expected) << mode;
    EXPECT_FALSE(fs::exists(pidfile())) << mode;
  }
  close(holder);
}

}  // namespace
