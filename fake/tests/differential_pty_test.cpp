// Differential scenarios for pseudo-terminals: the same calls on FakeSyscalls and on a real
// Linux pty, compared step by step. The real world's pty is set to the termios flags the fake
// models (ICRNL; OPOST|ONLCR; ICANON|ECHO) before bytes flow, so what is compared is exactly
// the modelled part; Linux's fuller default is listed in fake/README.md. Real ptys move bytes
// through a worker thread, so each read waits (poll, bounded) for what it expects first.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/result.h"
#include "differential_world.h"

namespace daemonkit::fake::differential {
namespace {

// Long enough for the kernel's worker to move bytes that are on their way; a read that
// expects nothing waits kQuietMs so that a late byte would still be seen.
constexpr int kExpectMs = 2000;
constexpr int kQuietMs = 30;

void* flags_arg(int flags) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(flags)); }

class Script {
 public:
  explicit Script(sys::Syscalls& syscalls) : os(syscalls) {}

  template <typename T>
  T value(const std::string& call, sys::Result<T> result, T otherwise) {
    if (!result) {
      steps.push_back({call, sys::errno_name(result.error().code)});
      return otherwise;
    }
    steps.push_back({call, fmt::format("{}", *result)});
    return *result;
  }
  // A descriptor, shown as "fd": the real world's helpers hold pipes the fake's do not.
  int fd(const std::string& call, sys::Result<int> result) {
    steps.push_back({call, result ? "fd" : sys::errno_name(result.error().code)});
    return result.value_or(-1);
  }
  void done(const std::string& call, const sys::Result<int>& result) {
    steps.push_back({call, result ? "ok" : sys::errno_name(result.error().code)});
  }
  void done(const std::string& call, const sys::Result<void>& result) {
    steps.push_back({call, result ? "ok" : sys::errno_name(result.error().code)});
  }
  void note(const std::string& call, std::string result) {
    steps.push_back({call, std::move(result)});
  }

  std::string poll_text(int fd) {
    pollfd entry{fd, POLLIN | POLLOUT, 0};
    auto n = os.poll(&entry, 1, 0);
    if (!n) return sys::errno_name(n.error().code);
    std::string text;
    auto add = [&](short bit, const char* name) {
      if (entry.revents & bit) text += text.empty() ? name : std::string("|") + name;
    };
    add(POLLIN, "IN");
    add(POLLOUT, "OUT");
    add(POLLHUP, "HUP");
    add(POLLERR, "ERR");
    return text.empty() ? "0" : text;
  }

  // Everything readable within `wait_ms` and then a little longer, or the first error.
  std::string read_text(int fd, int wait_ms) {
    std::string got;
    for (int round = 0; round < 64; ++round) {
      pollfd entry{fd, POLLIN, 0};
      static_cast<void>(os.poll(&entry, 1, got.empty() ? wait_ms : kQuietMs));
      char buf[256];
      auto n = os.read(fd, buf, sizeof buf);
      if (!n) return got.empty() ? sys::errno_name(n.error().code) : escaped(got);
      if (*n == 0) return got.empty() ? "EOF" : escaped(got);
      got.append(buf, *n);
      // A canonical read hands over one line: ask for the next only if one may be there.
      if (wait_ms == kQuietMs) break;
      if (!got.empty()) return escaped(got);
    }
    return escaped(got);
  }

  static std::string escaped(const std::string& bytes) {
    std::string text = "\"";
    for (char c : bytes) {
      if (c == '\n') {
        text += "\\n";
      } else if (c == '\r') {
        text += "\\r";
      } else {
        text += c;
      }
    }
    return text + "\"";
  }

  sys::Syscalls& os;
  std::vector<Step> steps;
};

bool have_ptys() { return ::access("/dev/ptmx", R_OK | W_OK) == 0; }

