// The simulated kernel's state and operations, behind FakeSyscalls. FakeSyscalls records and
// injects faults; everything here implements Linux's rules. Each area lives in its own source
// file (fs.cpp, pipes.cpp, processes.cpp, ...), so new areas (epoll, eventfd, signalfd,
// sockets) arrive as new files with new OpenFile kinds (see open_file.h).
#pragma once

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/result.h"
#include "flags_text.h"
#include "open_file.h"

namespace daemonkit::fake::detail {

// Device numbers reported in st_dev, as on a typical system: one disk filesystem, devtmpfs,
// proc, and the pipe pseudo-filesystem.
inline constexpr dev_t kDiskDev = 0x803;
inline constexpr dev_t kDevTmpfsDev = 0x5;
inline constexpr dev_t kProcDev = 0x16;
inline constexpr dev_t kPipeDev = 0xf;
inline constexpr dev_t kAnonDev = 0xe;
inline constexpr dev_t kSockDev = 0x8;
inline constexpr dev_t kDevPtsDev = 0x19;

// Linux's limits on path resolution.
inline constexpr int kMaxSymlinks = 40;
inline constexpr std::size_t kPathMax = 4096;  // including the terminating NUL
inline constexpr std::size_t kNameMax = 255;
inline constexpr unsigned kNrOpen = 1048576;  // fs.nr_open: the ceiling for RLIMIT_NOFILE
inline constexpr int kMaxSignal = 64;

// The kernel's O_LARGEFILE bit. glibc defines O_LARGEFILE as 0 for 64-bit programs (it is
// implied), yet Linux sets the real bit in every file opened by open/openat and reports it
// in F_GETFL, so the fake needs the architecture's value.
#if defined(__aarch64__)
inline constexpr int kLargefile = 0400000;
#else
inline constexpr int kLargefile = 0100000;
#endif

struct FdEntry {
  std::shared_ptr<OpenFile> file;
  bool cloexec = false;
};

// Who sent a signal that is now pending, as signalfd reports it (ssi_pid, ssi_uid).
struct SignalSource {
  pid_t pid = 0;
  uid_t uid = 0;
};

struct Process {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t sid = 0;
  pid_t pgid = 0;
  sys::ResUids uids;
  sys::ResGids gids;
  std::vector<gid_t> groups;
  mode_t umask = 022;
  std::shared_ptr<Inode> cwd;
  std::shared_ptr<Inode> root;
  std::array<struct rlimit, RLIM_NLIMITS> rlimits{};
  std::array<struct sigaction, kMaxSignal + 1> actions{};
  sigset_t mask{};
  sigset_t pending{};
  std::array<SignalSource, kMaxSignal + 1> pending_from{};
  std::map<int, FdEntry> fds;
  ProcessState state = ProcessState::kRunning;
  int wait_status = 0;
  bool subreaper = false;
  int pdeathsig = 0;
  // The controlling terminal (Linux's signal->tty), shared by fork, dropped by setsid and by
  // the terminal's hangup; and the foreground group it had when it hung up, which a session
  // leader signals when it exits (signal->tty_old_pgrp).
  std::shared_ptr<Pty> ctty;
  pid_t tty_old_pgrp = 0;
  int dumpable = 1;
  // The thread's name (/proc/PID/comm): PR_SET_NAME sets it, fork copies it, execve makes it
  // the program's file name, at most 15 bytes each time.
  std::string comm;
  bool execed = false;
  // The vfork child this process sleeps for until it execs or ends; 0 when not in vfork.
  pid_t vfork_child = 0;
  // Children in the order they joined (fork or reparenting), as Linux lists them.
  std::vector<pid_t> children;
  std::vector<ExecRecord> execs;
  std::vector<SignalEvent> signals;

