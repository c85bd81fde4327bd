// The in-memory filesystem: path resolution (symlinks, "..", chroot, ELOOP), permission checks
// as Linux makes them, and the calls that change the tree. Regular files, directories and
// /dev/null are the description kinds opened here.
#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {
namespace {

unsigned char dirent_type(const Inode& node) {
  switch (node.mode & S_IFMT) {
    case S_IFDIR:
      return DT_DIR;
    case S_IFREG:
      return DT_REG;
    case S_IFLNK:
      return DT_LNK;
    case S_IFCHR:
      return DT_CHR;
    case S_IFIFO:
      return DT_FIFO;
    default:
      return DT_UNKNOWN;
  }
}

void split_into(std::string_view path, std::deque<std::string>& out, bool front) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) parts.emplace_back(path.substr(i, j - i));
    i = j;
  }
  if (front) {
    out.insert(out.begin(), parts.begin(), parts.end());
  } else {
    out.insert(out.end(), parts.begin(), parts.end());
  }
}

class RegularFile final : public OpenFile {
 public:
  RegularFile(std::shared_ptr<Inode> inode, int flags, std::string path)
      : OpenFile(std::move(inode), flags), path_(std::move(path)) {}

  std::string describe() const override { return "file:" + path_; }

  sys::Result<std::size_t> read(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    // A zero-byte read may come with a null buffer: memcpy must not see it.
    if (buf.empty()) return std::size_t{0};
    const auto& data = inode_->data;
    if (offset_ >= static_cast<off_t>(data.size())) return std::size_t{0};
    const std::size_t n = std::min(buf.size(), data.size() - static_cast<std::size_t>(offset_));
    std::memcpy(buf.data(), data.data() + offset_, n);
    offset_ += static_cast<off_t>(n);
    inode_->atime = kernel.now();
    return n;
  }

  sys::Result<std::size_t> write(Kernel& kernel, Process& writer,
                                 std::span<const std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    drop_setid_bits(writer, *inode_);
    auto& data = inode_->data;
    if (status_flags_ & O_APPEND) offset_ = static_cast<off_t>(data.size());
    const std::size_t end = static_cast<std::size_t>(offset_) + buf.size();
    if (end > data.size()) data.resize(end, '\0');
    std::memcpy(data.data() + offset_, buf.data(), buf.size());
    offset_ = static_cast<off_t>(end);
    inode_->mtime = inode_->ctime = kernel.now();
    return buf.size();
  }

  sys::Result<void> truncate(Kernel& kernel, off_t length) override {
    inode_->data.resize(static_cast<std::size_t>(length), '\0');
    inode_->mtime = inode_->ctime = kernel.now();
    return {};
  }

  sys::Result<void> fsync() override { return {}; }

  off_t position() const override { return offset_; }

 private:
  std::string path_;
  off_t offset_ = 0;
};

class Directory final : public OpenFile {
 public:
  Directory(std::shared_ptr<Inode> inode, int flags, std::string path)
      : OpenFile(std::move(inode), flags), path_(std::move(path)) {}

  std::string describe() const override { return "dir:" + path_; }

  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte>) override {
    return sys::fail(EISDIR, "read");
  }

  // Lists ".", "..", then the entries in name order; the position is an index into that
  // list, so entries added or removed between calls may be seen or missed, as on Linux.
  sys::Result<std::size_t> getdents64(Kernel&, Process&, std::span<std::byte> buf) override {
    if (inode_->removed) return std::size_t{0};
    struct Entry {
      std::string name;
      ino_t ino;
      unsigned char type;
    };
    std::vector<Entry> list;
    list.push_back({".", inode_->ino, DT_DIR});
    auto parent = inode_->parent.lock();
    list.push_back({"..", parent ? parent->ino : inode_->ino, DT_DIR});
    for (const auto& [name, node] : inode_->entries) {
      list.push_back({name, node->ino, dirent_type(*node)});
    }
    std::size_t used = 0;
    while (position_ < list.size()) {
      const Entry& e = list[position_];
      const std::size_t n =
          put_dirent64(buf.subspan(used), e.ino, static_cast<off_t>(position_ + 1), e.type, e.name);
      if (n == 0) break;
      used += n;
      ++position_;
    }
    if (used == 0 && position_ < list.size()) return sys::fail(EINVAL, "getdents64");
    return used;
  }

  sys::Result<void> fsync() override { return {}; }

 private:
  std::string path_;
  std::size_t position_ = 0;
};

