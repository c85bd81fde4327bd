#include "daemonkit/core/app/cpu_profiler.h"

#include <fmt/format.h>

#if DAEMONKIT_HAVE_GPERFTOOLS
#include <dlfcn.h>
#include <gperftools/profiler.h>
#endif

namespace daemonkit::core {

#if DAEMONKIT_HAVE_GPERFTOOLS

namespace {

// libprofiler is loaded only by a run that asks for a profile: linked into every program, it
// and the libunwind and liblzma it brings cost each start about 0.8 ms of loading (bench/app),
// and its constructor runs even when nothing is profiled.
constexpr const char* kLibrary = "libprofiler.so.0";

// Loaded once and never unloaded (RTLD_NODELETE, no dlclose): libprofiler's constructor
// registers handlers and exit-time work that must not outlive its code (unloaded, ASan saw a
// call into the unmapped module at exit).
void* load_profiler(const char* library = kLibrary) {
  return dlopen(library, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
}

}  // namespace

bool cpu_profiler_available() { return load_profiler() != nullptr; }

CpuProfiler::~CpuProfiler() { stop(); }

tl::expected<void, std::string> CpuProfiler::start() {
  if (running_) return {};
  if (library_ == nullptr) {
    library_ = load_profiler(library_name_.c_str());
    if (library_ == nullptr) {
      return tl::unexpected(
          fmt::format("--profile {}: cannot load {}: {}", path_, library_name_, dlerror()));
    }
  }
  auto* start_profiler =
      reinterpret_cast<decltype(&ProfilerStart)>(dlsym(library_, "ProfilerStart"));
  stop_ = dlsym(library_, "ProfilerStop");
  if (start_profiler == nullptr || stop_ == nullptr) {
    return tl::unexpected(
        fmt::format("--profile {}: {} has no ProfilerStart/ProfilerStop", path_, library_name_));
  }
  // ProfilerStart says only yes or no: it fails when the file cannot be created or another
  // profile is already running in this process.
  if (start_profiler(path_.c_str()) == 0) {
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
  // Flushes the samples and closes the file.
  reinterpret_cast<decltype(&ProfilerStop)>(stop_)();
  running_ = false;
}

#else

bool cpu_profiler_available() { return false; }

CpuProfiler::~CpuProfiler() = default;

tl::expected<void, std::string> CpuProfiler::start() {
  return tl::unexpected(fmt::format("--profile {}: built without gperftools", path_));
}

void CpuProfiler::stop() {}

#endif

}  // namespace daemonkit::core
