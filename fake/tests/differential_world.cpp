// The interpreter shared by both kernels, the fake world, and the real world in a forked child.
#include "differential_world.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/real_syscalls.h"
#include "flags_text.h"

namespace daemonkit::fake::differential {
namespace {

using detail::flags_text;
using detail::open_flags_text;

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr struct rlimit kNofile = {1024, 4096};
constexpr mode_t kUmask = 022;
constexpr int kChildTimeoutMs = 20000;
constexpr std::size_t kTraceBytes = 1 << 20;

std::string fd_text(const FdRef& ref) {
  return ref.slot ? fmt::format("slot{}", ref.value) : std::to_string(ref.value);
}

std::string quoted(std::string_view text) { return fmt::format("\"{}\"", text); }

std::string fcntl_text(int cmd, int arg) {
  switch (cmd) {
    case F_GETFD:
      return "F_GETFD";
    case F_GETFL:
      return "F_GETFL";
    case F_SETFD:
      return fmt::format("F_SETFD, {}", arg == FD_CLOEXEC ? "FD_CLOEXEC" : "0");
    case F_SETFL:
      return fmt::format("F_SETFL, {}", open_flags_text(arg));
    case F_DUPFD:
      return fmt::format("F_DUPFD, {}", arg);
    case F_DUPFD_CLOEXEC:
      return fmt::format("F_DUPFD_CLOEXEC, {}", arg);
    default:
      return fmt::format("{}, {}", cmd, arg);
  }
}

std::string flock_text(int operation) {
  return flags_text(
      operation,
      {{LOCK_SH, "LOCK_SH"}, {LOCK_EX, "LOCK_EX"}, {LOCK_UN, "LOCK_UN"}, {LOCK_NB, "LOCK_NB"}});
}

std::string error_text(const sys::Error& error) { return sys::errno_name(error.code); }

// Bytes as a C string; long buffers as their start, length and a hash of the whole.
std::string bytes_text(const char* data, std::size_t n) {
  constexpr std::size_t kShown = 24;
  std::string text = "\"";
  for (std::size_t i = 0; i < std::min(n, kShown); ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      text += static_cast<char>(c);
    } else {
      text += fmt::format("\\x{:02x}", c);
    }
  }
  text += '"';
  if (n > kShown) {
    std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a
    for (std::size_t i = 0; i < n; ++i) {
      hash = (hash ^ static_cast<unsigned char>(data[i])) * 1099511628211ULL;
    }
    text += fmt::format("... fnv={:016x}", hash);
  }
  return text;
}

std::string type_text(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "reg";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "lnk";
    case S_IFIFO:
      return "fifo";
    case S_IFCHR:
      return "chr";
    case S_IFSOCK:
      return "sock";
    default:
      return fmt::format("type{:o}", mode & S_IFMT);
  }
}

std::string stat_text(const struct stat& st) {
  // A directory's size depends on the filesystem (4096 on ext4, entries on tmpfs): left out.
  const std::string size = S_ISDIR(st.st_mode) ? "" : fmt::format(" size={}", st.st_size);
  return fmt::format("stat{{{}{} mode=0{:o} uid={} gid={}}}", type_text(st.st_mode), size,
                     st.st_mode & 07777, st.st_uid, st.st_gid);
}

std::string dirent_type_text(unsigned char type) {
  switch (type) {
    case DT_REG:
      return "reg";
    case DT_DIR:
      return "dir";
    case DT_LNK:
      return "lnk";
    case DT_CHR:
      return "chr";
    case DT_FIFO:
      return "fifo";
    default:
      return fmt::format("dt{}", type);
  }
}

template <typename T>
std::string result_text(const sys::Result<T>& result,
                        const std::function<std::string(const T&)>& ok) {
  if (!result) return error_text(result.error());
  return ok(*result);
}

std::string void_text(const sys::Result<void>& result) {
  return result ? std::string("ok") : error_text(result.error());
}

}  // namespace