class DevNull final : public OpenFile {
 public:
  DevNull(std::shared_ptr<Inode> inode, int flags) : OpenFile(std::move(inode), flags) {}
  std::string describe() const override { return "/dev/null"; }
  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte>) override {
    return std::size_t{0};
  }
  sys::Result<std::size_t> write(Kernel&, Process&, std::span<const std::byte> buf) override {
    return buf.size();
  }
};

// The fsuid follows the euid (setfsuid is not modelled), so sticky-bit and ownership checks
// use the effective uid.
bool sticky_denies(const Process& p, const Inode& dir, const Inode& victim) {
  return (dir.mode & S_ISVTX) && !p.privileged() && p.uids.effective != victim.uid &&
         p.uids.effective != dir.uid;
}

}  // namespace

void drop_setid_bits(const Process& writer, Inode& node) {
  if (!node.is_reg() || writer.privileged()) return;
  mode_t drop = S_ISUID;
  if ((node.mode & S_IXGRP) || !writer.in_group(node.gid)) drop |= S_ISGID;
  node.mode &= ~drop;
}

bool Kernel::may(const Process& p, const Inode& node, int want) const {
  if (p.privileged()) {
    // CAP_DAC_OVERRIDE: read and write always; execute only if some x bit is set (or for
    // searching a directory).
    if (!(want & kMayExec)) return true;
    return node.is_dir() || (node.mode & 0111) != 0;
  }
  mode_t bits;
  if (node.uid == p.uids.effective) {
    bits = (node.mode >> 6) & 7;
  } else if (p.in_group(node.gid)) {
    bits = (node.mode >> 3) & 7;
  } else {
    bits = node.mode & 7;
  }
  return (static_cast<int>(bits) & want) == want;
}

sys::Result<Lookup> Kernel::lookup(Process& p, std::string_view path, bool follow_last,
                                   const char* call, std::shared_ptr<Inode> base,
                                   bool trailing_slash_follows) {
  if (path.empty()) return sys::fail(ENOENT, call);
  if (path.size() >= kPathMax) return sys::fail(ENAMETOOLONG, call);
  std::deque<std::string> parts;
  split_into(path, parts, false);
  const bool trailing_slash = path.back() == '/';
  std::shared_ptr<Inode> cur = path.front() == '/' ? p.root : (base ? base : p.cwd);
  int links = 0;
  while (!parts.empty()) {
    std::string name = std::move(parts.front());
    parts.pop_front();
    const bool last = parts.empty();
    if (!cur->is_dir()) return sys::fail(ENOTDIR, call);
    if (!may(p, *cur, kMayExec)) return sys::fail(EACCES, call);
    if (name.size() > kNameMax) return sys::fail(ENAMETOOLONG, call);
    std::shared_ptr<Inode> next;
    if (name == ".") {
      next = cur;
    } else if (name == "..") {
      next = (cur == p.root || cur == fs_root) ? cur : cur->parent.lock();
      if (!next) next = cur;
    } else if (cur->special != Special::kNone) {
      next = proc_child(p, *cur, name);
    } else {
      auto it = cur->entries.find(name);
      if (it != cur->entries.end()) next = it->second;
    }
    if (!next) {
      if (last) return Lookup{cur, std::move(name), nullptr, trailing_slash};
      return sys::fail(ENOENT, call);
    }
    const bool follow = !last || follow_last || (trailing_slash && trailing_slash_follows);
    if (next->special == Special::kProcFdLink && follow) {
      // A magic link: it names the open file itself, not a path, so it reaches a file that
      // was unlinked or lies outside the caller's root, as Linux's proc_fd_link does.
      if (++links > kMaxSymlinks) return sys::fail(ELOOP, call);
      next = proc_fd_target(*next);
      if (!next) return sys::fail(ENOENT, call);
      if (last) return Lookup{cur, std::move(name), std::move(next), trailing_slash};
      cur = std::move(next);
      continue;
    }
    if (next->is_symlink() && follow) {
      if (++links > kMaxSymlinks) return sys::fail(ELOOP, call);
      const std::string& target = next->data;
      if (target.empty()) return sys::fail(ENOENT, call);
      split_into(target, parts, true);
      if (target.front() == '/') cur = p.root;
      continue;
    }
    if (last) return Lookup{cur, std::move(name), std::move(next), trailing_slash};
    cur = std::move(next);
  }
  // The path named a directory reached without a last component: "/", or a symlink to "/".
  return Lookup{nullptr, "/", cur, true};
}

