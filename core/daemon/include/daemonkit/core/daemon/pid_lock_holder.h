// Which processes hold a PID file's lock, proven from /proc rather than believed from the file.
// A flock belongs to an open file description, and Linux shows it in /proc/<pid>/fdinfo/<fd>
// of every descriptor that refers to that description: the process whose descriptor shows the
// lock holds it. (The pid printed inside the lock line is the process that *took* the lock,
// for `daemonkit run` the launcher, long gone: it proves nothing and is not used.)
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// One `lock:` line of /proc/<pid>/fdinfo/<fd>, e.g.
// "lock:\t1: FLOCK  ADVISORY  WRITE 3089 fe:00:10952941 0 EOF".
struct FdinfoLock {
  bool flock = false;      // FLOCK (not POSIX, OFDLCK, LEASE...)
  bool exclusive = false;  // WRITE (LOCK_EX); READ is LOCK_SH
  bool waiting = false;    // "->": a request blocked behind a lock, not a lock held
  unsigned dev_major = 0;  // hexadecimal in the line
  unsigned dev_minor = 0;
  ino_t ino = 0;  // decimal in the line
};

// Parses one line of fdinfo; nothing when it is not a well-formed `lock:` line.
[[nodiscard]] std::optional<FdinfoLock> parse_fdinfo_lock(std::string_view line);

// Whether fdinfo text shows an exclusive flock held (not waited for) on inode `ino`. The device
// in the line is not compared: the text is already that of one open file description, whose
// inode the caller has matched by stat, and on some filesystems (btrfs subvolumes) stat's
// st_dev is an anonymous device while the lock line shows the superblock's.
[[nodiscard]] bool fdinfo_shows_exclusive_flock(std::string_view fdinfo, ino_t ino);

// Whether process `pid` holds an exclusive flock on the file (dev, ino): one of its
// descriptors, followed through /proc/<pid>/fd/<n>, is that inode, and /proc/<pid>/fdinfo/<n>
// shows the lock. False when the process does not exist (or has no such descriptor); an error
// when /proc cannot tell (EACCES for another user's process without privilege, no /proc).
[[nodiscard]] sys::Result<bool> proves_lock_holder(sys::Syscalls& os, pid_t pid, dev_t dev,
                                                   ino_t ino);

struct LockHolders {
  std::vector<pid_t> pids;     // ascending
  std::size_t unreadable = 0;  // processes whose descriptors could not be examined
};

// Every process /proc lists that proves_lock_holder proves. Processes that vanish meanwhile
// are skipped; those /proc will not show us are counted in `unreadable`. The scan reads at most
// kMaxProcEntries names of /proc, more than Linux's largest pid_max, so it always ends.
inline constexpr std::size_t kMaxProcEntries = std::size_t{1} << 23;
[[nodiscard]] sys::Result<LockHolders> find_lock_holders(sys::Syscalls& os, dev_t dev, ino_t ino);

// What a held lock says about the pid its file names: the daemonkit rule is that the lock
// belongs to the instance (the daemon and every process that inherited its descriptor hold it)
// and the file's pid names the daemon, so the named pid is believed only once proven to hold it.
struct LockTruth {
  enum class Kind {
    kNamedHolds,      // the named pid holds the lock: it is the daemon
    kNamedExited,     // the named pid is gone (or a zombie); `holders` hold the lock it left
    kNamedNotHolder,  // the named pid lives but does not hold the lock (a reused pid); `holders` do
    kUnknown,         // /proc could not tell (`error`), or no process we can see holds it
  };
  Kind kind = Kind::kUnknown;
  std::vector<pid_t> holders;
  std::optional<sys::Error> error;
};

// Judges `named` (> 0) against the lock on (dev, ino), which the caller found held.
[[nodiscard]] LockTruth judge_lock(sys::Syscalls& os, pid_t named, dev_t dev, ino_t ino);

// "PID 7 has exited, but PIDs 8, 9 still hold the lock on /run/x.pid (left behind by it)" or
// "PID 7 does not hold the lock on /run/x.pid (it is not the daemon), but PID 8 does", for
// kNamedExited and kNamedNotHolder.
[[nodiscard]] std::string lock_truth_message(std::string_view path, pid_t named,
                                             const LockTruth& truth);

// "PID 8" or "PIDs 8, 9".
[[nodiscard]] std::string pid_list_text(const std::vector<pid_t>& pids);

}  // namespace daemonkit::core
