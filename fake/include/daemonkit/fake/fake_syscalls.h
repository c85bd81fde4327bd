// FakeSyscalls: a simulated Linux kernel behind the sys::Syscalls interface. Daemonizers, PID
// files, privilege dropping and event loops run against it in-process and deterministically:
// processes fork by script, share pipes and files, die into zombies and are reaped; the
// in-memory filesystem checks permissions as Linux does; every call is recorded and any call
// can be made to fail. See fake/README.md for a worked example and the list of limits.
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/fake/manual_clock.h"
#include "daemonkit/fake/process_ended.h"
#include "daemonkit/fake/transcript.h"
#include "daemonkit/sys/syscalls.h"

namespace testing {
class ScopedTrace;
}

namespace daemonkit::fake {

namespace detail {
class Kernel;
}

// What the process calling fork() continues as. The other process exists too, runnable, and
// a test reaches it with FakeSyscalls::switch_to.
enum class ForkAs {
  kParent,  // fork returns the child's pid; the child waits to be switched to.
  kChild,   // fork returns 0 in the new child; the parent waits, its fork "returned" the pid.
};

// What the fake does where a real kernel would put the caller to sleep with nothing in the
// simulation able to wake it (a blocking read of an empty pipe whose writers are all in other,
// suspended processes; waitpid without WNOHANG while children still run; a blocking flock).
enum class WouldBlock {
  kFail,   // The call fails with EDEADLK, and the transcript entry says why. The default.
  kAbort,  // The test binary aborts with a message naming the call and the process.
};

enum class ProcessState { kRunning, kZombie, kReaped };

// One successful execve, as the process recorded it.
struct ExecRecord {
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> envp;
};

// ==== Fake programs =========================================================================
// The code a process runs after an execve of a path installed with a program (see
// install_program and fake/README.md, "Fake programs"). A program runs in turns: each turn is
// one call of its step, as its own process, making non-blocking progress through the same
// Syscalls as everyone (so its calls are recorded under its pid and can be failed). Inside a
// turn a call that would block fails with EAGAIN instead, and the program waits. It ends by
// exit_now, by a fatal signal, or by an execve of another image.

// What one turn did.
enum class Turn {
  // It changed something (read, wrote, closed, ...) or has more to do: it gets another turn
  // before the waiting caller goes on.
  kRunning,
  // It could do nothing: its next turn comes once something it may wait for has changed
  // (bytes or room in a pipe, a descriptor's last close, a signal, a process's end, the clock).
  kWaiting,
};

// A running program: called once per turn, with the kernel it runs on.
using ProgramStep = std::function<Turn(sys::Syscalls& os)>;
// A program as installed at a path: makes a fresh step, holding that run's own state, for
// each successful execve of the path, from what that execve passed.
using FakeProgram = std::function<ProgramStep(const ExecRecord& exec)>;

// What happened to one signal sent to a process. Handlers are never run: a caught signal is
// recorded here instead, so tests observe that it arrived.
enum class SignalAction {
  kIgnored,     // SIG_IGN, or a default action of "ignore" (SIGCHLD, SIGURG, SIGWINCH, SIGCONT).
  kPending,     // Blocked: added to the pending set; acted on when unblocked.
  kCaught,      // A handler is installed; it is not run.
  kTerminated,  // Default action: the process died of it.
  kStopped,     // SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU default: recorded only, stopping is not modelled.
};

struct SignalEvent {
  int signal = 0;
  pid_t sender = 0;  // 0 when sent by the kernel or the test (SIGPIPE, SIGCHLD, send_signal).
  SignalAction action = SignalAction::kIgnored;
};

// A snapshot of one process, for assertions.
struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t sid = 0;
  pid_t pgid = 0;
  sys::ResUids uids;
  sys::ResGids gids;
  std::vector<gid_t> groups;
  mode_t umask = 0;
  std::string cwd;   // As getcwd would report it inside the process's root.
  std::string root;  // Absolute path of the process's root directory in the fake filesystem.
  ProcessState state = ProcessState::kRunning;
  int wait_status = 0;  // Meaningful once the process is a zombie or reaped.
  bool subreaper = false;
  int pdeathsig = 0;
  // The controlling terminal ("/dev/pts/0"), empty when the process has none.
  std::string controlling_terminal;
  std::vector<ExecRecord> execs;
  std::vector<SignalEvent> signals;
  std::vector<int> pending_signals;
  std::vector<int> blocked_signals;
  std::vector<int> ignored_signals;  // Signals whose disposition is SIG_IGN.
  std::vector<int> caught_signals;   // Signals with a handler installed.
  struct rlimit nofile {};
  std::vector<int> fds;

