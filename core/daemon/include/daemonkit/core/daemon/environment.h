// The facts about how a process was started that decide how it should daemonize: the service
// manager's variables ($NOTIFY_SOCKET, $LISTEN_PID) and who its parent is. Variables are read
// from `environ` only at the edge (main), into an Environment that core logic is given, so tests
// set them without touching the process's real environment.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct Environment {
  // $NOTIFY_SOCKET: where sd_notify datagrams go ("/run/..." or "@abstract").
  std::optional<std::string> notify_socket;
  // $LISTEN_PID: the pid socket-activated descriptors were passed to.
  std::optional<std::string> listen_pid;
  // $DAEMONKIT_STATUS_FD: the write end of a status pipe a launcher waits on (`daemonkit run
  // --ready=pipe` puts it there), as text; launcher_status_fd() says whether it is usable.
  std::optional<std::string> status_fd;

  // The launcher's status pipe: $DAEMONKIT_STATUS_FD as a descriptor above the standard three
  // that is open on a pipe in this process. Anything else is unset: a stray or inherited
  // variable must not make a process write its report into stdout, a file or a socket.
  [[nodiscard]] std::optional<int> launcher_status_fd(sys::Syscalls& os) const;

  // Picks the variables above out of a NULL-terminated "KEY=VALUE" array such as `environ`.
  // An empty value counts as unset, as sd_notify treats it.
  [[nodiscard]] static Environment from_envp(const char* const* envp);
};

// Whether to double-fork, and why, in words fit for a log line.
struct DetachDecision {
  bool detach = true;
  std::string reason;
};

// PEP 3143's is_detach_process_context_required(), extended for service managers: do not fork
// when a service manager supervises us ($NOTIFY_SOCKET, or $LISTEN_PID naming this process),
// when a launcher waits on a status pipe it passed ($DAEMONKIT_STATUS_FD: `daemonkit run` did
// the forks already), when init is our parent (ppid 1), or when inetd started us (stdin is a
// socket). Forking away
// in those cases would make the supervisor lose track of its service.
[[nodiscard]] DetachDecision decide_detach(sys::Syscalls& os, const Environment& env);

}  // namespace daemonkit::core