void Kernel::link_into(const std::shared_ptr<Inode>& dir, const std::string& name,
                       const std::shared_ptr<Inode>& node) {
  dir->entries[name] = node;
  if (node->is_dir()) {
    node->parent = dir;
    node->name = name;
    ++dir->nlink;
  }
  dir->mtime = dir->ctime = now();
}

sys::Result<std::shared_ptr<OpenFile>> Kernel::open_file(Process& p, std::string_view path,
                                                         int flags, mode_t mode,
                                                         std::shared_ptr<Inode> base,
                                                         const char* call) {
  const bool creat = (flags & O_CREAT) != 0;
  const bool excl = creat && (flags & O_EXCL);
  // Since Linux 6.4, O_CREAT|O_DIRECTORY is refused outright.
  if (creat && (flags & O_DIRECTORY)) return sys::fail(EINVAL, call);
  // O_EXCL never follows a final symlink: an existing link, even dangling, is EEXIST. With
  // O_CREAT the last name is looked up by open itself, and a trailing slash is refused before
  // that (EISDIR), whatever the name is.
  const bool trailing_slash = !path.empty() && path.back() == '/';
  const bool follow = !(flags & O_NOFOLLOW) && !excl && !(creat && trailing_slash);
  auto found = lookup(p, path, follow, call, std::move(base), !creat);
  if (!found) return sys::fail(found.error());
  Lookup& l = *found;
  if (creat && l.trailing_slash) return sys::fail(EISDIR, call);
  std::shared_ptr<Inode> node = l.node;
  const int access = flags & O_ACCMODE;
  if (!node) {
    if (!creat) return sys::fail(ENOENT, call);
    if (l.parent->removed) return sys::fail(ENOENT, call);
    if (!may(p, *l.parent, kMayWrite | kMayExec) || l.parent->special != Special::kNone) {
      return sys::fail(EACCES, call);
    }
    const bool setgid_dir = (l.parent->mode & S_ISGID) != 0;
    node = new_inode(S_IFREG | (mode & ~p.umask & 07777), p.uids.effective,
                     setgid_dir ? l.parent->gid : p.gids.effective);
    link_into(l.parent, l.name, node);
  } else {
    // Linux's order (do_open, then may_open): O_CREAT's checks, the need for a directory,
    // a final symlink left unfollowed (O_NOFOLLOW), writing to a directory, permissions.
    if (excl) return sys::fail(EEXIST, call);
    if (creat && node->is_dir()) return sys::fail(EISDIR, call);
    if (((flags & O_DIRECTORY) || l.trailing_slash) && !node->is_dir()) {
      return sys::fail(ENOTDIR, call);
    }
    if (node->is_symlink()) return sys::fail(ELOOP, call);
    // O_TRUNC asks for write access, even with O_RDONLY: a directory refuses it.
    const bool writes = access != O_RDONLY || (flags & O_TRUNC);
    if (node->is_dir() && writes) return sys::fail(EISDIR, call);
    int want = 0;
    if (access == O_RDONLY || access == O_RDWR || access == O_ACCMODE) want |= kMayRead;
    if (access == O_WRONLY || access == O_RDWR || access == O_ACCMODE) want |= kMayWrite;
    if (flags & O_TRUNC) want |= kMayWrite;
    if (!may(p, *node, want)) return sys::fail(EACCES, call);
    // A socket inode cannot be opened, only connected to.
    if (S_ISSOCK(node->mode)) return sys::fail(ENXIO, call);
    if ((flags & O_TRUNC) && node->is_reg()) {
      drop_setid_bits(p, *node);
      node->data.clear();
      node->mtime = node->ctime = now();
    }
  }
  const int status = (flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)) | kLargefile;
  if ((node->special == Special::kProcFdinfoDir || node->special == Special::kProcFdinfo) &&
      !may_inspect(p, node->proc_pid)) {
    return sys::fail(EACCES, call);
  }
  if (S_ISFIFO(node->mode)) return open_fifo(node, status, call);
  if (node->special == Special::kPtmx || node->special == Special::kPtySlave) {
    return open_terminal(p, node, status, (flags & O_NOCTTY) != 0, call);
  }
  std::shared_ptr<OpenFile> file;
  if (node->special == Special::kDevNull) {
    file = std::make_shared<DevNull>(node, status);
  } else if (node->special != Special::kNone) {
    file = open_proc_dir(node, status);
  } else if (node->is_dir()) {
    file = std::make_shared<Directory>(node, status, std::string(path));
  } else {
    file = std::make_shared<RegularFile>(node, status, std::string(path));
  }
  return file;
}