  [[nodiscard]] bool alive() const { return state == ProcessState::kRunning; }
};

// The kernel's state at construction. The defaults model a daemon started by root from an
// interactive shell: pid 1 is init, pid 999 a shell leading session 999, and the test's
// process is pid 1000 in its own process group (as a shell job), so setsid succeeds only
// after a fork, as on a real terminal.
struct FakeSyscallsOptions {
  pid_t pid = 1000;
  // 999 creates the shell process; 1 makes the process a child of init instead.
  pid_t ppid = 999;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups{};
  mode_t umask = 022;
  struct rlimit nofile = {1024, 4096};
  // Install root (uid 0), nobody (65534) and their groups root (0) and nogroup (65534).
  bool default_users = true;
};

class FakeSyscalls : public sys::Syscalls {
 public:
  FakeSyscalls();
  explicit FakeSyscalls(const FakeSyscallsOptions& options);
  ~FakeSyscalls() override;
  FakeSyscalls(const FakeSyscalls&) = delete;
  FakeSyscalls& operator=(const FakeSyscalls&) = delete;

  // ==== Setting up the world (not recorded, no permission checks) =========================

  // Adds a passwd entry; getpwnam/getpwuid find it, getgrouplist reads the group members.
  void add_user(const std::string& name, uid_t uid, gid_t gid, const std::string& home = "/",
                const std::string& shell = "/bin/sh");
  // Adds a group entry with its member user names.
  void add_group(const std::string& name, gid_t gid, std::vector<std::string> members = {});

  // Creates (or replaces) a regular file with `contents`, creating missing parent
  // directories as root with mode 0755. Paths are absolute in the fake filesystem.
  void write_file(const std::string& path, const std::string& contents, mode_t mode = 0644,
                  uid_t uid = 0, gid_t gid = 0);
  // Creates (or replaces) a named pipe, as mkfifo(3) would; parents as write_file makes them.
  void make_fifo(const std::string& path, mode_t mode = 0644, uid_t uid = 0, gid_t gid = 0);
  // Creates a directory and any missing parents (parents as root, 0755).
  void make_dir(const std::string& path, mode_t mode = 0755, uid_t uid = 0, gid_t gid = 0);
  void make_symlink(const std::string& target, const std::string& path);
  // Gives the file at `existing` a second name, as link(2) does: one inode, its st_nlink one
  // higher. `existing` must exist and not be a directory; a final symlink is linked itself,
  // not followed (Linux's link(2)). Parents as write_file makes them; `path` must be free.
  void make_hard_link(const std::string& existing, const std::string& path);
  // Installs an executable that execve accepts: a regular file with the given mode. A process
  // that execs it runs no code of its own: the test plays it (switch_to, end_process).
  void install_program(const std::string& path, mode_t mode = 0755);
  // Installs an executable whose code is `program` (see fake_programs.h for ready-made ones):
  // after a successful execve of `path` — in a vfork child too — the process runs it, in
  // turns, on the descriptors it inherited. The program belongs to the file: a hard link runs
  // it too, and installing again at `path` replaces it.
  void install_program(const std::string& path, FakeProgram program, mode_t mode = 0755);
  // The contents of a regular file (symlinks followed), or nothing if there is none.
  [[nodiscard]] std::optional<std::string> read_file(const std::string& path) const;
  // lstat as root, or nothing if the path does not exist.
  [[nodiscard]] std::optional<struct stat> stat_path(const std::string& path) const;

