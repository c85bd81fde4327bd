#include "daemonkit/core/daemon/pid_lock_holder.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/daemon/pid_file.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

// fdinfo is a few short lines plus one per lock; more than this is not a file we expect.
constexpr std::size_t kMaxFdinfoBytes = 4096;

// linux_dirent64, as getdents64 lays it out.
struct DirentHeader {
  std::uint64_t ino;
  std::int64_t off;
  unsigned short reclen;
  unsigned char type;
};

std::optional<long> decimal(std::string_view text) {
  long value = 0;
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Calls `each` with every all-digits name in directory `path` (at most kMaxProcEntries of
// them), until it returns false.
sys::Result<void> for_each_number(sys::Syscalls& os, const std::string& path,
                                  const std::function<bool(long)>& each) {
  auto opened = os.open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (!opened) return sys::fail(opened.error());
  // `each` may throw (it allocates); the directory is closed whichever way this returns.
  const OwnedFd dir(os, *opened);
  alignas(8) std::array<char, 4096> buffer{};
  std::size_t seen = 0;
  sys::Result<void> outcome;
  for (bool more = true; more && seen < kMaxProcEntries;) {
    auto got =
        sys::retry_on_eintr([&] { return os.getdents64(dir.get(), buffer.data(), buffer.size()); });
    if (!got) {
      outcome = sys::fail(got.error());
      break;
    }
    if (*got == 0) break;
    for (std::size_t at = 0; at + sizeof(DirentHeader) <= *got && more;) {
      DirentHeader header{};
      std::memcpy(&header, buffer.data() + at, sizeof(header));
      if (header.reclen == 0 || at + header.reclen > *got) break;
      const std::size_t name_at = at + offsetof(DirentHeader, type) + 1;
      const std::string_view name(buffer.data() + name_at,
                                  strnlen(buffer.data() + name_at, *got - name_at));
      at += header.reclen;
      ++seen;
      if (auto number = decimal(name)) more = each(*number);
    }
  }
  return outcome;
}

sys::Result<std::string> read_small_file(sys::Syscalls& os, const std::string& path) {
  auto opened = os.open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (!opened) return sys::fail(opened.error());
  OwnedFd fd(os, *opened);
  std::string text(kMaxFdinfoBytes, '\0');
  std::size_t used = 0;
  sys::Result<void> outcome;
  while (used < text.size()) {
    auto got = sys::retry_on_eintr(
        [&] { return os.read(fd.get(), text.data() + used, text.size() - used); });
    if (!got) {
      outcome = sys::fail(got.error());
      break;
    }
    if (*got == 0) break;
    used += *got;
  }
  fd.reset();
  if (!outcome) return sys::fail(outcome.error());
  text.resize(used);
  return text;
}

// Errors that mean the process or the descriptor is gone, not that /proc refused to tell.
bool vanished(const sys::Error& error) { return error.code == ENOENT || error.code == ESRCH; }

}  // namespace

std::optional<FdinfoLock> parse_fdinfo_lock(std::string_view line) {
  constexpr std::string_view kPrefix = "lock:";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  line.remove_prefix(kPrefix.size());
  std::vector<std::string_view> words;
  while (!line.empty()) {
    const std::size_t start = line.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const std::size_t end = std::min(line.find_first_of(" \t\n"), line.size());
    words.push_back(line.substr(0, end));
    line.remove_prefix(end);
  }
  // "<id>:" ["->"] KIND ADVISORY|MANDATORY MODE PID MAJ:MIN:INO START END
  std::size_t i = 0;
  if (words.size() < 8 || words[i].empty() || words[i].back() != ':' ||
      !decimal(words[i].substr(0, words[i].size() - 1))) {
    return std::nullopt;
  }
  ++i;
  FdinfoLock lock;
  if (words[i] == "->") {
    lock.waiting = true;
    ++i;
  }
  if (words.size() < i + 7) return std::nullopt;
  lock.flock = words[i] == "FLOCK";
  const std::string_view mode = words[i + 2];
  if (mode != "WRITE" && mode != "READ" && mode != "UNLCK") return std::nullopt;
  lock.exclusive = mode == "WRITE";
  const std::string_view where = words[i + 4];
  const std::size_t first = where.find(':');
  const std::size_t second = first == std::string_view::npos ? first : where.find(':', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto hex = [](std::string_view text, unsigned& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
    return !text.empty() && ec == std::errc{} && end == text.data() + text.size();
  };
  if (!hex(where.substr(0, first), lock.dev_major) ||
      !hex(where.substr(first + 1, second - first - 1), lock.dev_minor)) {
    return std::nullopt;
  }
  const std::string_view ino_text = where.substr(second + 1);
  std::uint64_t ino = 0;
  auto [end, ec] = std::from_chars(ino_text.data(), ino_text.data() + ino_text.size(), ino);
  if (ino_text.empty() || ec != std::errc{} || end != ino_text.data() + ino_text.size()) {
    return std::nullopt;
  }
  lock.ino = static_cast<ino_t>(ino);
  return lock;
}

bool fdinfo_shows_exclusive_flock(std::string_view fdinfo, ino_t ino) {
  while (!fdinfo.empty()) {
    const std::size_t end = std::min(fdinfo.find('\n'), fdinfo.size());
    const auto lock = parse_fdinfo_lock(fdinfo.substr(0, end));
    if (lock && lock->flock && lock->exclusive && !lock->waiting && lock->ino == ino) return true;
    fdinfo.remove_prefix(std::min(end + 1, fdinfo.size()));
  }
  return false;
}

sys::Result<bool> proves_lock_holder(sys::Syscalls& os, pid_t pid, dev_t dev, ino_t ino) {
  if (pid <= 0) return false;
  bool holds = false;
  std::optional<sys::Error> refused;
  auto listed = for_each_number(os, fmt::format("/proc/{}/fd", pid), [&](long fd) {
    // Through the magic link: the inode of the open file, wherever (or whether) it is named.
    auto st = os.stat(fmt::format("/proc/{}/fd/{}", pid, fd).c_str());
    if (!st) {
      if (!vanished(st.error())) {
        refused = st.error().about(fmt::format("/proc/{}/fd/{}", pid, fd));
      }
      return !refused;
    }
    if (st->st_dev != dev || st->st_ino != ino) return true;
    const std::string info_path = fmt::format("/proc/{}/fdinfo/{}", pid, fd);
    auto info = read_small_file(os, info_path);
    if (!info) {
      if (!vanished(info.error())) refused = info.error().about(info_path);
      return !refused;
    }
    holds = fdinfo_shows_exclusive_flock(*info, ino);
    return !holds;
  });
  if (!listed) {
    if (vanished(listed.error())) return false;
    return sys::fail(listed.error().about(fmt::format("/proc/{}/fd", pid)));
  }
  if (holds) return true;
  if (refused) return sys::fail(*refused);
  return false;
}

sys::Result<LockHolders> find_lock_holders(sys::Syscalls& os, dev_t dev, ino_t ino) {
  LockHolders holders;
  auto listed = for_each_number(os, "/proc", [&](long pid) {
    if (pid <= 0 || pid > INT32_MAX) return true;
    auto proven = proves_lock_holder(os, static_cast<pid_t>(pid), dev, ino);
    if (!proven) {
      ++holders.unreadable;
    } else if (*proven) {
      holders.pids.push_back(static_cast<pid_t>(pid));
    }
    return true;
  });
  if (!listed) return sys::fail(listed.error().about("/proc"));
  std::sort(holders.pids.begin(), holders.pids.end());
  return holders;
}

LockTruth judge_lock(sys::Syscalls& os, pid_t named, dev_t dev, ino_t ino) {
  LockTruth truth;
  auto proven = proves_lock_holder(os, named, dev, ino);
  if (!proven) {
    truth.error = proven.error();
    return truth;
  }
  if (*proven) {
    truth.kind = LockTruth::Kind::kNamedHolds;
    return truth;
  }
  auto found = find_lock_holders(os, dev, ino);
  if (!found) {
    truth.error = found.error();
    return truth;
  }
  if (found->pids.empty()) return truth;
  truth.holders = std::move(found->pids);
  // Our own pid is never the daemon (probe_pid's rule), so it is passed as 0 here: a named pid
  // equal to ours would be a reused one, and kill() still tells whether it lives.
  auto alive = probe_pid(os, named, 0);
  truth.kind = alive && *alive == PidLiveness::kRunning ? LockTruth::Kind::kNamedNotHolder
                                                        : LockTruth::Kind::kNamedExited;
  return truth;
}

std::string pid_list_text(const std::vector<pid_t>& pids) {
  return fmt::format("{} {}", pids.size() == 1 ? "PID" : "PIDs", fmt::join(pids, ", "));
}

std::string lock_truth_message(std::string_view path, pid_t named, const LockTruth& truth) {
  const bool one = truth.holders.size() == 1;
  if (truth.kind == LockTruth::Kind::kNamedNotHolder) {
    return fmt::format("PID {} does not hold the lock on {} (it is not the daemon), but {} {}",
                       named, path, pid_list_text(truth.holders), one ? "does" : "do");
  }
  return fmt::format("PID {} has exited, but {} still {} the lock on {} (left behind by it)", named,
                     pid_list_text(truth.holders), one ? "holds" : "hold", path);
}

}  // namespace daemonkit::core
