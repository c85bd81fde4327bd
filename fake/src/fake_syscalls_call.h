// How every FakeSyscalls method runs: record the call, apply fault rules before anything
// changes, run the kernel's implementation in the current process, record the result, and
// unwind with ProcessEnded if the current process ended during the call. Shared by the source
// files that define FakeSyscalls methods.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "kernel.h"

namespace daemonkit::fake {

// Argument text for the transcript.
template <typename Int>
requires std::is_integral_v<Int> std::string arg(Int value) { return std::to_string(value); }
inline std::string arg(const char* text) { return text == nullptr ? "NULL" : text; }

// Written bytes as a C string, the first 128 of them.
std::string bytes_text(const void* buf, std::size_t count);

// Result text for the transcript.
std::string render(int value);
std::string render(long value);
std::string render(unsigned long value);
std::string render(const struct stat& st);
std::string render(const sys::WaitResult& w);
std::string render(const sys::PipeFds& fds);
std::string render(const sys::ChildWithPidFd& child);
std::string render(const sys::SocketPair& fds);
std::string render(const std::string& s);
std::string render(const std::optional<sys::Passwd>& pw);
std::string render(const std::optional<sys::Group>& gr);
std::string render(const std::vector<gid_t>& list);
std::string render(const sys::ResUids& ids);
// ResGids is the same type as ResUids (uid_t and gid_t are both unsigned int).
std::string render(const struct rlimit& limit);
std::string render(const timespec& ts);
inline std::string render(unsigned int value) { return std::to_string(value); }

template <typename T, typename Body>
sys::Result<T> FakeSyscalls::call(const char* name, std::vector<std::string> args, Body&& body,
                                  bool injectable) {
  const WaitPoint wait = std::exchange(wait_point_, WaitPoint{});
  run_before_call(name);
  run_programs_at(wait);
  begin_call(name, std::move(args));
  const pid_t caller = kernel_->current_pid;
  if (injectable) {
    if (const int error = injected_error()) {
      end_call("", error);
      return sys::fail(error, name);
    }
  }
  sys::Result<T> result = body(kernel_->current());
  if (result) {
    if constexpr (std::is_void_v<T>) {
      end_call("0", 0);
    } else {
      end_call(render(*result), 0);
    }
  } else {
    end_call("", result.error().code);
  }
  check_current_alive(caller);
  return result;
}

}  // namespace daemonkit::fake