  // ==== Processes =========================================================================

  // Queues what the next fork() does; unscripted forks continue as the parent.
  void script_fork(ForkAs as);
  // Makes `pid` the process whose code runs next. It must be running (not a zombie).
  void switch_to(pid_t pid);
  // The current process, or 0 when it has ended and no switch_to followed. Any recorded
  // call made while no process is current aborts with a message saying so.
  [[nodiscard]] pid_t current_pid() const;
  // The pid the last successful fork created.
  [[nodiscard]] pid_t last_forked_pid() const;
  // Makes a process exit with `code` from outside (e.g. the program it exec'd finishes).
  void end_process(pid_t pid, int code);
  // Sends a signal from outside the simulation (no permission check; sender pid 0).
  void send_signal(pid_t pid, int sig);
  [[nodiscard]] ProcessInfo process(pid_t pid) const;
  [[nodiscard]] bool process_exists(pid_t pid) const;
  // The descriptor numbers open in a process, ascending.
  [[nodiscard]] std::vector<int> open_fds(pid_t pid) const;
  // What an open descriptor refers to: "file:/run/x.pid", "pipe:[7]:r", "/dev/null", ...
  [[nodiscard]] std::string describe_fd(pid_t pid, int fd) const;
  void set_would_block(WouldBlock policy);

  // The other processes' turn. The fake runs only the current process's code, so a test plays
  // the others (a daemon that reports, a child that dies) from here: the hook runs before
  // every recorded call, with its name and the calling pid, and may switch_to other processes
  // and make calls as them, end_process or send_signal (not exit_now, which would unwind the
  // caller's stack). The caller is current again when the hook returns; calls made inside the
  // hook do not run it again. A hook that ends the caller (a fatal signal, end_process) ends it
  // before the call, which then unwinds with ProcessEnded unmade. An empty hook removes it.
  using BeforeCall = std::function<void(std::string_view name, pid_t caller)>;
  void before_each_call(BeforeCall hook);

  // Gives every running fake program turns until none can make progress (each has said
  // Turn::kWaiting, exited or died), then makes the process that was current current again.
  // The kernel does this by itself wherever a caller would wait for other processes (before
  // epoll_wait, poll, waitpid, and a read or write of a blocking descriptor that is not
  // ready; after the before_each_call hook), giving turns there only to programs that may
  // have something new to do; run_programs gives each a first turn regardless, e.g. after the
  // test changed the filesystem behind their backs. A program that never settles aborts the
  // test, naming it.
  void run_programs();

  ManualClock& clock();

  // ==== Fault injection ===================================================================
  // Faults are checked before a call changes any state, in the order the rules were added;
  // the first matching rule wins. getpid, getppid, umask and exit_now cannot fail.

  using Predicate = std::function<bool(const CallRecord&)>;

  // The nth call (counted from 1) of `name` fails with `error`.
  void fail_nth(const std::string& name, int nth, int error);
  // Every call of `name` ("" for any call) for which `when` holds fails with `error`.
  void fail_when(const std::string& name, Predicate when, int error);
  // The call at transcript position `index` (from 0) fails; `error` 0 picks a typical errno
  // for that call (see typical_errno). Run a scenario once, then once per index, to drive
  // every failure path.
  void fail_call_at(std::size_t index, int error = 0);
  // Each call (of one of `names`, or of any name if empty) fails with probability
  // `probability`, with its typical errno. The decisions depend only on the seed and the
  // call's position, so a seed reproduces a run; the seed is named in the transcript and in
  // any gtest failure while this fake lives.
  void fail_randomly(std::uint64_t seed, double probability, std::vector<std::string> names = {});
  void clear_faults();
  // The errno a call typically fails with (EPERM for setuid, EMFILE for pipe2, ...).
  [[nodiscard]] static int typical_errno(const std::string& name);

  // ==== Transcript ========================================================================

