#include "daemonkit/core/app/app_run.h"

#include <unistd.h>

#include <memory>
#include <optional>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "daemonkit/core/app/app_command_line.h"
#include "daemonkit/core/app/application.h"
#include "daemonkit/core/app/cpu_profiler.h"
#include "daemonkit/core/app/log_relay.h"
#include "daemonkit/core/app/runner.h"
#include "daemonkit/core/base/write_text.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

RunnerOptions runner_options(const AppCommandLine& line, const AppInvocation& invocation) {
  RunnerOptions options;
  options.nodaemon = line.nodaemon;
  options.pidfile = line.pidfile;
  options.logfile = line.logfile;
  options.syslog = line.syslog;
  options.prefix = line.prefix;
  options.chroot = line.chroot;
  options.rundir = line.rundir;
  options.umask = line.umask;
  if (line.uid) options.uid = line.uid->text;
  if (line.gid) options.gid = line.gid->text;
  options.euid = line.euid;
  options.version = invocation.version;
  options.executable = invocation.executable;
  return options;
}

int start_failed(sys::Syscalls& os, const std::string& program, std::string_view what) {
  write_text(os, 2, fmt::format("{}: {}\n", program, what));
  return 1;
}

// The default --profile: gperftools, one profiler per process.
ProfilerHooks cpu_profiler_hooks(std::shared_ptr<std::optional<CpuProfiler>> profiler) {
  ProfilerHooks hooks;
  hooks.start = [profiler](const std::string& path) -> tl::expected<void, std::string> {
    return profiler->emplace(path).start();
  };
  hooks.stop = [profiler] {
    if (*profiler) (*profiler)->stop();
  };
  return hooks;
}

}  // namespace

int run_app(sys::Syscalls& os, const AppInvocation& invocation,
            std::span<const ServiceMaker> makers) {
  AppParsed parsed = parse_app_command_line(invocation.args, makers);
  if (const auto* done = std::get_if<AppExit>(&parsed)) {
    write_text(os, 1, done->out);
    write_text(os, 2, done->err);
    return done->code;
  }
  const AppCommandLine& line = std::get<AppCommandLine>(parsed);
  const std::string& program = line.program;

  // First, while the passed sockets are still 3, 4, ...: anything opened before would not
  // move them, but a failure here must close what was taken before the reactor exists.
  auto activated = listen_fds(os, invocation.activation);
  if (!activated) {
    return start_failed(os, program,
                        fmt::format("socket activation: {}", sys::to_string(activated.error())));
  }
  LogRelay relay;
  auto reactor = Reactor::create(os, {.log = relay.sink("reactor")});
  if (!reactor) return start_failed(os, program, to_string(reactor.error()));

  Application app(program);
  const ServiceContext context{**reactor,  os,  relay.sink(line.maker->name),
                               *activated, app, invocation.listen_ssl};
  auto service = line.maker->make(line.maker_options, context);
  if (!service) {
    const std::string where = fmt::format("{} {}", program, line.maker->name);
    write_text(os, 2,
               fmt::format("{}: {}\nRun '{} --help' for more information.\n", where,
                           service.error(), where));
    return kUsageExit;
  }
  if (auto added = app.service().add(*service); !added) {
    return start_failed(os, program, added.error().message);
  }

  RunnerOptions options = runner_options(line, invocation);
  for (std::size_t i = 0; i < activated->size(); ++i) {
    options.files_preserve.push_back(ActivatedSockets::kFirstFd + static_cast<int>(i));
  }
  // sd_notify only when asked (--ready): twistd never speaks it, and a daemon that does not
  // mean to must not tell a manager it is ready.
  Environment environment = invocation.environment;
  if (!line.ready) environment.notify_socket.reset();

  Runner runner(os, **reactor, app, std::move(options), std::move(environment));
  runner.relay_into_log(relay);

  ProfilerHooks profiler = invocation.profiler;
  if (!profiler.start || !profiler.stop) {
    profiler = cpu_profiler_hooks(std::make_shared<std::optional<CpuProfiler>>());
  }
  std::optional<Notifier> notifier;
  RunnerHooks hooks;
  hooks.on_daemon = [&]() -> StepResult<void> {
    if (!line.profile.empty()) {
      if (auto started = profiler.start(line.profile); !started) {
        return step_failed(StepError::plain(StepKind::kApplication, started.error()));
      }
    }
    if (line.ready) notifier.emplace(**reactor, os, invocation.notify, relay.sink("notify"));
    return {};
  };
  // READY=1 went out with the runner's report (DaemonContext's, naming the main pid).
  hooks.on_ready = [&] {
    if (notifier) notifier->start_keep_alives();
  };
  hooks.on_stopping = [&] {
    if (notifier) (void)notifier->stopping();
  };
  hooks.on_stopped = [&] {
    notifier.reset();
    if (!line.profile.empty()) profiler.stop();
  };
  runner.set_hooks(std::move(hooks));
  return runner.run();
}

}  // namespace daemonkit::core

namespace daemonkit::app {

int run(int argc, char** argv, std::span<const core::ServiceMaker> makers, std::string version,
        core::SslEndpointListener listen_ssl) {
  core::AppInvocation invocation;
  invocation.args.assign(argv, argv + argc);
  invocation.environment = core::Environment::from_envp(environ);
  invocation.notify = core::NotifyVariables::from_envp(environ);
  invocation.activation = core::ActivationVariables::take_from_environment();
  invocation.version = std::move(version);
  invocation.listen_ssl = listen_ssl;
  if (argc > 0) invocation.executable = argv[0];
  sys::RealSyscalls os;
  return core::run_app(os, invocation, makers);
}

}  // namespace daemonkit::app