  [[nodiscard]] bool alive() const { return state == ProcessState::kRunning; }
  [[nodiscard]] bool privileged() const { return uids.effective == 0; }
  [[nodiscard]] bool in_group(gid_t gid) const;
};

// A path resolved up to its last component. `node` is null when the last component does not
// exist (but its directory does); `parent` is null only when the path names the root.
struct Lookup {
  std::shared_ptr<Inode> parent;
  std::string name;
  std::shared_ptr<Inode> node;
  bool trailing_slash = false;
};

// Permission bits asked of an inode.
inline constexpr int kMayRead = 4;
inline constexpr int kMayWrite = 2;
inline constexpr int kMayExec = 1;

struct UserEntry {
  sys::Passwd passwd;
};

class Kernel {
 public:
  explicit Kernel(const FakeSyscallsOptions& options);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // ---- Core (kernel.cpp) ----
  [[noreturn]] static void fatal(const std::string& message);
  Process& current();
  Process* find(pid_t pid);
  const Process* find(pid_t pid) const;
  // Lowest free descriptor >= `min`, below RLIMIT_NOFILE (EMFILE otherwise).
  sys::Result<int> allocate_fd(Process& p, std::shared_ptr<OpenFile> file, bool cloexec,
                               int min = 0, const char* call = "open");
  FdEntry* fd_entry(Process& p, int fd);
  // Whether allocate_fd would find a free descriptor.
  [[nodiscard]] bool fd_available(const Process& p) const;
  std::shared_ptr<Inode> new_inode(mode_t mode, uid_t uid, gid_t gid, dev_t dev = kDiskDev);
  [[nodiscard]] timespec now() const;
  // What a blocking call does when nothing in the simulation could ever wake it.
  template <typename T>
  sys::Result<T> would_block(const char* call, const std::string& why) {
    return sys::fail(block_forever(call, why), call);
  }
  // Applies the would-block policy and returns the errno the call fails with: EDEADLK, or
  // EAGAIN in a fake program's turn, where the program waits for its next turn instead.
  int block_forever(const char* call, const std::string& why);

  // ---- Filesystem (fs.cpp) ----
  // Resolves `path` for process `p` starting at `base` for relative paths (cwd if null).
  // A trailing slash makes a final symlink be followed, as path walks do; the calls that
  // resolve only the parent and then look the last name up themselves (unlink, rmdir, mkdir,
  // symlink, rename, open with O_CREAT) pass `trailing_slash_follows` false, as Linux never
  // follows the last component there.
  sys::Result<Lookup> lookup(Process& p, std::string_view path, bool follow_last, const char* call,
                             std::shared_ptr<Inode> base = nullptr,
                             bool trailing_slash_follows = true);
  [[nodiscard]] bool may(const Process& p, const Inode& node, int want) const;
  sys::Result<std::shared_ptr<OpenFile>> open_file(Process& p, std::string_view path, int flags,
                                                   mode_t mode, std::shared_ptr<Inode> base,
                                                   const char* call);
  // Opens a FIFO inode (pipes.cpp) as fifo_open does: O_RDWR never waits; O_WRONLY with no
  // reader fails with ENXIO under O_NONBLOCK and otherwise waits, as O_RDONLY does for a
  // writer without it. Nothing else in the simulation can come to open the other end while
  // the caller waits, so a wait goes through the would-block policy.
  sys::Result<std::shared_ptr<OpenFile>> open_fifo(const std::shared_ptr<Inode>& node, int status,
                                                   const char* call);
  sys::Result<struct stat> stat_path(Process& p, std::string_view path, bool follow,
                                     const char* call);
  sys::Result<void> unlink(Process& p, std::string_view path);
  sys::Result<void> rename(Process& p, std::string_view from, std::string_view to);
  sys::Result<void> symlink(Process& p, std::string_view target, std::string_view linkpath);
  sys::Result<void> mkdir(Process& p, std::string_view path, mode_t mode);
  sys::Result<void> rmdir(Process& p, std::string_view path);
  sys::Result<void> chmod(Process& p, std::string_view path, mode_t mode);
  sys::Result<void> fchmod(Process& p, int fd, mode_t mode);
  sys::Result<void> change_mode(Process& p, Inode& node, mode_t mode, const char* call);
  sys::Result<void> chown(Process& p, std::string_view path, uid_t uid, gid_t gid);
  sys::Result<void> chdir(Process& p, std::string_view path);
  sys::Result<void> chroot(Process& p, std::string_view path);
  sys::Result<std::string> getcwd(Process& p);
  // The absolute path of a directory as seen from `root` ("(unreachable)/x" outside it).
  [[nodiscard]] std::string path_of(const std::shared_ptr<Inode>& dir,
                                    const std::shared_ptr<Inode>& root) const;
  [[nodiscard]] static struct stat stat_of(const Inode& node);
  // Test-side helpers: as root, creating parents.
  std::shared_ptr<Inode> make_dirs(const std::string& path);
  std::shared_ptr<Inode> lookup_as_root(const std::string& path, bool follow) const;
  void link_into(const std::shared_ptr<Inode>& dir, const std::string& name,
                 const std::shared_ptr<Inode>& node);

