// Pseudo-terminals: /dev/ptmx makes a master and a locked slave /dev/pts/<n>; bytes written to
// one end are read from the other, through the part of the slave's line discipline the fake
// models (ICRNL on input, ICANON lines, ECHO, OPOST|ONLCR on output); the terminal ioctls; the
// controlling terminal of a session; and the hangup when the master closes.
//
// What each end sees, as Linux 6.x shows it (pinned by DifferentialPty): a master read after
// every slave description has closed returns what is left, then EIO, and polls HUP; a slave
// after the master's close is hung up for good: read 0, write and ioctl EIO, poll
// IN|OUT|ERR|HUP, and its /dev/pts entry is gone. The hangup sends SIGHUP then SIGCONT to the
// session leader whose controlling terminal it was (not to the foreground group: that group
// gets SIGHUP and SIGCONT only when the leader exits later, through tty_old_pgrp), and every
// process of the session loses the terminal.
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "fake_syscalls_call.h"
#include "kernel.h"

namespace daemonkit::fake {
namespace detail {

// The kernel's struct termios (asm-generic/termbits.h), which TCGETS and TCSETS copy: glibc's
// struct termios starts with the same fields, with a longer c_cc and speeds after them.
struct KernelTermios {
  tcflag_t c_iflag;
  tcflag_t c_oflag;
  tcflag_t c_cflag;
  tcflag_t c_lflag;
  cc_t c_line;
  cc_t c_cc[19];
};
static_assert(sizeof(KernelTermios) == 36);

namespace {

// What each direction holds before a writer must wait: Linux's flip buffers allow 64 KiB
// (TTYB_DEFAULT_MEM_LIMIT) on top of the line discipline's 4 KiB; the fake has one flat limit.
constexpr std::size_t kPtyBuffer = 65536;
constexpr unsigned kPtsMajor = 136;

// The flags the fake honours, and so the only ones it reports by default. Linux's default adds
// IXON, ISIG, IEXTEN, ECHOE, ECHOK, ECHOCTL and ECHOKE, whose effects are not modelled.
KernelTermios default_termios() {
  KernelTermios t{};
  t.c_iflag = ICRNL;
  t.c_oflag = OPOST | ONLCR;
  t.c_cflag = B38400 | CS8 | CREAD;
  t.c_lflag = ICANON | ECHO;
  // Linux's INIT_C_CC, kept so that a saved and restored termios looks like Linux's.
  const cc_t cc[19] = {3, 034, 0177, 025, 4, 0, 1, 0, 021, 023, 032, 0, 022, 017, 027, 026, 0};
  std::memcpy(t.c_cc, cc, sizeof cc);
  return t;
}

}  // namespace

struct Pty {
  Kernel* kernel = nullptr;
  int index = 0;
  std::shared_ptr<Inode> slave_inode;
  bool locked = true;
  int masters = 0;  // open master descriptions (one, unless the test shares it)
  int slaves = 0;   // open slave descriptions
  // TTY_OTHER_CLOSED on the master: a slave was open and every slave description has closed.
  bool slave_closed = false;
  bool hung_up = false;  // the master closed: the slave is hung up for good
  std::string input;     // master -> slave, after input processing
  std::string output;    // slave -> master, after output processing
  KernelTermios termios = default_termios();
  winsize size{};
  pid_t session = 0;  // the session whose controlling terminal this is
  pid_t pgrp = 0;     // its foreground process group
  char master_wait = 0;
  char slave_wait = 0;