struct stat Kernel::stat_of(const Inode& node) {
  struct stat st {};
  st.st_dev = node.dev;
  st.st_ino = node.ino;
  st.st_mode = node.mode;
  st.st_nlink = node.nlink;
  st.st_uid = node.uid;
  st.st_gid = node.gid;
  st.st_rdev = node.rdev;
  st.st_blksize = 4096;
  if (node.is_reg() || node.is_symlink()) {
    st.st_size = static_cast<off_t>(node.data.size());
  } else if (node.is_dir()) {
    st.st_size = 4096;
  }
  st.st_blocks = node.is_reg() ? ((st.st_size + 4095) / 4096) * 8 : (node.is_dir() ? 8 : 0);
  st.st_atim = node.atime;
  st.st_mtim = node.mtime;
  st.st_ctim = node.ctime;
  return st;
}

sys::Result<struct stat> Kernel::stat_path(Process& p, std::string_view path, bool follow,
                                           const char* call) {
  auto found = lookup(p, path, follow, call);
  if (!found) return sys::fail(found.error());
  if (!found->node) return sys::fail(ENOENT, call);
  if (found->trailing_slash && !found->node->is_dir()) return sys::fail(ENOTDIR, call);
  return stat_of(*found->node);
}

sys::Result<void> Kernel::unlink(Process& p, std::string_view path) {
  auto found = lookup(p, path, false, "unlink", nullptr, false);
  if (!found) return sys::fail(found.error());
  Lookup& l = *found;
  // "/", "." and ".." are refused before the name is looked up, as Linux does.
  if (!l.parent || l.name == "." || l.name == "..") return sys::fail(EISDIR, "unlink");
  if (!l.node) return sys::fail(ENOENT, "unlink");
  if (l.trailing_slash) return sys::fail(l.node->is_dir() ? EISDIR : ENOTDIR, "unlink");
  if (!may(p, *l.parent, kMayWrite | kMayExec) || l.parent->special != Special::kNone) {
    return sys::fail(EACCES, "unlink");
  }
  if (sticky_denies(p, *l.parent, *l.node)) return sys::fail(EPERM, "unlink");
  if (l.node->is_dir()) return sys::fail(EISDIR, "unlink");
  l.parent->entries.erase(l.name);
  l.parent->mtime = l.parent->ctime = now();
  if (--l.node->nlink == 0) l.node->removed = true;
  l.node->ctime = now();
  return {};
}

