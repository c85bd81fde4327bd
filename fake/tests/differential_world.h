// Running one operation sequence on both kernels. The interpreter works on any sys::Syscalls,
// so FakeSyscalls and RealSyscalls execute literally the same code; the two worlds set up the
// same starting state (directory, cwd, umask, fd table, RLIMIT_NOFILE, credentials, children)
// and return a trace: one line per operation, which must be equal.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "daemonkit/sys/syscalls.h"
#include "operation_gen.h"

namespace daemonkit::fake::differential {

// The pids kill() operations name, in one world.
struct Pids {
  pid_t self = 0;
  pid_t parent = 0;
  pid_t live = 0;    // a running child
  pid_t zombie = 0;  // a child that exited and was not reaped
  pid_t reaped = 0;  // a child that exited and was reaped: a dead pid
};

// One executed operation: the call as made (descriptors resolved) and what it returned.
struct Step {
  std::string call;
  std::string result;
};

// Executes operations on one kernel and renders each result as text:
//   "3" (a descriptor), "ok", "n=5 \"ABCDE\"", "stat{reg size=5 mode=0644 uid=0 gid=0}",
//   "ENOENT", or "blocks" for a call that would sleep with nothing to wake it (the real world
//   interrupts it with a timer and sees EINTR; the fake reports EDEADLK).
// What is compared: every errno; descriptor numbers, byte counts and the bytes read; F_GETFD
// and F_GETFL values whole (no mask: Linux's own bits, O_LARGEFILE included); stat's type,
// permission bits (& 07777), size, owner and group. Left out, because they belong to the
// machine rather than to the kernel's rules: a directory's size and read()'s EINVAL-for-EISDIR
// on ext4 (filesystem details), inode numbers and times, and flock on /dev/null (its lock is
// shared with every process on the machine).
class Interpreter {
 public:
  // `around_blocking` wraps the calls that may sleep (read, write, flock); the real world
  // arms a timer there.
  Interpreter(sys::Syscalls& os, std::string top, Pids pids,
              std::function<void(bool arm)> around_blocking = {});

  Step run(const Op& op, std::size_t position);

 private:
  int fd(const FdRef& ref) const;
  std::string path(int index) const;
  void remember(int fd);
  template <typename T>
  std::string blocking(sys::Result<T> result, const std::function<std::string(const T&)>& ok);

  sys::Syscalls& os_;
  std::string top_;
  Pids pids_;
  std::function<void(bool)> around_blocking_;
  std::vector<int> fds_;  // descriptors returned so far, oldest first
};

// The state every world starts from, made by operations so it is the same in both: a
// directory d with a file d/x holding "x-data", a symlink s -> a and a dangling s2 -> missing.
std::vector<Op> setup_ops();
// Operations run after every sequence to compare the end state: each name's lstat, the
// listings of the world and of d, the descriptor table and its flags, /proc/self/fd.
std::vector<Op> final_ops();

// What a world hands the code that runs in it.
struct WorldContext {
  std::string top;  // the world's directory, also the cwd at the start
  Pids pids;
  std::function<void(bool arm)> around_blocking;
};

// Code run in both worlds; it returns its steps, which must be equal.
using Body = std::function<std::vector<Step>(sys::Syscalls& os, const WorldContext& world)>;

// Runs `ops` with one interpreter (slots start empty), numbering them from `base` (the
// position decides the bytes a Write writes).
std::vector<Step> run_ops(sys::Syscalls& os, const WorldContext& world, const std::vector<Op>& ops,
                          std::size_t base = 0);

enum class Privilege {
  kInvoker,  // the test process's own credentials (root in CI)
  kNobody,   // a root child that dropped to 65534:65534, in a directory nobody owns
};

// The outcome of one sequence on both kernels.
struct Comparison {
  std::vector<Step> fake;
  std::vector<Step> real;
  std::string error;  // why a world gave no (whole) trace: a crash, a timeout, a set-up failure

  [[nodiscard]] bool same() const;
  // For run_both(ops): the operations, then both traces side by side, differences marked.
  [[nodiscard]] std::string report(const std::vector<Op>& ops) const;
  // For run_both(body): both traces side by side, differences marked.
  [[nodiscard]] std::string report() const;
};

// Runs `body` on FakeSyscalls and, in a forked child, on the real kernel, each in a fresh
// world at the same absolute path: the same credentials, umask 022, RLIMIT_NOFILE 1024/4096,
// SIGPIPE ignored, descriptors 0 (read) and 1, 2 (write) on /dev/null and no others, and three
// children (live, zombie, reaped). Must be called from a single-threaded process: the child
// runs `body`, which allocates.
Comparison run_both(const Body& body, Privilege privilege);
// setup_ops, then `ops`, then final_ops, in both worlds.
Comparison run_both(const std::vector<Op>& ops, Privilege privilege);

// The fake world's steps of `body` when both worlds agree; otherwise a gtest failure showing
// both traces side by side, and no steps.
std::vector<Step> agreed(const Body& body, Privilege privilege = Privilege::kInvoker);
// The result of the first step named `call`, or "(no step <call>)".
std::string result_of(const std::vector<Step>& steps, const std::string& call);

// Whether this process may create the nobody world (it must be root to drop to nobody).
bool can_drop_privileges();

}  // namespace daemonkit::fake::differential
