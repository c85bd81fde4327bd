// The kernel's boot: the initial filesystem, users and processes, and the helpers every area
// shares (descriptor allocation, inodes, the would-block policy, the OpenFile defaults).
#include "kernel.h"

#include <dirent.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace daemonkit::fake::detail {

bool Process::in_group(gid_t gid) const {
  return gids.effective == gid || std::find(groups.begin(), groups.end(), gid) != groups.end();
}

namespace {

std::array<struct rlimit, RLIM_NLIMITS> default_rlimits(const struct rlimit& nofile) {
  std::array<struct rlimit, RLIM_NLIMITS> limits{};
  for (auto& limit : limits) limit = {RLIM_INFINITY, RLIM_INFINITY};
  limits[RLIMIT_CORE] = {0, RLIM_INFINITY};
  limits[RLIMIT_STACK] = {8 * 1024 * 1024, RLIM_INFINITY};
  limits[RLIMIT_NPROC] = {63388, 63388};
  limits[RLIMIT_MEMLOCK] = {8 * 1024 * 1024, 8 * 1024 * 1024};
  limits[RLIMIT_SIGPENDING] = {63388, 63388};
  limits[RLIMIT_MSGQUEUE] = {819200, 819200};
  limits[RLIMIT_NICE] = {0, 0};
  limits[RLIMIT_RTPRIO] = {0, 0};
  limits[RLIMIT_NOFILE] = nofile;
  return limits;
}

}  // namespace

Kernel::Kernel(const FakeSyscallsOptions& options) {
  fs_root = new_inode(S_IFDIR | 0755, 0, 0);
  fs_root->nlink = 2;
  make_dirs("/dev");
  lookup_as_root("/dev", true)->dev = kDevTmpfsDev;
  auto null = new_inode(S_IFCHR | 0666, 0, 0, kDevTmpfsDev);
  null->rdev = makedev(1, 3);
  null->special = Special::kDevNull;
  link_into(lookup_as_root("/dev", true), "null", null);
  auto ptmx = new_inode(S_IFCHR | 0666, 0, 0, kDevTmpfsDev);
  ptmx->rdev = makedev(5, 2);
  ptmx->special = Special::kPtmx;
  link_into(lookup_as_root("/dev", true), "ptmx", ptmx);
  make_dirs("/dev/pts")->dev = kDevPtsDev;
  auto proc = new_inode(S_IFDIR | 0555, 0, 0, kProcDev);
  proc->special = Special::kProcRoot;
  link_into(fs_root, "proc", proc);
  auto tmp = make_dirs("/tmp");
  tmp->mode = S_IFDIR | 01777;
  make_dirs("/run");
  make_dirs("/etc");
  make_dirs("/var/log");

  if (options.default_users) {
    users.push_back({"root", 0, 0, "/root", "/bin/sh"});
    users.push_back({"nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"});
    groups.push_back({"root", 0, {}});
    groups.push_back({"nogroup", 65534, {}});
  }

  auto make = [&](pid_t pid, pid_t ppid, pid_t sid, pid_t pgid, uid_t uid, gid_t gid) -> Process& {
    Process& p = processes[pid];
    p.pid = pid;
    p.ppid = ppid;
    p.sid = sid;
    p.pgid = pgid;
    p.uids = {uid, uid, uid};
    p.gids = {gid, gid, gid};
    p.cwd = fs_root;
    p.root = fs_root;
    p.rlimits = default_rlimits(options.nofile);
    for (auto& action : p.actions) action.sa_handler = SIG_DFL;
    sigemptyset(&p.mask);
    sigemptyset(&p.pending);
    if (ppid != 0) processes[ppid].children.push_back(pid);
    return p;
  };
  make(1, 0, 1, 1, 0, 0);
  if (options.pid <= 1) fatal("FakeSyscallsOptions: pid must be greater than 1");
  if (options.ppid != 1) {
    if (options.ppid <= 1 || options.ppid == options.pid) {
      fatal("FakeSyscallsOptions: ppid must be 1 or a pid other than the process's own");
    }
    make(options.ppid, 1, options.ppid, options.ppid, options.uid, options.gid);
    Process& self =
        make(options.pid, options.ppid, options.ppid, options.pid, options.uid, options.gid);
    self.groups = options.groups;
    self.umask = options.umask & 0777;
  } else {
    Process& self = make(options.pid, 1, 1, options.pid, options.uid, options.gid);
    self.groups = options.groups;
    self.umask = options.umask & 0777;
  }
  current_pid = options.pid;
  next_pid = std::max(options.pid, options.ppid) + 1;
}

Kernel::~Kernel() {
  // Descriptors close as processes go; nobody is left to wake.
  shutting_down = true;
  processes.clear();
  release_in_flight(*this);
}

