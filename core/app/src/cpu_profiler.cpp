#include "daemonkit/core/app/cpu_profiler.h"

#include <fmt/format.h>

#if DAEMONKIT_HAVE_GPERFTOOLS
#include <gperftools/profiler.h>
#endif

namespace daemonkit::core {

#if DAEMONKIT_HAVE_GPERFTOOLS

bool cpu_profiler_available() { return true; }

tl::expected<void, std::string> CpuProfiler::start() {
  if (running_) return {};
  // ProfilerStart says only yes or no: it fails when the file cannot be created or another
  // profile is already running in this process.
  if (ProfilerStart(path_.c_str()) == 0) {
    return tl::unexpected(fmt::format(
        "--profile {}: cannot start the profiler (the file cannot be created, or a profile "
        "already runs)",
        path_));
  }
  running_ = true;
  return {};
}

void CpuProfiler::stop() {
  if (!running_) return;
  ProfilerStop();  // Flushes the samples and closes the file.
  running_ = false;
}

#else

bool cpu_profiler_available() { return false; }

tl::expected<void, std::string> CpuProfiler::start() {
  return tl::unexpected(fmt::format("--profile {}: built without gperftools", path_));
}

void CpuProfiler::stop() {}

#endif

}  // namespace daemonkit::core
