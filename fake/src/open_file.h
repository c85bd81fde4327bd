// Inodes and open file descriptions of the simulated kernel. An OpenFile is what a descriptor
// points at (shared after dup and fork: offset, status flags, flock ownership); each kind of
// file is a subclass. New kinds (epoll, eventfd, signalfd, sockets) derive from OpenFile and
// report their readiness, so poll/epoll can be written once over all kinds.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daemonkit/sys/result.h"

namespace daemonkit::fake::detail {

class Kernel;
struct Process;
class OpenFile;
struct Pipe;
struct Pty;

// Synthesized inodes whose contents the kernel computes.
enum class Special {
  kNone,
  kDevNull,
  kProcRoot,
  kProcPidDir,
  kProcFdDir,
  kProcStat,
  kProcFdLink,     // /proc/<pid>/fd/<n>: a magic link to the open file, not to a path
  kProcFdinfoDir,  // /proc/<pid>/fdinfo
  kProcFdinfo,     // /proc/<pid>/fdinfo/<n>
  kPtmx,           // /dev/ptmx: each open makes a new pseudo-terminal
  kPtySlave,       // /dev/pts/<n>: the terminal end of one
};

// A lock taken with flock: owned by an open file description, not by a process or fd.
struct Flock {
  const OpenFile* owner = nullptr;
  bool exclusive = false;
  // The process that took it, which /proc/<pid>/fdinfo names even after that process is gone
  // and the lock lives on in descriptors others inherited.
  pid_t taker = 0;
};

struct Inode {
  ino_t ino = 0;
  dev_t dev = 0;
  dev_t rdev = 0;
  mode_t mode = 0;  // type and permission bits, as st_mode
  uid_t uid = 0;
  gid_t gid = 0;
  nlink_t nlink = 1;
  std::string data;  // a regular file's contents, or a symlink's target
  // A directory's entries other than "." and "..", sorted by name (so listings are stable).
  std::map<std::string, std::shared_ptr<Inode>> entries;
  // A directory's parent and its name there (directories have exactly one name).
  std::weak_ptr<Inode> parent;
  std::string name;
  bool removed = false;  // unlinked or rmdir'ed while still open or a cwd
  timespec atime{};
  timespec mtime{};
  timespec ctime{};
  std::vector<Flock> flocks;
  Special special = Special::kNone;
  pid_t proc_pid = 0;  // for /proc/<pid> and /proc/<pid>/fd
  int proc_fd = -1;    // for /proc/<pid>/fd/<n> and /proc/<pid>/fdinfo/<n>
  // The socket bound to this S_IFSOCK inode, until it closes (then connecting is refused).
  std::weak_ptr<OpenFile> socket;
  // A FIFO's pipe while either end is open; the next open after the last close makes a new,
  // empty one, as Linux frees a FIFO's buffers when its last end closes.
  std::weak_ptr<Pipe> fifo;
  // A /dev/pts/<n> inode's pseudo-terminal, while its master is open.
  std::weak_ptr<Pty> pty;

  [[nodiscard]] bool is_dir() const { return S_ISDIR(mode); }
  [[nodiscard]] bool is_reg() const { return S_ISREG(mode); }
  [[nodiscard]] bool is_symlink() const { return S_ISLNK(mode); }
};

// What poll/epoll would report for a description right now.
struct Readiness {
  bool readable = false;
  bool writable = false;
  bool hangup = false;       // EPOLLHUP: the other side of a pipe or socket is gone
  bool error = false;        // EPOLLERR: e.g. a pipe's write end whose readers are all gone
  bool read_hangup = false;  // EPOLLRDHUP: a stream socket's peer will send no more
};

// One open file description. Kinds override what they support; the defaults fail as Linux
// fails for a file that does not support the operation.
class OpenFile {
 public:
  OpenFile(std::shared_ptr<Inode> inode, int status_flags)
      : inode_(std::move(inode)), status_flags_(status_flags) {}
  // Releases the flock this description holds: the last descriptor to it has closed.
  virtual ~OpenFile();
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;

  // For describe_fd and messages: "file:/run/x.pid", "pipe:[7]:w", "/dev/null".
  [[nodiscard]] virtual std::string describe() const = 0;
  // Returns EAGAIN when the call would block; the caller turns that into EAGAIN for
  // O_NONBLOCK descriptions and into the kernel's would-block policy otherwise.
  virtual sys::Result<std::size_t> read(Kernel& kernel, Process& reader, std::span<std::byte> buf);
  virtual sys::Result<std::size_t> write(Kernel& kernel, Process& writer,
                                         std::span<const std::byte> buf);
  virtual sys::Result<std::size_t> getdents64(Kernel& kernel, Process& reader,
                                              std::span<std::byte> buf);
  virtual sys::Result<void> truncate(Kernel& kernel, off_t length);
  virtual sys::Result<void> fsync();
  // The file offset, as /proc/<pid>/fdinfo's "pos:" shows it; 0 for kinds without one.
  [[nodiscard]] virtual off_t position() const { return 0; }
  [[nodiscard]] virtual Readiness readiness() const;
  // The wait queue epoll registers on when `poller` adds this file (Linux's poll_wait), which
  // Kernel::wake names when the file's state changes. Most files have one queue: themselves.
  [[nodiscard]] virtual const void* wait_queue(const Process& poller) const;
  // Why a read or write would block forever, for the would-block message.
  [[nodiscard]] virtual std::string blocked_reason(const Kernel& kernel) const;

  [[nodiscard]] Inode& inode() const { return *inode_; }
  [[nodiscard]] const std::shared_ptr<Inode>& inode_ptr() const { return inode_; }
  // As F_GETFL reports them: access mode, O_APPEND, O_NONBLOCK, O_LARGEFILE, O_DIRECTORY...
  [[nodiscard]] int status_flags() const { return status_flags_; }
  void set_status_flags(int flags) { status_flags_ = flags; }
  [[nodiscard]] bool can_read() const;
  [[nodiscard]] bool can_write() const;
  [[nodiscard]] bool nonblocking() const { return (status_flags_ & O_NONBLOCK) != 0; }

 protected:
  std::shared_ptr<Inode> inode_;
  int status_flags_ = 0;
};

// Writes one linux_dirent64 record at `out` if it fits; returns its length, or 0 if not.
std::size_t put_dirent64(std::span<std::byte> out, ino_t ino, off_t next_offset, unsigned char type,
                         const std::string& name);

}  // namespace daemonkit::fake::detail