// Sets the flags the fake models (and reports by default) on a real terminal; on the fake it
// changes nothing.
void modelled_flags(Script& s, int fd) {
  termios t{};
  s.done("TCGETS", s.os.ioctl(fd, TCGETS, &t));
  t.c_iflag = ICRNL;
  t.c_oflag = OPOST | ONLCR;
  t.c_lflag = ICANON | ECHO;
  s.done("TCSETS modelled flags", s.os.ioctl(fd, TCSETS, &t));
}

// A new master and the path of its slave (unlocked unless `lock`).
struct Pty {
  int master = -1;
  std::string path;
};

Pty new_pty(Script& s, bool lock = false) {
  Pty pty;
  pty.master =
      s.fd("open /dev/ptmx", s.os.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK, 0));
  unsigned index = 0;
  s.done("TIOCGPTN", s.os.ioctl(pty.master, TIOCGPTN, &index));
  pty.path = fmt::format("/dev/pts/{}", index);
  if (!lock) {
    int unlock = 0;
    s.done("TIOCSPTLCK 0", s.os.ioctl(pty.master, TIOCSPTLCK, &unlock));
    modelled_flags(s, pty.master);
  }
  return pty;
}

TEST(DifferentialPty, LockedSlaveBytesEchoOnlcrEioAndHangup) {
  if (!have_ptys()) GTEST_SKIP() << "no /dev/ptmx here";
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    Pty pty = new_pty(s, true);
    s.fd("open locked slave", os.open(pty.path.c_str(), O_RDWR | O_NOCTTY, 0));
    s.fd("TIOCGPTPEER locked", os.ioctl(pty.master, TIOCGPTPEER, flags_arg(O_RDWR | O_NOCTTY)));
    int unlock = 0;
    s.done("TIOCSPTLCK 0", os.ioctl(pty.master, TIOCSPTLCK, &unlock));
    modelled_flags(s, pty.master);
    s.note("master F_GETFL", fmt::format("0{:o}", os.fcntl(pty.master, F_GETFL, 0).value_or(-1)));
    s.note("read master, no slave yet", s.read_text(pty.master, kQuietMs));
    const int slave =
        s.fd("open slave", os.open(pty.path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK, 0));
    s.note("slave F_GETFL", fmt::format("0{:o}", os.fcntl(slave, F_GETFL, 0).value_or(-1)));
    const int peer = s.fd(
        "TIOCGPTPEER", os.ioctl(pty.master, TIOCGPTPEER, flags_arg(O_RDWR | O_NOCTTY | O_CLOEXEC)));
    s.note("peer F_GETFL", fmt::format("0{:o}", os.fcntl(peer, F_GETFL, 0).value_or(-1)));
    s.value<std::size_t>("write master ab", os.write(pty.master, "ab", 2), 0);
    s.note("read slave, no line", s.read_text(slave, kQuietMs));
    s.note("poll slave", s.poll_text(slave));
    s.note("read master, echo", s.read_text(pty.master, kExpectMs));
    s.value<std::size_t>("write master c\\rd\\n", os.write(pty.master, "c\rd\n", 4), 0);
    s.note("read slave line 1", s.read_text(slave, kExpectMs));
    s.note("read slave line 2", s.read_text(slave, kExpectMs));
    s.note("read master, echo 2", s.read_text(pty.master, kExpectMs));
    s.value<std::size_t>("write slave x\\ny", os.write(slave, "x\ny", 3), 0);
    s.note("read master, onlcr", s.read_text(pty.master, kExpectMs));
    s.note("poll master idle", s.poll_text(pty.master));
    termios raw{};
    s.done("TCGETS slave", os.ioctl(slave, TCGETS, &raw));
    s.note("flags", fmt::format("{:#x} {:#x} {:#x}", raw.c_iflag, raw.c_oflag, raw.c_lflag));
    raw.c_iflag = 0;
    raw.c_oflag = 0;
    raw.c_lflag = 0;
    s.done("TCSETS raw", os.ioctl(slave, TCSETS, &raw));
    s.value<std::size_t>("write master raw", os.write(pty.master, "a\rb", 3), 0);
    s.note("read slave raw", s.read_text(slave, kExpectMs));
    s.note("read master, no echo", s.read_text(pty.master, kQuietMs));
    s.value<std::size_t>("write slave raw", os.write(slave, "1\n2", 3), 0);
    s.note("read master raw", s.read_text(pty.master, kExpectMs));
    winsize size{};
    s.done("TIOCGWINSZ new", os.ioctl(slave, TIOCGWINSZ, &size));
    s.note("size", fmt::format("{}x{}", size.ws_row, size.ws_col));
    winsize set{24, 80, 0, 0};
    s.done("TIOCSWINSZ master", os.ioctl(pty.master, TIOCSWINSZ, &set));
    s.done("TIOCGWINSZ slave", os.ioctl(slave, TIOCGWINSZ, &size));
    s.note("size after", fmt::format("{}x{}", size.ws_row, size.ws_col));
    unsigned index = 0;
    s.done("TIOCGPTN slave", os.ioctl(slave, TIOCGPTN, &index));
    s.done("TIOCGPTPEER slave", os.ioctl(slave, TIOCGPTPEER, flags_arg(O_RDWR)));
    s.done("TIOCSCTTY not a leader", os.ioctl(slave, TIOCSCTTY, nullptr));
    s.done("TIOCNOTTY not ours", os.ioctl(slave, TIOCNOTTY, nullptr));
    s.done("unknown request", os.ioctl(slave, 0x54ff, &size));
    const auto pipe = os.pipe2(O_CLOEXEC);
    if (pipe) s.done("TCGETS pipe", os.ioctl(pipe->read_end, TCGETS, &raw));
    s.done("TCGETS /dev/null", os.ioctl(0, TCGETS, &raw));
    s.done("TCGETS bad fd", os.ioctl(999, TCGETS, &raw));
    s.value<std::size_t>("write slave last", os.write(slave, "last", 4), 0);
    s.done("close slave", os.close(slave));
    s.done("close peer", os.close(peer));
    s.note("read master, rest", s.read_text(pty.master, kExpectMs));
    s.note("read master, after", s.read_text(pty.master, kQuietMs));
    s.note("poll master, no slave", s.poll_text(pty.master));
    const int again =
        s.fd("reopen slave", os.open(pty.path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK, 0));
    s.note("read master, reopened", s.read_text(pty.master, kQuietMs));
    s.done("close master", os.close(pty.master));
    s.note("read slave, hung up", s.read_text(again, kQuietMs));
    s.value<std::size_t>("write slave, hung up", os.write(again, "x", 1), 0);
    s.done("TCGETS hung up", os.ioctl(again, TCGETS, &raw));
    s.note("poll slave, hung up", s.poll_text(again));
    s.fd("open slave path after", os.open(pty.path.c_str(), O_RDWR | O_NOCTTY, 0));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "open locked slave"), "EIO");
  EXPECT_EQ(result_of(steps, "TIOCGPTPEER locked"), "EIO");
  EXPECT_EQ(result_of(steps, "peer F_GETFL"), "02000002") << "O_CLOEXEC kept, no O_LARGEFILE";
  EXPECT_EQ(result_of(steps, "TIOCGPTN slave"), "ENOTTY");
  EXPECT_EQ(result_of(steps, "TIOCGPTPEER slave"), "EIO");
  EXPECT_EQ(result_of(steps, "read slave, no line"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "read slave line 1"), "\"abc\\n\"");
  EXPECT_EQ(result_of(steps, "read master, echo 2"), "\"c\\r\\nd\\r\\n\"");
  EXPECT_EQ(result_of(steps, "read master, onlcr"), "\"x\\r\\ny\"");
  EXPECT_EQ(result_of(steps, "read master, rest"), "\"last\"");
  EXPECT_EQ(result_of(steps, "read master, after"), "EIO");
  EXPECT_EQ(result_of(steps, "read slave, hung up"), "EOF");
  EXPECT_EQ(result_of(steps, "write slave, hung up"), "EIO");
  EXPECT_EQ(result_of(steps, "poll slave, hung up"), "IN|OUT|HUP|ERR");
}

