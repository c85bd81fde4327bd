// /proc as far as daemons use it: /proc/self (a symlink to the caller's pid), /proc listing the
// live pids, /proc/<pid>, /proc/<pid>/fd, whose listing is the process's descriptor table at the
// time of reading, so code that closes inherited descriptors by listing /proc/self/fd is tested
// as on Linux, /proc/<pid>/fd/<n> as magic links to the open files themselves,
// /proc/<pid>/fdinfo/<n> with the offset, flags and the flocks held through that open file
// description (how a PID file's lock holder is found), and /proc/<pid>/stat, whose state field
// tells a zombie from a running process.
#include <dirent.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {
namespace {

std::optional<long> parse_number(const std::string& name) {
  long value = 0;
  const char* end = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(name.data(), end, value);
  if (ec != std::errc() || ptr != end || name.empty() || name[0] == '+') return std::nullopt;
  return value;
}

// Linux numbers these entries: position 0 is ".", 1 is "..", and fd N sits at N + 2, so a
// reader resuming after closing descriptors neither repeats nor skips any.
// /proc/<pid>/fdinfo is listed the same way, its entries regular files.
class ProcFdDirectory final : public OpenFile {
 public:
  ProcFdDirectory(std::shared_ptr<Inode> inode, int flags, bool fdinfo)
      : OpenFile(std::move(inode), flags), fdinfo_(fdinfo) {}

  std::string describe() const override {
    return fmt::format("dir:/proc/{}/{}", inode_->proc_pid, fdinfo_ ? "fdinfo" : "fd");
  }

  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte>) override {
    return sys::fail(EISDIR, "read");
  }

  sys::Result<std::size_t> getdents64(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    std::size_t used = 0;
    bool stopped_early = false;
    auto emit = [&](ino_t ino, off_t next, unsigned char type, const std::string& name) {
      const std::size_t n = put_dirent64(buf.subspan(used), ino, next, type, name);
      if (n == 0) {
        stopped_early = true;
        return false;
      }
      used += n;
      position_ = next;
      return true;
    };
    if (position_ == 0 && !emit(inode_->ino, 1, DT_DIR, ".")) return finish(used, stopped_early);
    if (position_ == 1) {
      auto parent = inode_->parent.lock();
      if (!emit(parent ? parent->ino : inode_->ino, 2, DT_DIR, "..")) {
        return finish(used, stopped_early);
      }
    }
    const Process* owner = kernel.find(inode_->proc_pid);
    if (owner != nullptr) {
      for (auto it = owner->fds.lower_bound(static_cast<int>(position_ - 2));
           it != owner->fds.end(); ++it) {
        if (!emit(static_cast<ino_t>(0x10000 + it->first), it->first + 3, fdinfo_ ? DT_REG : DT_LNK,
                  std::to_string(it->first))) {
          break;
        }
      }
    }
    return finish(used, stopped_early);
  }

 private:
  sys::Result<std::size_t> finish(std::size_t used, bool stopped_early) {
    if (used == 0 && stopped_early) return sys::fail(EINVAL, "getdents64");
    return used;
  }

  bool fdinfo_ = false;
  off_t position_ = 0;
};

// "pid (comm) state ppid pgrp session ...", made when the description is opened, as Linux
// fills the buffer at open. Only the fields up to the session are meaningful; the rest read 0.
// Also the text of /proc/<pid>/fdinfo/<n>, likewise made at open.
class ProcTextFile final : public OpenFile {
 public:
  ProcTextFile(std::shared_ptr<Inode> inode, int flags, std::string text)
      : OpenFile(std::move(inode), flags), text_(std::move(text)) {}
  std::string describe() const override {
    if (inode_->special == Special::kProcFdinfo) {
      return fmt::format("file:/proc/{}/fdinfo/{}", inode_->proc_pid, inode_->proc_fd);
    }
    return fmt::format("file:/proc/{}/stat", inode_->proc_pid);
  }
  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte> buf) override {
    if (text_.empty()) return sys::fail(ESRCH, "read");  // the process was reaped meanwhile
    const std::size_t n = std::min(buf.size(), text_.size() - position_);
    std::memcpy(buf.data(), text_.data() + position_, n);
    position_ += n;
    return n;
  }

 private:
  std::string text_;
  std::size_t position_ = 0;
};