// ---- Describing operations ---------------------------------------------------------------

std::string target_text(Target target) {
  switch (target) {
    case Target::kSelf:
      return "self";
    case Target::kParent:
      return "parent";
    case Target::kInit:
      return "1";
    case Target::kLiveChild:
      return "live-child";
    case Target::kZombieChild:
      return "zombie-child";
    case Target::kReapedChild:
      return "reaped-child";
    case Target::kGroup:
      return "0";
    case Target::kAll:
      return "-1";
  }
  return "?";
}

namespace {

std::string path_text(int index) { return quoted(kPaths.at(static_cast<std::size_t>(index))); }

std::string describe_with(const Op& op, const std::function<std::string(const FdRef&)>& fd,
                          const std::function<std::string(int)>& path) {
  return std::visit(
      Overloaded{
          [&](const Open& o) {
            return fmt::format("open({}, {}, 0{:o})", path(o.path), open_flags_text(o.flags),
                               o.mode);
          },
          [&](const Close& o) { return fmt::format("close({})", fd(o.fd)); },
          [&](const Dup& o) { return fmt::format("dup({})", fd(o.fd)); },
          [&](const Dup2& o) { return fmt::format("dup2({}, {})", fd(o.fd), fd(o.newfd)); },
          [&](const Dup3& o) {
            return fmt::format(
                "dup3({}, {}, {})", fd(o.fd), fd(o.newfd),
                flags_text(o.flags, {{O_CLOEXEC, "O_CLOEXEC"}, {O_NONBLOCK, "O_NONBLOCK"}}));
          },
          [&](const Fcntl& o) {
            return fmt::format("fcntl({}, {})", fd(o.fd), fcntl_text(o.cmd, o.arg));
          },
          [&](const Read& o) { return fmt::format("read({}, {})", fd(o.fd), o.count); },
          [&](const Write& o) { return fmt::format("write({}, {} bytes)", fd(o.fd), o.count); },
          [&](const Pipe2& o) {
            return fmt::format("pipe2({})", flags_text(o.flags, {{O_CLOEXEC, "O_CLOEXEC"},
                                                                 {O_NONBLOCK, "O_NONBLOCK"}}));
          },
          [&](const Ftruncate& o) { return fmt::format("ftruncate({}, {})", fd(o.fd), o.length); },
          [&](const Fsync& o) { return fmt::format("fsync({})", fd(o.fd)); },
          [&](const Fstat& o) { return fmt::format("fstat({})", fd(o.fd)); },
          [&](const Stat& o) { return fmt::format("stat({})", path(o.path)); },
          [&](const Lstat& o) { return fmt::format("lstat({})", path(o.path)); },
          [&](const Unlink& o) { return fmt::format("unlink({})", path(o.path)); },
          [&](const Rename& o) { return fmt::format("rename({}, {})", path(o.from), path(o.to)); },
          [&](const Symlink& o) {
            return fmt::format("symlink({}, {})",
                               quoted(kLinkTargets.at(static_cast<std::size_t>(o.target))),
                               path(o.path));
          },
          [&](const Mkdir& o) { return fmt::format("mkdir({}, 0{:o})", path(o.path), o.mode); },
          [&](const Rmdir& o) { return fmt::format("rmdir({})", path(o.path)); },
          [&](const Chmod& o) { return fmt::format("chmod({}, 0{:o})", path(o.path), o.mode); },
          [&](const Flock& o) {
            return fmt::format("flock({}, {})", fd(o.fd), flock_text(o.operation));
          },
          [&](const Umask& o) { return fmt::format("umask(0{:o})", o.mask); },
          [&](const Chdir& o) { return fmt::format("chdir({})", path(o.path)); },
          [&](const CloseRange& o) {
            return fmt::format("close_range({}, {}, {})", o.first,
                               o.last == ~0U ? std::string("~0U") : std::to_string(o.last),
                               flags_text(o.flags, {{CLOSE_RANGE_CLOEXEC, "CLOSE_RANGE_CLOEXEC"}}));
          },
          [&](const Kill& o) { return fmt::format("kill({}, {})", target_text(o.target), o.sig); },
          [&](const List& o) { return fmt::format("list({})", path(o.path)); },
          [&](const Getdents& o) { return fmt::format("getdents64({})", fd(o.fd)); },
      },
      op.v);
}

}  // namespace