// Runs `child` in a forked child in either world and reaps it; the steps it records join `s`'s.
void in_child(Script& s, const std::function<void(Script&)>& child) {
  sys::Syscalls& os = s.os;
  if (auto* fake = dynamic_cast<FakeSyscalls*>(&os)) {
    const pid_t parent = fake->getpid();
    const pid_t pid = *fake->fork();
    fake->switch_to(pid);
    Script inner(os);
    child(inner);
    s.steps.insert(s.steps.end(), inner.steps.begin(), inner.steps.end());
    fake->end_process(pid, 0);
    fake->switch_to(parent);
    static_cast<void>(fake->waitpid(pid, 0));
    return;
  }
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(report[0]);
    Script inner(os);
    child(inner);
    std::string text;
    for (const auto& step : inner.steps) text += step.call + '\x1f' + step.result + '\n';
    (void)!::write(report[1], text.data(), text.size());
    ::_exit(0);
  }
  ::close(report[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  ::close(report[0]);
  ::waitpid(pid, nullptr, 0);
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    const auto sep = line.find('\x1f');
    s.steps.push_back({line.substr(0, sep), line.substr(sep + 1)});
    at = end + 1;
  }
}

// Blocks SIGHUP and SIGCONT (so a hangup neither kills nor is missed) and returns a signalfd.
int hangup_signals(Script& s) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGCONT);
  s.done("block SIGHUP SIGCONT", s.os.sigprocmask(SIG_BLOCK, &set, nullptr));
  return s.fd("signalfd", s.os.signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC));
}

