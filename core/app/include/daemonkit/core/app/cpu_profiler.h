// --profile FILE: a CPU profile of the whole run, written when it stops (gperftools'
// libprofiler, Debian's libgoogle-perftools-dev, loaded with dlopen only when a profile is
// asked for; read it with `google-pprof PROGRAM FILE`).
// A hook the runner holds: start it in the process that runs the services (ITIMER_PROF, which
// drives the sampling, is not inherited across fork, so after daemonizing), stop it at shutdown.
//
// libprofiler opens FILE and installs its SIGPROF handler itself: those calls are gperftools',
// outside sys::Syscalls, which is why the profiler is a hook the runner calls and not a step of
// its own on the fake.
#pragma once

#include <string>
#include <tl/expected.hpp>

namespace daemonkit::core {

// Whether this run can profile (built with gperftools' header, and libprofiler.so.0 loads);
// without it --profile is a usage error.
[[nodiscard]] bool cpu_profiler_available();

class CpuProfiler {
 public:
  // `library`: the shared object to load (a test names one that is not there).
  explicit CpuProfiler(std::string path, std::string library = "libprofiler.so.0")
      : path_(std::move(path)), library_name_(std::move(library)) {}
  ~CpuProfiler();
  CpuProfiler(const CpuProfiler&) = delete;
  CpuProfiler& operator=(const CpuProfiler&) = delete;

  // Starts sampling into the file. One profiler per process: libprofiler's state is global.
  // The error is the sentence to report ("--profile /x: cannot start the profiler ...").
  [[nodiscard]] tl::expected<void, std::string> start();
  // Stops sampling and writes the profile out; does nothing if not started. Idempotent.
  void stop();

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool running() const { return running_; }

 private:
  std::string path_;
  std::string library_name_;
  bool running_ = false;
  void* library_ = nullptr;  // libprofiler, once loaded (never unloaded)
  void* stop_ = nullptr;     // its ProfilerStop
};

}  // namespace daemonkit::core