void Kernel::fatal(const std::string& message) {
  std::fprintf(stderr, "daemonkit::fake::FakeSyscalls: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

Process& Kernel::current() {
  if (current_pid == 0) {
    fatal(
        "no process is current: the last current process ended (exit_now, execve or a fatal "
        "signal). Call switch_to(pid) before making more calls.");
  }
  return processes.at(current_pid);
}

Process* Kernel::find(pid_t pid) {
  auto it = processes.find(pid);
  return it == processes.end() ? nullptr : &it->second;
}

const Process* Kernel::find(pid_t pid) const {
  auto it = processes.find(pid);
  return it == processes.end() ? nullptr : &it->second;
}

sys::Result<int> Kernel::allocate_fd(Process& p, std::shared_ptr<OpenFile> file, bool cloexec,
                                     int min, const char* call) {
  const rlim_t limit = p.rlimits[RLIMIT_NOFILE].rlim_cur;
  int fd = min;
  for (auto it = p.fds.lower_bound(min); it != p.fds.end() && it->first == fd; ++it) ++fd;
  if (static_cast<rlim_t>(fd) >= limit) return sys::fail(EMFILE, call);
  p.fds[fd] = FdEntry{std::move(file), cloexec};
  return fd;
}

bool Kernel::fd_available(const Process& p) const {
  int fd = 0;
  for (auto it = p.fds.begin(); it != p.fds.end() && it->first == fd; ++it) ++fd;
  return static_cast<rlim_t>(fd) < p.rlimits[RLIMIT_NOFILE].rlim_cur;
}

FdEntry* Kernel::fd_entry(Process& p, int fd) {
  auto it = p.fds.find(fd);
  return it == p.fds.end() ? nullptr : &it->second;
}

std::shared_ptr<Inode> Kernel::new_inode(mode_t mode, uid_t uid, gid_t gid, dev_t dev) {
  auto node = std::make_shared<Inode>();
  node->ino = next_ino++;
  node->dev = dev;
  node->mode = mode;
  node->uid = uid;
  node->gid = gid;
  node->nlink = S_ISDIR(mode) ? 2 : 1;
  node->atime = node->mtime = node->ctime = now();
  return node;
}

timespec Kernel::now() const { return ManualClock::to_timespec(clock.realtime()); }

int Kernel::block_forever(const char* call, const std::string& why) {
  if (in_program_turn) {
    last_block_reason =
        fmt::format("{}() in pid {} would block: {}; the program waits for its next turn", call,
                    current_pid, why);
    return EAGAIN;
  }
  const std::string message =
      fmt::format("{}() in pid {} would block forever: {}", call, current_pid, why);
  if (would_block_policy == WouldBlock::kAbort) fatal(message);
  last_block_reason = message;
  return EDEADLK;
}

// ---- OpenFile defaults ---------------------------------------------------------------------

OpenFile::~OpenFile() {
  auto& locks = inode_->flocks;
  locks.erase(std::remove_if(locks.begin(), locks.end(),
                             [this](const Flock& lock) { return lock.owner == this; }),
              locks.end());
}

sys::Result<std::size_t> OpenFile::read(Kernel&, Process&, std::span<std::byte>) {
  return sys::fail(EINVAL, "read");
}

sys::Result<std::size_t> OpenFile::write(Kernel&, Process&, std::span<const std::byte>) {
  return sys::fail(EINVAL, "write");
}

sys::Result<std::size_t> OpenFile::getdents64(Kernel&, Process&, std::span<std::byte>) {
  return sys::fail(ENOTDIR, "getdents64");
}

sys::Result<void> OpenFile::truncate(Kernel&, off_t) { return sys::fail(EINVAL, "ftruncate"); }

sys::Result<void> OpenFile::fsync() { return sys::fail(EINVAL, "fsync"); }

Readiness OpenFile::readiness() const { return {can_read(), can_write(), false, false}; }

const void* OpenFile::wait_queue(const Process&) const { return this; }

std::string OpenFile::blocked_reason(const Kernel&) const {
  return describe() + " is not ready and nothing in the simulation can make it ready";
}

bool OpenFile::can_read() const {
  const int mode = status_flags_ & O_ACCMODE;
  return mode == O_RDONLY || mode == O_RDWR;
}

bool OpenFile::can_write() const {
  const int mode = status_flags_ & O_ACCMODE;
  return mode == O_WRONLY || mode == O_RDWR;
}

std::size_t put_dirent64(std::span<std::byte> out, ino_t ino, off_t next_offset, unsigned char type,
                         const std::string& name) {
  // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; },
  // each record padded to a multiple of 8 bytes.
  constexpr std::size_t kNameOffset = 19;
  const std::size_t reclen = (kNameOffset + name.size() + 1 + 7) & ~std::size_t{7};
  if (reclen > out.size()) return 0;
  std::memset(out.data(), 0, reclen);
  const std::uint64_t d_ino = ino;
  const std::int64_t d_off = next_offset;
  const auto d_reclen = static_cast<std::uint16_t>(reclen);
  std::memcpy(out.data(), &d_ino, sizeof d_ino);
  std::memcpy(out.data() + 8, &d_off, sizeof d_off);
  std::memcpy(out.data() + 16, &d_reclen, sizeof d_reclen);
  std::memcpy(out.data() + 18, &type, 1);
  std::memcpy(out.data() + kNameOffset, name.data(), name.size());
  return reclen;
}

// ---- Text --------------------------------------------------------------------------------

std::string octal(unsigned value) { return fmt::format("0{:o}", value); }

}  // namespace daemonkit::fake::detail