// The signals queued on `signal_fd`, in order, after waiting `wait_ms` for the first.
std::string signals_text(Script& s, int signal_fd, int wait_ms) {
  std::string text;
  pollfd entry{signal_fd, POLLIN, 0};
  static_cast<void>(s.os.poll(&entry, 1, wait_ms));
  signalfd_siginfo info{};
  while (s.os.read(signal_fd, &info, sizeof info)) {
    text += text.empty() ? "" : " ";
    text += info.ssi_signo == SIGHUP ? "SIGHUP" : info.ssi_signo == SIGCONT ? "SIGCONT" : "other";
  }
  return text.empty() ? "none" : text;
}

TEST(DifferentialPty, ControllingTerminalByOpenAndTiocscttyAndTiocnotty) {
  if (!have_ptys()) GTEST_SKIP() << "no /dev/ptmx here";
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    Pty a = new_pty(s);
    Pty b = new_pty(s);
    in_child(s, [&](Script& c) {
      c.done("setsid",
             c.os.setsid().has_value() ? sys::Result<void>{} : sys::fail(EPERM, "setsid"));
      const int signals = hangup_signals(c);
      // A master never becomes the controlling terminal: "open a" below still gets its slave.
      c.fd("open /dev/ptmx without O_NOCTTY", c.os.open("/dev/ptmx", O_RDWR | O_CLOEXEC, 0));
      const int a_noctty = c.fd("open a O_NOCTTY", c.os.open(a.path.c_str(), O_RDWR | O_NOCTTY, 0));
      c.done("TIOCNOTTY without one", c.os.ioctl(a_noctty, TIOCNOTTY, nullptr));
      c.fd("open a write-only", c.os.open(a.path.c_str(), O_WRONLY, 0));
      c.done("TIOCNOTTY after write-only", c.os.ioctl(a_noctty, TIOCNOTTY, nullptr));
      const int a_ctty = c.fd("open a", c.os.open(a.path.c_str(), O_RDWR, 0));
      c.done("TIOCSCTTY a again", c.os.ioctl(a_ctty, TIOCSCTTY, nullptr));
      const int b_slave = c.fd("open b O_NOCTTY", c.os.open(b.path.c_str(), O_RDWR | O_NOCTTY, 0));
      c.done("TIOCSCTTY b while a", c.os.ioctl(b_slave, TIOCSCTTY, nullptr));
      c.done("TIOCNOTTY a", c.os.ioctl(a_ctty, TIOCNOTTY, nullptr));
      c.note("signals after TIOCNOTTY", signals_text(c, signals, kExpectMs));
      c.done("TIOCNOTTY a again", c.os.ioctl(a_ctty, TIOCNOTTY, nullptr));
      c.done("TIOCSCTTY through b's master", c.os.ioctl(b.master, TIOCSCTTY, nullptr));
      c.done("TIOCNOTTY b's master", c.os.ioctl(b.master, TIOCNOTTY, nullptr));
      c.done("TIOCNOTTY b", c.os.ioctl(b_slave, TIOCNOTTY, nullptr));
      c.note("signals after TIOCNOTTY b", signals_text(c, signals, kExpectMs));
    });
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "TIOCNOTTY without one"), "ENOTTY");
  EXPECT_EQ(result_of(steps, "TIOCNOTTY after write-only"), "ENOTTY")
      << "opened for writing only: not made the controlling terminal";
  EXPECT_EQ(result_of(steps, "TIOCSCTTY a again"), "ok");
  EXPECT_EQ(result_of(steps, "TIOCSCTTY b while a"), "EPERM");
  EXPECT_EQ(result_of(steps, "signals after TIOCNOTTY"), "SIGHUP SIGCONT");
  EXPECT_EQ(result_of(steps, "TIOCNOTTY b's master"), "ENOTTY");
}