std::string describe(const Op& op) { return describe_with(op, fd_text, path_text); }

std::string describe(const std::vector<Op>& ops) {
  std::string text;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    text += fmt::format("  {:>3}  {}\n", i, describe(ops[i]));
  }
  return text;
}

std::ostream& operator<<(std::ostream& os, const Op& op) { return os << describe(op); }

// ---- The interpreter ---------------------------------------------------------------------

Interpreter::Interpreter(sys::Syscalls& os, std::string top, Pids pids,
                         std::function<void(bool)> around_blocking)
    : os_(os), top_(std::move(top)), pids_(pids), around_blocking_(std::move(around_blocking)) {}

int Interpreter::fd(const FdRef& ref) const {
  if (!ref.slot) return ref.value;
  if (fds_.empty()) return 99;
  const std::size_t k = static_cast<std::size_t>(ref.value) % fds_.size();
  return fds_[fds_.size() - 1 - k];
}

std::string Interpreter::path(int index) const {
  const std::string_view name = kPaths.at(static_cast<std::size_t>(index));
  return name == "@top" ? top_ : std::string(name);
}

void Interpreter::remember(int fd) { fds_.push_back(fd); }

template <typename T>
std::string Interpreter::blocking(sys::Result<T> result,
                                  const std::function<std::string(const T&)>& ok) {
  // The real world's timer turns a sleep into EINTR; the fake refuses to sleep with EDEADLK.
  if (!result && (result.error().code == EINTR || result.error().code == EDEADLK)) {
    return "blocks";
  }
  return result_text(result, ok);
}

