// The vocabulary of the differential tests: an operation is plain data over a small universe of
// names and descriptor slots, so the same sequence means the same thing on FakeSyscalls and on
// the real kernel, and rapidcheck can generate, print and shrink it.
#pragma once

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/file.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <rapidcheck.h>

namespace daemonkit::fake::differential {

// Paths an operation may name, all inside the world's directory (and relative, so they follow
// chdir). Symlink targets are relative and never contain "..": nothing a sequence does can
// reach outside the temporary directory on the real machine. "@top" is the world's directory
// by its absolute path, the only way back after chdir("d"). /proc/self/fd is listed at the end
// of every sequence and never generated.
inline constexpr std::array<std::string_view, 16> kPaths = {
    "a",  "b",  "c",         "d",   "d/x", "d/y", "s",    "s2",
    "a/", "d/", "missing/x", "s/x", ".",   "",    "@top", "/proc/self/fd",
};
inline constexpr int kTopPath = 14;
inline constexpr int kProcSelfFdPath = 15;

// What symlink() may point at: the universe's names, a name relative to the link's own
// directory ("x"), a loop ("s") and the empty target (ENOENT).
inline constexpr std::array<std::string_view, 8> kLinkTargets = {
    "a", "b", "d", "d/x", "x", "missing", "s", "",
};

// A descriptor argument: either a slot (0 is the descriptor most recently returned by an
// operation, 1 the one before, ...; 99 when nothing was returned yet) or a literal number,
// for descriptors never opened (EBADF) and for the standard ones.
struct FdRef {
  bool slot = true;
  int value = 0;
};

// The processes kill() may name; each world maps them to its own pids.
enum class Target { kSelf, kParent, kInit, kLiveChild, kZombieChild, kReapedChild, kGroup, kAll };

struct Open {
  int path = 0;
  int flags = 0;
  mode_t mode = 0;
};
struct Close {
  FdRef fd;
};
struct Dup {
  FdRef fd;
};
struct Dup2 {
  FdRef fd;
  FdRef newfd;
};
struct Dup3 {
  FdRef fd;
  FdRef newfd;
  int flags = 0;
};
struct Fcntl {
  FdRef fd;
  int cmd = F_GETFD;
  int arg = 0;
};
struct Read {
  FdRef fd;
  std::size_t count = 0;
};
// Writes `count` bytes of a pattern that depends on the operation's position, so a later read
// shows which write its bytes came from.
struct Write {
  FdRef fd;
  std::size_t count = 0;
};
struct Pipe2 {
  int flags = 0;
};
struct Ftruncate {
  FdRef fd;
  off_t length = 0;
};
struct Fsync {
  FdRef fd;
};
struct Fstat {
  FdRef fd;
};
struct Stat {
  int path = 0;
};
struct Lstat {
  int path = 0;
};
struct Unlink {
  int path = 0;
};
struct Rename {
  int from = 0;
  int to = 0;
};
struct Symlink {
  int target = 0;
  int path = 0;
};
struct Mkdir {
  int path = 0;
  mode_t mode = 0;
};
struct Rmdir {
  int path = 0;
};
struct Chmod {
  int path = 0;
  mode_t mode = 0;
};
struct Flock {
  FdRef fd;
  int operation = 0;
};
struct Umask {
  mode_t mask = 0;
};
struct Chdir {
  int path = 0;
};
struct CloseRange {
  unsigned first = 0;
  unsigned last = 0;
  int flags = 0;
};
struct Kill {
  Target target = Target::kSelf;
  int sig = 0;
};
// Opens a directory by path, reads all of it with getdents64, closes it: the names and types,
// sorted (on-disk order is the filesystem's business).
struct List {
  int path = 0;
};
// One getdents64 call on a generated descriptor; only success or the errno is compared.
struct Getdents {
  FdRef fd;
};

struct Op {
  std::variant<Open, Close, Dup, Dup2, Dup3, Fcntl, Read, Write, Pipe2, Ftruncate, Fsync, Fstat,
               Stat, Lstat, Unlink, Rename, Symlink, Mkdir, Rmdir, Chmod, Flock, Umask, Chdir,
               CloseRange, Kill, List, Getdents>
      v;
};

// The operation as C-like text with symbolic arguments: open("a", O_RDWR|O_CREAT, 0644),
// close(slot0), kill(live-child, 0).
std::string describe(const Op& op);
std::string describe(const std::vector<Op>& ops);
std::ostream& operator<<(std::ostream& os, const Op& op);

// Text for a kill target, shared with the interpreter's results. (Flag words: the fake's own
// fake/src/flags_text.h, so a generated op reads as the transcript would show it.)
std::string target_text(Target target);

// ---- Generators --------------------------------------------------------------------------
// Every choice is an element list whose first entry is the simplest, so shrinking walks
// towards short sequences of plain operations on "a".

inline rc::Gen<FdRef> gen_fd() {
  return rc::gen::weightedOneOf<FdRef>({
      {7, rc::gen::map(rc::gen::inRange(0, 4),
                       [](int k) {
                         return FdRef{true, k};
                       })},
      {3, rc::gen::map(rc::gen::element(0, 1, 2, 3, 4, 99, -1),
                       [](int n) {
                         return FdRef{false, n};
                       })},
  });
}

// A target for dup2/dup3: also numbers around RLIMIT_NOFILE (1024 in both worlds).
inline rc::Gen<FdRef> gen_newfd() {
  return rc::gen::weightedOneOf<FdRef>({
      {5, rc::gen::map(rc::gen::inRange(0, 4),
                       [](int k) {
                         return FdRef{true, k};
                       })},
      {5, rc::gen::map(rc::gen::element(0, 1, 2, 3, 5, 10, 99, 1023, 1024, -1),
                       [](int n) {
                         return FdRef{false, n};
                       })},
  });
}

inline rc::Gen<int> gen_path() {
  return rc::gen::weightedElement<int>({
      {6, 0},
      {4, 1},
      {2, 2},
      {3, 3},
      {4, 4},
      {2, 5},
      {3, 6},
      {2, 7},
      {1, 8},
      {1, 9},
      {1, 10},
      {1, 11},
      {1, 12},
      {1, 13},
  });
}

inline rc::Gen<int> gen_flag(int flag, std::size_t one_in) {
  return rc::gen::weightedElement<int>({{one_in - 1, 0}, {1, flag}});
}

inline rc::Gen<int> gen_open_flags() {
  return rc::gen::apply(
      [](int access, int creat, int excl, int trunc, int append, int nofollow, int directory,
         int cloexec, int nonblock) {
        return access | creat | excl | trunc | append | nofollow | directory | cloexec | nonblock;
      },
      rc::gen::weightedElement<int>({{4, O_RDONLY}, {4, O_WRONLY}, {4, O_RDWR}, {1, O_ACCMODE}}),
      gen_flag(O_CREAT, 2), gen_flag(O_EXCL, 5), gen_flag(O_TRUNC, 4), gen_flag(O_APPEND, 4),
      gen_flag(O_NOFOLLOW, 5), gen_flag(O_DIRECTORY, 7), gen_flag(O_CLOEXEC, 2),
      gen_flag(O_NONBLOCK, 4));
}

inline rc::Gen<mode_t> gen_file_mode() {
  return rc::gen::element<mode_t>(0644, 0600, 0400, 0200, 0000, 0755, 0777, 04755, 02755, 01644);
}

inline rc::Gen<std::size_t> gen_count() {
  return rc::gen::weightedElement<std::size_t>(
      {{4, 5}, {2, 1}, {1, 0}, {2, 64}, {2, 4096}, {1, 4097}, {1, 61440}, {1, 65536}, {1, 70000}});
}

inline rc::Gen<Op> gen_op() {
  namespace gen = rc::gen;
  auto op = [](auto value) { return Op{value}; };
  return gen::weightedOneOf<Op>({
      {10, gen::apply(
               [=](int p, int f, mode_t m) {
                 return op(Open{p, f, m});
               },
               gen_path(), gen_open_flags(), gen_file_mode())},
      {5, gen::map(gen_fd(), [=](FdRef fd) { return op(Close{fd}); })},
      {2, gen::map(gen_fd(), [=](FdRef fd) { return op(Dup{fd}); })},
      {2, gen::apply(
              [=](FdRef a, FdRef b) {
                return op(Dup2{a, b});
              },
              gen_fd(), gen_newfd())},
      {2, gen::apply(
              [=](FdRef a, FdRef b, int f) {
                return op(Dup3{a, b, f});
              },
              gen_fd(), gen_newfd(), gen::element(0, int{O_CLOEXEC}, int{O_NONBLOCK}))},
      {4, gen::apply(
              [=](FdRef fd, std::pair<int, int> c) {
                return op(Fcntl{fd, c.first, c.second});
              },
              gen_fd(),
              gen::element(std::pair{F_GETFD, 0}, std::pair{F_GETFL, 0},
                           std::pair{F_SETFD, FD_CLOEXEC}, std::pair{F_SETFD, 0},
                           std::pair{F_SETFL, int{O_NONBLOCK}}, std::pair{F_SETFL, int{O_APPEND}},
                           std::pair{F_SETFL, 0}, std::pair{F_DUPFD, 0}, std::pair{F_DUPFD, 10},
                           std::pair{F_DUPFD_CLOEXEC, 5}))},
      {6, gen::apply(
              [=](FdRef fd, std::size_t n) {
                return op(Read{fd, n});
              },
              gen_fd(), gen_count())},
      {6, gen::apply(
              [=](FdRef fd, std::size_t n) {
                return op(Write{fd, n});
              },
              gen_fd(), gen_count())},
      {4, gen::map(gen::element(0, int{O_CLOEXEC}, int{O_NONBLOCK}, int{O_CLOEXEC | O_NONBLOCK}),
                   [=](int f) { return op(Pipe2{f}); })},
      {2, gen::apply(
              [=](FdRef fd, off_t n) {
                return op(Ftruncate{fd, n});
              },
              gen_fd(), gen::element<off_t>(0, 2, 10, 5000, -1))},
      {1, gen::map(gen_fd(), [=](FdRef fd) { return op(Fsync{fd}); })},
      {3, gen::map(gen_fd(), [=](FdRef fd) { return op(Fstat{fd}); })},
      {1, gen::map(gen_path(), [=](int p) { return op(Stat{p}); })},
      {3, gen::map(gen_path(), [=](int p) { return op(Lstat{p}); })},
      {3, gen::map(gen_path(), [=](int p) { return op(Unlink{p}); })},
      {3, gen::apply(
              [=](int a, int b) {
                return op(Rename{a, b});
              },
              gen_path(), gen_path())},
      {2, gen::apply(
              [=](int t, int p) {
                return op(Symlink{t, p});
              },
              gen::inRange(0, static_cast<int>(kLinkTargets.size())), gen_path())},
      {1, gen::apply(
              [=](int p, mode_t m) {
                return op(Mkdir{p, m});
              },
              gen_path(), gen::element<mode_t>(0755, 0700, 0500, 0000))},
      {1, gen::map(gen_path(), [=](int p) { return op(Rmdir{p}); })},
      {2, gen::apply(
              [=](int p, mode_t m) {
                return op(Chmod{p, m});
              },
              gen_path(), gen::element<mode_t>(0644, 0000, 0500, 0755, 0200, 0400))},
      {4, gen::apply(
              [=](FdRef fd, int o) {
                return op(Flock{fd, o});
              },
              gen_fd(),
              gen::weightedElement<int>({{4, LOCK_EX | LOCK_NB},
                                         {2, LOCK_SH | LOCK_NB},
                                         {2, LOCK_UN},
                                         {1, LOCK_EX},
                                         {1, LOCK_SH},
                                         {1, LOCK_NB},
                                         {1, 0}}))},
      {1, gen::map(gen::element<mode_t>(022, 0, 077, 0777, 027, 07777),
                   [=](mode_t m) { return op(Umask{m}); })},
      {1, gen::map(gen::element(kTopPath, 3, 4, 6, 7, 10, 0), [=](int p) { return op(Chdir{p}); })},
      {2, gen::apply(
              [=](unsigned first, unsigned span, int flags) {
                const unsigned last = span == 100 ? ~0U : span == 101 ? 1U : first + span;
                return op(CloseRange{first, last, flags});
              },
              gen::element(3U, 0U, 1U, 2U, 4U, 5U, 8U, 99U), gen::element(0U, 1U, 3U, 100U, 101U),
              gen::element(0, int{CLOSE_RANGE_CLOEXEC}, 0x40))},
      {2,
       gen::apply(
           [=](Target t, int sig) {
             return op(Kill{t, sig});
           },
           gen::element(Target::kSelf, Target::kParent, Target::kInit, Target::kLiveChild,
                        Target::kZombieChild, Target::kReapedChild, Target::kGroup, Target::kAll),
           gen::weightedElement<int>({{6, 0}, {1, 65}, {1, -1}}))},
      {1, gen::map(gen::element(kTopPath, 3, 0, 6, 12), [=](int p) { return op(List{p}); })},
      {1, gen::map(gen_fd(), [=](FdRef fd) { return op(Getdents{fd}); })},
  });
}

// Sequences of up to `max_ops` operations (rapidcheck shrinks them by dropping operations).
inline rc::Gen<std::vector<Op>> gen_sequence(int max_ops = 30) {
  return rc::gen::resize(max_ops, rc::gen::container<std::vector<Op>>(gen_op()));
}

}  // namespace daemonkit::fake::differential