  [[nodiscard]] const Transcript& transcript() const;
  // Forgets the recorded calls; positions (CallRecord::index) and per-name counts (nth) start
  // again from 0 and 1, so fail_call_at and fail_nth count from here.
  void clear_transcript();
  // With recording off, calls are still checked against fault rules (each record exists
  // while its call runs) but are not kept: for long runs such as benchmarks. On by default.
  void set_recording(bool on);

  // ==== sys::Syscalls =====================================================================

  sys::Result<pid_t> fork() override;
  sys::Result<pid_t> vfork(sys::ChildMain body) override;
  // As vfork; the pidfd is made in the parent after the child was copied from it, as Linux does.
  sys::Result<sys::ChildWithPidFd> vfork_with_pidfd(sys::ChildMain body) override;
  sys::Result<pid_t> setsid() override;
  pid_t getpid() override;
  pid_t getppid() override;
  sys::Result<pid_t> getsid(pid_t pid) override;
  sys::Result<pid_t> getpgid(pid_t pid) override;
  sys::Result<void> setpgid(pid_t pid, pid_t pgid) override;
  sys::Result<sys::WaitResult> waitpid(pid_t pid, int options) override;
  sys::Result<void> kill(pid_t pid, int sig) override;
  sys::Result<int> pidfd_open(pid_t pid, unsigned int flags) override;
  sys::Result<void> pidfd_send_signal(int pidfd, int sig, unsigned int flags) override;
  // Succeeds (and throws ProcessEnded with by_exec) when `path` resolves to a regular file
  // with an execute bit the caller may use; see install_program.
  sys::Result<void> execve(const char* path, char* const argv[], char* const envp[]) override;
  // Ends the current process and throws ProcessEnded; no process is current afterwards.
  [[noreturn]] void exit_now(int status) override;
  sys::Result<int> prctl(int option, unsigned long arg) override;

  sys::Result<sys::ResUids> getresuid() override;
  sys::Result<sys::ResGids> getresgid() override;
  sys::Result<void> setresuid(uid_t real, uid_t effective, uid_t saved) override;
  sys::Result<void> setresgid(gid_t real, gid_t effective, gid_t saved) override;
  sys::Result<void> setuid(uid_t uid) override;
  sys::Result<void> seteuid(uid_t uid) override;
  sys::Result<void> setgid(gid_t gid) override;
  sys::Result<void> setegid(gid_t gid) override;
  sys::Result<void> setgroups(std::span<const gid_t> groups) override;
  sys::Result<std::vector<gid_t>> getgroups() override;
  sys::Result<std::optional<sys::Passwd>> getpwnam(const char* name) override;
  sys::Result<std::optional<sys::Passwd>> getpwuid(uid_t uid) override;
  sys::Result<std::optional<sys::Group>> getgrnam(const char* name) override;
  sys::Result<std::optional<sys::Group>> getgrgid(gid_t gid) override;
  sys::Result<std::vector<gid_t>> getgrouplist(const char* user, gid_t group) override;