// Closing the master: the session leader gets SIGHUP then SIGCONT at once; the rest of its
// foreground group only when the leader exits. Three processes that must take turns, so the
// worlds are scripted separately, with the same steps in the same order: the fake by switching
// processes, Linux with pipes between real ones.
std::vector<Step> hangup_on_fake(FakeSyscalls& os, bool close_master) {
  Script s(os);
  Pty pty = new_pty(s);
  const pid_t parent = os.getpid();
  const pid_t leader = *os.fork();
  os.switch_to(leader);
  s.done("close master in leader", os.close(pty.master));
  s.done("setsid", os.setsid().has_value() ? sys::Result<void>{} : sys::fail(EPERM, "setsid"));
  const int signals = hangup_signals(s);
  s.fd("open slave", os.open(pty.path.c_str(), O_RDWR, 0));
  const pid_t member = *os.fork();
  os.switch_to(parent);
  if (close_master) s.done("close master", os.close(pty.master));
  os.switch_to(member);
  s.note("member's signals", signals_text(s, signals, kQuietMs));
  os.switch_to(leader);
  s.note("leader's signals", signals_text(s, signals, close_master ? kExpectMs : kQuietMs));
  os.end_process(leader, 0);
  os.switch_to(member);
  s.note("member's signals after the leader's exit", signals_text(s, signals, kExpectMs));
  os.end_process(member, 0);
  os.switch_to(parent);
  static_cast<void>(os.waitpid(leader, 0));
  return s.steps;
}

bool wait_byte(int fd) {
  pollfd entry{fd, POLLIN, 0};
  char byte;
  return ::poll(&entry, 1, 5000) == 1 && ::read(fd, &byte, 1) == 1;
}

