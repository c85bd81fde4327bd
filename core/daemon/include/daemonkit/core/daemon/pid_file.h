// The PID file: proof that one instance runs, by a lock held for the daemon's whole life.
// Liveness is the lock, not a guess from kill(pid, 0) that PID reuse can fool; the kill probe
// survives only for unlocked files left by older tools, minus twistd's bugs (pid 0, negative
// pids and our own pid are not "running"; EPERM means running under another user).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// ---- Pure parts: contents, liveness rules, messages ----------------------------------------

// What a PID file holds. Stricter than twistd's int(): surrounding whitespace is allowed,
// one leading '-' is read (so "-1" is a pid that cannot be running, not garbage), but '+',
// '_' separators, other characters and numbers beyond pid_t are non-numeric.
struct PidFileContent {
  enum class Kind { kEmpty, kPid, kNonNumeric };
  Kind kind = Kind::kEmpty;
  pid_t pid = 0;  // meaningful for kPid only; may be 0 or negative
};
[[nodiscard]] PidFileContent parse_pid_file(std::string_view text);

// The verdict on a pid read from a file whose lock nobody holds.
enum class PidLiveness { kRunning, kStale };

// twistd's kill(pid, 0) rules without its bugs: pid <= 0 and `own_pid` are stale without
// asking the kernel (kill(0, 0) and kill(-1, 0) succeed, and a restarted container's PID 1 finds
// its own pid in the file); ESRCH means stale; success and EPERM mean running unless
// /proc/<pid>/stat shows a zombie (it has exited; its parent, perhaps a container's PID 1 that
// never reaps, has not collected it); any other errno is returned as the error.
[[nodiscard]] sys::Result<PidLiveness> probe_pid(sys::Syscalls& os, pid_t pid, pid_t own_pid);

// Whether /proc/<pid>/stat says `pid` is a zombie. False when it cannot be read (no /proc in a
// chroot, hidepid): the caller then keeps kill()'s verdict.
[[nodiscard]] bool is_zombie(sys::Syscalls& os, pid_t pid);

// "Another server is running, PID <pid>" followed by twistd's hint about --pidfile, as lines
// separated by '\n' and ending with one (no pid: the lock holder has not written its
// pid yet).
[[nodiscard]] std::string another_server_message(std::optional<pid_t> pid);
// The same hint after a first line of the caller's.
[[nodiscard]] std::string another_server_message_with(std::string_view head);
// Why acquire() refuses a file whose lock someone holds, telling only what /proc proves:
// "Another server is running, PID <pid>" when `named` holds the lock; when it does not (it
// exited and left the lock to children that inherited it, or its pid was reused), who does
// (see lock_truth_message); when /proc cannot tell, that the pid is unproven.
[[nodiscard]] std::string held_lock_message(sys::Syscalls& os, std::string_view path,
                                            std::optional<pid_t> named, dev_t dev, ino_t ino);
// "Pidfile <path> contains non-numeric value"
[[nodiscard]] std::string non_numeric_message(std::string_view path);
// "Removing stale pidfile <path>"
[[nodiscard]] std::string stale_pidfile_message(std::string_view path);

// ---- The file ------------------------------------------------------------------------------

// What to do with a file that has a pid in it but that nobody has locked.
enum class UnlockedPidFilePolicy {
  // Ask kill(pid, 0): the file may come from an older tool that never locks (the default,
  // matching design §5). A pid reused since a daemonkit daemon crashed reads as running.
  kProbeWithKill,
  // Trust the lock alone: an unlocked file is stale whatever pid it names.
  kLockOnly,
};

struct PidFileOptions {
  // Mode of a newly created file (before the umask).
  mode_t mode = 0644;
  UnlockedPidFilePolicy unlocked = UnlockedPidFilePolicy::kProbeWithKill;
};

// An acquired PID file: open, locked, checked, and empty until write_pid.
//
// What the file means (the rule `status`, `stop` and `run` share): the lock belongs to the
// instance — the daemon and every process that inherited its descriptor (children it forked)
// hold it, and it is free only once all of them are gone; the pid in the file names the daemon.
// A pid is believed only once /proc proves it holds the lock (pid_lock_holder.h).
//
// The lock is held on a read-only descriptor. The pid is written through a second, writing
// descriptor opened at acquire (before any chroot or privilege drop, while the path is
// reachable) and closed by write_pid, so a daemon that sheds privileges keeps nothing that can
// rewrite the file and aim root's `stop` at another process.
//
// The lock (flock) belongs to the open file description, so it survives fork(): the first
// parent can acquire it, report "Another server is running" on its own stderr, and pass it down
// to the daemon, which writes its pid. It also survives exec() after keep_across_exec().
//
// Destroying a PidFile does no I/O (in the fake kernel, a process that _exits unwinds through
// destructors that must not act for it): call release() on orderly exit, or let the process end
// to drop the lock and leave a stale file that the next start takes over.
class PidFile {
 public:
  // Opens `path` read-only with O_CREAT|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC, takes an exclusive
  // non-blocking flock, checks that `path` still names the locked inode (a previous owner may
  // have unlinked it between our open and our lock; then we start over), opens it for writing
  // (checked to be the same inode), and applies the liveness rules to what the file holds. A
  // lock held by others is refused with held_lock_message. A stale file is emptied in place
  // ("Removing stale pidfile <path>" is logged) so the lock stays on the inode the path names.
  // A relative path is made absolute against the current directory, so it means the same file
  // after chdir and chroot.
  [[nodiscard]] static StepResult<PidFile> acquire(sys::Syscalls& os, std::string path, LogSink log,
                                                   PidFileOptions options = {});

