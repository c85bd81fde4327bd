// Processes and signals: fork by script, sessions and process groups, exit into a zombie,
// reparenting to a subreaper or init, waitpid, kill with POSIX permission rules, pidfds,
// execve of installed programs, and signal dispositions, masks and pending sets.
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {
namespace {

bool valid_signal(int sig) { return sig >= 1 && sig <= kMaxSignal; }

bool has_handler(const struct sigaction& action) {
  return action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN;
}

bool default_ignores(int sig) {
  return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

bool default_stops(int sig) { return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

bool default_dumps_core(int sig) {
  switch (sig) {
    case SIGQUIT:
    case SIGILL:
    case SIGTRAP:
    case SIGABRT:
    case SIGBUS:
    case SIGFPE:
    case SIGSEGV:
    case SIGXCPU:
    case SIGXFSZ:
    case SIGSYS:
      return true;
    default:
      return false;
  }
}

// A pidfd: refers to a process, becomes readable when it exits.
class PidFd final : public OpenFile {
 public:
  PidFd(std::shared_ptr<Inode> inode, int flags, pid_t pid, const Kernel& kernel)
      : OpenFile(std::move(inode), flags), pid_(pid), kernel_(kernel) {}
  std::string describe() const override { return fmt::format("pidfd:{}", pid_); }
  Readiness readiness() const override {
    const Process* p = kernel_.find(pid_);
    const bool exited = p == nullptr || !p->alive();
    return {exited, false, exited && (p == nullptr || p->state == ProcessState::kReaped), false};
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
  const Kernel& kernel_;
};

}  // namespace

bool Kernel::may_signal(const Process& sender, const Process& target) {
  if (sender.privileged()) return true;
  const uid_t r = sender.uids.real;
  const uid_t e = sender.uids.effective;
  return r == target.uids.real || r == target.uids.saved || e == target.uids.real ||
         e == target.uids.saved;
}

sys::Result<pid_t> Kernel::fork(Process& parent) {
  const ForkAs as = fork_script.empty() ? ForkAs::kParent : fork_script.front();
  if (!fork_script.empty()) fork_script.pop_front();
  const pid_t pid = add_child(parent);
  if (as == ForkAs::kChild) {
    current_pid = pid;
    return 0;
  }
  return pid;
}

pid_t Kernel::start_vfork(Process& parent) {
  const pid_t pid = add_child(parent);
  Process& child = processes.at(pid);
  sigfillset(&child.mask);
  sigdelset(&child.mask, SIGKILL);
  sigdelset(&child.mask, SIGSTOP);
  parent.vfork_child = pid;
  current_pid = pid;
  return pid;
}

void Kernel::resume_from_vfork(pid_t parent) {
  Process& p = processes.at(parent);
  p.vfork_child = 0;
  current_pid = p.alive() ? parent : 0;
}

pid_t Kernel::add_child(Process& parent) {
  const pid_t pid = next_pid++;
  Process child = parent;  // shares every open file description, copies everything else
  child.pid = pid;
  child.ppid = parent.pid;
  child.children.clear();
  sigemptyset(&child.pending);
  child.subreaper = false;  // PR_SET_CHILD_SUBREAPER is not inherited
  child.pdeathsig = 0;      // nor is PR_SET_PDEATHSIG
  child.execed = false;
  child.execs.clear();
  child.signals.clear();
  processes.emplace(pid, std::move(child));
  parent.children.push_back(pid);
  last_forked = pid;
  return pid;
}

sys::Result<pid_t> Kernel::setsid(Process& p) {
  for (const auto& [pid, other] : processes) {
    if (other.state != ProcessState::kReaped && other.pgid == p.pid) {
      return sys::fail(EPERM, "setsid");
    }
  }
  p.sid = p.pgid = p.pid;
  leave_terminal(p);
  return p.pid;
}

sys::Result<pid_t> Kernel::getsid(Process& p, pid_t pid) {
  if (pid == 0) return p.sid;
  const Process* target = find(pid);
  if (target == nullptr || target->state == ProcessState::kReaped || pid < 0) {
    return sys::fail(ESRCH, "getsid");
  }
  return target->sid;
}

sys::Result<pid_t> Kernel::getpgid(Process& p, pid_t pid) {
  if (pid == 0) return p.pgid;
  const Process* target = find(pid);
  if (target == nullptr || target->state == ProcessState::kReaped || pid < 0) {
    return sys::fail(ESRCH, "getpgid");
  }
  return target->pgid;
}

sys::Result<void> Kernel::setpgid(Process& p, pid_t pid, pid_t pgid) {
  if (pgid < 0 || pid < 0) return sys::fail(EINVAL, "setpgid");
  Process* target = pid == 0 ? &p : find(pid);
  if (target == nullptr || target->state == ProcessState::kReaped ||
      (target != &p && target->ppid != p.pid)) {
    return sys::fail(ESRCH, "setpgid");
  }
  if (target != &p) {
    if (target->sid != p.sid) return sys::fail(EPERM, "setpgid");
    if (target->execed) return sys::fail(EACCES, "setpgid");
  }
  if (target->sid == target->pid) return sys::fail(EPERM, "setpgid");
  if (pgid == 0) pgid = target->pid;
  if (pgid != target->pid) {
    const bool group_in_session =
        std::any_of(processes.begin(), processes.end(), [&](const auto& kv) {
          return kv.second.state != ProcessState::kReaped && kv.second.pgid == pgid &&
                 kv.second.sid == p.sid;
        });
    if (!group_in_session) return sys::fail(EPERM, "setpgid");
  }
  target->pgid = pgid;
  return {};
}

void Kernel::reap(Process& child) {
  child.state = ProcessState::kReaped;
  if (Process* parent = find(child.ppid)) {
    auto& list = parent->children;
    list.erase(std::remove(list.begin(), list.end(), child.pid), list.end());
  }
}

sys::Result<sys::WaitResult> Kernel::waitpid(Process& p, pid_t pid, int options) {
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE | __WNOTHREAD)) {
    return sys::fail(EINVAL, "waitpid");
  }
  auto matches = [&](const Process& child) {
    if (pid > 0) return child.pid == pid;
    if (pid == -1) return true;
    if (pid == 0) return child.pgid == p.pgid;
    return child.pgid == -pid;
  };
  std::vector<pid_t> running;
  for (pid_t child_pid : p.children) {
    Process& child = processes.at(child_pid);
    if (!matches(child)) continue;
    if (child.state == ProcessState::kZombie) {
      const sys::WaitResult result{child.pid, child.wait_status};
      reap(child);
      return result;
    }
    running.push_back(child_pid);
  }
  if (running.empty()) return sys::fail(ECHILD, "waitpid");
  if (options & WNOHANG) return sys::WaitResult{0, 0};
  return would_block<sys::WaitResult>(
      "waitpid", fmt::format("child pid(s) {} are still running; switch to them and let them "
                             "exit first, or pass WNOHANG",
                             fmt::join(running, ", ")));
}

void Kernel::act_on(Process& target, int sig, pid_t sender) {
  const struct sigaction& action = target.actions[static_cast<std::size_t>(sig)];
  if (action.sa_handler == SIG_IGN) {
    target.signals.push_back({sig, sender, SignalAction::kIgnored});
  } else if (has_handler(action)) {
    target.signals.push_back({sig, sender, SignalAction::kCaught});
  } else if (default_ignores(sig)) {
    target.signals.push_back({sig, sender, SignalAction::kIgnored});
  } else if (default_stops(sig)) {
    target.signals.push_back({sig, sender, SignalAction::kStopped});
  } else {
    target.signals.push_back({sig, sender, SignalAction::kTerminated});
    const bool core =
        default_dumps_core(sig) && target.dumpable && target.rlimits[RLIMIT_CORE].rlim_cur > 0;
    terminate(target, sig | (core ? WCOREFLAG : 0));
  }
}

void Kernel::deliver(Process& target, int sig, pid_t sender) {
  if (!target.alive() || sig == 0) return;
  ++changes;
  // init is unkillable: signals it has no handler for are dropped, SIGKILL included.
  if (target.pid == 1 && !has_handler(target.actions[static_cast<std::size_t>(sig)])) {
    target.signals.push_back({sig, sender, SignalAction::kIgnored});
    return;
  }
  if (sig == SIGKILL) {
    target.signals.push_back({sig, sender, SignalAction::kTerminated});
    terminate(target, SIGKILL);
    return;
  }
  if (sig == SIGSTOP) {
    target.signals.push_back({sig, sender, SignalAction::kStopped});
    return;
  }
  if (sigismember(&target.mask, sig) == 1) {
    if (sigismember(&target.pending, sig) != 1) {
      // A standard signal pends once: a second one while pending is merged, sender and all.
      const Process* from = find(sender);
      target.pending_from[static_cast<std::size_t>(sig)] =
          SignalSource{sender, from == nullptr ? 0 : from->uids.real};
    }
    sigaddset(&target.pending, sig);
    wake(&target, 0);  // signalfds polled by this process
    target.signals.push_back({sig, sender, SignalAction::kPending});
    return;
  }
  act_on(target, sig, sender);
}

// Linux checks the signal number per target (check_kill_permission), so naming no process is
// ESRCH even with an invalid signal. kill(-1, sig) succeeds when it reached any process or was
// refused by all of them: only errors other than EPERM count there (kill_something_info).
sys::Result<void> Kernel::kill(Process& p, pid_t pid, int sig) {
  const bool valid = sig >= 0 && sig <= kMaxSignal;
  if (pid > 0) {
    Process* target = find(pid);
    if (target == nullptr || target->state == ProcessState::kReaped) {
      return sys::fail(ESRCH, "kill");
    }
    if (!valid) return sys::fail(EINVAL, "kill");
    if (!may_signal(p, *target)) return sys::fail(EPERM, "kill");
    deliver(*target, sig, p.pid);
    return {};
  }
  // A group (pid 0: the caller's; pid < -1: -pid) or everyone (-1, except init and itself).
  std::vector<Process*> targets;
  for (auto& [other_pid, other] : processes) {
    if (other.state == ProcessState::kReaped) continue;
    const bool chosen = pid == -1 ? (other_pid != 1 && other_pid != p.pid)
                                  : other.pgid == (pid == 0 ? p.pgid : -pid);
    if (chosen) targets.push_back(&other);
  }
  if (targets.empty()) return sys::fail(ESRCH, "kill");
  if (!valid) return sys::fail(EINVAL, "kill");
  bool any = false;
  for (Process* target : targets) {
    if (!may_signal(p, *target)) continue;
    any = true;
    deliver(*target, sig, p.pid);
  }
  // Linux ignores EPERM when signalling everyone (-1): that succeeds if anyone else exists.
  // For a group, EPERM is returned only if no member could be signalled.
  if (!any && pid != -1) return sys::fail(EPERM, "kill");
  return {};
}

sys::Result<int> Kernel::pidfd_open(Process& p, pid_t pid, unsigned flags) {
  if (flags & ~static_cast<unsigned>(O_NONBLOCK)) return sys::fail(EINVAL, "pidfd_open");
  if (pid <= 0) return sys::fail(EINVAL, "pidfd_open");
  const Process* target = find(pid);
  if (target == nullptr || target->state == ProcessState::kReaped) {
    return sys::fail(ESRCH, "pidfd_open");
  }
  auto inode = new_inode(0700, 0, 0, kAnonDev);
  auto file =
      std::make_shared<PidFd>(std::move(inode), O_RDWR | static_cast<int>(flags), pid, *this);
  return allocate_fd(p, std::move(file), true, 0, "pidfd_open");
}

sys::Result<void> Kernel::pidfd_send_signal(Process& p, int pidfd, int sig, unsigned flags) {
  // Linux 6.9 added PIDFD_SIGNAL_THREAD (1), _THREAD_GROUP (2) and _PROCESS_GROUP (4); at most
  // one may be given. With single-threaded processes the first two mean the process itself.
  constexpr unsigned kProcessGroup = 4;
  if ((flags & ~7U) != 0 || (flags & (flags - 1)) != 0) {
    return sys::fail(EINVAL, "pidfd_send_signal");
  }
  auto* entry = fd_entry(p, pidfd);
  if (entry == nullptr) return sys::fail(EBADF, "pidfd_send_signal");
  const auto* pid_file = dynamic_cast<const PidFd*>(entry->file.get());
  if (pid_file == nullptr) return sys::fail(EBADF, "pidfd_send_signal");
  if (sig < 0 || sig > kMaxSignal) return sys::fail(EINVAL, "pidfd_send_signal");
  Process* target = find(pid_file->pid());
  if (target == nullptr || target->state == ProcessState::kReaped) {
    return sys::fail(ESRCH, "pidfd_send_signal");
  }
  if (flags == kProcessGroup) {
    auto result = kill(p, -target->pgid, sig);
    if (!result) return sys::fail(result.error().code, "pidfd_send_signal");
    return {};
  }
  if (!may_signal(p, *target)) return sys::fail(EPERM, "pidfd_send_signal");
  deliver(*target, sig, p.pid);
  return {};
}

sys::Result<void> Kernel::execve(Process& p, const char* path, char* const argv[],
                                 char* const envp[]) {
  if (path == nullptr) return sys::fail(EFAULT, "execve");
  auto found = lookup(p, path, true, "execve");
  if (!found) return sys::fail(found.error());
  if (!found->node) return sys::fail(ENOENT, "execve");
  const Inode& program = *found->node;
  if (found->trailing_slash && !program.is_dir()) return sys::fail(ENOTDIR, "execve");
  if (!program.is_reg() || !may(p, program, kMayExec)) return sys::fail(EACCES, "execve");
  ExecRecord record{path, {}, {}};
  for (auto* arg = argv; arg != nullptr && *arg != nullptr; ++arg) record.argv.emplace_back(*arg);
  for (auto* env = envp; env != nullptr && *env != nullptr; ++env) record.envp.emplace_back(*env);
  // The point of no return: from here on the old program is gone.
  for (auto it = p.fds.begin(); it != p.fds.end();) {
    it = it->second.cloexec ? p.fds.erase(it) : std::next(it);
  }
  for (auto& action : p.actions) {
    if (has_handler(action)) {
      action = {};
      action.sa_handler = SIG_DFL;
    }
  }
  // A set-id program runs with its owner's ids and is not dumpable; any other exec makes the
  // process dumpable again.
  const auto uids = p.uids;
  const auto gids = p.gids;
  if (program.mode & S_ISUID) p.uids.effective = p.uids.saved = program.uid;
  if (program.mode & S_ISGID) p.gids.effective = p.gids.saved = program.gid;
  const bool changed = uids != p.uids || gids != p.gids;
  p.dumpable = changed ? 0 : 1;
  if (changed) p.pdeathsig = 0;
  const std::string_view file =
      std::string_view(path).substr(std::string_view(path).rfind('/') + 1);
  p.comm = std::string(file.substr(0, 15));
  start_program(p, program.ino, record);
  p.execs.push_back(std::move(record));
  p.execed = true;
  if (current_pid == p.pid) current_pid = 0;
  return {};
}

sys::Result<int> Kernel::prctl(Process& p, int option, unsigned long arg) {
  switch (option) {
    case PR_SET_CHILD_SUBREAPER:
      p.subreaper = arg != 0;
      return 0;
    case PR_GET_CHILD_SUBREAPER:
      if (arg == 0) return sys::fail(EFAULT, "prctl");
      *reinterpret_cast<int*>(arg) = p.subreaper ? 1 : 0;
      return 0;
    case PR_SET_PDEATHSIG:
      if (arg > static_cast<unsigned long>(kMaxSignal)) return sys::fail(EINVAL, "prctl");
      p.pdeathsig = static_cast<int>(arg);
      return 0;
    case PR_GET_PDEATHSIG:
      if (arg == 0) return sys::fail(EFAULT, "prctl");
      *reinterpret_cast<int*>(arg) = p.pdeathsig;
      return 0;
    case PR_GET_DUMPABLE:
      return p.dumpable;
    case PR_SET_DUMPABLE:
      if (arg > 1) return sys::fail(EINVAL, "prctl");
      p.dumpable = static_cast<int>(arg);
      return 0;
    case PR_SET_NAME: {
      if (arg == 0) return sys::fail(EFAULT, "prctl");
      // Linux copies 16 bytes and ends the name at the 16th, whatever the caller's string.
      const char* name = reinterpret_cast<const char*>(arg);
      p.comm.assign(name, strnlen(name, 15));
      return 0;
    }
    case PR_GET_NAME: {
      if (arg == 0) return sys::fail(EFAULT, "prctl");
      char* out = reinterpret_cast<char*>(arg);
      std::memset(out, 0, 16);
      std::memcpy(out, p.comm.data(), p.comm.size());
      return 0;
    }
    default:
      return sys::fail(EINVAL, "prctl");
  }
}

sys::Result<void> Kernel::sigaction(Process& p, int sig, const struct sigaction* act,
                                    struct sigaction* old) {
  // glibc keeps 32 and 33 for itself and refuses them.
  if (!valid_signal(sig) || sig == 32 || sig == 33) return sys::fail(EINVAL, "sigaction");
  if (act != nullptr && (sig == SIGKILL || sig == SIGSTOP)) return sys::fail(EINVAL, "sigaction");
  auto& slot = p.actions[static_cast<std::size_t>(sig)];
  if (old != nullptr) *old = slot;
  if (act != nullptr) {
    slot = *act;
    // POSIX: setting a pending signal to be ignored discards it.
    if (act->sa_handler == SIG_IGN || (act->sa_handler == SIG_DFL && default_ignores(sig))) {
      sigdelset(&p.pending, sig);
    }
  }
  return {};
}

sys::Result<void> Kernel::sigprocmask(Process& p, int how, const sigset_t* set, sigset_t* old) {
  if (set != nullptr && how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK) {
    return sys::fail(EINVAL, "sigprocmask");
  }
  if (old != nullptr) *old = p.mask;
  if (set == nullptr) return {};
  for (int sig = 1; sig <= kMaxSignal; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33) continue;
    const bool in_set = sigismember(set, sig) == 1;
    if (how == SIG_BLOCK && in_set) sigaddset(&p.mask, sig);
    if (how == SIG_UNBLOCK && in_set) sigdelset(&p.mask, sig);
    if (how == SIG_SETMASK) {
      if (in_set) {
        sigaddset(&p.mask, sig);
      } else {
        sigdelset(&p.mask, sig);
      }
    }
  }
  // Signals that were pending and are no longer blocked are delivered now, lowest first.
  for (int sig = 1; sig <= kMaxSignal && p.alive(); ++sig) {
    if (sig == 32 || sig == 33) continue;
    if (sigismember(&p.pending, sig) == 1 && sigismember(&p.mask, sig) != 1) {
      sigdelset(&p.pending, sig);
      act_on(p, sig, 0);
    }
  }
  return {};
}

void Kernel::terminate(Process& p, int wait_status) {
  if (!p.alive()) return;
  ++changes;
  p.state = ProcessState::kZombie;
  p.wait_status = wait_status;
  // Every descriptor closes: pipe readers see EOF, flocks held through them are released.
  auto fds = std::move(p.fds);
  p.fds.clear();
  fds.clear();
  release_terminal_on_exit(p);
  if (current_pid == p.pid) current_pid = 0;
  reparent_children(p);
  notify_parent(p);
}

void Kernel::notify_parent(Process& child) {
  Process* parent = find(child.ppid);
  if (parent == nullptr || child.state != ProcessState::kZombie) return;
  // init reaps whatever is left to it; a parent that ignores SIGCHLD (or set SA_NOCLDWAIT)
  // never sees a zombie.
  const struct sigaction& action = parent->actions[SIGCHLD];
  const bool autoreap =
      parent->pid == 1 || action.sa_handler == SIG_IGN || (action.sa_flags & SA_NOCLDWAIT);
  if (parent->pid != 1 && action.sa_handler != SIG_IGN) deliver(*parent, SIGCHLD, child.pid);
  if (autoreap) reap(child);
}

void Kernel::reparent_children(Process& dying) {
  if (dying.children.empty()) return;
  // The new parent is the nearest living ancestor that declared itself a child subreaper,
  // else init.
  Process* reaper = &processes.at(1);
  for (Process* up = find(dying.ppid); up != nullptr && up->pid != 1; up = find(up->ppid)) {
    if (up->subreaper && up->alive()) {
      reaper = up;
      break;
    }
  }
  const std::vector<pid_t> orphans = std::move(dying.children);
  dying.children.clear();
  for (pid_t pid : orphans) {
    Process& child = processes.at(pid);
    child.ppid = reaper->pid;
    reaper->children.push_back(pid);
    if (child.state == ProcessState::kZombie) notify_parent(child);
  }
  for (pid_t pid : orphans) {
    Process& child = processes.at(pid);
    if (child.alive() && child.pdeathsig != 0) deliver(child, child.pdeathsig, 0);
  }
}

}  // namespace daemonkit::fake::detail