std::string read_to_eof(int fd) {
  std::string text;
  char buf[512];
  pollfd entry{fd, POLLIN, 0};
  while (::poll(&entry, 1, 5000) == 1) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    out.push_back(text.substr(at, end - at));
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::vector<Step> hangup_on_kernel(sys::Syscalls& os, bool close_master) {
  Script s(os);
  Pty pty = new_pty(s);
  // ready: children -> parent, one byte each; go_*: parent -> one child; *_report: the text.
  int ready[2], go_leader[2], go_member[2], leader_report[2], member_report[2];
  for (int* p : {ready, go_leader, go_member, leader_report, member_report}) {
    if (::pipe2(p, O_CLOEXEC) != 0) return {};
  }
  const pid_t leader = ::fork();
  if (leader == 0) {
    Script c(os);
    c.done("close master in leader", os.close(pty.master));
    c.done("setsid", os.setsid().has_value() ? sys::Result<void>{} : sys::fail(EPERM, "setsid"));
    const int signals = hangup_signals(c);
    c.fd("open slave", os.open(pty.path.c_str(), O_RDWR, 0));
    if (::fork() == 0) {
      ::close(leader_report[1]);
      Script m(os);
      if (!wait_byte(go_member[0])) ::_exit(1);
      std::string text = signals_text(m, signals, kQuietMs) + "\n";
      (void)!::write(ready[1], "a", 1);
      if (!wait_byte(go_member[0])) ::_exit(1);
      text += signals_text(m, signals, kExpectMs) + "\n";
      (void)!::write(member_report[1], text.data(), text.size());
      ::_exit(0);
    }
    (void)!::write(ready[1], "r", 1);
    if (!wait_byte(go_leader[0])) ::_exit(1);
    std::string text;
    for (const auto& step : c.steps) text += step.call + '\x1f' + step.result + "\n";
    text += "leader's signals\x1f" + signals_text(c, signals, close_master ? kExpectMs : kQuietMs) +
            "\n";
    (void)!::write(leader_report[1], text.data(), text.size());
    ::_exit(0);
  }
  ::close(leader_report[1]);
  ::close(member_report[1]);
  if (!wait_byte(ready[0])) return {};
  if (close_master) s.done("close master", os.close(pty.master));
  (void)!::write(go_member[1], "g", 1);
  if (!wait_byte(ready[0])) return {};
  (void)!::write(go_leader[1], "g", 1);
  const auto leader_lines = lines(read_to_eof(leader_report[0]));
  ::waitpid(leader, nullptr, 0);
  (void)!::write(go_member[1], "g", 1);
  const auto member_lines = lines(read_to_eof(member_report[0]));
  for (int* p : {ready, go_leader, go_member}) {
    ::close(p[0]);
    ::close(p[1]);
  }
  ::close(leader_report[0]);
  ::close(member_report[0]);
  if (leader_lines.empty() || member_lines.size() != 2) return {};
  // The parent's steps, the leader's set-up, the close, then the looks in the fake's order.
  const auto parent_end = s.steps.end() - (close_master ? 1 : 0);
  std::vector<Step> steps(s.steps.begin(), parent_end);
  for (std::size_t i = 0; i + 1 < leader_lines.size(); ++i) {
    const auto sep = leader_lines[i].find('\x1f');
    steps.push_back({leader_lines[i].substr(0, sep), leader_lines[i].substr(sep + 1)});
  }
  if (close_master) steps.push_back(s.steps.back());
  steps.push_back({"member's signals", member_lines[0]});
  const auto& last = leader_lines.back();
  steps.push_back({last.substr(0, last.find('\x1f')), last.substr(last.find('\x1f') + 1)});
  steps.push_back({"member's signals after the leader's exit", member_lines[1]});
  return steps;
}

TEST(DifferentialPty, HangupSignalsTheLeaderAndItsGroupOnlyWhenItExits) {
  if (!have_ptys()) GTEST_SKIP() << "no /dev/ptmx here";
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    if (auto* fake = dynamic_cast<FakeSyscalls*>(&os)) return hangup_on_fake(*fake, true);
    return hangup_on_kernel(os, true);
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "leader's signals"), "SIGHUP SIGCONT");
  EXPECT_EQ(result_of(steps, "member's signals"), "none");
  EXPECT_EQ(result_of(steps, "member's signals after the leader's exit"), "SIGHUP SIGCONT");
}

// A leader that exits still holding its terminal: its foreground group gets SIGHUP alone.
TEST(DifferentialPty, ALeaderExitingWithItsTerminalHangsUpItsGroup) {
  if (!have_ptys()) GTEST_SKIP() << "no /dev/ptmx here";
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    if (auto* fake = dynamic_cast<FakeSyscalls*>(&os)) return hangup_on_fake(*fake, false);
    return hangup_on_kernel(os, false);
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "leader's signals"), "none");
  EXPECT_EQ(result_of(steps, "member's signals after the leader's exit"), "SIGHUP");
}

}  // namespace
}  // namespace daemonkit::fake::differential