// The kernel's comm: the executable's base name, cut to 15 bytes (TASK_COMM_LEN - 1). A process
// that never exec'd carries its parent's, which in the fake is the test binary: "fake".
std::string comm_of(const Process& p) {
  if (p.execs.empty()) return "fake";
  const std::string& path = p.execs.back().path;
  const std::size_t slash = path.rfind('/');
  return path.substr(slash == std::string::npos ? 0 : slash + 1, 15);
}

std::string stat_line(const Process& p) {
  const char state = p.state == ProcessState::kZombie ? 'Z' : 'S';
  return fmt::format("{} ({}) {} {} {} {}{}\n", p.pid, comm_of(p), state, p.ppid, p.pgid, p.sid,
                     " 0 -1 0 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0");
}

// What Linux's seq_show_fdinfo prints: the offset, the flags (with O_CLOEXEC when the
// descriptor has it), the mount and inode, then one line per lock held through this open file
// description. A flock line names the process that took the lock (which may be gone) and the
// device as hexadecimal major:minor.
std::string fdinfo_text(const FdEntry& entry) {
  const OpenFile& file = *entry.file;
  const Inode& node = file.inode();
  const int flags = file.status_flags() | (entry.cloexec ? O_CLOEXEC : 0);
  std::string text =
      fmt::format("pos:\t{}\nflags:\t0{:o}\nmnt_id:\t{}\nino:\t{}\n", file.position(),
                  static_cast<unsigned>(flags), 20 + static_cast<int>(node.dev % 64), node.ino);
  int id = 0;
  for (const Flock& lock : node.flocks) {
    if (lock.owner != &file) continue;
    text += fmt::format("lock:\t{}: FLOCK  ADVISORY  {} {} {:02x}:{:02x}:{} 0 EOF\n", ++id,
                        lock.exclusive ? "WRITE" : "READ", lock.taker, major(node.dev),
                        minor(node.dev), node.ino);
  }
  return text;
}

// /proc lists "self" and the pids of processes not yet reaped, ascending; /proc/<pid> is
// listed as empty (its entries are reached by name).
class ProcDirectory final : public OpenFile {
 public:
  ProcDirectory(std::shared_ptr<Inode> inode, int flags) : OpenFile(std::move(inode), flags) {}
  std::string describe() const override {
    if (inode_->special == Special::kProcRoot) return "dir:/proc";
    return fmt::format("dir:/proc/{}", inode_->proc_pid);
  }
  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte>) override {
    return sys::fail(EISDIR, "read");
  }
  // The position is an index into the listing made at each call, so processes that appear or
  // go between calls may be seen or missed, as on Linux.
  sys::Result<std::size_t> getdents64(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    if (inode_->special != Special::kProcRoot) return std::size_t{0};
    struct Entry {
      std::string name;
      unsigned char type;
    };
    std::vector<Entry> list{{".", DT_DIR}, {"..", DT_DIR}, {"self", DT_LNK}};
    for (const auto& [pid, process] : kernel.processes) {
      if (process.state != ProcessState::kReaped) list.push_back({std::to_string(pid), DT_DIR});
    }
    std::size_t used = 0;
    while (position_ < list.size()) {
      const std::size_t n = put_dirent64(buf.subspan(used), static_cast<ino_t>(0x20000 + position_),
                                         static_cast<off_t>(position_ + 1), list[position_].type,
                                         list[position_].name);
      if (n == 0) break;
      used += n;
      ++position_;
    }
    if (used == 0 && position_ < list.size()) return sys::fail(EINVAL, "getdents64");
    return used;
  }

 private:
  std::size_t position_ = 0;
};

}  // namespace

