#include "daemonkit/cli/stop_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/cli/pid_probe.h"
#include "daemonkit/core/daemon/pid_file.h"
#include "daemonkit/core/daemon/pid_lock_holder.h"

namespace daemonkit::cli {
namespace {

using std::chrono::milliseconds;

// After SIGKILL the kernel ends the process promptly; this only bounds a wait that should
// never be long (an uninterruptible sleep on a dead NFS server, say).
constexpr milliseconds kKillWait{10000};

sys::Result<milliseconds> now(sys::Syscalls& os) {
  return os.clock_gettime(CLOCK_MONOTONIC).map([](const timespec& ts) {
    return milliseconds(static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000);
  });
}

// How many times stop looks again for processes still holding the lock after those it
// signalled are gone (children the daemon forked, then their children). Each round ends the
// processes it found, so only an instance that keeps forking new holders faster than they die
// uses them all; then stop says the lock is still held.
constexpr int kMaxRounds = 8;

// A process proven to hold the lock, named by a pidfd opened before the proof, so no pid
// reused afterwards can be the one signalled.
struct Target {
  pid_t pid = 0;
  int pidfd = -1;
};

// pidfd_open first, then the proof that the process holds the lock, then a look at the pidfd
// (readable: it has exited since): if all three pass, the pidfd names a holder, and signals
// sent through it can reach no other process. Nothing when `pid` is gone or holds no lock.
sys::Result<std::optional<Target>> open_proven(sys::Syscalls& os, pid_t pid, dev_t dev, ino_t ino) {
  auto pidfd = os.pidfd_open(pid, 0);
  if (!pidfd) {
    if (pidfd.error().code == ESRCH) return std::optional<Target>();
    return sys::fail(pidfd.error().about(std::to_string(pid)));
  }
  auto proven = core::proves_lock_holder(os, pid, dev, ino);
  if (!proven || !*proven) {
    (void)os.close(*pidfd);
    if (!proven) return sys::fail(proven.error());
    return std::optional<Target>();
  }
  pollfd p{*pidfd, POLLIN, 0};
  auto exited = os.poll(&p, 1, 0);
  if (!exited || *exited > 0) {
    (void)os.close(*pidfd);
    if (!exited) return sys::fail(exited.error());
    return std::optional<Target>();
  }
  return std::optional<Target>(Target{pid, *pidfd});
}

// Waits until every target's pidfd polls readable (it exited), or `limit`. Returns whether
// all did.
sys::Result<bool> wait_all(sys::Syscalls& os, const std::vector<Target>& targets,
                           milliseconds limit) {
  auto start = now(os);
  if (!start) return sys::fail(start.error());
  std::vector<pollfd> waiting;
  for (const Target& t : targets) waiting.push_back({t.pidfd, POLLIN, 0});
  for (;;) {
    std::erase_if(waiting, [](const pollfd& p) { return (p.revents & (POLLIN | POLLHUP)) != 0; });
    if (waiting.empty()) return true;
    auto current = now(os);
    if (!current) return sys::fail(current.error());
    const milliseconds left = limit - (*current - *start);
    if (left.count() <= 0) return false;
    auto ready = os.poll(waiting.data(), waiting.size(), static_cast<int>(left.count()));
    if (!ready) {
      if (ready.error().code == EINTR) continue;
      return sys::fail(ready.error());
    }
  }
}

// Sends `sig` to each target that has not exited yet; ESRCH means it just did.
sys::Result<void> signal_all(sys::Syscalls& os, const std::vector<Target>& targets, int sig) {
  for (const Target& t : targets) {
    auto sent = os.pidfd_send_signal(t.pidfd, sig, 0);
    if (!sent && sent.error().code != ESRCH) {
      return sys::fail(sent.error().about(
          fmt::format("PID {}, {}", t.pid, sig == SIGKILL ? "SIGKILL" : "SIGTERM")));
    }
  }
  return {};
}

// Removes the PID file unless its lock is still held (core's remove_pid_file_if_unlocked:
// taken on a fresh descriptor, the path checked to still name the inode we looked at, so a new
// instance's file is never removed). Returns false when the lock is still held; a failing call
// is reported, and then nothing we locked is left to judge.
bool remove_if_free(sys::Syscalls& os, const std::string& path, dev_t dev, ino_t ino,
                    std::string& err) {
  auto removed = core::remove_pid_file_if_unlocked(os, path, dev, ino);
  if (!removed) {
    err += fmt::format("daemonkit stop: {}\n", removed.error().message);
    return true;
  }
  return *removed != core::PidFileRemoval::kStillLocked;
}

// Stops the instance holding the lock on `state`'s file: the proven holders in `candidates`
// first, then, round after round, whoever still holds the lock once they are gone.
CommandResult stop_instance(sys::Syscalls& os, const StopOptions& options,
                            const PidFileState& state, std::vector<pid_t> candidates) {
  const std::string& path = options.pidfile;
  CommandResult result;
  auto failed = [&](std::string message) {
    result.code = 1;
    result.err += fmt::format("daemonkit stop: {}\n", message);
    return result;
  };
  auto start = now(os);
  if (!start) return failed(fmt::format("{}", start.error()));
  bool signalled_any = false;
  bool scanned = false;  // whether `candidates` came from a scan of /proc
  for (int round = 0; round < kMaxRounds && !candidates.empty(); ++round) {
    std::vector<Target> targets;
    struct Closer {
      sys::Syscalls& os;
      std::vector<Target>& targets;
      ~Closer() {
        for (const Target& t : targets) (void)os.close(t.pidfd);
      }
    } closer{os, targets};
    for (pid_t pid : candidates) {
      auto target = open_proven(os, pid, state.dev, state.ino);
      if (!target) return failed(fmt::format("{}; not signalling PID {}", target.error(), pid));
      if (*target) targets.push_back(**target);
    }
    // When none of those named holds the lock any more (they ended meanwhile), whoever holds it
    // now is the instance: looked for below, once.
    if (targets.empty() && scanned) break;
    if (!targets.empty()) {
      signalled_any = true;
      auto current = now(os);
      if (!current) return failed(fmt::format("{}", current.error()));
      // --timeout is for the whole instance: processes found in later rounds get what is left.
      const milliseconds left = options.timeout - (*current - *start);
      auto gone = sys::Result<bool>(false);
      if (left.count() > 0) {
        if (auto sent = signal_all(os, targets, SIGTERM); !sent) {
          return failed(fmt::format("{}", sent.error()));
        }
        gone = wait_all(os, targets, left);
      }
      if (gone && !*gone) {
        std::vector<pid_t> pids;
        for (const Target& t : targets) pids.push_back(t.pid);
        if (left.count() > 0) {
          result.err += fmt::format(
              "daemonkit stop: {} did not exit within {} seconds of "
              "SIGTERM; sent SIGKILL\n",
              core::pid_list_text(pids), seconds_text(options.timeout));
        }
        if (auto sent = signal_all(os, targets, SIGKILL); !sent) {
          return failed(fmt::format("{}", sent.error()));
        }
        gone = wait_all(os, targets, kKillWait);
        if (gone && !*gone) {
          return failed(fmt::format("{} still running after SIGKILL", core::pid_list_text(pids)));
        }
      }
      if (!gone) {
        return failed(fmt::format("waiting for {}: {}", targets.front().pid, gone.error()));
      }
    }
    auto holders = core::find_lock_holders(os, state.dev, state.ino);
    if (!holders) return failed(fmt::format("{}", holders.error()));
    candidates = std::move(holders->pids);
    scanned = true;
    if (!candidates.empty()) {
      result.err +=
          fmt::format("daemonkit stop: {} still {} the lock on {}; stopping {} too\n",
                      core::pid_list_text(candidates), candidates.size() == 1 ? "holds" : "hold",
                      path, candidates.size() == 1 ? "it" : "them");
    }
  }
  if (!remove_if_free(os, path, state.dev, state.ino, result.err)) {
    return failed(signalled_any
                      ? fmt::format("the lock on {} is still held; left the file", path)
                      : fmt::format("the lock on {} is held, but no process we can see holds "
                                    "it; not signalling anything",
                                    path));
  }
  return result;
}

}  // namespace

CommandResult run_stop(sys::Syscalls& os, const StopOptions& options) {
  const std::string& path = options.pidfile;
  const PidFileState state = inspect_pid_file(os, path);
  switch (state.kind) {
    case PidFileState::Kind::kMissing:
      return {1, "",
              fmt::format("daemonkit stop: no daemon is running (no PID file at {})\n", path)};
    case PidFileState::Kind::kNotRegular:
      return {1, "", fmt::format("daemonkit stop: {}\n", not_regular_message(path))};
    case PidFileState::Kind::kNonNumeric:
      return {1, "", non_numeric_pidfile_message(path) + "\n"};
    case PidFileState::Kind::kUnreadable:
      return {1, "", fmt::format("daemonkit stop: {}\n", state.error)};
    case PidFileState::Kind::kUnlockedAlive:
      // Nothing proves this process is the daemon: never signal it.
      return {1, "",
              fmt::format("daemonkit stop: {}; not signalling it\n",
                          unlocked_alive_message(path, state.pid))};
    case PidFileState::Kind::kDead: {
      std::string err = stale_pidfile_message(path) + "\n";
      // Through the lock, so that a `run` taking the file over right now keeps it.
      (void)remove_if_free(os, path, state.dev, state.ino, err);
      err += "daemonkit stop: no daemon is running\n";
      return {1, "", err};
    }
    case PidFileState::Kind::kLocked:
      break;
  }
  if (state.pid <= 0) {
    return {1, "",
            fmt::format("daemonkit stop: the daemon holding {} has not written its pid "
                        "yet; try again\n",
                        path)};
  }
  switch (state.truth.kind) {
    case core::LockTruth::Kind::kNamedHolds:
      return stop_instance(os, options, state, {state.pid});
    case core::LockTruth::Kind::kNamedExited:
    case core::LockTruth::Kind::kNamedNotHolder: {
      // The holders are the instance the daemon left; the named pid is never signalled.
      CommandResult result = stop_instance(os, options, state, state.truth.holders);
      result.err.insert(0, fmt::format("daemonkit stop: {}; stopping {}\n",
                                       core::lock_truth_message(path, state.pid, state.truth),
                                       state.truth.holders.size() == 1 ? "it" : "them"));
      return result;
    }
    case core::LockTruth::Kind::kUnknown:
      break;
  }
  return {1, "",
          fmt::format("daemonkit stop: the lock on {} is held, but PID {} could not be proven to "
                      "hold it{}; not signalling anything\n",
                      path, state.pid,
                      state.truth.error ? fmt::format(": {}", *state.truth.error)
                                        : std::string(" (no process we can see holds it)"))};
}

}  // namespace daemonkit::cli