Step Interpreter::run(const Op& op, std::size_t position) {
  Step step;
  step.call = describe_with(
      op, [this](const FdRef& ref) { return std::to_string(fd(ref)); },
      [](int index) { return path_text(index); });
  auto remembered = [this](const int& fd) {
    remember(fd);
    return std::to_string(fd);
  };
  auto arm = [this](bool on) {
    if (around_blocking_) around_blocking_(on);
  };
  step.result = std::visit(
      Overloaded{
          [&](const Open& o) {
            return result_text<int>(os_.open(path(o.path).c_str(), o.flags, o.mode), remembered);
          },
          [&](const Close& o) { return void_text(os_.close(fd(o.fd))); },
          [&](const Dup& o) { return result_text<int>(os_.dup(fd(o.fd)), remembered); },
          [&](const Dup2& o) {
            return result_text<int>(os_.dup2(fd(o.fd), fd(o.newfd)), remembered);
          },
          [&](const Dup3& o) {
            return result_text<int>(os_.dup3(fd(o.fd), fd(o.newfd), o.flags), remembered);
          },
          [&](const Fcntl& o) {
            auto result = os_.fcntl(fd(o.fd), o.cmd, o.arg);
            if (result && (o.cmd == F_DUPFD || o.cmd == F_DUPFD_CLOEXEC)) remember(*result);
            return result_text<int>(result, [&](const int& v) {
              return o.cmd == F_GETFL ? fmt::format("0{:o}", v) : std::to_string(v);
            });
          },
          [&](const Read& o) {
            std::vector<char> buf(o.count);
            arm(true);
            auto result = os_.read(fd(o.fd), buf.data(), o.count);
            arm(false);
            // read() of a directory is EISDIR, except that ext4 answers EINVAL once a listing
            // has reached the end (its end-of-directory position is LLONG_MAX, so position +
            // count overflows): a filesystem's detail, rendered as EISDIR in both worlds.
            if (!result && result.error().code == EINVAL) {
              if (auto st = os_.fstat(fd(o.fd)); st && S_ISDIR(st->st_mode))
                return std::string("EISDIR");
            }
            return blocking<std::size_t>(result, [&](const std::size_t& n) {
              return fmt::format("n={} {}", n, bytes_text(buf.data(), n));
            });
          },
          [&](const Write& o) {
            std::vector<char> buf(o.count);
            for (std::size_t i = 0; i < o.count; ++i) {
              buf[i] = static_cast<char>('A' + (position * 7 + i) % 26);
            }
            arm(true);
            auto result = os_.write(fd(o.fd), buf.data(), o.count);
            arm(false);
            return blocking<std::size_t>(
                result, [](const std::size_t& n) { return fmt::format("n={}", n); });
          },
          [&](const Pipe2& o) {
            return result_text<sys::PipeFds>(os_.pipe2(o.flags), [&](const sys::PipeFds& p) {
              remember(p.read_end);
              remember(p.write_end);
              return fmt::format("[{}, {}]", p.read_end, p.write_end);
            });
          },
          [&](const Ftruncate& o) { return void_text(os_.ftruncate(fd(o.fd), o.length)); },
          [&](const Fsync& o) { return void_text(os_.fsync(fd(o.fd))); },
          [&](const Fstat& o) { return result_text<struct stat>(os_.fstat(fd(o.fd)), stat_text); },
          [&](const Stat& o) {
            return result_text<struct stat>(os_.stat(path(o.path).c_str()), stat_text);
          },
          [&](const Lstat& o) {
            return result_text<struct stat>(os_.lstat(path(o.path).c_str()), stat_text);
          },
          [&](const Unlink& o) { return void_text(os_.unlink(path(o.path).c_str())); },
          [&](const Rename& o) {
            return void_text(os_.rename(path(o.from).c_str(), path(o.to).c_str()));
          },
          [&](const Symlink& o) {
            const std::string target(kLinkTargets.at(static_cast<std::size_t>(o.target)));
            return void_text(os_.symlink(target.c_str(), path(o.path).c_str()));
          },
          [&](const Mkdir& o) { return void_text(os_.mkdir(path(o.path).c_str(), o.mode)); },
          [&](const Rmdir& o) { return void_text(os_.rmdir(path(o.path).c_str())); },
          [&](const Chmod& o) { return void_text(os_.chmod(path(o.path).c_str(), o.mode)); },
          [&](const Flock& o) {
            // /dev/null's lock is shared with every process on the machine (another test run
            // may hold it), so locking it compares nothing about the fake.
            if (auto st = os_.fstat(fd(o.fd)); st && S_ISCHR(st->st_mode)) {
              return std::string("skipped: a device shared with the whole machine");
            }
            arm(true);
            auto result = os_.flock(fd(o.fd), o.operation);
            arm(false);
            if (!result && (result.error().code == EINTR || result.error().code == EDEADLK)) {
              return std::string("blocks");
            }
            return void_text(result);
          },
          [&](const Umask& o) { return fmt::format("old=0{:o}", os_.umask(o.mask)); },
          [&](const Chdir& o) { return void_text(os_.chdir(path(o.path).c_str())); },
          [&](const CloseRange& o) { return void_text(os_.close_range(o.first, o.last, o.flags)); },
          [&](const Kill& o) {
            pid_t pid = 0;
            switch (o.target) {
              case Target::kSelf:
                pid = pids_.self;
                break;
              case Target::kParent:
                pid = pids_.parent;
                break;
              case Target::kInit:
                pid = 1;
                break;
              case Target::kLiveChild:
                pid = pids_.live;
                break;
              case Target::kZombieChild:
                pid = pids_.zombie;
                break;
              case Target::kReapedChild:
                pid = pids_.reaped;
                break;
              case Target::kGroup:
                pid = 0;
                break;
              case Target::kAll:
                pid = -1;
                break;
            }
            // Only signal 0 and invalid signals are generated: nothing is ever delivered.
            // A guard against a generator change that would signal real processes.
            if (o.sig > 0 && o.sig <= 64) return std::string("refused: a real signal");
            return void_text(os_.kill(pid, o.sig));
          },
          [&](const List& o) {
            auto dir = os_.open(path(o.path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
            if (!dir) return error_text(dir.error());
            std::vector<std::string> names;
            alignas(8) char buf[4096];
            std::string failure;
            for (;;) {
              auto n = os_.getdents64(*dir, buf, sizeof buf);
              if (!n) {
                failure = error_text(n.error());
                break;
              }
              if (*n == 0) break;
              for (std::size_t at = 0; at < *n;) {
                std::uint16_t reclen = 0;
                std::memcpy(&reclen, buf + at + 16, sizeof reclen);
                const auto type = static_cast<unsigned char>(buf[at + 18]);
                const std::string name(buf + at + 19);
                if (name != "." && name != "..") {
                  names.push_back(name + ":" + dirent_type_text(type));
                }
                at += reclen;
              }
            }
            static_cast<void>(os_.close(*dir));
            if (!failure.empty()) return failure;
            std::sort(names.begin(), names.end());
            return fmt::format("[{}]", fmt::join(names, " "));
          },
          [&](const Getdents& o) {
            alignas(8) char buf[4096];
            auto n = os_.getdents64(fd(o.fd), buf, sizeof buf);
            return n ? std::string("ok") : error_text(n.error());
          },
      },
      op.v);
  return step;
}

std::vector<Op> setup_ops() {
  const FdRef last{true, 0};
  return {
      Op{Mkdir{3, 0755}}, Op{Open{4, O_WRONLY | O_CREAT | O_CLOEXEC, 0644}},
      Op{Write{last, 6}}, Op{Close{last}},
      Op{Symlink{0, 6}},  // s -> a
      Op{Symlink{5, 7}},  // s2 -> missing
  };
}

std::vector<Op> final_ops() {
  std::vector<Op> ops;
  ops.push_back(Op{Chdir{kTopPath}});
  for (int path : {0, 1, 2, 3, 4, 5, 6, 7}) ops.push_back(Op{Lstat{path}});
  ops.push_back(Op{List{kTopPath}});
  ops.push_back(Op{List{3}});
  for (int fd = 0; fd <= 12; ++fd) {
    ops.push_back(Op{Fcntl{FdRef{false, fd}, F_GETFD, 0}});
    ops.push_back(Op{Fcntl{FdRef{false, fd}, F_GETFL, 0}});
  }
  ops.push_back(Op{Fcntl{FdRef{false, 99}, F_GETFL, 0}});
  ops.push_back(Op{List{kProcSelfFdPath}});
  ops.push_back(Op{Umask{022}});
  return ops;
}

std::vector<Step> run_ops(sys::Syscalls& os, const WorldContext& world, const std::vector<Op>& ops,
                          std::size_t base) {
  Interpreter interpreter(os, world.top, world.pids, world.around_blocking);
  std::vector<Step> steps;
  for (std::size_t i = 0; i < ops.size(); ++i) steps.push_back(interpreter.run(ops[i], base + i));
  return steps;
}

// ---- Comparison --------------------------------------------------------------------------

bool Comparison::same() const {
  if (!error.empty() || fake.size() != real.size()) return false;
  for (std::size_t i = 0; i < fake.size(); ++i) {
    if (fake[i].result != real[i].result) return false;
  }
  return true;
}

namespace {

std::string side_by_side(const Comparison& c,
                         const std::function<std::string(std::size_t)>& label) {
  std::string text;
  if (!c.error.empty()) text += fmt::format("A world failed: {}\n", c.error);
  const auto& fake = c.fake;
  const auto& real = c.real;
  const std::size_t rows = std::max(fake.size(), real.size());
  for (std::size_t i = 0; i < rows; ++i) {
    const Step none{"-", "(no step)"};
    const Step& f = i < fake.size() ? fake[i] : none;
    const Step& r = i < real.size() ? real[i] : none;
    const bool differs = f.result != r.result;
    std::string call = f.call == r.call ? f.call : fmt::format("{} | real: {}", f.call, r.call);
    text += fmt::format("{} {:>4}  {:<44} fake: {:<28} real: {}\n", differs ? '>' : ' ', label(i),
                        call, f.result, r.result);
  }
  return text;
}

}  // namespace

std::string Comparison::report(const std::vector<Op>& ops) const {
  const std::size_t setup = setup_ops().size();
  return fmt::format(
             "FakeSyscalls and the kernel disagree. The sequence ({} operations):\n{}\n"
             "Both traces (setup s*, the sequence by number, final checks f*; '>' marks a "
             "difference):\n",
             ops.size(), describe(ops)) +
         side_by_side(*this, [&](std::size_t i) {
           return i < setup                ? fmt::format("s{}", i)
                  : i < setup + ops.size() ? fmt::format("{}", i - setup)
                                           : fmt::format("f{}", i - setup - ops.size());
         });
}

std::string Comparison::report() const {
  return "FakeSyscalls and the kernel disagree ('>' marks a difference):\n" +
         side_by_side(*this, [](std::size_t i) { return std::to_string(i); });
}

// ---- The fake world ----------------------------------------------------------------------

namespace {

std::vector<Step> run_on_fake(const Body& body, const std::string& top, Privilege privilege) {
  FakeSyscallsOptions options;
  options.nofile = kNofile;
  options.umask = kUmask;
  options.uid = ::geteuid();
  options.gid = ::getegid();
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
  groups.resize(static_cast<std::size_t>(
      std::max(::getgroups(static_cast<int>(groups.size()), groups.data()), 0)));
  options.groups = groups;
  FakeSyscalls os(options);
  const uid_t owner = privilege == Privilege::kNobody ? kNobody : options.uid;
  const gid_t group = privilege == Privilege::kNobody ? kNogroup : options.gid;
  os.make_dir(top, 0700, owner, group);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  auto check = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("fake world set-up failed: ") + what);
  };
  check(os.sigaction(SIGPIPE, &ignore, nullptr).has_value(), "sigaction");
  if (privilege == Privilege::kNobody) {
    check(os.setgroups({}).has_value(), "setgroups");
    check(os.setresgid(kNogroup, kNogroup, kNogroup).has_value(), "setresgid");
    check(os.setresuid(kNobody, kNobody, kNobody).has_value(), "setresuid");
  }
  check(os.chdir(top.c_str()).has_value(), "chdir");
  Pids pids;
  pids.self = os.getpid();
  pids.parent = os.getppid();
  // Unscripted forks continue as the parent; the children stay runnable, or are ended.
  pids.live = *os.fork();
  pids.zombie = *os.fork();
  os.end_process(pids.zombie, 0);
  pids.reaped = *os.fork();
  os.end_process(pids.reaped, 0);
  check(os.waitpid(pids.reaped, 0).has_value(), "waitpid");
  check(os.close_range(0, ~0U, 0).has_value(), "close_range");
  check(os.open("/dev/null", O_RDONLY, 0) == 0, "open stdin");
  check(os.open("/dev/null", O_WRONLY, 0) == 1, "open stdout");
  check(os.open("/dev/null", O_WRONLY, 0) == 2, "open stderr");
  os.set_would_block(WouldBlock::kFail);
  try {
    return body(os, WorldContext{top, pids, {}});
  } catch (const ProcessEnded& ended) {
    throw std::runtime_error(
        fmt::format("the fake process {} ended (status {:#x})", ended.pid, ended.wait_status));
  }
}

// ---- The real world ----------------------------------------------------------------------

// Where the child leaves its trace: shared memory, so the child needs no descriptor that a
// generated close_range could take away.
struct SharedTrace {
  std::size_t used = 0;
  bool complete = false;
  char text[kTraceBytes - 64];
};

void on_alarm(int) {}

// Arms (or disarms) a repeating 2 ms timer around a call that may sleep. Repeating, because a
// signal that lands just before the call enters the kernel would be lost for it.
void real_around_blocking(bool arm) {
  itimerval timer{};
  if (arm) {
    timer.it_interval.tv_usec = 2000;
    timer.it_value.tv_usec = 2000;
  }
  ::setitimer(ITIMER_REAL, &timer, nullptr);
}

void serialise(const std::vector<Step>& steps, SharedTrace& out) {
  std::string text;
  for (const auto& step : steps) {
    text += step.call;
    text += '\x1f';
    text += step.result;
    text += '\n';
  }
  const std::size_t n = std::min(text.size(), sizeof out.text);
  std::memcpy(out.text, text.data(), n);
  out.used = n;
  out.complete = n == text.size();
}

std::vector<Step> deserialise(const SharedTrace& in) {
  std::vector<Step> steps;
  std::string_view text(in.text, in.used);
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    const auto sep = line.find('\x1f');
    steps.push_back(Step{std::string(line.substr(0, sep)),
                         sep == std::string_view::npos ? "" : std::string(line.substr(sep + 1))});
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return steps;
}

[[noreturn]] void die(int code) { ::_exit(code); }

// ==== Forked child of the single-threaded test process ======================================
// The test binary runs one thread, so the child is a complete copy and may allocate: it runs
// the whole interpreter on RealSyscalls. It never returns into gtest: every path ends in _exit.
[[noreturn]] void real_child(const Body& body, const std::string& top, Privilege privilege,
                             SharedTrace* out) {
  const pid_t test_process = ::getppid();
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != test_process) die(90);
  if (::setrlimit(RLIMIT_NOFILE, &kNofile) != 0) die(91);
  ::umask(kUmask);
  struct sigaction action {};
  action.sa_handler = SIG_IGN;
  if (::sigaction(SIGPIPE, &action, nullptr) != 0) die(92);
  action.sa_handler = on_alarm;  // no SA_RESTART: a sleeping call returns EINTR
  if (::sigaction(SIGALRM, &action, nullptr) != 0) die(92);
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) die(92);
  if (privilege == Privilege::kNobody) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      die(93);
    }
  }
  if (::chdir(top.c_str()) != 0) die(94);
  Pids pids;
  pids.self = ::getpid();
  pids.parent = test_process;
  pids.live = ::fork();
  if (pids.live < 0) die(95);
  if (pids.live == 0) {
    // The live child holds no descriptors (it must not keep the test's output pipe open) and
    // dies with its parent.
    ::close_range(0, ~0U, 0);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != pids.self) ::_exit(0);
    for (;;) ::pause();
  }
  pids.zombie = ::fork();
  if (pids.zombie < 0) die(95);
  if (pids.zombie == 0) ::_exit(0);
  siginfo_t info;
  if (::waitid(P_PID, static_cast<id_t>(pids.zombie), &info, WEXITED | WNOWAIT) != 0) die(96);
  pids.reaped = ::fork();
  if (pids.reaped < 0) die(95);
  if (pids.reaped == 0) ::_exit(0);
  if (::waitpid(pids.reaped, nullptr, 0) != pids.reaped) die(96);
  // The same descriptor table as the fake world's: 0, 1 and 2 on /dev/null, nothing else.
  if (::close_range(0, ~0U, 0) != 0) die(97);
  if (::open("/dev/null", O_RDONLY) != 0 || ::open("/dev/null", O_WRONLY) != 1 ||
      ::open("/dev/null", O_WRONLY) != 2) {
    die(97);
  }
  sys::RealSyscalls os;
  serialise(body(os, WorldContext{top, pids, real_around_blocking}), *out);
  ::kill(pids.live, SIGKILL);
  ::waitpid(pids.live, nullptr, 0);
  ::waitpid(pids.zombie, nullptr, 0);
  ::_exit(0);
}
// ==== End of the forked child ===============================================================