std::shared_ptr<Inode> Kernel::proc_child(Process& p, const Inode& dir, const std::string& name) {
  auto cached = [&](const std::string& key, mode_t mode, Special special, pid_t pid,
                    const std::shared_ptr<Inode>& parent) {
    auto& slot = proc_inodes[key];
    if (!slot) {
      slot = new_inode(mode, 0, 0, kProcDev);
      slot->special = special;
      slot->proc_pid = pid;
      slot->parent = parent;
      slot->name = name;
    }
    return slot;
  };
  switch (dir.special) {
    case Special::kProcRoot: {
      if (name == "self") {
        auto link = new_inode(S_IFLNK | 0777, 0, 0, kProcDev);
        link->data = std::to_string(p.pid);
        return link;
      }
      auto pid = parse_number(name);
      const Process* target = pid ? find(static_cast<pid_t>(*pid)) : nullptr;
      if (target == nullptr || target->state == ProcessState::kReaped) return nullptr;
      auto proc_root = fs_root->entries.at("proc");
      auto node = cached(name, S_IFDIR | 0555, Special::kProcPidDir, target->pid, proc_root);
      node->uid = target->uids.effective;
      node->gid = target->gids.effective;
      return node;
    }
    case Special::kProcPidDir: {
      const Process* target = find(dir.proc_pid);
      if (target == nullptr) return nullptr;
      if (name == "stat") {
        auto node =
            cached(std::to_string(dir.proc_pid) + "/stat", S_IFREG | 0444, Special::kProcStat,
                   dir.proc_pid, proc_inodes[std::to_string(dir.proc_pid)]);
        node->uid = target->uids.effective;
        node->gid = target->gids.effective;
        return node;
      }
      if (name != "fd" && name != "fdinfo") return nullptr;
      auto parent = proc_inodes[std::to_string(dir.proc_pid)];
      const bool fd = name == "fd";
      auto node = cached(std::to_string(dir.proc_pid) + "/" + name, S_IFDIR | (fd ? 0500 : 0555),
                         fd ? Special::kProcFdDir : Special::kProcFdinfoDir, dir.proc_pid, parent);
      node->uid = target->uids.effective;
      node->gid = target->gids.effective;
      return node;
    }
    case Special::kProcFdDir:
    case Special::kProcFdinfoDir: {
      Process* target = find(dir.proc_pid);
      auto fd = parse_number(name);
      if (target == nullptr || !fd || *fd < 0 || *fd > INT32_MAX) return nullptr;
      const FdEntry* entry = fd_entry(*target, static_cast<int>(*fd));
      if (entry == nullptr) return nullptr;
      // Made afresh at each lookup: the number may name another file by the next one.
      const bool link = dir.special == Special::kProcFdDir;
      mode_t mode = S_IFREG | 0444;
      if (link) {
        // Linux's proc_fd_link mode: r-x for a readable description, -wx for a writable one.
        mode =
            S_IFLNK | (entry->file->can_read() ? 0500 : 0) | (entry->file->can_write() ? 0300 : 0);
      }
      auto node = new_inode(mode, target->uids.effective, target->gids.effective, kProcDev);
      node->special = link ? Special::kProcFdLink : Special::kProcFdinfo;
      node->proc_pid = dir.proc_pid;
      node->proc_fd = static_cast<int>(*fd);
      node->name = name;
      return node;
    }
    default:
      return nullptr;
  }
}

std::shared_ptr<Inode> Kernel::proc_fd_target(const Inode& link) {
  Process* owner = find(link.proc_pid);
  if (owner == nullptr || !owner->alive()) return nullptr;
  const FdEntry* entry = fd_entry(*owner, link.proc_fd);
  return entry == nullptr ? nullptr : entry->file->inode_ptr();
}

bool Kernel::may_inspect(const Process& p, pid_t target_pid) const {
  if (p.privileged()) return true;
  const Process* target = find(target_pid);
  if (target == nullptr) return false;
  const uid_t u = p.uids.effective;
  const gid_t g = p.gids.effective;
  return target->dumpable != 0 && target->uids.real == u && target->uids.effective == u &&
         target->uids.saved == u && target->gids.real == g && target->gids.effective == g &&
         target->gids.saved == g;
}

std::shared_ptr<OpenFile> Kernel::open_proc_dir(const std::shared_ptr<Inode>& node, int flags) {
  if (node->special == Special::kProcFdDir || node->special == Special::kProcFdinfoDir) {
    return std::make_shared<ProcFdDirectory>(node, flags, node->special == Special::kProcFdinfoDir);
  }
  if (node->special == Special::kProcStat) {
    const Process* target = find(node->proc_pid);
    const bool gone = target == nullptr || target->state == ProcessState::kReaped;
    return std::make_shared<ProcTextFile>(node, flags, gone ? "" : stat_line(*target));
  }
  if (node->special == Special::kProcFdinfo) {
    Process* target = find(node->proc_pid);
    const FdEntry* entry =
        target != nullptr && target->alive() ? fd_entry(*target, node->proc_fd) : nullptr;
    return std::make_shared<ProcTextFile>(node, flags, entry ? fdinfo_text(*entry) : "");
  }
  return std::make_shared<ProcDirectory>(node, flags);
}

}  // namespace daemonkit::fake::detail
