// FakeSyscalls: the recording, fault-injecting front of the simulated kernel, and the API
// tests use to set up and observe it.
#include "daemonkit/fake/fake_syscalls.h"

#include <linux/close_range.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fake_syscalls_call.h"

namespace daemonkit::fake {

using detail::flags_text;
using detail::Process;

// ---- Rendering ---------------------------------------------------------------------------

std::string render(int value) { return std::to_string(value); }
std::string render(long value) { return std::to_string(value); }
std::string render(unsigned long value) { return std::to_string(value); }
std::string render(const struct stat& st) {
  return fmt::format("{{mode={} size={} ino={} uid={} gid={}}}", detail::octal(st.st_mode),
                     st.st_size, st.st_ino, st.st_uid, st.st_gid);
}
std::string render(const sys::WaitResult& w) {
  return fmt::format("{{pid={} status={:#x}}}", w.pid, w.status);
}
std::string render(const sys::ChildWithPidFd& child) {
  return fmt::format("{{pid={} pidfd={}}}", child.pid, child.pidfd);
}
std::string render(const sys::PipeFds& fds) {
  return fmt::format("[{}, {}]", fds.read_end, fds.write_end);
}
std::string render(const sys::SocketPair& fds) {
  return fmt::format("[{}, {}]", fds.first, fds.second);
}
std::string render(const std::string& s) { return s; }
std::string render(const std::optional<sys::Passwd>& pw) {
  return pw ? fmt::format("{{{} uid={} gid={}}}", pw->name, pw->uid, pw->gid) : "not found";
}
std::string render(const std::optional<sys::Group>& gr) {
  return gr ? fmt::format("{{{} gid={}}}", gr->name, gr->gid) : "not found";
}
std::string render(const std::vector<gid_t>& list) {
  return fmt::format("[{}]", fmt::join(list, ", "));
}
std::string render(const sys::ResUids& ids) {
  return fmt::format("{{{}, {}, {}}}", ids.real, ids.effective, ids.saved);
}
std::string render(const struct rlimit& limit) {
  auto one = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::string("RLIM_INFINITY") : std::to_string(v);
  };
  return fmt::format("{{{}, {}}}", one(limit.rlim_cur), one(limit.rlim_max));
}
std::string render(const timespec& ts) { return fmt::format("{{{}, {}}}", ts.tv_sec, ts.tv_nsec); }

std::string bytes_text(const void* buf, std::size_t count) {
  constexpr std::size_t kShown = 128;
  std::string text = "\"";
  const auto* bytes = static_cast<const unsigned char*>(buf);
  for (std::size_t i = 0; i < std::min(count, kShown); ++i) {
    const unsigned char c = bytes[i];
    if (c == '\\' || c == '"') {
      text += '\\';
      text += static_cast<char>(c);
    } else if (c == '\n') {
      text += "\\n";
    } else if (c >= 0x20 && c < 0x7f) {
      text += static_cast<char>(c);
    } else {
      text += fmt::format("\\x{:02x}", c);
    }
  }
  text += count > kShown ? "\"..." : "\"";
  return text;
}