  sys::Result<int> open(const char* path, int flags, mode_t mode) override;
  sys::Result<int> openat(int dirfd, const char* path, int flags, mode_t mode) override;
  sys::Result<void> close(int fd) override;
  sys::Result<void> close_range(unsigned int first, unsigned int last, int flags) override;
  sys::Result<int> dup(int fd) override;
  sys::Result<int> dup2(int oldfd, int newfd) override;
  sys::Result<int> dup3(int oldfd, int newfd, int flags) override;
  sys::Result<int> fcntl(int fd, int cmd, int arg) override;
  // Terminal requests on the pseudo-terminals of /dev/ptmx and /dev/pts (TIOCGPTN,
  // TIOCSPTLCK, TIOCGPTPEER, TIOCSCTTY, TIOCNOTTY, TIOCGWINSZ, TIOCSWINSZ, TCGETS, TCSETS*);
  // anything else is ENOTTY, as Linux answers for a request a file does not know. See
  // fake/README.md for what a terminal models.
  sys::Result<int> ioctl(int fd, unsigned long request, void* arg) override;
  sys::Result<std::size_t> read(int fd, void* buf, std::size_t count) override;
  sys::Result<std::size_t> write(int fd, const void* buf, std::size_t count) override;
  sys::Result<std::size_t> writev(int fd, std::span<const struct iovec> iov) override;
  sys::Result<void> fsync(int fd) override;
  sys::Result<void> ftruncate(int fd, off_t length) override;
  sys::Result<struct stat> fstat(int fd) override;
  sys::Result<struct stat> stat(const char* path) override;
  sys::Result<struct stat> lstat(const char* path) override;
  sys::Result<void> flock(int fd, int operation) override;
  sys::Result<std::size_t> getdents64(int fd, void* buf, std::size_t count) override;
  sys::Result<void> unlink(const char* path) override;
  sys::Result<void> rename(const char* from, const char* to) override;
  sys::Result<void> symlink(const char* target, const char* linkpath) override;
  sys::Result<void> mkdir(const char* path, mode_t mode) override;
  sys::Result<void> rmdir(const char* path) override;
  sys::Result<void> chmod(const char* path, mode_t mode) override;
  sys::Result<void> fchmod(int fd, mode_t mode) override;
  sys::Result<void> chown(const char* path, uid_t owner, gid_t group) override;
  sys::Result<void> chdir(const char* path) override;
  sys::Result<void> chroot(const char* path) override;
  sys::Result<std::string> getcwd() override;
  mode_t umask(mode_t mask) override;

