// Process: a child program spawned on the reactor, and the transport to it (Twisted's Process
// and PTYProcess, spawned by spawnProcess). The parent never blocks on the child: its pipes are
// stream transports on the reactor, its exit comes from a pidfd made with it (ChildWatch), and
// signals go through that pidfd, so none can reach a recycled pid.
//
// SIGPIPE must be ignored, or a child that exits before reading all its input kills the parent
// instead of failing the write with EPIPE. A running reactor that installs signal handlers
// ignores it (ReactorOptions); a program that writes before run() or routes signals itself
// must ignore it too.
//
// The process keeps itself alive until it has ended (reaped, and every pipe closed), whoever
// holds the pointer spawn returned: dropping it neither kills the child nor leaves it unreaped.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/process/child_watch.h"
#include "daemonkit/core/process/process_end.h"
#include "daemonkit/core/process/process_protocol.h"
#include "daemonkit/core/process/spawn_options.h"
#include "daemonkit/core/reactor/producer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

enum class ProcessErrc {
  kExitedAlready,  // signal() after the child was reaped (Twisted's ProcessExitedAlready)
  kNoSuchChildFd,  // write_to_child to a number that is not an open pipe the parent writes
  kOs,             // the call in `os` failed
};

struct ProcessError {
  ProcessErrc code = ProcessErrc::kOs;
  sys::Error os{};
  int child_fd = -1;

  friend bool operator==(const ProcessError&, const ProcessError&) = default;
};

// "process exited already", "child fd 5 is not a pipe the parent writes to",
// "pidfd_send_signal: Operation not permitted (EPERM)".
[[nodiscard]] std::string to_string(const ProcessError& error);

template <typename T>
class [[nodiscard]] ProcessResult : public tl::expected<T, ProcessError> {
 public:
  using Base = tl::expected<T, ProcessError>;
  using Base::Base;
  ProcessResult(Base base) : Base(std::move(base)) {}  // NOLINT: implicit on purpose
};

class Process {
 public:
  // Starts options.executable and connects `protocol` to it (connection_made is called before
  // this returns). Fails, having created nothing that stays open, with a kOptions error for
  // options that cannot be carried out (an empty argv, a NUL byte, a bad environment entry,
  // child_fds with use_pty, a bad child fd number), kPrivileges for ids that cannot be resolved,
  // and the OS error of making a pipe, the terminal or the child, or of watching them. A
  // program that cannot be exec'd is not an error here: the process then ends with
  // ProcessEnd::not_started, naming the step and the errno, at the reactor's next turn.
  // `protocol` must outlive the process's end.
  [[nodiscard]] static StepResult<std::shared_ptr<Process>> spawn(Reactor& reactor,
                                                                  sys::Syscalls& os,
                                                                  ProcessProtocol& protocol,
                                                                  SpawnOptions options);

  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // The child's pid, for the record; it names the child only until it is reaped.
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool exited() const { return end_.has_value(); }
  [[nodiscard]] bool ended() const { return ended_; }

  // Queues bytes for the child's `child_fd` (a ChildFd::write() pipe; for a PTY, 0 is the
  // terminal's input). Never blocks; the transport writes as the pipe takes them.
  ProcessResult<void> write_to_child(int child_fd, std::span<const std::byte> data);
  ProcessResult<void> write_to_child(int child_fd, std::string_view text);
  // write_to_child(0, ...).
  ProcessResult<void> write(std::string_view text) { return write_to_child(0, text); }

  // Closes the parent's end of the pipe behind `child_fd` once what was written has drained
  // (a pipe the parent reads: now). Unknown numbers are ignored, as in Twisted; so are all on a
  // PTY, whose one terminal is the child's 0, 1 and 2 (lose_connection closes it).
  void close_child_fd(int child_fd);
  void close_stdin() { close_child_fd(0); }
  void close_stdout() { close_child_fd(1); }
  void close_stderr() { close_child_fd(2); }
  // Closes every pipe to the child, and a PTY's terminal (what was written drains first).
  void lose_connection();

  // Sends `sig` to the child through its pidfd. After the child was reaped: kExitedAlready,
  // without any system call.
  ProcessResult<void> signal(int sig);

  // Flow control for what the parent writes to `child_fd` (the stream transport's rules: a
  // streaming producer is paused above the high-water mark and resumed when drained; a pull
  // producer is asked each time the pipe has taken everything). kNoSuchChildFd for a number
  // that is not a pipe the parent writes; kOs (EBUSY) while another producer is registered.
  ProcessResult<void> register_producer(int child_fd, Producer& producer, bool streaming);
  void unregister_producer(int child_fd);

  // Stops and restarts reading every pipe the parent reads (Twisted's pauseProducing).
  void pause_producing();
  void resume_producing();

 private:
  class Pipe;

  Process(Reactor& reactor, sys::Syscalls& os, ProcessProtocol& protocol, std::string executable);

  // The pipe behind a child descriptor (for a PTY, the terminal behind 0, 1 and 2), or null.
  Pipe* pipe_for(int child_fd);
  // The pipe behind `child_fd` if the parent writes it; kNoSuchChildFd otherwise.
  ProcessResult<Pipe*> written_pipe(int child_fd);
  void pipe_lost(int child_fd);
  void child_reaped(const ProcessEnd& end);
  // Calls process_ended once the child is reaped and no pipe remains; then lets go of itself.
  void maybe_end();

  Reactor& reactor_;
  sys::Syscalls& os_;
  ProcessProtocol& protocol_;
  std::string executable_;
  pid_t pid_ = 0;
  std::map<int, std::unique_ptr<Pipe>> pipes_;
  std::unique_ptr<ChildWatch> watch_;
  DelayedCall not_started_;
  std::optional<ProcessEnd> end_;
  bool ended_ = false;
  bool pty_ = false;
  // This process, until it has ended: what keeps it alive when no caller holds it.
  std::shared_ptr<Process> self_;
};

}  // namespace daemonkit::core

template <typename T>
struct tl::detail::is_expected_impl<daemonkit::core::ProcessResult<T>> : std::true_type {};