sys::Result<void> Kernel::rmdir(Process& p, std::string_view path) {
  auto found = lookup(p, path, false, "rmdir", nullptr, false);
  if (!found) return sys::fail(found.error());
  Lookup& l = *found;
  if (!l.parent) return sys::fail(EBUSY, "rmdir");
  if (l.name == ".") return sys::fail(EINVAL, "rmdir");
  if (l.name == "..") return sys::fail(ENOTEMPTY, "rmdir");
  if (!l.node) return sys::fail(ENOENT, "rmdir");
  // Linux's may_delete: the directory's permissions, then the sticky bit, then the type.
  if (!may(p, *l.parent, kMayWrite | kMayExec) || l.parent->special != Special::kNone) {
    return sys::fail(EACCES, "rmdir");
  }
  if (sticky_denies(p, *l.parent, *l.node)) return sys::fail(EPERM, "rmdir");
  if (!l.node->is_dir()) return sys::fail(ENOTDIR, "rmdir");
  if (l.node == fs_root || l.node == p.root) return sys::fail(EBUSY, "rmdir");
  if (!l.node->entries.empty()) return sys::fail(ENOTEMPTY, "rmdir");
  l.parent->entries.erase(l.name);
  --l.parent->nlink;
  l.parent->mtime = l.parent->ctime = now();
  l.node->nlink = 0;
  l.node->removed = true;
  return {};
}

namespace {

// Whether `node` is `dir` or one of its ancestors.
bool encloses(const std::shared_ptr<Inode>& node, std::shared_ptr<Inode> dir,
              const std::shared_ptr<Inode>& fs_root) {
  for (; dir; dir = dir->parent.lock()) {
    if (dir == node) return true;
    if (dir == fs_root) break;
  }
  return false;
}

}  // namespace

// The checks run in the order of Linux's do_renameat2 and vfs_rename, so that when several
// apply, the same errno wins: both parents resolve, then ".", ".." and "/" (EBUSY), the
// source must exist, trailing slashes need a directory, neither name may enclose the other's
// directory, renaming onto the same inode succeeds, and only then come permissions and types.
sys::Result<void> Kernel::rename(Process& p, std::string_view from, std::string_view to) {
  auto src = lookup(p, from, false, "rename", nullptr, false);
  if (!src) return sys::fail(src.error());
  auto dst = lookup(p, to, false, "rename", nullptr, false);
  if (!dst) return sys::fail(dst.error());
  if (!src->parent || src->name == "." || src->name == "..") return sys::fail(EBUSY, "rename");
  if (!dst->parent || dst->name == "." || dst->name == "..") return sys::fail(EBUSY, "rename");
  if (!src->node) return sys::fail(ENOENT, "rename");
  auto node = src->node;
  if (!node->is_dir() && (src->trailing_slash || dst->trailing_slash)) {
    return sys::fail(ENOTDIR, "rename");
  }
  if (src->parent != dst->parent) {
    // A directory cannot move below itself, nor onto one of its source's ancestors.
    if (encloses(node, dst->parent, fs_root)) return sys::fail(EINVAL, "rename");
    if (dst->node && encloses(dst->node, src->parent, fs_root)) {
      return sys::fail(ENOTEMPTY, "rename");
    }
  }
  if (dst->node == node) return {};
  auto writable = [&](const Inode& dir) {
    return may(p, dir, kMayWrite | kMayExec) && dir.special == Special::kNone;
  };
  if (!writable(*src->parent)) return sys::fail(EACCES, "rename");
  if (sticky_denies(p, *src->parent, *node)) return sys::fail(EPERM, "rename");
  if (!dst->node) {
    if (dst->parent->removed) return sys::fail(ENOENT, "rename");
    if (!writable(*dst->parent)) return sys::fail(EACCES, "rename");
  } else {
    if (!writable(*dst->parent)) return sys::fail(EACCES, "rename");
    if (sticky_denies(p, *dst->parent, *dst->node)) return sys::fail(EPERM, "rename");
    if (node->is_dir() && !dst->node->is_dir()) return sys::fail(ENOTDIR, "rename");
    if (!node->is_dir() && dst->node->is_dir()) return sys::fail(EISDIR, "rename");
  }
  // A directory changing parents rewrites its "..": that needs write permission on it.
  if (node->is_dir() && src->parent != dst->parent && !may(p, *node, kMayWrite)) {
    return sys::fail(EACCES, "rename");
  }
  if (dst->node && dst->node->is_dir() && !dst->node->entries.empty()) {
    return sys::fail(ENOTEMPTY, "rename");
  }
  const auto stamp = now();
  if (dst->node) {
    auto victim = dst->node;
    dst->parent->entries.erase(dst->name);
    if (victim->is_dir()) {
      --dst->parent->nlink;
      victim->nlink = 0;
    } else {
      --victim->nlink;
    }
    if (victim->nlink == 0) victim->removed = true;
  }
  src->parent->entries.erase(src->name);
  if (node->is_dir()) --src->parent->nlink;
  src->parent->mtime = src->parent->ctime = stamp;
  link_into(dst->parent, dst->name, node);
  node->ctime = stamp;
  return {};
}