  sys::Result<sys::PipeFds> pipe2(int flags) override;
  sys::Result<void> sigaction(int sig, const struct sigaction* act, struct sigaction* old) override;
  sys::Result<void> sigprocmask(int how, const sigset_t* set, sigset_t* old) override;
  // Reads the reading process's pending (blocked) signals in the set; see fake/README.md.
  sys::Result<int> signalfd(int fd, const sigset_t& mask, int flags) override;
  // poll and epoll_wait never block: with nothing ready, a positive timeout advances clock()
  // by that many milliseconds and returns 0; -1 goes through the would-block policy. epoll is
  // level-triggered or, with EPOLLET, edge-triggered by Linux's wake-ups. See fake/README.md.
  sys::Result<int> poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) override;
  sys::Result<int> epoll_create1(int flags) override;
  sys::Result<void> epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) override;
  sys::Result<int> epoll_wait(int epfd, struct epoll_event* events, int maxevents,
                              int timeout_ms) override;
  sys::Result<int> eventfd(unsigned int initval, int flags) override;

  // AF_UNIX stream and datagram sockets, and AF_INET TCP and UDP sockets on loopback only
  // (other families and types fail as Linux fails for what it lacks); see fake/README.md.
  sys::Result<int> socket(int domain, int type, int protocol) override;
  // AF_UNIX SOCK_STREAM and SOCK_DGRAM pairs, connected to each other and unnamed.
  sys::Result<sys::SocketPair> socketpair(int domain, int type, int protocol) override;
  sys::Result<void> bind(int fd, const struct sockaddr* addr, socklen_t len) override;
  sys::Result<void> listen(int fd, int backlog) override;
  sys::Result<int> accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) override;
  sys::Result<void> connect(int fd, const struct sockaddr* addr, socklen_t len) override;
  sys::Result<std::size_t> sendto(int fd, const void* buf, std::size_t len, int flags,
                                  const struct sockaddr* addr, socklen_t addrlen) override;
  sys::Result<std::size_t> recvfrom(int fd, void* buf, std::size_t len, int flags,
                                    struct sockaddr* addr, socklen_t* addrlen) override;
  // A datagram carries its sender's pid and real uid and gid when the sender or the receiver
  // had SO_PASSCRED; a receiver with SO_PASSCRED gets them as SCM_CREDENTIALS.
  sys::Result<std::size_t> recvmsg(int fd, struct msghdr* msg, int flags) override;
  // sendto with the bytes gathered from the iovecs; on AF_UNIX sockets SCM_RIGHTS passes open
  // file descriptions (installed by the receiver's recvmsg) and SCM_CREDENTIALS states the
  // sender's ids as Linux permits. See fake/README.md.
  sys::Result<std::size_t> sendmsg(int fd, const struct msghdr* msg, int flags) override;
  sys::Result<void> setsockopt(int fd, int level, int name, const void* value,
                               socklen_t len) override;
  sys::Result<void> getsockopt(int fd, int level, int name, void* value, socklen_t* len) override;
  sys::Result<void> getsockname(int fd, struct sockaddr* addr, socklen_t* len) override;
  sys::Result<void> getpeername(int fd, struct sockaddr* addr, socklen_t* len) override;
  // Stream sockets (AF_UNIX and TCP) and AF_UNIX listeners; on a datagram socket the flags
  // are kept but change nothing the fake models.
  sys::Result<void> shutdown(int fd, int how) override;

  sys::Result<struct rlimit> getrlimit(int resource) override;
  sys::Result<void> setrlimit(int resource, const struct rlimit& limit) override;
  sys::Result<struct timespec> clock_gettime(clockid_t clock) override;

  // The simulated kernel itself, for extensions inside fake/ (new descriptor kinds).
  [[nodiscard]] detail::Kernel& kernel() { return *kernel_; }

 private:
  struct Faults;

  // Records a call, applies fault rules, runs `body` and records its result. Throws
  // ProcessEnded if the current process ended during the call.
  template <typename T, typename Body>
  sys::Result<T> call(const char* name, std::vector<std::string> args, Body&& body,
                      bool injectable = true);
  // Appends the call's record (it is transcript_.back() until end_call).
  void begin_call(const char* name, std::vector<std::string> args);
  // The injected errno for the call being made, or 0.
  int injected_error();
  void end_call(std::string value, int error);
  void check_current_alive(pid_t caller);
  // Runs a vfork child's body as the current process, then resumes its sleeping parent.
  void run_vfork_child(pid_t child, sys::ChildMain& body);
  // Runs the before_each_call hook, unless it is running already.
  void run_before_call(const char* name);

  // What a call may wait for; fake programs take their turns first (programs.cpp).
  enum class WaitOn { kNothing, kAnything, kReadable, kWritable };
  struct WaitPoint {
    WaitOn on = WaitOn::kNothing;
    int fd = -1;
  };
  // Says that the next call<T> is one where its caller may wait for other processes: one line
  // just before call<T>, at each call site that may wait (epoll_wait, poll, waitpid, read,
  // write). call<T> lets the programs run after the before_each_call hook.
  void may_wait(WaitOn on, int fd = -1) { wait_point_ = WaitPoint{on, fd}; }
  // The programs' turns at a wait point, unless the caller would not wait there after all.
  // Unwinds with ProcessEnded if a program ended the caller.
  void run_programs_at(WaitPoint wait);
  // Rounds of turns until a round in which every program waits. `everyone`: the first round
  // gives a turn even to programs that wait for nothing that changed.
  void run_program_rounds(bool everyone);
  // One turn of the program `pid` runs; returns what it said (kRunning after an exec into
  // another program, which runs from the next round).
  Turn take_turn(pid_t pid);

  std::unique_ptr<detail::Kernel> kernel_;
  std::unique_ptr<Faults> faults_;
  std::unique_ptr<testing::ScopedTrace> random_trace_;
  Transcript transcript_;
  std::size_t next_index_ = 0;
  std::map<std::string, int, std::less<>> nth_counts_;
  bool recording_ = true;
  BeforeCall before_call_;
  bool in_before_call_ = false;
  WaitPoint wait_point_;
};

// gtest prints a FakeSyscalls (e.g. in EXPECT_THAT(fake, HasOpenFds(...))) as its current
// process and transcript length rather than as raw bytes.
void PrintTo(const FakeSyscalls& fake, std::ostream* os);

}  // namespace daemonkit::fake