  [[nodiscard]] std::string name() const { return fmt::format("/dev/pts/{}", index); }
  [[nodiscard]] bool canonical() const { return (termios.c_lflag & ICANON) != 0; }
  // Bytes a slave read may take now: everything, or in canonical mode the first whole line.
  [[nodiscard]] std::size_t readable_input() const {
    if (!canonical()) return input.size();
    const auto end = input.find('\n');
    return end == std::string::npos ? 0 : end + 1;
  }
  void put_output(char c) {
    if ((termios.c_oflag & OPOST) && (termios.c_oflag & ONLCR) && c == '\n') output += '\r';
    output += c;
  }
};

namespace {

void signal_group(Kernel& kernel, pid_t pgrp, int sig) {
  if (pgrp <= 0) return;
  std::vector<Process*> members;
  for (auto& [pid, p] : kernel.processes) {
    if (p.alive() && p.pgid == pgrp) members.push_back(&p);
  }
  for (Process* p : members) kernel.deliver(*p, sig, 0);
}

// Every process of the terminal's session forgets it, and it belongs to no session.
void clear_session(Kernel& kernel, Pty& pty) {
  for (auto& [pid, p] : kernel.processes) {
    if (p.ctty.get() == &pty) p.ctty.reset();
  }
  pty.session = 0;
  pty.pgrp = 0;
}

void set_controlling(Process& p, const std::shared_ptr<Pty>& pty) {
  p.ctty = pty;
  pty->session = p.sid;
  pty->pgrp = p.pgid;
}

// Either end of a pseudo-terminal.
class TerminalFile : public OpenFile {
 public:
  TerminalFile(std::shared_ptr<Inode> inode, int flags, std::shared_ptr<Pty> pty)
      : OpenFile(std::move(inode), flags), pty_(std::move(pty)) {}
  [[nodiscard]] virtual bool is_master() const = 0;
  [[nodiscard]] const std::shared_ptr<Pty>& pty() const { return pty_; }

 protected:
  std::shared_ptr<Pty> pty_;
};

class PtySlave final : public TerminalFile {
 public:
  PtySlave(const std::shared_ptr<Pty>& pty, int flags)
      : TerminalFile(pty->slave_inode, flags, pty) {
    ++pty_->slaves;
    pty_->slave_closed = false;
  }
  ~PtySlave() override {
    if (--pty_->slaves > 0 || pty_->hung_up) return;
    pty_->slave_closed = true;
    if (!pty_->kernel->shutting_down) pty_->kernel->wake(&pty_->master_wait, 0);
  }

  bool is_master() const override { return false; }

  std::string describe() const override {
    return pty_->name() + (pty_->hung_up ? " (hung up)" : "");
  }

  const void* wait_queue(const Process&) const override { return &pty_->slave_wait; }

  sys::Result<std::size_t> read(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    if (pty_->hung_up) return std::size_t{0};
    if (buf.empty()) return std::size_t{0};
    const std::size_t n = std::min(buf.size(), pty_->readable_input());
    if (n == 0) return sys::fail(EAGAIN, "read");
    std::memcpy(buf.data(), pty_->input.data(), n);
    pty_->input.erase(0, n);
    kernel.wake(&pty_->master_wait, EPOLLOUT | EPOLLWRNORM);
    return n;
  }

  sys::Result<std::size_t> write(Kernel& kernel, Process&,
                                 std::span<const std::byte> buf) override {
    if (pty_->hung_up) return sys::fail(EIO, "write");
    if (buf.empty()) return std::size_t{0};
    std::size_t done = 0;
    // A "\n" that becomes "\r\n" needs room for both.
    while (done < buf.size() && pty_->output.size() + 2 <= kPtyBuffer) {
      pty_->put_output(static_cast<char>(buf[done]));
      ++done;
    }
    if (done == 0) return sys::fail(EAGAIN, "write");
    kernel.wake(&pty_->master_wait, EPOLLIN | EPOLLRDNORM);
    return done;
  }

  Readiness readiness() const override {
    Readiness r;
    if (pty_->hung_up) {
      r.readable = r.writable = r.hangup = r.error = true;
      return r;
    }
    r.readable = pty_->readable_input() > 0;
    r.writable = pty_->output.size() + 2 <= kPtyBuffer;
    return r;
  }

  std::string blocked_reason(const Kernel&) const override {
    return fmt::format("{} has {}; write to its master first, or use O_NONBLOCK", describe(),
                       pty_->input.empty() ? "no input" : "no whole line of input (ICANON is on)");
  }
};

class PtyMaster final : public TerminalFile {
 public:
  PtyMaster(std::shared_ptr<Inode> inode, int flags, std::shared_ptr<Pty> pty)
      : TerminalFile(std::move(inode), flags, std::move(pty)) {
    ++pty_->masters;
  }
  ~PtyMaster() override {
    if (--pty_->masters == 0) hang_up();
  }

  bool is_master() const override { return true; }

  std::string describe() const override { return fmt::format("ptmx:[{}]", pty_->index); }

  const void* wait_queue(const Process&) const override { return &pty_->master_wait; }

