#include "daemonkit/core/daemon/daemon_context.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

#include "daemon_steps.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/write_text.h"
#include "daemonkit/core/daemon/close_fds.h"
#include "daemonkit/core/daemon/thread_count.h"
#include "status_link.h"

namespace daemonkit::core {
namespace {

constexpr mode_t kDaemonUmask = 077;

// exit_now is [[noreturn]], but a virtual call does not tell the compiler so.
[[noreturn]] void end_process(sys::Syscalls& os, int status) {
  os.exit_now(status);
  std::abort();
}

}  // namespace

std::vector<SignalMapping> default_signal_map() {
  return {{SIGTSTP, SignalDisposition::kIgnore},
          {SIGTTIN, SignalDisposition::kIgnore},
          {SIGTTOU, SignalDisposition::kIgnore},
          {SIGTERM, SignalDisposition::kStop}};
}

sys::Result<int> reserve_stdio(sys::Syscalls& os) {
  int filled = 0;
  for (int fd = 0; fd <= 2; ++fd) {
    auto flags = os.fcntl(fd, F_GETFD, 0);
    if (flags) continue;
    if (flags.error().code != EBADF) return sys::fail(flags.error());
    // The lowest free number is `fd` itself: every lower one is open by now.
    auto null_fd = os.open("/dev/null", O_RDWR, 0);
    if (!null_fd) return sys::fail(null_fd.error().about("/dev/null"));
    ++filled;
  }
  return filled;
}

void exit_with_error(sys::Syscalls& os, const StepError& error) {
  std::string text = error.message;
  if (text.empty() || text.back() != '\n') text += '\n';
  write_text(os, 2, text);
  end_process(os, 1);
}

DaemonContext::DaemonContext(sys::Syscalls& os, DaemonOptions options, Environment env, LogSink log)
    : os_(os), options_(std::move(options)), env_(std::move(env)), log_(std::move(log)) {}

StepResult<void> DaemonContext::open() {
  if (auto prepared = prepare(); !prepared) return prepared;
  if (!detached_) return run_daemon();

  auto child = os_.fork();
  if (!child) {
    const StepError error = StepError::from(StepKind::kDetach, "fork", child.error());
    if (pidfile_) pidfile_->release();
    (void)os_.close(status_read_);
    (void)os_.close(status_write_);
    return step_failed(error);
  }
  if (*child != 0) run_first_parent(*child);
  run_intermediate();
  if (auto daemon = run_daemon(); !daemon) exit_daemon_failed(daemon.error());
  return {};
}

StepResult<void> DaemonContext::prepare() {
  const DetachDecision decision = options_.detach_process
                                      ? DetachDecision{*options_.detach_process, "asked to"}
                                      : decide_detach(os_, env_);
  detached_ = decision.detach;
  if (!options_.detach_process) {
    log_line(log_, fmt::format("{}: {}", detached_ ? "daemonizing" : "staying in the foreground",
                               decision.reason));
  }

  if (detached_) {
    // A standard descriptor closed at launch would receive the next file opened, our PID file
    // or status pipe included, and stdio redirection would then clobber it (twistd's H4).
    if (auto filled = reserve_stdio(os_); !filled) {
      return step_failed(StepError::from(StepKind::kStdio, "open(/dev/null)", filled.error()));
    }
    // Standard descriptors the caller keeps on purpose would be pointed at /dev/null.
    const std::optional<int> redirected[3] = {options_.stdin_fd, options_.stdout_fd,
                                              options_.stderr_fd};
    for (int fd : options_.files_preserve) {
      if (fd >= 0 && fd <= 2 && !redirected[fd]) {
        return step_failed(StepError::plain(
            StepKind::kOptions,
            fmt::format("files_preserve names fd {}, which daemonizing points at /dev/null; "
                        "call reserve_stdio() first so files land above 2, or pass it as "
                        "{}",
                        fd,
                        fd == 0   ? "stdin"
                        : fd == 1 ? "stdout"
                                  : "stderr")));
      }
    }
    if (options_.files_preserve.size() + 5 > kMaxPreservedFds) {
      return step_failed(StepError::plain(
          StepKind::kOptions,
          fmt::format("files_preserve names more than {} descriptors", kMaxPreservedFds - 5)));
    }
    auto threads = count_threads(os_);
    if (!threads) {
      log_line(log_, fmt::format("cannot count threads ({}); assuming one",
                                 sys::to_string(threads.error())));
    } else if (*threads > 1) {
      return step_failed(StepError::plain(
          StepKind::kDetach,
          fmt::format("Refusing to daemonize a process with {} threads: fork() keeps "
                      "only the calling one, and locks the others hold stay locked in "
                      "the daemon. Daemonize before starting threads.",
                      *threads)));
    }
  }

  auto plan = resolve_privileges(os_, options_.privileges);
  if (!plan) return step_failed(plan.error());
  // The supplementary groups come from the host's database here, before any fork or chroot,
  // so a chrooted daemon gets the user's real groups without a database inside the new root.
  plan_ = std::move(*plan);

  if (options_.pidfile) {
    auto acquired = PidFile::acquire(os_, *options_.pidfile, log_, options_.pidfile_options);
    if (!acquired) return step_failed(acquired.error());
    pidfile_.emplace(std::move(*acquired));
  }

  if (detached_) {
    if (options_.before_detach) options_.before_detach();
    auto pipe = os_.pipe2(O_CLOEXEC);
    if (!pipe) {
      if (pidfile_) pidfile_->release();
      return step_failed(StepError::from(StepKind::kStatusPipe, "pipe2", pipe.error()));
    }
    status_read_ = pipe->read_end;
    status_write_ = pipe->write_end;
  }
  return {};
}

void DaemonContext::run_first_parent(pid_t intermediate) {
  // wait_for_daemon closes our copy of the write end first, or EOF would never come when the
  // daemon dies without a word (twistd's H1, twisted#7745).
  std::optional<std::chrono::milliseconds> timeout;
  if (options_.start_timeout_ms) timeout = std::chrono::milliseconds(*options_.start_timeout_ms);
  const DaemonVerdict verdict =
      wait_for_daemon(os_, status_read_, status_write_, intermediate, timeout);
  // On failure no PID file may remain. We share the locked description with the daemon, so
  // nobody else can have taken the file over; on a timeout the daemon may still be starting
  // and keeps its file.
  if (verdict.exit.code != 0 && pidfile_ && !verdict.timed_out) pidfile_->release();
  if (!verdict.exit.stderr_text.empty()) write_text(os_, 2, verdict.exit.stderr_text);
  end_process(os_, verdict.exit.code);
}

// ---- The intermediate process: between fork and _exit. ---------------------------------------
// Only async-signal-safe calls and no allocation from here to finish_intermediate(): the step
// that failed travels in the exit status (see status_link.h), not as formatted text.
void DaemonContext::run_intermediate() {
  if (auto session = os_.setsid(); !session) os_.exit_now(session.error().code & 0x7f);
  auto child = os_.fork();
  if (!child) os_.exit_now(kIntermediateForkFailed | (child.error().code & 0x7f));
  if (*child != 0) finish_intermediate();
}

void DaemonContext::finish_intermediate() { end_process(os_, 0); }
// ---- End of the intermediate's region. -------------------------------------------------------

// The daemon is a single-threaded process (prepare() refused more), so it may allocate freely
// after the second fork.
StepResult<void> DaemonContext::run_daemon() {
  // The read end is the first parent's: the daemon drops its copy at once, so no way out of the
  // start keeps it (close_inherited would, but only a start that gets that far). The number
  // stays in status_read_, which in the fake kernel is also the first parent's.
  if (detached_ && status_read_ >= 0) (void)os_.close(status_read_);
  if (pidfile_) own_pidfile_.emplace(pidfile_->forked_copy());
  Readiness::Options readiness;
  readiness.status_fd = status_write_;
  // In the foreground under a launcher that did the forks (`daemonkit run --ready=pipe`), the
  // launcher's pipe carries the report instead of our own.
  if (!detached_ && readiness.status_fd < 0) {
    readiness.status_fd = env_.launcher_status_fd(os_).value_or(-1);
  }
  readiness.notify_socket = env_.notify_socket;
  if (detached_ && env_.notify_socket) readiness.main_pid = os_.getpid();
  readiness.log = log_;
  readiness_.emplace(os_, std::move(readiness));

  // The stop signalfd is this function's until the start has succeeded, so a later step's
  // failure closes it (a foreground caller lives on after the error); then close() owns it.
  OwnedFd stop;
  auto step = [&]() -> StepResult<void> {
    if (detached_) {
      if (auto done = redirect_stdio(); !done) return done;
      if (auto done = close_inherited(); !done) return done;
      if (options_.after_detach) {
        if (auto done = options_.after_detach(); !done) return done;
      }
    } else {
      if (auto done = redirect_stdio(); !done) return done;
    }
    if (auto done = set_signals(); !done) return done;
    stop = OwnedFd(os_, std::exchange(stop_fd_, -1));
    if (options_.umask) {
      (void)os_.umask(*options_.umask);
    } else if (detached_) {
      (void)os_.umask(kDaemonUmask);
    }
    if (auto done = enter_directories(); !done) return done;
    if (options_.prevent_core) {
      const struct rlimit none { 0, 0 };
      if (auto done = os_.setrlimit(RLIMIT_CORE, none); !done) {
        return step_failed(
            StepError::from(StepKind::kCoreDumps, "setrlimit(RLIMIT_CORE)", done.error()));
      }
    }
    if (own_pidfile_) {
      if (auto done = own_pidfile_->write_pid(os_.getpid()); !done) return done;
      if (options_.pidfile_survives_exec) {
        if (auto done = own_pidfile_->keep_across_exec(); !done) return done;
      }
    }
    if (options_.privileged_start) {
      if (auto done = options_.privileged_start(); !done) return done;
    }
    return shed_privileges(os_, plan_, log_);
  }();
  if (!step && !detached_) {
    if (own_pidfile_) own_pidfile_->release();
    (void)readiness_->fail(step.error());
  }
  if (step) stop_fd_ = stop.release();
  return step;
}

StepResult<void> DaemonContext::redirect_stdio() {
  return detail::redirect_stdio(os_, {options_.stdin_fd, options_.stdout_fd, options_.stderr_fd},
                                detached_);
}

StepResult<void> DaemonContext::close_inherited() {
  std::vector<int> keep = {0, 1, 2};
  keep.insert(keep.end(), options_.files_preserve.begin(), options_.files_preserve.end());
  if (own_pidfile_) {
    keep.push_back(own_pidfile_->fd());
    if (own_pidfile_->write_fd() >= 0) keep.push_back(own_pidfile_->write_fd());
  }
  if (status_write_ >= 0) keep.push_back(status_write_);
  auto closed = close_inherited_fds(os_, keep);
  if (!closed) {
    return step_failed(StepError::from(StepKind::kCloseFds, "close_range", closed.error()));
  }
  // The read end of the status pipe went with the rest (twistd leaks it: H6).
  if (closed->strategy != CloseFdsStrategy::kCloseRange) {
    log_line(log_, describe(*closed));
  }
  return {};
}

StepResult<void> DaemonContext::set_signals() {
  if (detached_) {
    if (auto done = detail::reset_signals(os_); !done) return done;
  }
  sigset_t stop_set;
  sigemptyset(&stop_set);
  bool any_stop = false;
  for (const SignalMapping& mapping : options_.signal_map) {
    struct sigaction action {};
    sigemptyset(&action.sa_mask);
    switch (mapping.disposition) {
      case SignalDisposition::kDefault:
        action.sa_handler = SIG_DFL;
        break;
      case SignalDisposition::kIgnore:
        action.sa_handler = SIG_IGN;
        break;
      case SignalDisposition::kStop:
        sigaddset(&stop_set, mapping.signal);
        any_stop = true;
        continue;
    }
    if (auto done = os_.sigaction(mapping.signal, &action, nullptr); !done) {
      return step_failed(StepError::from(
          StepKind::kSignals, fmt::format("sigaction({})", mapping.signal), done.error()));
    }
  }
  if (any_stop) {
    if (auto done = os_.sigprocmask(SIG_BLOCK, &stop_set, nullptr); !done) {
      return step_failed(StepError::from(StepKind::kSignals, "sigprocmask", done.error()));
    }
    auto fd = os_.signalfd(-1, stop_set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (!fd) return step_failed(StepError::from(StepKind::kSignals, "signalfd", fd.error()));
    stop_fd_ = *fd;
  }
  return {};
}

StepResult<void> DaemonContext::enter_directories() {
  if (auto done =
          detail::enter_directories(os_, options_.chroot_directory, options_.working_directory);
      !done) {
    return done;
  }
  if (options_.chroot_directory && own_pidfile_) {
    own_pidfile_->relocate_for_chroot(*options_.chroot_directory);
  }
  return {};
}

void DaemonContext::exit_daemon_failed(const StepError& error) {
  log_line(log_, error.message);
  // PID file first: once the parent reads the failure it may tell the user to start again.
  if (own_pidfile_) own_pidfile_->release();
  if (readiness_) (void)readiness_->fail(error);
  if (stop_fd_ >= 0) (void)os_.close(stop_fd_);
  end_process(os_, 1);
}

void DaemonContext::ready(std::string_view status) {
  if (!readiness_) return;
  (void)readiness_->ready(status);
  const std::optional<sys::Error>& lost = readiness_->pipe_error();
  // Only a failed write loses the report: StatusReporter also returns errors of the sigaction
  // around it and of the close after it, when the parent did get the byte. EPIPE: the parent
  // is gone (killed, say), and nobody will act on a missing report.
  if (!detached_ || !lost || std::string_view(lost->call) != "write" || lost->code == EPIPE) {
    return;
  }
  log_line(log_, fmt::format("could not tell the waiting parent the daemon is ready ({}); "
                             "stopping, since it reports a failure",
                             sys::to_string(*lost)));
  if (own_pidfile_) own_pidfile_->release();
  if (stop_fd_ >= 0) (void)os_.close(stop_fd_);
  end_process(os_, 1);
}

void DaemonContext::fail(const StepError& error) {
  if (own_pidfile_) own_pidfile_->release();
  if (readiness_) (void)readiness_->fail(error);
}

StepResult<int> DaemonContext::hand_over_status_fd() {
  if (!readiness_ || !readiness_->has_status_pipe()) return -1;
  const int fd = readiness_->take_status_fd();
  if (auto kept = os_.fcntl(fd, F_SETFD, 0); !kept) {
    return step_failed(StepError::from(StepKind::kStatusPipe, "fcntl(status pipe)", kept.error()));
  }
  return fd;
}

void DaemonContext::close() {
  if (own_pidfile_) own_pidfile_->release();
  if (stop_fd_ >= 0) {
    (void)os_.close(stop_fd_);
    stop_fd_ = -1;
  }
}

}  // namespace daemonkit::core