sys::Result<void> Kernel::symlink(Process& p, std::string_view target, std::string_view linkpath) {
  if (target.empty()) return sys::fail(ENOENT, "symlink");
  auto found = lookup(p, linkpath, false, "symlink", nullptr, false);
  if (!found) return sys::fail(found.error());
  Lookup& l = *found;
  if (l.node) return sys::fail(EEXIST, "symlink");
  if (l.trailing_slash) return sys::fail(ENOENT, "symlink");
  if (l.parent->removed) return sys::fail(ENOENT, "symlink");
  if (!may(p, *l.parent, kMayWrite | kMayExec) || l.parent->special != Special::kNone) {
    return sys::fail(EACCES, "symlink");
  }
  auto node = new_inode(S_IFLNK | 0777, p.uids.effective, p.gids.effective);
  node->data = std::string(target);
  link_into(l.parent, l.name, node);
  return {};
}

sys::Result<void> Kernel::mkdir(Process& p, std::string_view path, mode_t mode) {
  auto found = lookup(p, path, false, "mkdir", nullptr, false);
  if (!found) return sys::fail(found.error());
  Lookup& l = *found;
  if (l.node) return sys::fail(EEXIST, "mkdir");
  if (l.parent->removed) return sys::fail(ENOENT, "mkdir");
  if (!may(p, *l.parent, kMayWrite | kMayExec) || l.parent->special != Special::kNone) {
    return sys::fail(EACCES, "mkdir");
  }
  const bool setgid_dir = (l.parent->mode & S_ISGID) != 0;
  auto node = new_inode(S_IFDIR | (mode & ~p.umask & 01777) | (setgid_dir ? S_ISGID : 0),
                        p.uids.effective, setgid_dir ? l.parent->gid : p.gids.effective);
  link_into(l.parent, l.name, node);
  return {};
}

sys::Result<void> Kernel::chmod(Process& p, std::string_view path, mode_t mode) {
  auto found = lookup(p, path, true, "chmod");
  if (!found) return sys::fail(found.error());
  if (!found->node) return sys::fail(ENOENT, "chmod");
  Inode& node = *found->node;
  if (found->trailing_slash && !node.is_dir()) return sys::fail(ENOTDIR, "chmod");
  return change_mode(p, node, mode, "chmod");
}

// chmod_common: the owner or a privileged process; without CAP_FSETID, the set-group-ID bit is
// dropped for a group the caller is not in.
sys::Result<void> Kernel::change_mode(Process& p, Inode& node, mode_t mode, const char* call) {
  if (!p.privileged() && p.uids.effective != node.uid) return sys::fail(EPERM, call);
  mode_t bits = mode & 07777;
  if (!p.privileged() && !p.in_group(node.gid)) bits &= ~S_ISGID;
  node.mode = (node.mode & S_IFMT) | bits;
  node.ctime = now();
  return {};
}