  sys::Result<std::size_t> read(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    if (pty_->output.empty()) {
      if (pty_->slave_closed) return sys::fail(EIO, "read");
      return sys::fail(EAGAIN, "read");
    }
    const std::size_t n = std::min(buf.size(), pty_->output.size());
    std::memcpy(buf.data(), pty_->output.data(), n);
    pty_->output.erase(0, n);
    kernel.wake(&pty_->slave_wait, EPOLLOUT | EPOLLWRNORM);
    return n;
  }

  // The slave's line discipline receives the bytes: ICRNL turns "\r" into "\n", and with ECHO
  // each byte goes back to the master through the output processing.
  sys::Result<std::size_t> write(Kernel& kernel, Process&,
                                 std::span<const std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    Pty& pty = *pty_;
    const std::size_t room = kPtyBuffer - std::min(kPtyBuffer, pty.input.size());
    const std::size_t n = std::min(room, buf.size());
    if (n == 0) return sys::fail(EAGAIN, "write");
    const bool echo = (pty.termios.c_lflag & ECHO) != 0;
    for (std::size_t i = 0; i < n; ++i) {
      char c = static_cast<char>(buf[i]);
      if (c == '\r' && (pty.termios.c_iflag & ICRNL)) c = '\n';
      pty.input += c;
      if (echo) pty.put_output(c);
    }
    kernel.wake(&pty.slave_wait, EPOLLIN | EPOLLRDNORM);
    if (echo) kernel.wake(&pty.master_wait, EPOLLIN | EPOLLRDNORM);
    return n;
  }

  Readiness readiness() const override {
    Readiness r;
    r.readable = !pty_->output.empty();
    r.writable = pty_->input.size() < kPtyBuffer;
    r.hangup = pty_->slave_closed;
    return r;
  }

  std::string blocked_reason(const Kernel&) const override {
    return fmt::format(
        "{}: {} has written nothing; switch to a process holding it and write, or use "
        "O_NONBLOCK",
        describe(), pty_->name());
  }

