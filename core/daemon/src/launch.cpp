#include "daemonkit/core/daemon/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "daemon_steps.h"
#include "daemonkit/core/base/c_string_array.h"
#include "daemonkit/core/daemon/close_fds.h"
#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/core/daemon/daemon_stopper.h"
#include "daemonkit/core/daemon/log_file_rule.h"
#include "daemonkit/core/daemon/pid_file.h"
#include "daemonkit/core/status/status_reporter.h"
#include "daemonkit/core/status/terminal_text.h"
#include "launch_watcher.h"

namespace daemonkit::core {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kNotifySocketVar = "NOTIFY_SOCKET";
constexpr std::string_view kStatusFdVar = "DAEMONKIT_STATUS_FD";
constexpr std::string_view kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// The exec, prepared in full before the first fork: the daemon runs in the launcher's memory
// (see "The launch" below) and should do no more there than it must.
struct ExecTarget {
  std::vector<std::string> candidates;  // the paths to try, in order (PATH searched as execvp)
  std::vector<char*> argv;
  std::vector<char*> envp;
};

// Everything the daemon needs, computed in the launcher before the first fork.
struct Plan {
  std::string program;    // PROGRAM as typed, for messages
  std::string exec_path;  // PROGRAM made absolute when it is a relative path
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<std::string> path_dirs;  // where to look for PROGRAM when it has no '/'
  std::string pidfile;                 // absolute, or empty
  std::string logfile;                 // absolute, or empty
  std::optional<std::string> chroot;
  std::string rundir;
  std::optional<mode_t> umask;
  PrivilegePlan privileges;
  uid_t program_uid = 0;  // the user PROGRAM runs as: --uid's, else the launcher's euid
  ReadyMode ready = ReadyMode::kExec;
  std::string name;  // the launcher's, for the daemon's log lines
};

std::string absolute(const std::string& cwd, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return cwd == "/" ? "/" + path : cwd + "/" + path;
}

bool has_key(const std::string& entry, std::string_view key) {
  return entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 &&
         entry[key.size()] == '=';
}

// The pointers refer into `plan`, which must not change afterwards.
ExecTarget prepare_exec(Plan& plan) {
  ExecTarget target;
  if (plan.program.find('/') != std::string::npos) {
    target.candidates.push_back(plan.exec_path);
  } else {
    for (const std::string& dir : plan.path_dirs) {
      target.candidates.push_back((dir.empty() ? "." : dir) + "/" + plan.program);
    }
  }
  target.argv = c_string_array(plan.args);
  target.envp = c_string_array(plan.env);
  return target;
}

// Runs PROGRAM in place of this process, trying each candidate as execvp does. Returns only
// on failure, with the error worth reporting: EACCES if some candidate was not executable,
// else the last error.
StepError exec_program(sys::Syscalls& os, const std::string& program, const ExecTarget& target) {
  sys::Error error{ENOENT, "execve", {}};
  bool denied = false;
  for (const std::string& candidate : target.candidates) {
    auto done = os.execve(candidate.c_str(), target.argv.data(), target.envp.data());
    if (done) continue;
    error = done.error();
    if (error.code == EACCES) denied = true;
    if (error.code != ENOENT && error.code != ENOTDIR && error.code != EACCES &&
        error.code != ESTALE && error.code != ENODEV && error.code != ETIMEDOUT) {
      break;
    }
  }
  if (denied && (error.code == ENOENT || error.code == ENOTDIR)) error.code = EACCES;
  return StepError::from(StepKind::kExec, fmt::format("exec {}", program), error);
}

// Opens the log file for PROGRAM, whose user may control the directory it is in: the last
// component is never followed if it is a symbolic link, and what was opened must pass
// log_file_refusal (judged on the descriptor, so nothing can be swapped in after the check).
// O_NONBLOCK so that opening never waits: a FIFO nobody reads fails with ENXIO at once, where
// a blocking open would sleep until a reader came, holding the launcher (asleep in vfork until
// the daemon execs) past any --timeout and deaf to signals. PROGRAM gets the descriptor
// blocking again.
StepResult<int> open_log(sys::Syscalls& os, const std::string& logfile, uid_t program_uid) {
  auto log =
      os.open(logfile.c_str(),
              O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW, 0666);
  if (!log) {
    // O_NOFOLLOW says ELOOP for a final symlink; the same errno for a loop further up the
    // path is told apart by looking at the last component itself.
    if (log.error().code == ELOOP) {
      if (auto last = os.lstat(logfile.c_str()); last && S_ISLNK(last->st_mode)) {
        return step_failed(StepError::plain(
            StepKind::kStdio, fmt::format("--logfile {} {}", logfile, log_file_symlink_refusal())));
      }
    }
    return step_failed(StepError::from(StepKind::kStdio, call_on("open", logfile), log.error()));
  }
  auto refuse = [&](StepError error) -> StepResult<int> {
    (void)os.close(*log);
    return step_failed(std::move(error));
  };
  auto opened = os.fstat(*log);
  if (!opened)
    return refuse(StepError::from(StepKind::kStdio, call_on("fstat", logfile), opened.error()));
  if (auto refusal = log_file_refusal(*opened, program_uid)) {
    return refuse(
        StepError::plain(StepKind::kStdio, fmt::format("--logfile {} {}", logfile, *refusal)));
  }
  auto flags = os.fcntl(*log, F_GETFL, 0);
  if (flags) flags = os.fcntl(*log, F_SETFL, *flags & ~O_NONBLOCK);
  if (!flags)
    return refuse(StepError::from(StepKind::kStdio, call_on("fcntl", logfile), flags.error()));
  return *log;
}

// Points 1 and 2 at the log file, opened with the umask already set and before chroot and
// privilege drop; the rest as redirect_stdio says (`null_for_unset`: /dev/null).
StepResult<void> redirect_to_log(sys::Syscalls& os, const std::string& logfile, uid_t program_uid,
                                 bool null_for_unset) {
  std::optional<int> log;
  if (!logfile.empty()) {
    auto opened = open_log(os, logfile, program_uid);
    if (!opened) return step_failed(opened.error());
    log = *opened;
  }
  // reserve_stdio made sure the log is not one of 0-2.
  auto done = detail::redirect_stdio(os, {std::nullopt, log, log}, null_for_unset);
  if (log) (void)os.close(*log);
  return done;
}

// ---- The launch: launcher, intermediate, daemon --------------------------------------------
// Both children are made with vfork: each borrows its parent's memory, on a stack of its own,
// while the parent sleeps until the child execs or ends. Nothing is copied and nothing torn
// down, which is most of what a fork of this C++ process costs over a small C program's
// (bench/launch). Sharing is sound because the launcher has one thread, so nothing else runs
// in the memory while a child does, and because a child runs on its own stack, ending by exec
// or by leaving its body, never by returning into the launcher's frames.
// The price: until the daemon has exec'd, the launcher can neither act nor take a signal (it
// blocks them all across vfork), so no step of the daemon's may wait on the world. That is
// why the log file, which may be a FIFO, is opened with O_NONBLOCK.
// The sharing also tells the launcher the daemon's pid, which only the intermediate's vfork
// returns: the intermediate stores it in a variable of the launcher's before it exits. No
// race is possible: the launcher sleeps until the intermediate has ended, and the store is in
// the same memory the launcher then reads (the compiler reloads it: its address escaped into
// the vfork'd body). Once the intermediate is gone, the daemon is the launcher's child (its
// subreaper's), so that pid names the daemon until the launcher reaps it, and may be signalled.

// ---- The daemon ------------------------------------------------------------------------------
// It runs in the launcher's memory, which it may use as the launcher would: nobody else runs
// there meanwhile. It allocates only to put words to what it did (a failure, the privilege
// change it logs), and a failure ends it by returning, not by exit_now, so that everything it
// allocated is freed on the way out rather than left in the launcher's heap.

// Reports the failure and gives the daemon's exit status.
// The report goes through StatusReporter, as DaemonContext's does: with SIGPIPE ignored around
// the write, so a launcher that is gone cannot kill the daemon before it has logged why.
int daemon_fail(sys::Syscalls& os, const Plan& plan, int status_fd, const StepError& error,
                bool stdio_redirected) {
  StatusReporter reporter(os, status_fd);
  (void)reporter.fail(error.message);
  if (stdio_redirected) {
    // The log file keeps the reason too, for whoever reads it later.
    print(os, 2, fmt::format("{}: {}\n", plan.name, error.message));
  }
  return 1;
}

// Lines core logs in the daemon ("set uid/gid 65534/65534") go to the log file, once stderr is it.
LogSink daemon_log(sys::Syscalls& os, const Plan& plan) {
  return [&os, &plan](std::string_view line) {
    print(os, 2, fmt::format("{}: {}\n", plan.name, line));
  };
}

// Returns only if PROGRAM could not be exec'd, with the daemon's exit status.
int daemon_main(sys::Syscalls& os, const Plan& plan, const ExecTarget& target, int status_fd,
                PidFile* pid_file) {
  // 0, 1 and 2 are replaced below, not closed: closed, the next opens would land on them.
  const std::array<int, 6> keep{0,
                                1,
                                2,
                                status_fd,
                                pid_file != nullptr ? pid_file->fd() : -1,
                                pid_file != nullptr ? pid_file->write_fd() : -1};
  if (auto closed = close_inherited_fds(os, keep); !closed) {
    return daemon_fail(
        os, plan, status_fd,
        StepError::from(StepKind::kCloseFds, "closing inherited descriptors", closed.error()),
        false);
  }
  if (auto done = detail::reset_signals(os); !done) {
    return daemon_fail(os, plan, status_fd, done.error(), false);
  }
  if (plan.umask) (void)os.umask(*plan.umask);
  if (auto done = redirect_to_log(os, plan.logfile, plan.program_uid, true); !done) {
    return daemon_fail(os, plan, status_fd, done.error(), false);
  }
  if (auto done = detail::enter_directories(os, plan.chroot, plan.rundir); !done) {
    return daemon_fail(os, plan, status_fd, done.error(), true);
  }
  if (pid_file != nullptr) {
    // Written before readiness is reported, so a service manager reading PIDFile= after the
    // launcher exits never races it.
    auto written = pid_file->write_pid(os.getpid());
    if (written) written = pid_file->keep_across_exec();
    if (!written) return daemon_fail(os, plan, status_fd, written.error(), true);
  }
  if (auto done = shed_privileges(os, plan.privileges, daemon_log(os, plan)); !done) {
    return daemon_fail(os, plan, status_fd, done.error(), true);
  }
  if (plan.ready == ReadyMode::kPipe) {
    // PROGRAM reports on this end itself; its number is already in DAEMONKIT_STATUS_FD.
    auto flags = os.fcntl(status_fd, F_GETFD, 0);
    if (flags) flags = os.fcntl(status_fd, F_SETFD, *flags & ~FD_CLOEXEC);
    if (!flags) {
      return daemon_fail(
          os, plan, status_fd,
          StepError::from(StepKind::kStatusPipe, "fcntl(status pipe)", flags.error()), true);
    }
  }
  return daemon_fail(os, plan, status_fd, exec_program(os, plan.program, target), true);
}

// ---- The intermediate process ---------------------------------------------------------------
// ASYNC-SIGNAL-SAFE REGION: from its start until it exits, only async-signal-safe calls and no
// allocation (the failure text is built in a stack buffer).

void append(char* buffer, std::size_t& used, std::size_t size, const char* text) {
  while (*text != '\0' && used + 1 < size) buffer[used++] = *text++;
}

[[noreturn]] void intermediate_fail(sys::Syscalls& os, int status_fd, const char* step, int error) {
  char buffer[100];
  std::size_t used = 0;
  append(buffer, used, sizeof buffer, "1 ");
  append(buffer, used, sizeof buffer, step);
  append(buffer, used, sizeof buffer, ": ");
  const char* description = strerrordesc_np(error);
  const char* name = strerrorname_np(error);
  append(buffer, used, sizeof buffer, description != nullptr ? description : "unknown error");
  append(buffer, used, sizeof buffer, " (");
  append(buffer, used, sizeof buffer, name != nullptr ? name : "E?");
  append(buffer, used, sizeof buffer, ")");
  (void)os.write(status_fd, buffer, used);
  os.exit_now(1);
  std::abort();  // GCC cannot see [[noreturn]] through the virtual call.
}

// Leaves the caller's session, so that the daemon, its child and no session leader, can never
// acquire a controlling terminal; then makes the daemon and ends once it has exec'd or failed.
// Its pid goes to `daemon_pid`, the launcher's (see "The launch" above).
[[noreturn]] void intermediate_main(sys::Syscalls& os, const Plan& plan, const ExecTarget& target,
                                    int status_fd, PidFile* pid_file, pid_t* daemon_pid) {
  if (auto sid = os.setsid(); !sid) intermediate_fail(os, status_fd, "setsid", sid.error().code);
  auto daemon = os.vfork([&] { return daemon_main(os, plan, target, status_fd, pid_file); });
  if (!daemon) intermediate_fail(os, status_fd, "vfork", daemon.error().code);
  *daemon_pid = *daemon;
  os.exit_now(0);
  std::abort();  // GCC cannot see [[noreturn]] through the virtual call.
}
// ---- End of the async-signal-safe region ----------------------------------------------------

LaunchReport failure(std::string notes, StepError error) {
  return LaunchReport{std::move(notes), std::move(error)};
}

// systemd's socket activation (sd_listen_fds(3)): descriptors 3 to 3+N-1 are passed sockets,
// N in LISTEN_FDS, when LISTEN_PID names the process that reads them. Under --nodaemon that is
// this process, whose pid PROGRAM keeps. Returns N, or 0 when the sockets are not ours.
constexpr int kListenFdsStart = 3;

std::optional<long> decimal(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

int socket_activation_fds(const std::vector<std::string>& env, pid_t self) {
  std::optional<long> pid;
  std::optional<long> count;
  for (const std::string& entry : env) {
    if (has_key(entry, "LISTEN_PID")) pid = decimal(std::string_view(entry).substr(11));
    if (has_key(entry, "LISTEN_FDS")) count = decimal(std::string_view(entry).substr(11));
  }
  if (!pid || *pid != self || !count) return 0;
  return static_cast<int>(*count);
}

// The processes of a launch, as the launcher knows them once the intermediate has ended.
struct Launched {
  pid_t intermediate;  // also the process group the daemon was started in
  pid_t daemon;        // 0 if the intermediate made none
  bool daemon_reaped;
};

// A launch that failed once the daemon may exist: the daemon is stopped if the verdict asks
// for it, and the PID file given up only when the daemon is known to be gone, and then only
// if no process it left behind still holds the lock. What was sent to it is told.
LaunchReport give_up(sys::Syscalls& os, std::string notes, const LaunchFailed& failed,
                     const Launched& launched, std::optional<PidFile>& pid_file) {
  std::string message = failed.message;
  bool gone = true;
  if (failed.stop_daemon) {
    // The intermediate's setsid made a process group named by its pid; the daemon, and so
    // PROGRAM unless it moved itself, is in it, and the id cannot be reused while a member
    // lives. The daemon itself is reached through a pidfd, wherever it went.
    const DaemonStop stop =
        stop_daemon(os, launched.daemon_reaped ? 0 : launched.daemon, launched.intermediate);
    if (!failed.reported || stop.sent_kill || !stop.gone) message += describe_stop(stop);
    gone = stop.gone;
  }
  if (pid_file) {
    if (!gone) {
      // Our descriptor closes as the launcher exits; the daemon's keeps the lock.
      message += fmt::format("; kept the PID file {}", pid_file->path());
    } else if (auto released = release_unless_locked(
                   os, std::move(*pid_file),
                   // A process lets go of the lock only as it exits, a moment after its other
                   // ends close or after it was signalled (a daemon whose step failed may not
                   // have closed the lock's descriptor when its report is read).
                   kLaunchKillWait);
               !released) {
      message += "; " + released.error().message;
    }
    pid_file.reset();
  }
  return failure(std::move(notes), StepError::plain(StepKind::kOptions, message));
}

// --nodaemon: the options applied to this very process, then exec. Only returns on failure.
LaunchReport run_in_place(sys::Syscalls& os, Plan& plan, std::string notes) {
  std::optional<PidFile> pid_file;
  if (!plan.pidfile.empty()) {
    auto acquired = PidFile::acquire(os, plan.pidfile, [&](std::string_view line) {
      notes += line;
      notes += '\n';
    });
    if (!acquired) return failure(std::move(notes), acquired.error());
    pid_file = std::move(*acquired);
  }
  // PROGRAM inherits what a daemon would: stdio, the PID file and the sockets systemd passed,
  // none of what the caller left open (files root opened, a terminal, another service's
  // socket), which PROGRAM, maybe running as another user, has no business holding.
  std::vector<int> keep{0, 1, 2};
  if (pid_file) {
    keep.push_back(pid_file->fd());
    // The writer stays until write_pid below has used it and closed it.
    if (pid_file->write_fd() >= 0) keep.push_back(pid_file->write_fd());
  }
  const int sockets = socket_activation_fds(plan.env, os.getpid());
  if (static_cast<std::size_t>(sockets) + keep.size() > kMaxPreservedFds) {
    if (pid_file) pid_file->release();
    return failure(std::move(notes),
                   StepError::plain(StepKind::kCloseFds,
                                    fmt::format("LISTEN_FDS={}: more descriptors than daemonkit "
                                                "can keep open (at most {})",
                                                sockets, kMaxPreservedFds - keep.size())));
  }
  for (int fd = kListenFdsStart; fd < kListenFdsStart + sockets; ++fd) keep.push_back(fd);
  if (auto closed = close_inherited_fds(os, keep); !closed) {
    if (pid_file) pid_file->release();
    return failure(
        std::move(notes),
        StepError::from(StepKind::kCloseFds, "closing inherited descriptors", closed.error()));
  }
  // Errors after the log file took stdout and stderr still belong on the caller's stderr.
  auto saved_stderr = os.fcntl(2, F_DUPFD_CLOEXEC, 3);
  auto fail = [&](StepError error) -> LaunchReport {
    if (pid_file) pid_file->release();
    LaunchReport report = failure(std::move(notes), std::move(error));
    if (saved_stderr) report.error_fd = *saved_stderr;
    return report;
  };
  if (!notes.empty()) {
    print(os, 2, notes);
    notes.clear();
  }
  if (plan.umask) (void)os.umask(*plan.umask);
  if (!plan.logfile.empty()) {
    if (auto done = redirect_to_log(os, plan.logfile, plan.program_uid, false); !done) {
      return fail(done.error());
    }
  }
  if (auto done = detail::enter_directories(os, plan.chroot, plan.rundir); !done) {
    return fail(done.error());
  }
  if (pid_file) {
    auto written = pid_file->write_pid(os.getpid());
    if (written) written = pid_file->keep_across_exec();
    if (!written) return fail(written.error());
  }
  if (auto done = shed_privileges(os, plan.privileges, daemon_log(os, plan)); !done) {
    return fail(done.error());
  }
  return fail(exec_program(os, plan.program, prepare_exec(plan)));
}

}  // namespace

LaunchReport launch(sys::Syscalls& os, const LaunchOptions& options) {
  const std::vector<std::string>& environment = options.environment;
  std::string notes;  // lines for the user's stderr that are not failures
  (void)reserve_stdio(os);
  if (options.command.empty()) {
    return failure(notes, StepError::plain(StepKind::kOptions, "no program to run"));
  }

  Plan plan;
  plan.program = options.command.front();
  plan.args = options.command;
  if (!options.chroot.empty()) plan.chroot = options.chroot;
  plan.rundir = options.rundir;
  plan.umask = options.umask;
  plan.ready = options.ready;
  plan.name = options.name;
  auto cwd = os.getcwd();
  if (!cwd) {
    return failure(notes, StepError::from(StepKind::kOptions, "getcwd", cwd.error()));
  }
  plan.pidfile = absolute(cwd.value_or("/"), options.pidfile);
  // `daemonkit run -- ./server` means the server here, not in --rundir; inside a --chroot the
  // path can only mean something relative to the new root.
  plan.exec_path = !plan.chroot && plan.program.find('/') != std::string::npos
                       ? absolute(cwd.value_or("/"), plan.program)
                       : plan.program;
  plan.logfile = absolute(cwd.value_or("/"), options.logfile);
  auto privileges = resolve_privileges(os, options.privileges);
  if (!privileges) return failure(notes, privileges.error());
  plan.privileges = *privileges;
  if (plan.privileges.uid) {
    plan.program_uid = *plan.privileges.uid;
  } else {
    auto ids = os.getresuid();
    if (!ids)
      return failure(notes, StepError::from(StepKind::kPrivileges, "getresuid", ids.error()));
    plan.program_uid = ids->effective;
  }

  std::string path_var(kDefaultPath);
  for (const std::string& entry : environment) {
    if (has_key(entry, "PATH")) path_var = entry.substr(5);
  }
  for (std::size_t start = 0;;) {
    const std::size_t colon = path_var.find(':', start);
    plan.path_dirs.push_back(path_var.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }

  if (!options.detach) {
    // A service manager's NOTIFY_SOCKET reaches PROGRAM untouched.
    plan.env = environment;
    return run_in_place(os, plan, std::move(notes));
  }
  for (const std::string& entry : environment) {
    if (!has_key(entry, kNotifySocketVar) && !has_key(entry, kStatusFdVar))
      plan.env.push_back(entry);
  }

  std::optional<PidFile> pid_file;
  if (!plan.pidfile.empty()) {
    auto acquired = PidFile::acquire(os, plan.pidfile, [&](std::string_view line) {
      notes += line;
      notes += '\n';
    });
    if (!acquired) return failure(notes, acquired.error());
    pid_file = std::move(*acquired);
  }
  auto fail = [&](StepError error) {
    if (pid_file) pid_file->release();
    return failure(notes, error);
  };

  detail::NotifySocket notify;
  if (plan.ready == ReadyMode::kNotify) {
    auto opened = detail::open_notify_socket(os);
    if (!opened) {
      return fail(StepError::from(StepKind::kReadiness,
                                  fmt::format("notify socket: {}", opened.error().call),
                                  opened.error()));
    }
    notify = *opened;
    plan.env.push_back(fmt::format("{}={}", kNotifySocketVar, notify.address));
  }
  auto pipe = os.pipe2(O_CLOEXEC);
  if (!pipe) return fail(StepError::from(StepKind::kStatusPipe, "pipe2", pipe.error()));
  if (plan.ready == ReadyMode::kPipe) {
    // The descriptor keeps its number in the daemon (only others are closed around it).
    plan.env.push_back(fmt::format("{}={}", kStatusFdVar, pipe->write_end));
  }
  // A SIGCHLD ignored (SIG_IGN, or SA_NOCLDWAIT), as some shells and supervisors leave it for
  // what they start, would have the kernel reap our children as they die: no zombie, no
  // SIGCHLD, so the launcher would neither learn of the daemon's death nor how it died. The
  // default is what it depends on, set before there is any child; the daemon resets every
  // disposition anyway before PROGRAM runs.
  struct sigaction child_default {};
  child_default.sa_handler = SIG_DFL;
  sigemptyset(&child_default.sa_mask);
  if (auto reset = os.sigaction(SIGCHLD, &child_default, nullptr); !reset) {
    return fail(StepError::from(StepKind::kSignals, "sigaction(SIGCHLD)", reset.error()));
  }
  // SIGCHLD through a signalfd, so the daemon's death wakes the same poll as its words. It is
  // blocked before the fork, so none is lost before the signalfd exists (a blocked signal
  // waits, pending, for it); the daemon unblocks it again before exec.
  sigset_t child_signal;
  sigemptyset(&child_signal);
  sigaddset(&child_signal, SIGCHLD);
  if (auto blocked = os.sigprocmask(SIG_BLOCK, &child_signal, nullptr); !blocked) {
    return fail(StepError::from(StepKind::kSignals, "sigprocmask", blocked.error()));
  }
  // As the daemon's subreaper the launcher can wait for it, and so say how it died.
  if (auto reaper = os.prctl(PR_SET_CHILD_SUBREAPER, 1); !reaper) {
    return fail(
        StepError::from(StepKind::kDetach, "prctl(PR_SET_CHILD_SUBREAPER)", reaper.error()));
  }

  const ExecTarget target = prepare_exec(plan);
  PidFile* const daemon_pid_file = pid_file ? &*pid_file : nullptr;
  pid_t daemon_pid = 0;  // the intermediate writes it (see "The launch")
  const int pid_file_writer = pid_file ? pid_file->write_fd() : -1;
  // Returns once the intermediate has ended, by which time the daemon has exec'd PROGRAM or
  // written why it could not.
  auto child = os.vfork([&]() -> int {
    (void)os.close(pipe->read_end);
    intermediate_main(os, plan, target, pipe->write_end, daemon_pid_file, &daemon_pid);
  });
  if (!child) return fail(StepError::from(StepKind::kDetach, "vfork", child.error()));
  // The daemon wrote the pid through its copy of the writing descriptor; ours goes too.
  if (pid_file) pid_file->close_writer(pid_file_writer);

  // The launcher never keeps a write end: with it open, a dead daemon would never read as EOF.
  (void)os.close(pipe->write_end);
  auto signal_fd = os.signalfd(-1, child_signal, SFD_CLOEXEC | SFD_NONBLOCK);
  if (!signal_fd) {
    // Without it the launcher cannot learn of the daemon's death; it must not guess.
    (void)os.close(pipe->read_end);
    if (notify.fd >= 0) (void)os.close(notify.fd);
    return give_up(
        os, std::move(notes),
        LaunchFailed{StepError::from(StepKind::kSignals, "signalfd", signal_fd.error()).message,
                     true},
        {*child, daemon_pid, false}, pid_file);
  }
  if (auto flags = os.fcntl(pipe->read_end, F_GETFL, 0); flags) {
    (void)os.fcntl(pipe->read_end, F_SETFL, *flags | O_NONBLOCK);
  }
  ReadinessWaiter waiter(plan.ready, plan.program, options.timeout);
  // The intermediate never execs, so it has ended by the time vfork returns: how it ended is
  // known before the pipe is read, and the closed pipe of one killed before it made the daemon
  // is not taken for PROGRAM's exec.
  if (auto ended = os.waitpid(*child, 0); ended) (void)waiter.on_intermediate_exit(ended->status);
  detail::LaunchWatcher launcher(os, waiter, pipe->read_end, notify.fd, *signal_fd, *child,
                                 daemon_pid);
  const LaunchOutcome outcome = launcher.wait();
  (void)os.close(pipe->read_end);
  if (notify.fd >= 0) (void)os.close(notify.fd);
  (void)os.close(*signal_fd);

  if (const auto* failed = std::get_if<LaunchFailed>(&outcome)) {
    return give_up(os, std::move(notes), *failed, {*child, daemon_pid, launcher.daemon_reaped()},
                   pid_file);
  }
  // The daemon's copy of the PID file keeps the lock; ours closes when the launcher exits.
  return LaunchReport{notes, std::nullopt};
}

}  // namespace daemonkit::core