sys::Result<void> Kernel::chown(Process& p, std::string_view path, uid_t uid, gid_t gid) {
  auto found = lookup(p, path, true, "chown");
  if (!found) return sys::fail(found.error());
  if (!found->node) return sys::fail(ENOENT, "chown");
  Inode& node = *found->node;
  if (found->trailing_slash && !node.is_dir()) return sys::fail(ENOTDIR, "chown");
  const bool owner = p.uids.effective == node.uid;
  if (uid != static_cast<uid_t>(-1) && !p.privileged() && !(owner && uid == node.uid)) {
    return sys::fail(EPERM, "chown");
  }
  if (gid != static_cast<gid_t>(-1) && !p.privileged() &&
      !(owner && (gid == node.gid || p.in_group(gid)))) {
    return sys::fail(EPERM, "chown");
  }
  if (uid == static_cast<uid_t>(-1) && gid == static_cast<gid_t>(-1)) return {};
  if (uid != static_cast<uid_t>(-1)) node.uid = uid;
  if (gid != static_cast<gid_t>(-1)) node.gid = gid;
  if (!node.is_dir()) {
    node.mode &= ~S_ISUID;
    if (node.mode & S_IXGRP) node.mode &= ~S_ISGID;
  }
  node.ctime = now();
  return {};
}

sys::Result<void> Kernel::chdir(Process& p, std::string_view path) {
  auto found = lookup(p, path, true, "chdir");
  if (!found) return sys::fail(found.error());
  if (!found->node) return sys::fail(ENOENT, "chdir");
  if (!found->node->is_dir()) return sys::fail(ENOTDIR, "chdir");
  if (!may(p, *found->node, kMayExec)) return sys::fail(EACCES, "chdir");
  p.cwd = found->node;
  return {};
}

sys::Result<void> Kernel::chroot(Process& p, std::string_view path) {
  auto found = lookup(p, path, true, "chroot");
  if (!found) return sys::fail(found.error());
  if (!found->node) return sys::fail(ENOENT, "chroot");
  if (!found->node->is_dir()) return sys::fail(ENOTDIR, "chroot");
  if (!may(p, *found->node, kMayExec)) return sys::fail(EACCES, "chroot");
  if (!p.privileged()) return sys::fail(EPERM, "chroot");
  p.root = found->node;
  return {};
}

std::string Kernel::path_of(const std::shared_ptr<Inode>& dir,
                            const std::shared_ptr<Inode>& root) const {
  std::vector<std::string> names;
  auto cur = dir;
  bool reachable = true;
  while (cur != root) {
    if (cur == fs_root) {
      reachable = false;
      break;
    }
    names.push_back(cur->name);
    auto up = cur->parent.lock();
    if (!up) {
      reachable = false;
      break;
    }
    cur = up;
  }
  std::string path = reachable ? "" : "(unreachable)";
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + *it;
  return path.empty() || path == "(unreachable)" ? path + "/" : path;
}

sys::Result<std::string> Kernel::getcwd(Process& p) {
  if (p.cwd->removed) return sys::fail(ENOENT, "getcwd");
  return path_of(p.cwd, p.root);
}

std::shared_ptr<Inode> Kernel::make_dirs(const std::string& path) {
  auto cur = fs_root;
  std::deque<std::string> parts;
  split_into(path, parts, false);
  std::string sofar;
  for (const auto& name : parts) {
    sofar += "/" + name;
    auto it = cur->entries.find(name);
    if (it == cur->entries.end()) {
      auto dir = new_inode(S_IFDIR | 0755, 0, 0, cur->dev);
      link_into(cur, name, dir);
      cur = dir;
      continue;
    }
    cur = it->second->is_symlink() ? lookup_as_root(sofar, true) : it->second;
    if (!cur || !cur->is_dir()) fatal("make_dir: " + sofar + " is not a directory");
  }
  return cur;
}

std::shared_ptr<Inode> Kernel::lookup_as_root(const std::string& path, bool follow) const {
  Process admin;
  admin.root = admin.cwd = fs_root;
  auto found = const_cast<Kernel*>(this)->lookup(admin, path, follow, "lookup");
  if (!found) return nullptr;
  return found->node;
}

}  // namespace daemonkit::fake::detail