 private:
  // pty_close of the master: tty_vhangup of the slave, and the index is free again.
  void hang_up() {
    Pty& pty = *pty_;
    pty.hung_up = true;
    Kernel& kernel = *pty.kernel;
    if (kernel.shutting_down) return;
    if (auto dir = kernel.lookup_as_root("/dev/pts", true)) {
      auto it = dir->entries.find(std::to_string(pty.index));
      if (it != dir->entries.end() && it->second == pty.slave_inode) dir->entries.erase(it);
    }
    kernel.ptys.erase(pty.index);
    kernel.wake(&pty.slave_wait, 0);
    // tty_signal_session_leader: the session loses the terminal; its leader is told, and
    // remembers the foreground group for its own exit.
    std::vector<pid_t> leaders;
    for (auto& [pid, p] : kernel.processes) {
      if (pty.session == 0 || p.sid != pty.session || p.state == ProcessState::kReaped) continue;
      if (p.ctty.get() == &pty) p.ctty.reset();
      if (p.pid == p.sid) {
        p.tty_old_pgrp = pty.pgrp;
        leaders.push_back(pid);
      }
    }
    pty.session = 0;
    pty.pgrp = 0;
    for (pid_t pid : leaders) {
      kernel.deliver(kernel.processes.at(pid), SIGHUP, 0);
      kernel.deliver(kernel.processes.at(pid), SIGCONT, 0);
    }
  }
};

}  // namespace

sys::Result<std::shared_ptr<OpenFile>> Kernel::open_terminal(Process& p,
                                                             const std::shared_ptr<Inode>& node,
                                                             int status, bool noctty,
                                                             const char* call) {
  if (node->special == Special::kPtmx) {
    int index = 0;
    while (ptys.count(index) != 0) ++index;
    auto pty = std::make_shared<Pty>();
    pty->kernel = this;
    pty->index = index;
    auto dir = lookup_as_root("/dev/pts", true);
    if (!dir) fatal("/dev/pts is missing: a test removed it");
    // devpts's defaults without mount options: the opener's ids, mode 0600.
    pty->slave_inode = new_inode(S_IFCHR | 0600, p.uids.effective, p.gids.effective, kDevPtsDev);
    pty->slave_inode->rdev = makedev(kPtsMajor, static_cast<unsigned>(index));
    pty->slave_inode->special = Special::kPtySlave;
    pty->slave_inode->pty = pty;
    dir->entries[std::to_string(index)] = pty->slave_inode;
    ptys[index] = pty;
    // A master is never made a controlling terminal (tty_open's noctty for PTY masters).
    return std::shared_ptr<OpenFile>(std::make_shared<PtyMaster>(node, status, std::move(pty)));
  }
  auto pty = node->pty.lock();
  if (!pty || pty->hung_up) return sys::fail(EIO, call);
  if (pty->locked) return sys::fail(EIO, call);
  auto file = std::make_shared<PtySlave>(pty, status);
  // tty_open_proc_set_tty: a session leader without a terminal opening one that belongs to no
  // session, for reading, gets it as its controlling terminal.
  if (!noctty && p.pid == p.sid && !p.ctty && pty->session == 0 && file->can_read()) {
    set_controlling(p, pty);
  }
  return std::shared_ptr<OpenFile>(std::move(file));
}

void Kernel::leave_terminal(Process& p) {
  p.ctty.reset();
  p.tty_old_pgrp = 0;
}

// disassociate_ctty(1) for a PTY: the foreground group gets SIGHUP (no SIGCONT on exit); a
// leader whose terminal hung up earlier signals the group it had then, SIGHUP and SIGCONT.
void Kernel::release_terminal_on_exit(Process& leader) {
  if (leader.pid != leader.sid || shutting_down) return;
  if (auto pty = leader.ctty) {
    const pid_t pgrp = pty->pgrp;
    clear_session(*this, *pty);
    signal_group(*this, pgrp, SIGHUP);
  } else if (leader.tty_old_pgrp != 0) {
    const pid_t pgrp = std::exchange(leader.tty_old_pgrp, 0);
    signal_group(*this, pgrp, SIGHUP);
    signal_group(*this, pgrp, SIGCONT);
  }
}

std::string Kernel::terminal_name(const Process& p) { return p.ctty ? p.ctty->name() : ""; }

sys::Result<int> Kernel::ioctl(Process& p, int fd, unsigned long request, void* arg) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "ioctl");
  const auto file = std::dynamic_pointer_cast<TerminalFile>(entry->file);
  if (!file) return sys::fail(ENOTTY, "ioctl");
  const std::shared_ptr<Pty>& pty = file->pty();
  const bool master = file->is_master();
  // A hung-up slave answers every request with EIO (hung_up_tty_ioctl), but TIOCSPGRP.
  if (!master && pty->hung_up) return sys::fail(request == TIOCSPGRP ? ENOTTY : EIO, "ioctl");
  const auto pointer = [&]() -> sys::Result<void> {
    if (arg == nullptr) return sys::fail(EFAULT, "ioctl");
    return {};
  };
  switch (request) {
    case TIOCGPTN:
    case TIOCSPTLCK:
    case TIOCGPTLCK:
      if (!master) return sys::fail(ENOTTY, "ioctl");
      break;
    case TIOCGPTPEER:
      // Every terminal knows the request (tty_ioctl); ptm_open_peer refuses a non-master.
      if (!master) return sys::fail(EIO, "ioctl");
      break;
    default:
      break;
  }
  switch (request) {
    case TIOCGPTN: {
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      const auto index = static_cast<unsigned>(pty->index);
      std::memcpy(arg, &index, sizeof index);
      return 0;
    }
    case TIOCSPTLCK: {
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      int lock = 0;
      std::memcpy(&lock, arg, sizeof lock);
      pty->locked = lock != 0;
      return 0;
    }
    case TIOCGPTLCK: {
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      const int lock = pty->locked ? 1 : 0;
      std::memcpy(arg, &lock, sizeof lock);
      return 0;
    }
    case TIOCGPTPEER: {
      // The descriptor is reserved before the slave is opened, so EMFILE comes first.
      const auto flags = static_cast<int>(reinterpret_cast<std::uintptr_t>(arg));
      if (!fd_available(p)) return sys::fail(EMFILE, "ioctl");
      // dentry_open keeps the flags as given, O_CLOEXEC included (F_GETFL shows it), and adds
      // no O_LARGEFILE.
      auto opened =
          open_terminal(p, pty->slave_inode, flags & ~(O_NOCTTY | O_CREAT | O_EXCL | O_TRUNC),
                        (flags & O_NOCTTY) != 0, "ioctl");
      if (!opened) return sys::fail(opened.error());
      return allocate_fd(p, std::move(*opened), (flags & O_CLOEXEC) != 0, 0, "ioctl");
    }
    case TIOCSCTTY: {
      // On either end: it is the slave that becomes the controlling terminal.
      const bool leader = p.pid == p.sid;
      if (leader && pty->session == p.sid) return 0;
      if (!leader || p.ctty) return sys::fail(EPERM, "ioctl");
      if (pty->session != 0) {
        const bool steal = reinterpret_cast<std::uintptr_t>(arg) == 1 && p.privileged();
        if (!steal) return sys::fail(EPERM, "ioctl");
        clear_session(*this, *pty);
      }
      if (!file->can_read() && !p.privileged()) return sys::fail(EPERM, "ioctl");
      set_controlling(p, pty);
      return 0;
    }
    case TIOCNOTTY: {
      // Only on the terminal itself: a master is never anyone's controlling terminal.
      if (master || p.ctty != pty) return sys::fail(ENOTTY, "ioctl");
      if (p.pid != p.sid) {
        p.ctty.reset();
        return 0;
      }
      const pid_t pgrp = pty->pgrp;
      clear_session(*this, *pty);
      signal_group(*this, pgrp, SIGHUP);
      signal_group(*this, pgrp, SIGCONT);
      return 0;
    }
    case TIOCGWINSZ:
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      std::memcpy(arg, &pty->size, sizeof pty->size);
      return 0;
    case TIOCSWINSZ: {
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      winsize size{};
      std::memcpy(&size, arg, sizeof size);
      if (std::memcmp(&size, &pty->size, sizeof size) == 0) return 0;
      pty->size = size;
      signal_group(*this, pty->pgrp, SIGWINCH);
      return 0;
    }
    case TCGETS:
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      std::memcpy(arg, &pty->termios, sizeof pty->termios);
      return 0;
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
      if (auto ok = pointer(); !ok) return sys::fail(ok.error());
      // Nothing is ever waiting to be transmitted, so TCSETSW has nothing to drain.
      std::memcpy(&pty->termios, arg, sizeof pty->termios);
      if (request == TCSETSF) pty->input.clear();
      return 0;
    default:
      return sys::fail(ENOTTY, "ioctl");
  }
}

}  // namespace detail