  // ---- /proc (proc_fs.cpp) ----
  // The child `name` of a synthesized /proc directory, or null.
  std::shared_ptr<Inode> proc_child(Process& p, const Inode& dir, const std::string& name);
  std::shared_ptr<OpenFile> open_proc_dir(const std::shared_ptr<Inode>& node, int flags);
  // The inode of the file open at /proc/<pid>/fd/<n> (a kProcFdLink), or null once closed.
  std::shared_ptr<Inode> proc_fd_target(const Inode& link);
  // Linux's ptrace_may_access(PTRACE_MODE_READ_FSCREDS), which guards /proc/<pid>/fdinfo:
  // privilege, or the same user and group in all three ids of the target, which must be
  // dumpable.
  [[nodiscard]] bool may_inspect(const Process& p, pid_t target) const;

  // ---- Descriptors (descriptors.cpp) ----
  sys::Result<void> close(Process& p, int fd);
  sys::Result<void> close_range(Process& p, unsigned first, unsigned last, int flags);
  sys::Result<int> dup(Process& p, int fd);
  sys::Result<int> dup3(Process& p, int oldfd, int newfd, int flags, const char* call);
  sys::Result<int> fcntl(Process& p, int fd, int cmd, int arg);
  sys::Result<std::size_t> read(Process& p, int fd, void* buf, std::size_t count);
  sys::Result<std::size_t> write(Process& p, int fd, const void* buf, std::size_t count);
  sys::Result<std::size_t> writev(Process& p, int fd, std::span<const struct iovec> iov);
  // What write and writev share once the bytes are gathered: the file's write, the
  // would-block policy for a blocking description, and SIGPIPE with EPIPE.
  sys::Result<std::size_t> write_to(Process& p, int fd, OpenFile& file,
                                    std::span<const std::byte> bytes, const char* call);
  sys::Result<void> fsync(Process& p, int fd);
  sys::Result<void> ftruncate(Process& p, int fd, off_t length);
  sys::Result<struct stat> fstat(Process& p, int fd);
  sys::Result<void> flock(Process& p, int fd, int operation);
  sys::Result<std::size_t> getdents64(Process& p, int fd, void* buf, std::size_t count);
  sys::Result<sys::PipeFds> pipe2(Process& p, int flags);

  // ---- Pseudo-terminals (pty.cpp) ----
  // Opens /dev/ptmx (a new master) or /dev/pts/<n> (a slave), taking the slave as the
  // controlling terminal of a session leader that has none unless `noctty`.
  sys::Result<std::shared_ptr<OpenFile>> open_terminal(Process& p,
                                                       const std::shared_ptr<Inode>& node,
                                                       int status, bool noctty, const char* call);
  sys::Result<int> ioctl(Process& p, int fd, unsigned long request, void* arg);
  // What setsid does to the terminal: the new session has none.
  static void leave_terminal(Process& p);
  // What an exiting session leader does to its terminal's session (disassociate_ctty).
  void release_terminal_on_exit(Process& leader);
  // "/dev/pts/<n>", or empty when `p` has no controlling terminal.
  [[nodiscard]] static std::string terminal_name(const Process& p);

