// /proc as far as daemons use it: /proc/self (a symlink to the caller's pid), /proc/<pid>,
// /proc/<pid>/fd, whose listing is the process's descriptor table at the time of reading, so
// code that closes inherited descriptors by listing /proc/self/fd is tested as on Linux, and
// /proc/<pid>/stat, whose state field tells a zombie from a running process.
#include <dirent.h>

#include <algorithm>
#include <charconv>
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
class ProcFdDirectory final : public OpenFile {
 public:
  ProcFdDirectory(std::shared_ptr<Inode> inode, int flags) : OpenFile(std::move(inode), flags) {}

  std::string describe() const override {
    return fmt::format("dir:/proc/{}/fd", inode_->proc_pid);
  }

  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte>) override {
    return sys::fail(EISDIR, "read");
  }

  sys::Result<std::size_t> getdents64(Kernel& kernel, Process&,
                                      std::span<std::byte> buf) override {
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
        if (!emit(static_cast<ino_t>(0x10000 + it->first), it->first + 3, DT_LNK,
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

  off_t position_ = 0;
};

// "pid (comm) state ppid pgrp session ...", made when the description is opened, as Linux
// fills the buffer at open. Only the fields up to the session are meaningful; the rest read 0.
class ProcStatFile final : public OpenFile {
 public:
  ProcStatFile(std::shared_ptr<Inode> inode, int flags, std::string text)
      : OpenFile(std::move(inode), flags), text_(std::move(text)) {}
  std::string describe() const override {
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

class ProcDirectory final : public OpenFile {
 public:
  ProcDirectory(std::shared_ptr<Inode> inode, int flags) : OpenFile(std::move(inode), flags) {}
  std::string describe() const override { return "dir:/proc"; }
  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte>) override {
    return sys::fail(EISDIR, "read");
  }
  // Listing /proc itself or /proc/<pid> is not modelled: they read as empty directories.
  sys::Result<std::size_t> getdents64(Kernel&, Process&, std::span<std::byte>) override {
    return std::size_t{0};
  }
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
        auto node = cached(std::to_string(dir.proc_pid) + "/stat", S_IFREG | 0444,
                           Special::kProcStat, dir.proc_pid,
                           proc_inodes[std::to_string(dir.proc_pid)]);
        node->uid = target->uids.effective;
        node->gid = target->gids.effective;
        return node;
      }
      if (name != "fd") return nullptr;
      auto parent = proc_inodes[std::to_string(dir.proc_pid)];
      auto node = cached(std::to_string(dir.proc_pid) + "/fd", S_IFDIR | 0500,
                         Special::kProcFdDir, dir.proc_pid, parent);
      node->uid = target->uids.effective;
      node->gid = target->gids.effective;
      return node;
    }
    default:
      // Following /proc/<pid>/fd/N is not modelled.
      return nullptr;
  }
}

std::shared_ptr<OpenFile> Kernel::open_proc_dir(const std::shared_ptr<Inode>& node, int flags) {
  if (node->special == Special::kProcFdDir) return std::make_shared<ProcFdDirectory>(node, flags);
  if (node->special == Special::kProcStat) {
    const Process* target = find(node->proc_pid);
    const bool gone = target == nullptr || target->state == ProcessState::kReaped;
    return std::make_shared<ProcStatFile>(node, flags, gone ? "" : stat_line(*target));
  }
  return std::make_shared<ProcDirectory>(node, flags);
}

}  // namespace daemonkit::fake::detail