namespace {

std::string ioctl_text(unsigned long request, void* arg) {
  const auto number = [&] { return std::to_string(reinterpret_cast<std::uintptr_t>(arg)); };
  const auto pointed_int = [&] {
    if (arg == nullptr) return std::string("NULL");
    int value = 0;
    std::memcpy(&value, arg, sizeof value);
    return fmt::format("[{}]", value);
  };
  const std::string shown_arg = arg == nullptr ? "NULL" : "&arg";
  switch (request) {
    case TIOCGPTN:
      return "TIOCGPTN, " + shown_arg;
    case TIOCSPTLCK:
      return "TIOCSPTLCK, " + pointed_int();
    case TIOCGPTLCK:
      return "TIOCGPTLCK, " + shown_arg;
    case TIOCGPTPEER:
      return "TIOCGPTPEER, " +
             detail::open_flags_text(static_cast<int>(reinterpret_cast<std::uintptr_t>(arg)));
    case TIOCSCTTY:
      return "TIOCSCTTY, " + number();
    case TIOCNOTTY:
      return "TIOCNOTTY";
    case TIOCGWINSZ:
      return "TIOCGWINSZ, " + shown_arg;
    case TIOCSWINSZ: {
      if (arg == nullptr) return "TIOCSWINSZ, NULL";
      winsize size{};
      std::memcpy(&size, arg, sizeof size);
      return fmt::format("TIOCSWINSZ, {{{}x{}}}", size.ws_row, size.ws_col);
    }
    case TCGETS:
      return "TCGETS, " + shown_arg;
    case TCSETS:
      return "TCSETS, " + shown_arg;
    case TCSETSW:
      return "TCSETSW, " + shown_arg;
    case TCSETSF:
      return "TCSETSF, " + shown_arg;
    default:
      return fmt::format("{:#x}, {}", request, shown_arg);
  }
}

}  // namespace

sys::Result<int> FakeSyscalls::ioctl(int fd, unsigned long request, void* arg_value) {
  return call<int>("ioctl", {arg(fd), ioctl_text(request, arg_value)},
                   [&](detail::Process& p) { return kernel().ioctl(p, fd, request, arg_value); });
}

}  // namespace daemonkit::fake