  // ---- Processes and signals (processes.cpp) ----
  sys::Result<pid_t> fork(Process& p);
  // The child of a vfork: made as fork makes one, with every signal blocked, and the parent
  // marked as waiting for it. The caller runs the child's body, then resume_from_vfork.
  pid_t start_vfork(Process& parent);
  // A copy of `parent` as fork(2) makes it, registered as its newest child; returns its pid.
  pid_t add_child(Process& parent);
  void resume_from_vfork(pid_t parent);
  sys::Result<pid_t> setsid(Process& p);
  sys::Result<pid_t> getsid(Process& p, pid_t pid);
  sys::Result<pid_t> getpgid(Process& p, pid_t pid);
  sys::Result<void> setpgid(Process& p, pid_t pid, pid_t pgid);
  sys::Result<sys::WaitResult> waitpid(Process& p, pid_t pid, int options);
  sys::Result<void> kill(Process& p, pid_t pid, int sig);
  sys::Result<int> pidfd_open(Process& p, pid_t pid, unsigned flags);
  sys::Result<void> pidfd_send_signal(Process& p, int pidfd, int sig, unsigned flags);
  sys::Result<void> execve(Process& p, const char* path, char* const argv[], char* const envp[]);
  sys::Result<int> prctl(Process& p, int option, unsigned long arg);
  sys::Result<void> sigaction(Process& p, int sig, const struct sigaction* act,
                              struct sigaction* old);
  sys::Result<void> sigprocmask(Process& p, int how, const sigset_t* set, sigset_t* old);
  // Delivers a signal (already permitted) to a live process, applying its disposition.
  void deliver(Process& target, int sig, pid_t sender);
  // Ends a process: closes its descriptors, reparents its children, makes it a zombie (or
  // reaps it at once when its parent does not wait) and tells the parent.
  void terminate(Process& p, int wait_status);
  [[nodiscard]] static bool may_signal(const Process& sender, const Process& target);

  // ---- Credentials (credentials.cpp) ----
  sys::Result<void> setresuid(Process& p, uid_t r, uid_t e, uid_t s, const char* call);
  sys::Result<void> setresgid(Process& p, gid_t r, gid_t e, gid_t s, const char* call);
  sys::Result<void> setuid(Process& p, uid_t uid);
  sys::Result<void> setgid(Process& p, gid_t gid);
  sys::Result<void> setgroups(Process& p, std::span<const gid_t> groups, const char* call);
  // getgrouplist's answer from the database: `group`, then each other group listing `user`.
  [[nodiscard]] std::vector<gid_t> group_list(std::string_view user, gid_t group) const;
  [[nodiscard]] std::optional<sys::Passwd> user_by_name(std::string_view name) const;
  [[nodiscard]] std::optional<sys::Passwd> user_by_uid(uid_t uid) const;
  [[nodiscard]] std::optional<sys::Group> group_by_name(std::string_view name) const;
  [[nodiscard]] std::optional<sys::Group> group_by_gid(gid_t gid) const;

  // ---- signalfd (signalfd.cpp) ----
  sys::Result<int> signalfd(Process& p, int fd, const sigset_t& mask, int flags);
  // Takes the lowest pending signal of `p` that is in `mask` off the pending set.
  std::optional<std::pair<int, SignalSource>> take_pending(Process& p, const sigset_t& mask);

  // ---- Wake-ups for epoll (epoll.cpp) ----
  // Something happened on wait queue `queue` (see OpenFile::wait_queue) with poll bits `key`
  // (0: any): edge-triggered registrations of it whose events meet `key` queue a report, as
  // Linux's ep_poll_callback does, and the epolls they belong to wake their own watchers.
  void wake(const void* queue, std::uint32_t key);

  // ---- Fake programs (programs.cpp) ----
  // `p` has just exec'd `exec` from the inode numbered `ino`: it runs the program installed
  // there from its next turn, or none (the test plays it).
  void start_program(Process& p, ino_t ino, const ExecRecord& exec);
  // Everything a waiting program may be waiting for, summed up: a program whose stamp is
  // unchanged since its last turn has nothing new to look at.
  struct ProgramStamp {
    std::uint64_t changes = 0;
    std::int64_t monotonic_ns = 0;
    std::int64_t realtime_ns = 0;
    bool operator==(const ProgramStamp&) const = default;
  };
  [[nodiscard]] ProgramStamp program_stamp() const;
  struct RunningProgram {
    // Shared so that a turn keeps its step alive while the program execs into another.
    std::shared_ptr<ProgramStep> step;
    std::string path;
    std::optional<Turn> last;  // none before its first turn
    ProgramStamp stamp;        // after its last turn
  };

