#include "daemonkit/core/process/exec_failure.h"

#include <array>
#include <cerrno>
#include <cstring>

#include "daemonkit/sys/error_text.h"

namespace daemonkit::core {
namespace {

// A first byte no stray write is likely to start with, so that a report that is not ours (a
// descriptor mix-up in the child) reads as malformed rather than as some step's failure.
constexpr unsigned char kMagic = 0xE7;

bool is_known(unsigned char step) {
  return step >= static_cast<unsigned char>(ChildStep::kSignals) &&
         step <= static_cast<unsigned char>(ChildStep::kExec);
}

}  // namespace

std::string_view to_string(ChildStep step) {
  switch (step) {
    case ChildStep::kSignals:
      return "signals";
    case ChildStep::kSession:
      return "setsid";
    case ChildStep::kTerminal:
      return "controlling terminal";
    case ChildStep::kGroups:
      return "setgroups";
    case ChildStep::kGid:
      return "setgid";
    case ChildStep::kUid:
      return "setuid";
    case ChildStep::kChdir:
      return "chdir";
    case ChildStep::kDescriptors:
      return "child fds";
    case ChildStep::kExec:
      return "exec";
  }
  return "unknown step";
}

void write_exec_failure(sys::Syscalls& os, int fd, ExecFailure failure) {
  std::array<unsigned char, kExecFailureRecordSize> record{};
  record[0] = kMagic;
  record[1] = static_cast<unsigned char>(failure.step);
  const std::int32_t error = failure.error;
  std::memcpy(record.data() + 4, &error, sizeof(error));
  (void)os.write(fd, record.data(), record.size());
}

sys::Result<std::optional<ExecFailure>> read_exec_failure(sys::Syscalls& os, int fd) {
  std::array<unsigned char, kExecFailureRecordSize + 1> buffer{};
  std::size_t got = 0;
  while (got < buffer.size()) {
    auto n = os.read(fd, buffer.data() + got, buffer.size() - got);
    if (!n) {
      if (n.error().code == EINTR) continue;
      // A non-blocking pipe whose writer is still open somewhere: what is there is all of it.
      if (n.error().code == EAGAIN) break;
      return sys::fail(n.error());
    }
    if (*n == 0) break;
    got += *n;
  }
  if (got == 0) return std::optional<ExecFailure>{};
  if (got != kExecFailureRecordSize || buffer[0] != kMagic || !is_known(buffer[1])) {
    return sys::fail(EPROTO, "read_exec_failure");
  }
  std::int32_t error = 0;
  std::memcpy(&error, buffer.data() + 4, sizeof(error));
  return std::optional<ExecFailure>{ExecFailure{static_cast<ChildStep>(buffer[1]), error}};
}

std::string describe(const ExecFailure& failure, std::string_view executable) {
  if (failure.step == ChildStep::kExec) {
    return sys::describe_failure("exec " + std::string(executable), failure.error);
  }
  return sys::describe_failure(to_string(failure.step), failure.error);
}

}  // namespace daemonkit::core