std::string wait_text(int status) {
  if (WIFEXITED(status)) return fmt::format("exited {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("wait status {:#x}", status);
}

// Makes a fresh world directory for the real kernel and removes it afterwards.
class TempWorld {
 public:
  explicit TempWorld(Privilege privilege) {
    char pattern[] = "/tmp/dk-diff-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    if (privilege == Privilege::kNobody && ::chown(pattern, kNobody, kNogroup) != 0) {
      std::filesystem::remove_all(path_);
      throw std::runtime_error("chown of the world directory failed");
    }
  }
  TempWorld(const TempWorld&) = delete;
  TempWorld& operator=(const TempWorld&) = delete;
  ~TempWorld() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class SharedMapping {
 public:
  SharedMapping() {
    void* at = ::mmap(nullptr, sizeof(SharedTrace), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) throw std::runtime_error("mmap failed");
    trace_ = static_cast<SharedTrace*>(at);
  }
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  ~SharedMapping() { ::munmap(trace_, sizeof(SharedTrace)); }
  SharedTrace* get() const { return trace_; }

 private:
  SharedTrace* trace_ = nullptr;
};

std::vector<Step> run_on_real(const Body& body, const std::string& top, Privilege privilege,
                              std::string& error) {
  SharedMapping shared;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) real_child(body, top, privilege, shared.get());
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd entry{pidfd, POLLIN, 0};
    int ready = 0;
    do {
      ready = ::poll(&entry, 1, kChildTimeoutMs);
    } while (ready < 0 && errno == EINTR);
    ::close(pidfd);
    if (ready == 0) {
      ::kill(pid, SIGKILL);
      error = fmt::format("real child still running after {} ms, killed", kChildTimeoutMs);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (error.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    error = "real child " + wait_text(status);
  }
  if (error.empty() && !shared.get()->complete) error = "the real child's trace did not fit";
  return deserialise(*shared.get());
}

}  // namespace

bool can_drop_privileges() { return ::geteuid() == 0; }

Comparison run_both(const Body& body, Privilege privilege) {
  TempWorld world(privilege);
  Comparison comparison;
  comparison.real = run_on_real(body, world.path(), privilege, comparison.error);
  try {
    comparison.fake = run_on_fake(body, world.path(), privilege);
  } catch (const std::exception& e) {
    comparison.error += std::string(comparison.error.empty() ? "" : "; ") + "fake: " + e.what();
  }
  return comparison;
}

std::vector<Step> agreed(const Body& body, Privilege privilege) {
  const Comparison comparison = run_both(body, privilege);
  if (!comparison.same()) {
    ADD_FAILURE() << comparison.report();
    return {};
  }
  return comparison.fake;
}

std::string result_of(const std::vector<Step>& steps, const std::string& call) {
  for (const auto& s : steps) {
    if (s.call == call) return s.result;
  }
  return "(no step " + call + ")";
}

Comparison run_both(const std::vector<Op>& ops, Privilege privilege) {
  return run_both(
      [&ops](sys::Syscalls& os, const WorldContext& world) {
        // Each segment has its own slots, so slot 0 of the sequence never names a setup
        // descriptor; setup and final checks get positions of their own for Write's bytes.
        std::vector<Step> steps = run_ops(os, world, setup_ops(), 1000);
        for (auto& step : run_ops(os, world, ops, 0)) steps.push_back(std::move(step));
        for (auto& step : run_ops(os, world, final_ops(), 2000)) steps.push_back(std::move(step));
        return steps;
      },
      privilege);
}

}  // namespace daemonkit::fake::differential