  // ---- Limits and time (limits.cpp) ----
  sys::Result<struct rlimit> getrlimit(Process& p, int resource);
  sys::Result<void> setrlimit(Process& p, int resource, const struct rlimit& limit);
  sys::Result<struct timespec> clock_gettime(clockid_t clock);

  // ---- State ----
  ManualClock clock;
  WouldBlock would_block_policy = WouldBlock::kFail;
  std::string last_block_reason;
  std::deque<ForkAs> fork_script;
  std::shared_ptr<Inode> fs_root;
  std::vector<sys::Passwd> users;
  std::vector<sys::Group> groups;
  // Never erased: reaped processes stay for observation.
  std::map<pid_t, Process> processes;
  pid_t current_pid = 0;
  pid_t next_pid = 0;
  pid_t last_forked = 0;
  ino_t next_ino = 2;
  // Synthesized /proc inodes, kept so a path names the same inode each time: "1000", "1000/fd".
  std::map<std::string, std::shared_ptr<Inode>> proc_inodes;
  // Every epoll instance created, for wake(); expired ones are pruned as they are met.
  std::vector<std::weak_ptr<OpenFile>> epolls;
  // Set while the kernel is destroyed: closing descriptors then wakes nobody.
  bool shutting_down = false;
  // Socket namespaces (socket.cpp): the abstract AF_UNIX names (keyed by the socket type's
  // byte, then the name) and the TCP and UDP ports in use, each port's sockets of both
  // families in one list (what each covers decides who conflicts and who hears what).
  std::map<std::string, std::weak_ptr<OpenFile>> abstract_sockets;
  std::map<std::uint16_t, std::vector<std::weak_ptr<OpenFile>>> tcp_ports;
  std::map<std::uint16_t, std::vector<std::weak_ptr<OpenFile>>> udp_ports;
  // UDP sockets that joined a multicast group (on lo, the only device): a group reaches this
  // host while one of them is a member.
  std::vector<std::weak_ptr<OpenFile>> udp_multicast_members;
  std::uint16_t next_ephemeral_port = 32768;
  unsigned next_autobind = 0;
  // Sockets that were sent descriptors (SCM_RIGHTS), so that the kernel's end can drop what is
  // still in flight: a socket sent inside its own queue would otherwise outlive the kernel.
  std::vector<std::weak_ptr<OpenFile>> sockets_sent_rights;
  // Pseudo-terminals by index while their master is open; a new one takes the lowest free.
  std::map<int, std::weak_ptr<Pty>> ptys;
  // Fake programs: installed by inode number (never reused), running by pid.
  std::map<ino_t, FakeProgram> installed_programs;
  std::map<pid_t, RunningProgram> running_programs;
  // Counts the events a waiting program may wait for: every wake-up of a wait queue (what
  // epoll sees: bytes or room in a pipe, a last close, socket traffic, a pending signal), a
  // delivered signal and a process's end.
  std::uint64_t changes = 0;
  bool in_program_turn = false;

 private:
  void reparent_children(Process& dying);
  void reap(Process& child);
  void notify_parent(Process& child);
  void act_on(Process& target, int sig, pid_t sender);
};

// What Linux does to a regular file written or truncated by a writer without CAP_FSETID (here:
// not euid 0): set-user-ID goes, and set-group-ID too when group execute is set or the writer
// is not in the file's group.
void drop_setid_bits(const Process& writer, Inode& node);

// Drops the descriptions still in flight in sockets' queues (socket_rights.cpp).
void release_in_flight(Kernel& kernel);

// Text helper shared by the transcript and describe_fd (flag words: flags_text.h).
std::string octal(unsigned value);

}  // namespace daemonkit::fake::detail
