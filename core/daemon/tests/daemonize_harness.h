// Runs a whole daemonization in one fake kernel: the first parent, the intermediate and the
// daemon, each driven through its own DaemonContext step, as the real fork would run them.
// Shared by the DaemonContext unit tests and the fault matrix.
#pragma once

#include <fcntl.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core::testing {

inline constexpr const char* kParentStderr = "/tmp/first-parent.stderr";

struct DaemonizeRun {
  pid_t first_parent = 0;
  pid_t intermediate = 0;
  pid_t daemon = 0;  // the process open() returned in (the first parent when not detaching)
  std::optional<int> first_parent_exit;
  std::string first_parent_stderr;
  std::optional<StepError> open_error;  // what open() returned, if it returned an error
  std::vector<std::string> log;

  [[nodiscard]] bool daemon_alive(const fake::FakeSyscalls& os) const {
    return daemon != 0 && os.process_exists(daemon) && os.process(daemon).alive();
  }
};

// Options every fake test starts from: a PID file in /run, detaching, and a signal map without
// kStop, so the daemon holds only stdio and its PID file; the SIGTERM-stop tests add
// default_signal_map() and its signalfd.
inline DaemonOptions fake_options() {
  DaemonOptions options;
  options.pidfile = "/run/d.pid";
  options.detach_process = true;
  options.signal_map = {{SIGTSTP, SignalDisposition::kIgnore},
                        {SIGTTIN, SignalDisposition::kIgnore},
                        {SIGTTOU, SignalDisposition::kIgnore}};
  return options;
}

// What the daemon's program does once open() returned in it.
using DaemonProgram = std::function<void(DaemonContext&, fake::FakeSyscalls&)>;

inline void report_ready(DaemonContext& ctx, fake::FakeSyscalls&) { ctx.ready(); }

// Gives the first parent stdin/stdout on /dev/null and stderr in kParentStderr, clears the
// transcript (so call indexes count from open()), lets `arm` inject faults, and runs:
// open() down the child side of both forks, `program` in the daemon, then the intermediate's
// and the first parent's sides of their forks. Everything that ends unwinds with ProcessEnded
// and is caught here.
inline DaemonizeRun run_daemonize(fake::FakeSyscalls& os, const DaemonOptions& options,
                                  const DaemonProgram& program = report_ready,
                                  const std::function<void(fake::FakeSyscalls&)>& arm = {},
                                  Environment env = {}) {
  DaemonizeRun run;
  run.first_parent = os.current_pid();
  (void)os.open("/dev/null", O_RDWR, 0);
  (void)os.open("/dev/null", O_RDWR, 0);
  (void)os.open(kParentStderr, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  os.clear_transcript();
  if (arm) arm(os);
  os.script_fork(fake::ForkAs::kChild);
  os.script_fork(fake::ForkAs::kChild);

  DaemonContext ctx(os, options, std::move(env),
                    [&run](std::string_view line) { run.log.emplace_back(line); });
  try {
    auto opened = ctx.open();
    if (!opened) {
      run.open_error = opened.error();
      exit_with_error(os, opened.error());
    }
    run.daemon = os.current_pid();
    program(ctx, os);
  } catch (const fake::ProcessEnded& ended) {
    if (ended.pid == run.first_parent) run.first_parent_exit = ended.exit_code();
  }

  // Who the intermediate is: the parent of the last process forked, if two forks succeeded,
  // else the only one.
  const auto forks =
      std::count_if(os.transcript().begin(), os.transcript().end(),
                    [](const fake::CallRecord& r) { return r.name == "fork" && r.ok(); });
  if (forks >= 1) {
    const pid_t last = os.last_forked_pid();
    run.intermediate = forks >= 2 ? os.process(last).ppid : last;
    if (forks >= 2 && run.daemon == 0) run.daemon = last;
    if (forks < 2 && run.daemon == run.intermediate) run.daemon = 0;
  }
  if (run.intermediate != 0 && os.process(run.intermediate).alive()) {
    os.switch_to(run.intermediate);
    try {
      ctx.finish_intermediate();
    } catch (const fake::ProcessEnded&) {
    }
  }
  if (os.process(run.first_parent).alive() && run.intermediate != 0) {
    os.switch_to(run.first_parent);
    try {
      ctx.run_first_parent(run.intermediate);
    } catch (const fake::ProcessEnded& ended) {
      run.first_parent_exit = ended.exit_code();
    }
  }
  run.first_parent_stderr = os.read_file(kParentStderr).value_or("");
  return run;
}

}  // namespace daemonkit::core::testing