namespace {

std::string signal_text(int sig) {
  if (sig == 0) return "0";
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return std::to_string(sig);
}

std::string mode_text(mode_t mode) { return detail::octal(mode); }

std::string list_text(char* const list[]) {
  std::vector<std::string> items;
  for (auto* item = list; item != nullptr && *item != nullptr; ++item) items.emplace_back(*item);
  return fmt::format("[{}]", fmt::join(items, ", "));
}

std::string sigset_text(const sigset_t* set) {
  if (set == nullptr) return "NULL";
  std::vector<std::string> names;
  for (int sig = 1; sig <= detail::kMaxSignal; ++sig) {
    if (sigismember(set, sig) == 1) names.push_back(signal_text(sig));
  }
  return fmt::format("[{}]", fmt::join(names, " "));
}

std::string fcntl_cmd_text(int cmd) {
  switch (cmd) {
    case F_GETFD:
      return "F_GETFD";
    case F_SETFD:
      return "F_SETFD";
    case F_GETFL:
      return "F_GETFL";
    case F_SETFL:
      return "F_SETFL";
    case F_DUPFD:
      return "F_DUPFD";
    case F_DUPFD_CLOEXEC:
      return "F_DUPFD_CLOEXEC";
    default:
      return std::to_string(cmd);
  }
}

std::string resource_text(int resource) {
  switch (resource) {
    case RLIMIT_NOFILE:
      return "RLIMIT_NOFILE";
    case RLIMIT_CORE:
      return "RLIMIT_CORE";
    case RLIMIT_NPROC:
      return "RLIMIT_NPROC";
    case RLIMIT_STACK:
      return "RLIMIT_STACK";
    case RLIMIT_AS:
      return "RLIMIT_AS";
    case RLIMIT_FSIZE:
      return "RLIMIT_FSIZE";
    default:
      return std::to_string(resource);
  }
}

std::string clock_text(clockid_t clock) {
  switch (clock) {
    case CLOCK_REALTIME:
      return "CLOCK_REALTIME";
    case CLOCK_MONOTONIC:
      return "CLOCK_MONOTONIC";
    case CLOCK_BOOTTIME:
      return "CLOCK_BOOTTIME";
    default:
      return std::to_string(clock);
  }
}

std::string prctl_text(int option) {
  switch (option) {
    case PR_SET_CHILD_SUBREAPER:
      return "PR_SET_CHILD_SUBREAPER";
    case PR_GET_CHILD_SUBREAPER:
      return "PR_GET_CHILD_SUBREAPER";
    case PR_SET_PDEATHSIG:
      return "PR_SET_PDEATHSIG";
    case PR_GET_PDEATHSIG:
      return "PR_GET_PDEATHSIG";
    case PR_SET_DUMPABLE:
      return "PR_SET_DUMPABLE";
    case PR_GET_DUMPABLE:
      return "PR_GET_DUMPABLE";
    case PR_SET_NAME:
      return "PR_SET_NAME";
    case PR_GET_NAME:
      return "PR_GET_NAME";
    default:
      return std::to_string(option);
  }
}

std::string handler_text(const struct sigaction* act) {
  if (act == nullptr) return "NULL";
  if (act->sa_handler == SIG_IGN) return "SIG_IGN";
  if (act->sa_handler == SIG_DFL) return "SIG_DFL";
  return "handler";
}

std::string id_text(unsigned id) {
  return id == static_cast<unsigned>(-1) ? std::string("-1") : std::to_string(id);
}

// splitmix64: a fixed, documented mixer, so a seed means the same faults on every platform.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

// ---- Faults ------------------------------------------------------------------------------

struct FakeSyscalls::Faults {
  struct Rule {
    std::string name;
    Predicate when;
    int error = 0;
    std::string description;
  };
  struct Random {
    std::uint64_t seed = 0;
    double probability = 0;
    std::vector<std::string> names;
  };
  std::vector<Rule> rules;
  std::optional<Random> random;
};

int FakeSyscalls::typical_errno(const std::string& name) {
  static const std::map<std::string, int, std::less<>> kTypical = {
      {"fork", EAGAIN},
      {"vfork", EAGAIN},
      {"vfork_with_pidfd", EAGAIN},
      {"setsid", EPERM},
      {"getsid", ESRCH},
      {"getpgid", ESRCH},
      {"setpgid", EPERM},
      {"waitpid", ECHILD},
      {"kill", EPERM},
      {"pidfd_open", EMFILE},
      {"pidfd_send_signal", ESRCH},
      {"execve", ENOENT},
      {"prctl", EINVAL},
      {"getresuid", EFAULT},
      {"getresgid", EFAULT},
      {"setresuid", EPERM},
      {"setresgid", EPERM},
      {"setuid", EPERM},
      {"seteuid", EPERM},
      {"setgid", EPERM},
      {"setegid", EPERM},
      {"setgroups", EPERM},
      {"getgroups", EINVAL},
      {"getpwnam", EIO},
      {"getpwuid", EIO},
      {"getgrnam", EIO},
      {"getgrgid", EIO},
      {"getgrouplist", ENOMEM},
      {"open", EACCES},
      {"openat", EACCES},
      {"close", EIO},
      {"close_range", EINVAL},
      {"dup", EMFILE},
      {"dup2", EBADF},
      {"dup3", EBADF},
      {"fcntl", EINVAL},
      {"read", EIO},
      {"ioctl", ENOTTY},
      {"socketpair", EMFILE},
      {"write", ENOSPC},
      {"writev", EPIPE},
      {"fsync", EIO},
      {"ftruncate", EIO},
      {"fstat", EIO},
      {"stat", ENOENT},
      {"lstat", ENOENT},
      {"flock", EWOULDBLOCK},
      {"getdents64", EIO},
      {"unlink", EACCES},
      {"rename", EACCES},
      {"symlink", EACCES},
      {"mkdir", EACCES},
      {"rmdir", EACCES},
      {"chmod", EPERM},
      {"fchmod", EPERM},
      {"chown", EPERM},
      {"chdir", EACCES},
      {"chroot", EPERM},
      {"getcwd", ENOENT},
      {"pipe2", EMFILE},
      {"sigaction", EINVAL},
      {"sigprocmask", EINVAL},
      {"signalfd", EMFILE},
      {"poll", EINTR},
      {"epoll_create1", EMFILE},
      {"epoll_ctl", ENOMEM},
      {"epoll_wait", EINTR},
      {"eventfd", EMFILE},
      {"socket", EMFILE},
      {"bind", EADDRINUSE},
      {"listen", EADDRINUSE},
      {"accept4", ECONNABORTED},
      {"connect", ECONNREFUSED},
      {"sendto", ENOBUFS},
      {"recvfrom", ECONNRESET},
      {"recvmsg", ECONNRESET},
      {"sendmsg", ENOBUFS},
      {"setsockopt", EINVAL},
      {"getsockopt", EINVAL},
      {"getsockname", EBADF},
      {"getpeername", ENOTCONN},
      {"shutdown", ENOTCONN},
      {"getrlimit", EINVAL},
      {"setrlimit", EPERM},
      {"clock_gettime", EINVAL},
  };
  auto it = kTypical.find(name);
  return it == kTypical.end() ? 0 : it->second;
}

void FakeSyscalls::fail_nth(const std::string& name, int nth, int error) {
  faults_->rules.push_back({name, [nth](const CallRecord& r) { return r.nth == nth; }, error,
                            fmt::format("nth {} of {}", nth, name)});
}

void FakeSyscalls::fail_when(const std::string& name, Predicate when, int error) {
  faults_->rules.push_back({name, std::move(when), error,
                            fmt::format("predicate on {}", name.empty() ? "any call" : name)});
}

void FakeSyscalls::fail_call_at(std::size_t index, int error) {
  faults_->rules.push_back({"", [index](const CallRecord& r) { return r.index == index; }, error,
                            fmt::format("call at index {}", index)});
}

void FakeSyscalls::fail_randomly(std::uint64_t seed, double probability,
                                 std::vector<std::string> names) {
  faults_->random = Faults::Random{seed, probability, std::move(names)};
  random_trace_.reset();
  random_trace_ = std::make_unique<testing::ScopedTrace>(
      __FILE__, __LINE__,
      fmt::format("FakeSyscalls injects random faults: seed={} probability={} "
                  "(fail_randomly({}, {}) reproduces them)",
                  seed, probability, seed, probability));
}

void FakeSyscalls::clear_faults() {
  faults_->rules.clear();
  faults_->random.reset();
  random_trace_.reset();
}

int FakeSyscalls::injected_error() {
  CallRecord& record = transcript_.back();
  const std::size_t index = record.index;
  for (const auto& rule : faults_->rules) {
    if (!rule.name.empty() && rule.name != record.name) continue;
    if (!rule.when(record)) continue;
    const int error = rule.error != 0 ? rule.error : typical_errno(record.name);
    if (error == 0) continue;
    record.injected_by = rule.description;
    return error;
  }
  if (const auto& random = faults_->random) {
    const auto& names = random->names;
    if (!names.empty() && std::find(names.begin(), names.end(), record.name) == names.end()) {
      return 0;
    }
    const std::uint64_t draw = mix(random->seed ^ mix(index));
    const double u = static_cast<double>(draw >> 11) * 0x1.0p-53;
    const int error = typical_errno(record.name);
    if (u < random->probability && error != 0) {
      record.injected_by =
          fmt::format("random, seed={} probability={}", random->seed, random->probability);
      return error;
    }
  }
  return 0;
}

// ---- Recording ---------------------------------------------------------------------------

void FakeSyscalls::begin_call(const char* name, std::vector<std::string> args) {
  const pid_t pid = kernel_->current_pid;
  if (pid == 0) {
    detail::Kernel::fatal(fmt::format(
        "{}() called while no process is current: the last current process ended (exit_now, "
        "execve or a fatal signal). Call switch_to(pid) first.",
        name));
  }
  CallRecord record;
  record.index = next_index_++;
  record.name = name;
  record.pid = pid;
  record.args = std::move(args);
  auto count = nth_counts_.find(record.name);
  if (count == nth_counts_.end()) count = nth_counts_.emplace(record.name, 0).first;
  record.nth = ++count->second;
  transcript_.push_back(std::move(record));
}

void FakeSyscalls::end_call(std::string value, int error) {
  CallRecord& record = transcript_.back();
  record.finished = true;
  record.value = std::move(value);
  record.error = error;
  if (error != 0 && !kernel_->last_block_reason.empty()) {
    record.note = std::move(kernel_->last_block_reason);
    kernel_->last_block_reason.clear();
  }
  if (!recording_) transcript_.pop_back();
}

void FakeSyscalls::check_current_alive(pid_t caller) {
  if (kernel_->current_pid != 0) return;
  const Process& p = kernel_->processes.at(caller);
  if (p.alive()) throw ProcessEnded{caller, 0, true};
  throw ProcessEnded{caller, p.wait_status, false};
}

// ---- Construction and setup --------------------------------------------------------------

FakeSyscalls::FakeSyscalls() : FakeSyscalls(FakeSyscallsOptions{}) {}

FakeSyscalls::FakeSyscalls(const FakeSyscallsOptions& options)
    : kernel_(std::make_unique<detail::Kernel>(options)), faults_(std::make_unique<Faults>()) {}

FakeSyscalls::~FakeSyscalls() = default;

void FakeSyscalls::add_user(const std::string& name, uid_t uid, gid_t gid, const std::string& home,
                            const std::string& shell) {
  kernel_->users.push_back({name, uid, gid, home, shell});
}

void FakeSyscalls::add_group(const std::string& name, gid_t gid, std::vector<std::string> members) {
  kernel_->groups.push_back({name, gid, std::move(members)});
}

namespace {

std::pair<std::string, std::string> split_last(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return {"/", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

void FakeSyscalls::write_file(const std::string& path, const std::string& contents, mode_t mode,
                              uid_t uid, gid_t gid) {
  auto [dir_path, name] = split_last(path);
  auto dir = kernel_->make_dirs(dir_path);
  auto& slot = dir->entries[name];
  if (!slot || !slot->is_reg()) {
    slot.reset();
    kernel_->link_into(dir, name, kernel_->new_inode(S_IFREG, uid, gid));
  }
  auto& node = dir->entries[name];
  node->mode = S_IFREG | (mode & 07777);
  node->uid = uid;
  node->gid = gid;
  node->data = contents;
}

void FakeSyscalls::make_fifo(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  auto [dir_path, name] = split_last(path);
  auto dir = kernel_->make_dirs(dir_path);
  dir->entries.erase(name);
  kernel_->link_into(dir, name, kernel_->new_inode(S_IFIFO | (mode & 07777), uid, gid));
}

void FakeSyscalls::make_dir(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  auto dir = kernel_->make_dirs(path);
  dir->mode = S_IFDIR | (mode & 07777);
  dir->uid = uid;
  dir->gid = gid;
}

void FakeSyscalls::make_symlink(const std::string& target, const std::string& path) {
  auto [dir_path, name] = split_last(path);
  auto dir = kernel_->make_dirs(dir_path);
  auto link = kernel_->new_inode(S_IFLNK | 0777, 0, 0);
  link->data = target;
  dir->entries.erase(name);
  kernel_->link_into(dir, name, link);
}

void FakeSyscalls::make_hard_link(const std::string& existing, const std::string& path) {
  auto node = kernel_->lookup_as_root(existing, false);
  if (!node || node->is_dir()) {
    detail::Kernel::fatal(
        fmt::format("make_hard_link: {} is not there or is a directory", existing));
  }
  auto [dir_path, name] = split_last(path);
  auto dir = kernel_->make_dirs(dir_path);
  if (dir->entries.count(name) != 0) {
    detail::Kernel::fatal(fmt::format("make_hard_link: {} exists already", path));
  }
  kernel_->link_into(dir, name, node);
  ++node->nlink;
  node->ctime = kernel_->now();
}

void FakeSyscalls::install_program(const std::string& path, mode_t mode) {
  install_program(path, FakeProgram{}, mode);
}

void FakeSyscalls::install_program(const std::string& path, FakeProgram program, mode_t mode) {
  write_file(path, "#!/fake/program\n", mode);
  const ino_t ino = kernel_->lookup_as_root(path, true)->ino;
  if (program) {
    kernel_->installed_programs[ino] = std::move(program);
  } else {
    kernel_->installed_programs.erase(ino);
  }
}

std::optional<std::string> FakeSyscalls::read_file(const std::string& path) const {
  auto node = kernel_->lookup_as_root(path, true);
  if (!node || !node->is_reg()) return std::nullopt;
  return node->data;
}

std::optional<struct stat> FakeSyscalls::stat_path(const std::string& path) const {
  auto node = kernel_->lookup_as_root(path, false);
  if (!node) return std::nullopt;
  return detail::Kernel::stat_of(*node);
}

// ---- Processes (test side) ---------------------------------------------------------------

void FakeSyscalls::script_fork(ForkAs as) { kernel_->fork_script.push_back(as); }

void FakeSyscalls::switch_to(pid_t pid) {
  const Process* p = kernel_->find(pid);
  if (p == nullptr || !p->alive()) {
    detail::Kernel::fatal(fmt::format("switch_to({}): no such running process", pid));
  }
  if (p->vfork_child != 0) {
    detail::Kernel::fatal(
        fmt::format("switch_to({}): it is asleep in vfork until its child {} execs or ends", pid,
                    p->vfork_child));
  }
  kernel_->current_pid = pid;
}

pid_t FakeSyscalls::current_pid() const { return kernel_->current_pid; }

pid_t FakeSyscalls::last_forked_pid() const { return kernel_->last_forked; }

void FakeSyscalls::end_process(pid_t pid, int code) {
  Process* p = kernel_->find(pid);
  if (p == nullptr || !p->alive()) {
    detail::Kernel::fatal(fmt::format("end_process({}): no such running process", pid));
  }
  kernel_->terminate(*p, W_EXITCODE(code & 0xff, 0));
}

void FakeSyscalls::send_signal(pid_t pid, int sig) {
  Process* p = kernel_->find(pid);
  if (p == nullptr) detail::Kernel::fatal(fmt::format("send_signal({}): no such process", pid));
  kernel_->deliver(*p, sig, 0);
}

bool FakeSyscalls::process_exists(pid_t pid) const { return kernel_->find(pid) != nullptr; }

ProcessInfo FakeSyscalls::process(pid_t pid) const {
  const Process* p = kernel_->find(pid);
  if (p == nullptr) detail::Kernel::fatal(fmt::format("process({}): no such process", pid));
  ProcessInfo info;
  info.pid = p->pid;
  info.ppid = p->ppid;
  info.sid = p->sid;
  info.pgid = p->pgid;
  info.uids = p->uids;
  info.gids = p->gids;
  info.groups = p->groups;
  info.umask = p->umask;
  info.cwd = kernel_->path_of(p->cwd, p->root) + (p->cwd->removed ? " (deleted)" : "");
  info.root = kernel_->path_of(p->root, kernel_->fs_root);
  info.state = p->state;
  info.wait_status = p->wait_status;
  info.subreaper = p->subreaper;
  info.pdeathsig = p->pdeathsig;
  info.controlling_terminal = detail::Kernel::terminal_name(*p);
  info.execs = p->execs;
  info.signals = p->signals;
  for (int sig = 1; sig <= detail::kMaxSignal; ++sig) {
    if (sigismember(&p->pending, sig) == 1) info.pending_signals.push_back(sig);
    if (sigismember(&p->mask, sig) == 1) info.blocked_signals.push_back(sig);
    const auto& action = p->actions[static_cast<std::size_t>(sig)];
    if (action.sa_handler == SIG_IGN) {
      info.ignored_signals.push_back(sig);
    } else if (action.sa_handler != SIG_DFL) {
      info.caught_signals.push_back(sig);
    }
  }
  info.nofile = p->rlimits[RLIMIT_NOFILE];
  info.fds = open_fds(pid);
  return info;
}

std::vector<int> FakeSyscalls::open_fds(pid_t pid) const {
  const Process* p = kernel_->find(pid);
  if (p == nullptr) detail::Kernel::fatal(fmt::format("open_fds({}): no such process", pid));
  std::vector<int> fds;
  for (const auto& [fd, entry] : p->fds) fds.push_back(fd);
  return fds;
}

std::string FakeSyscalls::describe_fd(pid_t pid, int fd) const {
  const Process* p = kernel_->find(pid);
  if (p == nullptr) return "no such process";
  auto it = p->fds.find(fd);
  if (it == p->fds.end()) return "closed";
  return it->second.file->describe() + (it->second.cloexec ? " (cloexec)" : "");
}

void FakeSyscalls::set_would_block(WouldBlock policy) { kernel_->would_block_policy = policy; }

void FakeSyscalls::before_each_call(BeforeCall hook) { before_call_ = std::move(hook); }

void FakeSyscalls::run_before_call(const char* name) {
  if (!before_call_ || in_before_call_) return;
  const pid_t caller = kernel_->current_pid;
  in_before_call_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{in_before_call_};
  before_call_(name, caller);
  // The hook may have ended the caller itself (a signal, end_process): it died just before
  // the call, which it never makes.
  const Process* p = kernel_->find(caller);
  if (p != nullptr && !p->alive()) {
    kernel_->current_pid = 0;
    throw ProcessEnded{caller, p->wait_status, false};
  }
  kernel_->current_pid = caller;
}

ManualClock& FakeSyscalls::clock() { return kernel_->clock; }

const Transcript& FakeSyscalls::transcript() const { return transcript_; }

void FakeSyscalls::clear_transcript() {
  transcript_.clear();
  next_index_ = 0;
  nth_counts_.clear();
}

void FakeSyscalls::set_recording(bool on) { recording_ = on; }

void PrintTo(const FakeSyscalls& fake, std::ostream* os) {
  *os << "FakeSyscalls (current pid " << fake.current_pid() << ", " << fake.transcript().size()
      << " calls recorded)";
}

// ---- Processes ---------------------------------------------------------------------------

sys::Result<pid_t> FakeSyscalls::fork() {
  return call<pid_t>("fork", {}, [&](Process& p) { return kernel_->fork(p); });
}

// The child runs here and now, as the current process, while the caller waits: the fake's model
// of a parent asleep until its vfork child execs or ends. The body shares the test's memory as
// the real child shares its parent's.
sys::Result<pid_t> FakeSyscalls::vfork(sys::ChildMain body) {
  auto child = call<pid_t>(
      "vfork", {}, [&](Process& p) -> sys::Result<pid_t> { return kernel_->start_vfork(p); });
  if (!child) return child;
  run_vfork_child(*child, body);
  return child;
}

sys::Result<sys::ChildWithPidFd> FakeSyscalls::vfork_with_pidfd(sys::ChildMain body) {
  auto child = call<sys::ChildWithPidFd>(
      "vfork_with_pidfd", {}, [&](Process& p) -> sys::Result<sys::ChildWithPidFd> {
        // Linux gives up the whole clone when it has no descriptor for the pidfd.
        if (!kernel_->fd_available(p)) return sys::fail(EMFILE, "vfork_with_pidfd");
        const pid_t pid = kernel_->start_vfork(p);
        // After the child's copy of the table: the child does not hold its own pidfd.
        auto pidfd = kernel_->pidfd_open(p, pid, 0);
        if (!pidfd) return sys::fail(pidfd.error().code, "vfork_with_pidfd");
        return sys::ChildWithPidFd{pid, *pidfd};
      });
  if (!child) return child;
  run_vfork_child(child->pid, body);
  return child;
}

void FakeSyscalls::run_vfork_child(pid_t child, sys::ChildMain& body) {
  const pid_t parent = kernel_->processes.at(child).ppid;
  try {
    exit_now(body());
  } catch (const ProcessEnded& ended) {
    if (ended.pid != child) throw;  // another process's end, for the test to handle
  } catch (...) {
    // The real child would die of std::terminate; the test gets the exception to see why.
    kernel_->terminate(kernel_->processes.at(child), SIGABRT);
    kernel_->resume_from_vfork(parent);
    throw;
  }
  kernel_->resume_from_vfork(parent);
}

sys::Result<pid_t> FakeSyscalls::setsid() {
  return call<pid_t>("setsid", {}, [&](Process& p) { return kernel_->setsid(p); });
}

pid_t FakeSyscalls::getpid() {
  return *call<pid_t>(
      "getpid", {}, [](Process& p) -> sys::Result<pid_t> { return p.pid; }, false);
}

pid_t FakeSyscalls::getppid() {
  return *call<pid_t>(
      "getppid", {}, [](Process& p) -> sys::Result<pid_t> { return p.ppid; }, false);
}

sys::Result<pid_t> FakeSyscalls::getsid(pid_t pid) {
  return call<pid_t>("getsid", {arg(pid)}, [&](Process& p) { return kernel_->getsid(p, pid); });
}

sys::Result<pid_t> FakeSyscalls::getpgid(pid_t pid) {
  return call<pid_t>("getpgid", {arg(pid)}, [&](Process& p) { return kernel_->getpgid(p, pid); });
}

sys::Result<void> FakeSyscalls::setpgid(pid_t pid, pid_t pgid) {
  return call<void>("setpgid", {arg(pid), arg(pgid)},
                    [&](Process& p) { return kernel_->setpgid(p, pid, pgid); });
}

sys::Result<sys::WaitResult> FakeSyscalls::waitpid(pid_t pid, int options) {
  may_wait(WaitOn::kAnything);
  return call<sys::WaitResult>("waitpid",
                               {arg(pid), flags_text(options, {{WNOHANG, "WNOHANG"},
                                                               {WUNTRACED, "WUNTRACED"},
                                                               {WCONTINUED, "WCONTINUED"}})},
                               [&](Process& p) { return kernel_->waitpid(p, pid, options); });
}

sys::Result<void> FakeSyscalls::kill(pid_t pid, int sig) {
  return call<void>("kill", {arg(pid), signal_text(sig)},
                    [&](Process& p) { return kernel_->kill(p, pid, sig); });
}

sys::Result<int> FakeSyscalls::pidfd_open(pid_t pid, unsigned int flags) {
  const int shown = static_cast<int>(flags);
  return call<int>("pidfd_open", {arg(pid), flags_text(shown, {{O_NONBLOCK, "PIDFD_NONBLOCK"}})},
                   [&](Process& p) { return kernel_->pidfd_open(p, pid, flags); });
}

sys::Result<void> FakeSyscalls::pidfd_send_signal(int pidfd, int sig, unsigned int flags) {
  return call<void>("pidfd_send_signal", {arg(pidfd), signal_text(sig), arg(flags)},
                    [&](Process& p) { return kernel_->pidfd_send_signal(p, pidfd, sig, flags); });
}

sys::Result<void> FakeSyscalls::execve(const char* path, char* const argv[], char* const envp[]) {
  return call<void>("execve", {arg(path), list_text(argv), list_text(envp)},
                    [&](Process& p) { return kernel_->execve(p, path, argv, envp); });
}

void FakeSyscalls::exit_now(int status) {
  auto ended = call<void>(
      "exit_now", {arg(status)},
      [&](Process& p) -> sys::Result<void> {
        kernel_->terminate(p, W_EXITCODE(status & 0xff, 0));
        return {};
      },
      false);
  // call() has thrown ProcessEnded already; this line is never reached.
  static_cast<void>(ended);
  detail::Kernel::fatal("exit_now returned");
}

sys::Result<int> FakeSyscalls::prctl(int option, unsigned long arg_value) {
  // PR_SET_NAME's argument is a pointer: the transcript shows the name, which does not change
  // from run to run as an address does.
  std::string shown = arg(arg_value);
  if (option == PR_SET_NAME && arg_value != 0) {
    const char* name = reinterpret_cast<const char*>(arg_value);
    shown = fmt::format("\"{}\"", std::string_view(name, strnlen(name, 16)));
  } else if (option == PR_GET_NAME) {
    shown = "buf";
  }
  return call<int>("prctl", {prctl_text(option), shown},
                   [&](Process& p) { return kernel_->prctl(p, option, arg_value); });
}

// ---- Credentials -------------------------------------------------------------------------

sys::Result<sys::ResUids> FakeSyscalls::getresuid() {
  return call<sys::ResUids>("getresuid", {},
                            [](Process& p) -> sys::Result<sys::ResUids> { return p.uids; });
}

sys::Result<sys::ResGids> FakeSyscalls::getresgid() {
  return call<sys::ResGids>("getresgid", {},
                            [](Process& p) -> sys::Result<sys::ResGids> { return p.gids; });
}

sys::Result<void> FakeSyscalls::setresuid(uid_t r, uid_t e, uid_t s) {
  return call<void>("setresuid", {id_text(r), id_text(e), id_text(s)},
                    [&](Process& p) { return kernel_->setresuid(p, r, e, s, "setresuid"); });
}

sys::Result<void> FakeSyscalls::setresgid(gid_t r, gid_t e, gid_t s) {
  return call<void>("setresgid", {id_text(r), id_text(e), id_text(s)},
                    [&](Process& p) { return kernel_->setresgid(p, r, e, s, "setresgid"); });
}

sys::Result<void> FakeSyscalls::setuid(uid_t uid) {
  return call<void>("setuid", {id_text(uid)}, [&](Process& p) { return kernel_->setuid(p, uid); });
}

sys::Result<void> FakeSyscalls::seteuid(uid_t uid) {
  return call<void>("seteuid", {id_text(uid)}, [&](Process& p) -> sys::Result<void> {
    if (uid == static_cast<uid_t>(-1)) return sys::fail(EINVAL, "seteuid");
    return kernel_->setresuid(p, static_cast<uid_t>(-1), uid, static_cast<uid_t>(-1), "seteuid");
  });
}

sys::Result<void> FakeSyscalls::setgid(gid_t gid) {
  return call<void>("setgid", {id_text(gid)}, [&](Process& p) { return kernel_->setgid(p, gid); });
}

sys::Result<void> FakeSyscalls::setegid(gid_t gid) {
  return call<void>("setegid", {id_text(gid)}, [&](Process& p) -> sys::Result<void> {
    if (gid == static_cast<gid_t>(-1)) return sys::fail(EINVAL, "setegid");
    return kernel_->setresgid(p, static_cast<gid_t>(-1), gid, static_cast<gid_t>(-1), "setegid");
  });
}

sys::Result<void> FakeSyscalls::setgroups(std::span<const gid_t> groups) {
  return call<void>("setgroups", {render(std::vector<gid_t>(groups.begin(), groups.end()))},
                    [&](Process& p) { return kernel_->setgroups(p, groups, "setgroups"); });
}

sys::Result<std::vector<gid_t>> FakeSyscalls::getgroups() {
  return call<std::vector<gid_t>>(
      "getgroups", {}, [](Process& p) -> sys::Result<std::vector<gid_t>> { return p.groups; });
}

sys::Result<std::optional<sys::Passwd>> FakeSyscalls::getpwnam(const char* name) {
  return call<std::optional<sys::Passwd>>(
      "getpwnam", {arg(name)}, [&](Process&) -> sys::Result<std::optional<sys::Passwd>> {
        return kernel_->user_by_name(name == nullptr ? "" : name);
      });
}

sys::Result<std::optional<sys::Passwd>> FakeSyscalls::getpwuid(uid_t uid) {
  return call<std::optional<sys::Passwd>>("getpwuid", {arg(uid)},
                                          [&](Process&) -> sys::Result<std::optional<sys::Passwd>> {
                                            return kernel_->user_by_uid(uid);
                                          });
}

sys::Result<std::optional<sys::Group>> FakeSyscalls::getgrnam(const char* name) {
  return call<std::optional<sys::Group>>(
      "getgrnam", {arg(name)}, [&](Process&) -> sys::Result<std::optional<sys::Group>> {
        return kernel_->group_by_name(name == nullptr ? "" : name);
      });
}

sys::Result<std::optional<sys::Group>> FakeSyscalls::getgrgid(gid_t gid) {
  return call<std::optional<sys::Group>>("getgrgid", {arg(gid)},
                                         [&](Process&) -> sys::Result<std::optional<sys::Group>> {
                                           return kernel_->group_by_gid(gid);
                                         });
}

sys::Result<std::vector<gid_t>> FakeSyscalls::getgrouplist(const char* user, gid_t group) {
  return call<std::vector<gid_t>>("getgrouplist", {arg(user), arg(group)},
                                  [&](Process&) -> sys::Result<std::vector<gid_t>> {
                                    return kernel_->group_list(user == nullptr ? "" : user, group);
                                  });
}

// ---- Files and descriptors ---------------------------------------------------------------

namespace {

sys::Result<int> install_fd(detail::Kernel& kernel, Process& p,
                            sys::Result<std::shared_ptr<detail::OpenFile>> file, int flags,
                            const char* call) {
  if (!file) return sys::fail(file.error());
  return kernel.allocate_fd(p, std::move(*file), (flags & O_CLOEXEC) != 0, 0, call);
}

}  // namespace

sys::Result<int> FakeSyscalls::open(const char* path, int flags, mode_t mode) {
  return call<int>("open", {arg(path), detail::open_flags_text(flags), mode_text(mode)},
                   [&](Process& p) -> sys::Result<int> {
                     if (path == nullptr) return sys::fail(EFAULT, "open");
                     // Linux reserves the descriptor before resolving the path, so EMFILE
                     // wins over any path error and O_CREAT creates nothing.
                     if (!kernel_->fd_available(p)) return sys::fail(EMFILE, "open");
                     return install_fd(*kernel_, p,
                                       kernel_->open_file(p, path, flags, mode, nullptr, "open"),
                                       flags, "open");
                   });
}

sys::Result<int> FakeSyscalls::openat(int dirfd, const char* path, int flags, mode_t mode) {
  return call<int>("openat",
                   {dirfd == AT_FDCWD ? std::string("AT_FDCWD") : arg(dirfd), arg(path),
                    detail::open_flags_text(flags), mode_text(mode)},
                   [&](Process& p) -> sys::Result<int> {
                     if (path == nullptr) return sys::fail(EFAULT, "openat");
                     if (!kernel_->fd_available(p)) return sys::fail(EMFILE, "openat");
                     std::shared_ptr<detail::Inode> base;
                     if (path[0] != '/' && dirfd != AT_FDCWD) {
                       auto* entry = kernel_->fd_entry(p, dirfd);
                       if (entry == nullptr) return sys::fail(EBADF, "openat");
                       base = entry->file->inode_ptr();
                       if (!base->is_dir()) return sys::fail(ENOTDIR, "openat");
                     }
                     return install_fd(*kernel_, p,
                                       kernel_->open_file(p, path, flags, mode, base, "openat"),
                                       flags, "openat");
                   });
}

sys::Result<void> FakeSyscalls::close(int fd) {
  // A destructor (a descriptor owner's) closing while the stack of a process that has just
  // ended unwinds: ProcessEnded is in flight and no process is current. A real process never
  // runs it, since _exit and a successful exec do not return, and its descriptors went with
  // it; so the call is not made, and is not charged to whichever process runs next. Any other
  // call with no process current still aborts (begin_call).
  if (kernel_->current_pid == 0 && std::uncaught_exceptions() > 0) return sys::fail(EBADF, "close");
  return call<void>("close", {arg(fd)}, [&](Process& p) { return kernel_->close(p, fd); });
}

sys::Result<void> FakeSyscalls::close_range(unsigned int first, unsigned int last, int flags) {
  return call<void>("close_range",
                    {arg(first), last == ~0U ? std::string("~0U") : arg(last),
                     flags_text(flags, {{CLOSE_RANGE_CLOEXEC, "CLOSE_RANGE_CLOEXEC"},
                                        {CLOSE_RANGE_UNSHARE, "CLOSE_RANGE_UNSHARE"}})},
                    [&](Process& p) { return kernel_->close_range(p, first, last, flags); });
}

sys::Result<int> FakeSyscalls::dup(int fd) {
  return call<int>("dup", {arg(fd)}, [&](Process& p) { return kernel_->dup(p, fd); });
}

sys::Result<int> FakeSyscalls::dup2(int oldfd, int newfd) {
  return call<int>("dup2", {arg(oldfd), arg(newfd)},
                   [&](Process& p) { return kernel_->dup3(p, oldfd, newfd, 0, "dup2"); });
}

sys::Result<int> FakeSyscalls::dup3(int oldfd, int newfd, int flags) {
  return call<int>("dup3", {arg(oldfd), arg(newfd), flags_text(flags, {{O_CLOEXEC, "O_CLOEXEC"}})},
                   [&](Process& p) { return kernel_->dup3(p, oldfd, newfd, flags, "dup3"); });
}

sys::Result<int> FakeSyscalls::fcntl(int fd, int cmd, int arg_value) {
  std::string shown = cmd == F_SETFL   ? detail::open_flags_text(arg_value)
                      : cmd == F_SETFD ? flags_text(arg_value, {{FD_CLOEXEC, "FD_CLOEXEC"}})
                                       : arg(arg_value);
  return call<int>("fcntl", {arg(fd), fcntl_cmd_text(cmd), std::move(shown)},
                   [&](Process& p) { return kernel_->fcntl(p, fd, cmd, arg_value); });
}

sys::Result<std::size_t> FakeSyscalls::read(int fd, void* buf, std::size_t count) {
  may_wait(WaitOn::kReadable, fd);
  return call<std::size_t>("read", {arg(fd), arg(count)},
                           [&](Process& p) { return kernel_->read(p, fd, buf, count); });
}

sys::Result<std::size_t> FakeSyscalls::write(int fd, const void* buf, std::size_t count) {
  may_wait(WaitOn::kWritable, fd);
  return call<std::size_t>("write", {arg(fd), bytes_text(buf, count), arg(count)},
                           [&](Process& p) { return kernel_->write(p, fd, buf, count); });
}

sys::Result<std::size_t> FakeSyscalls::writev(int fd, std::span<const struct iovec> iov) {
  // The bytes as one string (as write shows its buffer), then the vector's shape.
  std::string shown;
  std::size_t total = 0;
  for (const struct iovec& v : iov) {
    total += v.iov_len;
    if (v.iov_base != nullptr && shown.size() < 128) {
      shown.append(static_cast<const char*>(v.iov_base), std::min<std::size_t>(v.iov_len, 128));
    }
  }
  // A buffer that could not be read (EFAULT) cuts the text short.
  const bool whole = shown.size() >= std::min<std::size_t>(total, 128);
  return call<std::size_t>("writev",
                           {arg(fd), bytes_text(shown.data(), whole ? total : shown.size()),
                            fmt::format("{} iovecs", iov.size()), arg(total)},
                           [&](Process& p) { return kernel_->writev(p, fd, iov); });
}

sys::Result<void> FakeSyscalls::fsync(int fd) {
  return call<void>("fsync", {arg(fd)}, [&](Process& p) { return kernel_->fsync(p, fd); });
}

sys::Result<void> FakeSyscalls::ftruncate(int fd, off_t length) {
  return call<void>("ftruncate", {arg(fd), arg(length)},
                    [&](Process& p) { return kernel_->ftruncate(p, fd, length); });
}

sys::Result<struct stat> FakeSyscalls::fstat(int fd) {
  return call<struct stat>("fstat", {arg(fd)}, [&](Process& p) { return kernel_->fstat(p, fd); });
}

sys::Result<struct stat> FakeSyscalls::stat(const char* path) {
  return call<struct stat>(
      "stat", {arg(path)}, [&](Process & p) -> sys::Result<struct stat> {
        if (path == nullptr) return sys::fail(EFAULT, "stat");
        return kernel_->stat_path(p, path, true, "stat");
      });
}

sys::Result<struct stat> FakeSyscalls::lstat(const char* path) {
  return call<struct stat>(
      "lstat", {arg(path)}, [&](Process & p) -> sys::Result<struct stat> {
        if (path == nullptr) return sys::fail(EFAULT, "lstat");
        return kernel_->stat_path(p, path, false, "lstat");
      });
}

sys::Result<void> FakeSyscalls::flock(int fd, int operation) {
  return call<void>("flock",
                    {arg(fd), flags_text(operation, {{LOCK_SH, "LOCK_SH"},
                                                     {LOCK_EX, "LOCK_EX"},
                                                     {LOCK_UN, "LOCK_UN"},
                                                     {LOCK_NB, "LOCK_NB"}})},
                    [&](Process& p) { return kernel_->flock(p, fd, operation); });
}

sys::Result<std::size_t> FakeSyscalls::getdents64(int fd, void* buf, std::size_t count) {
  return call<std::size_t>("getdents64", {arg(fd), arg(count)},
                           [&](Process& p) { return kernel_->getdents64(p, fd, buf, count); });
}

namespace {

template <typename Fn>
auto with_path(const char* path, const char* call, Fn&& fn) -> decltype(fn(std::string_view())) {
  if (path == nullptr) return sys::fail(EFAULT, call);
  return fn(std::string_view(path));
}

}  // namespace

sys::Result<void> FakeSyscalls::unlink(const char* path) {
  return call<void>("unlink", {arg(path)}, [&](Process& p) {
    return with_path(path, "unlink", [&](std::string_view s) { return kernel_->unlink(p, s); });
  });
}

sys::Result<void> FakeSyscalls::rename(const char* from, const char* to) {
  return call<void>("rename", {arg(from), arg(to)}, [&](Process& p) -> sys::Result<void> {
    if (from == nullptr || to == nullptr) return sys::fail(EFAULT, "rename");
    return kernel_->rename(p, from, to);
  });
}

sys::Result<void> FakeSyscalls::symlink(const char* target, const char* linkpath) {
  return call<void>("symlink", {arg(target), arg(linkpath)}, [&](Process& p) -> sys::Result<void> {
    if (target == nullptr || linkpath == nullptr) return sys::fail(EFAULT, "symlink");
    return kernel_->symlink(p, target, linkpath);
  });
}

sys::Result<void> FakeSyscalls::mkdir(const char* path, mode_t mode) {
  return call<void>("mkdir", {arg(path), mode_text(mode)}, [&](Process& p) {
    return with_path(path, "mkdir", [&](std::string_view s) { return kernel_->mkdir(p, s, mode); });
  });
}

sys::Result<void> FakeSyscalls::rmdir(const char* path) {
  return call<void>("rmdir", {arg(path)}, [&](Process& p) {
    return with_path(path, "rmdir", [&](std::string_view s) { return kernel_->rmdir(p, s); });
  });
}

sys::Result<void> FakeSyscalls::chmod(const char* path, mode_t mode) {
  return call<void>("chmod", {arg(path), mode_text(mode)}, [&](Process& p) {
    return with_path(path, "chmod", [&](std::string_view s) { return kernel_->chmod(p, s, mode); });
  });
}

sys::Result<void> FakeSyscalls::fchmod(int fd, mode_t mode) {
  return call<void>("fchmod", {arg(fd), mode_text(mode)},
                    [&](Process& p) { return kernel_->fchmod(p, fd, mode); });
}

sys::Result<void> FakeSyscalls::chown(const char* path, uid_t owner, gid_t group) {
  return call<void>("chown", {arg(path), id_text(owner), id_text(group)}, [&](Process& p) {
    return with_path(path, "chown",
                     [&](std::string_view s) { return kernel_->chown(p, s, owner, group); });
  });
}

sys::Result<void> FakeSyscalls::chdir(const char* path) {
  return call<void>("chdir", {arg(path)}, [&](Process& p) {
    return with_path(path, "chdir", [&](std::string_view s) { return kernel_->chdir(p, s); });
  });
}

sys::Result<void> FakeSyscalls::chroot(const char* path) {
  return call<void>("chroot", {arg(path)}, [&](Process& p) {
    return with_path(path, "chroot", [&](std::string_view s) { return kernel_->chroot(p, s); });
  });
}

sys::Result<std::string> FakeSyscalls::getcwd() {
  return call<std::string>("getcwd", {}, [&](Process& p) { return kernel_->getcwd(p); });
}

mode_t FakeSyscalls::umask(mode_t mask) {
  return *call<mode_t>(
      "umask", {mode_text(mask)},
      [&](Process& p) -> sys::Result<mode_t> {
        const mode_t old = p.umask;
        p.umask = mask & 0777;
        return old;
      },
      false);
}

// ---- Pipes and signals -------------------------------------------------------------------

sys::Result<sys::PipeFds> FakeSyscalls::pipe2(int flags) {
  return call<sys::PipeFds>(
      "pipe2",
      {flags_text(flags,
                  {{O_CLOEXEC, "O_CLOEXEC"}, {O_NONBLOCK, "O_NONBLOCK"}, {O_DIRECT, "O_DIRECT"}})},
      [&](Process& p) { return kernel_->pipe2(p, flags); });
}

sys::Result<void> FakeSyscalls::sigaction(int sig, const struct sigaction* act,
                                          struct sigaction* old) {
  return call<void>("sigaction", {signal_text(sig), handler_text(act), old ? "&old" : "NULL"},
                    [&](Process& p) { return kernel_->sigaction(p, sig, act, old); });
}

sys::Result<void> FakeSyscalls::sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  const std::string how_text = how == SIG_BLOCK     ? "SIG_BLOCK"
                               : how == SIG_UNBLOCK ? "SIG_UNBLOCK"
                               : how == SIG_SETMASK ? "SIG_SETMASK"
                                                    : std::to_string(how);
  return call<void>("sigprocmask", {how_text, sigset_text(set), old ? "&old" : "NULL"},
                    [&](Process& p) { return kernel_->sigprocmask(p, how, set, old); });
}

// ---- Limits and time ---------------------------------------------------------------------

sys::Result<struct rlimit> FakeSyscalls::getrlimit(int resource) {
  return call<struct rlimit>("getrlimit", {resource_text(resource)},
                             [&](Process& p) { return kernel_->getrlimit(p, resource); });
}

sys::Result<void> FakeSyscalls::setrlimit(int resource, const struct rlimit& limit) {
  return call<void>("setrlimit", {resource_text(resource), render(limit)},
                    [&](Process& p) { return kernel_->setrlimit(p, resource, limit); });
}

sys::Result<struct timespec> FakeSyscalls::clock_gettime(clockid_t clock) {
  return call<struct timespec>("clock_gettime", {clock_text(clock)},
                               [&](Process&) { return kernel_->clock_gettime(clock); });
}

}  // namespace daemonkit::fake