  PidFile(PidFile&& other) noexcept;
  PidFile& operator=(PidFile&& other) noexcept;
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  ~PidFile() = default;

  // Replaces the contents with "<pid>\n" (design §5 wants the newline; twistd writes none)
  // through the writing descriptor, then closes it. Called again (the descriptor is gone), it
  // opens the path for writing, refusing a path that no longer names the locked inode.
  [[nodiscard]] StepResult<void> write_pid(pid_t pid);

  // Clears FD_CLOEXEC so the lock (and so the liveness) passes to a program exec'd in place of
  // this one, as `daemonkit run` does.
  [[nodiscard]] StepResult<void> keep_across_exec();

  // Tells the file that the process is about to chroot into `chroot_dir`, so that release()
  // finds the file by its path inside the new root, or knows it cannot reach it.
  void relocate_for_chroot(std::string_view chroot_dir);

  // Removes the file and closes it. Never fails. The path is unlinked only if it still names
  // our inode. A failed unlink is logged, and the file is then emptied, through the writing
  // descriptor if write_pid has not closed it yet, else by opening the path for writing (the
  // inode checked again). That needs write permission on the file, which a daemon that shed
  // privileges usually lacks (twistd's H5): then it is logged too, and the file stays, unlocked,
  // naming our pid. The next start finds it unlocked and probes that pid with kill(pid, 0): gone,
  // the file is taken over; reused by a live process, the start is refused until someone
  // removes the file. Idempotent.
  void release();

  // The handle a forked child holds: the same descriptor number, naming the same open file
  // description and so the same lock. A process that forks must let each process act on its
  // own handle: in the fake kernel the processes share this memory, and a release in the daemon
  // must not look, to the first parent, as if its own handle were gone.
  [[nodiscard]] PidFile forked_copy() const {
    return PidFile(*os_, path_, reach_path_, fd_, write_fd_, log_, dev_, ino_);
  }

  // The read-only descriptor that holds the lock.
  [[nodiscard]] int fd() const { return fd_; }
  // The writing descriptor until write_pid closes it, else -1. Code that closes inherited
  // descriptors between acquire and write_pid must keep it, as it keeps fd().
  [[nodiscard]] int write_fd() const { return write_fd_; }
  // Closes this process's writing descriptor `fd` (what write_fd() said before a vfork child
  // that shares this object wrote the pid, and so set write_fd() to -1 in both), and forgets
  // it: a process that lets its child write the pid keeps no way to write the file either.
  void close_writer(int fd);
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool held() const { return fd_ >= 0; }

 private:
  PidFile(sys::Syscalls& os, std::string path, std::string reach_path, int fd, int write_fd,
          LogSink log, dev_t dev, ino_t ino);

  sys::Syscalls* os_;
  std::string path_;        // as the user gave it (absolute), for messages
  std::string reach_path_;  // how this process reaches it now; empty when it cannot
  int fd_ = -1;
  int write_fd_ = -1;
  LogSink log_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace daemonkit::core

namespace daemonkit::core {

// ---- Removing a file nobody holds -----------------------------------------------------------

enum class PidFileRemoval {
  kRemoved,      // it was ours (the inode given) and unlocked, and is gone
  kNotOurs,      // the path names nothing, or another file: not ours to act on
  kStillLocked,  // some process holds its lock: it is still an instance's file, left in place
};

// Removes the PID file at `path` only if it is still the file (`dev`, `ino`) and nobody holds
// its lock: a process that inherited the lock (a child the daemon forked, outliving it) is
// still the instance the file stands for, and its file is not taken from under it. A fresh
// descriptor asks for the lock without waiting and holds it while the path is checked to still
// name the same file and is unlinked, so a starter that opened the file meanwhile sees it
// vanish and starts over. A file that could not be unlinked is emptied, so it names no pid
// that may be reused, and the unlink's error is returned. `patience` is for holders that were
// just sent a fatal signal: they let go of the lock only as they exit, a moment later, so the
// lock is asked for again every 10 ms until it has passed. Used by the launcher giving up
// (release_unless_locked) and by `daemonkit stop`.
[[nodiscard]] StepResult<PidFileRemoval> remove_pid_file_if_unlocked(
    sys::Syscalls& os, const std::string& path, dev_t dev, ino_t ino,
    std::chrono::milliseconds patience = std::chrono::milliseconds(0));

// ---- Giving the file up after a failed launch -------------------------------------------------

// Closes `file`'s descriptor, then remove_pid_file_if_unlocked. A file that is gone, or that
// another file has replaced, is success; fails with the reason the file was left (still
// locked, or the call that failed).
[[nodiscard]] StepResult<void> release_unless_locked(
    sys::Syscalls& os, PidFile file,
    std::chrono::milliseconds patience = std::chrono::milliseconds(0));

}  // namespace daemonkit::core
