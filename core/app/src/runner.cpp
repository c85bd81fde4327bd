#include "daemonkit/core/app/runner.h"

#include <fcntl.h>
#include <signal.h>

#include <string>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/app/exit_by_signal.h"
#include "daemonkit/core/app/fd_log_observer.h"
#include "daemonkit/core/app/log_file.h"
#include "daemonkit/core/app/log_lifecycle.h"
#include "daemonkit/core/app/log_signals.h"
#include "daemonkit/core/app/process_name.h"
#include "daemonkit/core/app/syslog_sink.h"

namespace daemonkit::core {
namespace {

// The daemon closes every inherited descriptor and points 0, 1 and 2 at /dev/null, so stdout
// logging is for the foreground only (twistd's exact refusal).
constexpr std::string_view kDaemonStdout = "Daemons cannot log to stdout, exiting!";

// Log files are reopened by name after chdir and chroot (SIGHUP), so the name is made
// absolute while it still means what the user meant.
StepResult<std::string> absolute_path(sys::Syscalls& os, std::string path) {
  if (path.starts_with('/')) return path;
  auto cwd = os.getcwd();
  if (!cwd) return step_failed(StepError::from(StepKind::kOptions, "getcwd", cwd.error()));
  return fmt::format("{}{}{}", *cwd, cwd->ends_with('/') ? "" : "/", path);
}

SyslogOptions syslog_options(const RunnerOptions& options, const Application& app) {
  SyslogOptions syslog;
  syslog.ident = options.prefix.empty() ? app.name() : options.prefix;
  syslog.facility = options.syslog_facility;
  return syslog;
}

}  // namespace

Runner::Runner(sys::Syscalls& os, Reactor& reactor, Application& app, RunnerOptions options,
               Environment env)
    : os_(os), reactor_(reactor), app_(app), options_(std::move(options)), env_(std::move(env)) {}

Runner::~Runner() {
  if (relay_ != nullptr) relay_->attach(nullptr);
}

int Runner::run() {
  if (auto logging = start_logging(); !logging) {
    exit_with_error(os_, logging.error());
  }
  std::unique_ptr<DaemonContext> ctx = make_daemon_context();
  // When detaching, open() returns only in the daemon; the launcher and the intermediate end
  // inside it. An error returned here is the first process's own (nothing forked, or the
  // foreground's whole start), with the PID file already given back.
  if (auto opened = ctx->open(); !opened) {
    note(LogLevel::kError, opened.error().message);
    exit_with_error(os_, opened.error());
  }
  return run_application(*ctx);
}

StepResult<void> Runner::start_logging() {
  if (options_.syslog) {
    log_ = std::make_unique<SyslogSink>(os_, syslog_options(options_, app_));
  } else if (options_.logfile == "-" || (options_.logfile.empty() && options_.nodaemon)) {
    if (!options_.nodaemon) {
      return step_failed(StepError::plain(StepKind::kOptions, std::string(kDaemonStdout)));
    }
    log_ = std::make_unique<FdLogObserver>(os_, 1);
  } else {
    auto path =
        absolute_path(os_, options_.logfile.empty() ? app_.name() + ".log" : options_.logfile);
    if (!path) return step_failed(path.error());
    LogFileOptions file_options;
    file_options.mode = options_.logfile_mode;
    // The file may be the daemon's user's (a rotation after shedding made it): that user, not
    // only root, may own what is opened here.
    if (const PrivilegeRequest wanted = privileges(); wanted.user || wanted.group) {
      auto plan = resolve_privileges(os_, wanted);
      if (!plan) return step_failed(plan.error());
      file_options.daemon_uid = plan->uid;
    }
    auto file = LogFile::open(os_, *path, file_options);
    if (!file) return step_failed(file.error());
    log_fd_ = (*file)->fd();
    LogSignalOptions signals;
    signals.reopen_on_sighup = options_.reopen_log_on_sighup;
    route_log_signals(reactor_, **file, signals);
    log_ = std::move(*file);
  }
  log_start_up(*log_, app_.name(), options_.version, options_.executable);
  if (relay_ != nullptr) relay_->attach(log_.get());
  return {};
}

std::unique_ptr<DaemonContext> Runner::make_daemon_context() {
  DaemonOptions daemon;
  if (!options_.chroot.empty()) daemon.chroot_directory = options_.chroot;
  daemon.working_directory = options_.rundir;
  daemon.umask = options_.umask;
  daemon.privileges = privileges();
  if (options_.nodaemon) daemon.detach_process = false;  // else decide_detach()
  if (log_fd_ >= 0) daemon.files_preserve.push_back(log_fd_);
  daemon.files_preserve.insert(daemon.files_preserve.end(), options_.files_preserve.begin(),
                               options_.files_preserve.end());
  if (!options_.pidfile.empty()) daemon.pidfile = options_.pidfile;
  // SIGTERM and SIGINT are the reactor's (it stops, and the runner exits by the signal), so
  // none is a DaemonContext stop signal; the terminal's job-control signals are ignored.
  daemon.signal_map = {{SIGTSTP, SignalDisposition::kIgnore},
                       {SIGTTIN, SignalDisposition::kIgnore},
                       {SIGTTOU, SignalDisposition::kIgnore}};
  if (options_.start_timeout)
    daemon.start_timeout_ms = static_cast<int>(options_.start_timeout->count());
  // After the PID file is written and before privileges are shed: bind port 80 here.
  daemon.privileged_start = [this] { return app_.service().privileged_start(); };
  daemon.before_detach = [this] { reactor_.before_daemonize(); };
  daemon.after_detach = [this] { return after_detach(); };
  return std::make_unique<DaemonContext>(os_, std::move(daemon), env_, sink());
}

StepResult<void> Runner::after_detach() {
  // A syslog socket connected before the forks was closed with every other inherited
  // descriptor; a new sink connects afresh, before the reactor takes new numbers (the old
  // sink's close of its number then fails harmlessly with EBADF rather than hitting a reused
  // one).
  if (options_.syslog) {
    log_ = std::make_unique<SyslogSink>(os_, syslog_options(options_, app_));
    if (relay_ != nullptr) relay_->attach(log_.get());
  }
  if (auto recreated = reactor_.after_daemonize(); !recreated) {
    const ReactorError& error = recreated.error();
    if (error.code == ReactorErrc::kOs) {
      return step_failed(StepError::from(StepKind::kDetach, error.os.call, error.os));
    }
    return step_failed(
        StepError::plain(StepKind::kDetach, "reactor after_daemonize: " + to_string(error)));
  }
  return {};
}

PrivilegeRequest Runner::privileges() const {
  PrivilegeRequest request = app_.privileges();
  if (options_.uid) request.user = options_.uid;
  if (options_.gid) request.group = options_.gid;
  request.euid = options_.euid;
  return request;
}

int Runner::run_application(DaemonContext& ctx) {
  if (ctx.detached()) {
    if (auto captured = capture_stdio(); !captured) return start_failed(ctx, captured.error());
  }
  if (const auto& name = app_.process_name()) {
    if (auto named = set_process_name(os_, *name); !named) return start_failed(ctx, named.error());
  }
  if (hooks_.on_daemon) {
    if (auto done = hooks_.on_daemon(); !done) return start_failed(ctx, done.error());
  }
  if (auto started = app_.service().start(); !started) return start_failed(ctx, started.error());
  stop_on_shutdown();
  // Ready goes out from the reactor's startup, once it routes SIGTERM and SIGINT (twistd
  // writes its "0" before): the launcher exits as it reads it, and a SIGTERM sent right then
  // must stop the services and remove the PID file, not kill the daemon by default action.
  bool readied = false;
  reactor_.call_when_running([this, &ctx, &readied] {
    readied = true;
    ctx.ready();
    if (hooks_.on_ready) hooks_.on_ready();
  });

  int status = 0;
  if (auto ran = reactor_.run(); !ran) {
    const std::string failure = fmt::format("the reactor failed: {}", to_string(ran.error()));
    if (!readied) return start_failed(ctx, StepError::plain(StepKind::kApplication, failure));
    note(LogLevel::kCritical, failure);
    status = 1;
  }
  if (hooks_.on_stopped) hooks_.on_stopped();
  log_shut_down(*log_);
  ctx.close();
  if (const int sig = reactor_.exit_signal(); sig != 0) return exit_by_signal(os_, sig);
  return status;
}

StepResult<void> Runner::capture_stdio() {
  for (CapturedStream stream : {CapturedStream::kStdout, CapturedStream::kStderr}) {
    auto capture = LogCapture::open(reactor_, os_, *log_, stream);
    if (!capture) {
      const ReactorError& error = capture.error();
      if (error.code == ReactorErrc::kOs) {
        return step_failed(StepError::from(StepKind::kStdio, error.os.call, error.os));
      }
      return step_failed(
          StepError::plain(StepKind::kStdio, "capturing stdio: " + to_string(error)));
    }
    captures_.push_back(std::move(*capture));
  }
  return {};
}

void Runner::stop_on_shutdown() {
  // Twisted's ("before", "shutdown") trigger calling stopService, with a bound: the hold is
  // released when the stop completes or when stop_timeout has passed, whichever comes first.
  reactor_.add_holding_trigger("shutdown", [this](EventHold hold) {
    if (hooks_.on_stopping) hooks_.on_stopping();
    auto held = std::make_shared<EventHold>(std::move(hold));
    auto timer = std::make_shared<std::optional<DelayedCall>>();
    Completion stopped = app_.service().stop();
    if (!stopped.completed()) {
      *timer = reactor_.call_later(options_.stop_timeout, [this, held] {
        note(LogLevel::kWarn,
             fmt::format("the services did not stop within {} ms; shutting down without them",
                         options_.stop_timeout.count()));
        held->release();
      });
    }
    stopped.on_complete([this, held, timer](const Completion::Errors& errors) {
      for (const StepError& error : errors) {
        note(LogLevel::kError, fmt::format("stopping: {}", error.message));
      }
      if (*timer && (*timer)->active()) (void)(*timer)->cancel();
      // One more turn of the loop before shutdown goes on, so that what the services printed
      // as they stopped is read from the capture pipes into the log.
      reactor_.call_later(Duration::zero(), [held] { held->release(); });
    });
  });
}

int Runner::start_failed(DaemonContext& ctx, const StepError& error) {
  note(LogLevel::kError, error.message);
  // The PID file goes first, then the launcher hears: it may tell the user to start again.
  ctx.fail(error);
  if (!ctx.detached()) exit_with_error(os_, error);
  return 1;
}

LogSink Runner::sink(LogLevel level) {
  return [this, level](std::string_view line) { note(level, line); };
}

void Runner::note(LogLevel level, std::string_view text) {
  if (log_) log_->emit(level, kLifecycleSystem, text);
}

}  // namespace daemonkit::core
