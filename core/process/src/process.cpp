#include "daemonkit/core/process/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <cstdint>

#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/daemon/privileges.h"
#include "daemonkit/core/process/child_fd_map.h"
#include "daemonkit/core/process/child_plan.h"
#include "daemonkit/core/process/exec_arguments.h"
#include "daemonkit/core/process/start_child.h"
#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

std::string to_string(const ProcessError& error) {
  switch (error.code) {
    case ProcessErrc::kExitedAlready:
      return "process exited already";
    case ProcessErrc::kNoSuchChildFd:
      return fmt::format("child fd {} is not a pipe the parent writes to", error.child_fd);
    case ProcessErrc::kOs:
      break;
  }
  return sys::to_string(error.os);
}

namespace {

tl::unexpected<StepError> refused(std::string message) {
  return step_failed(StepError::plain(StepKind::kOptions, std::move(message)));
}

tl::unexpected<StepError> os_failed(std::string_view step, const sys::Error& error) {
  return step_failed(StepError::from(StepKind::kExec, step, error));
}

// The ids the program runs as, Twisted's defaults filled in (see SpawnOptions::uid).
StepResult<std::optional<ChildIds>> resolve_ids(sys::Syscalls& os, const SpawnOptions& options) {
  if (!options.uid && !options.gid) return std::nullopt;
  PrivilegeRequest request;
  if (options.uid) request.user = std::to_string(*options.uid);
  if (options.gid) {
    request.group = std::to_string(*options.gid);
  } else {
    auto entry = os.getpwuid(*options.uid);
    if (!entry)
      return step_failed(StepError::from(StepKind::kPrivileges, "getpwuid", entry.error()));
    if (!entry->has_value()) {
      auto gids = os.getresgid();
      if (!gids)
        return step_failed(StepError::from(StepKind::kPrivileges, "getresgid", gids.error()));
      request.group = std::to_string(gids->effective);
    }
  }
  auto plan = resolve_privileges(os, request);
  if (!plan) return step_failed(plan.error());
  ChildIds ids;
  if (plan->uid) {
    ids.uid = *plan->uid;
  } else {
    auto uids = os.getresuid();
    if (!uids)
      return step_failed(StepError::from(StepKind::kPrivileges, "getresuid", uids.error()));
    ids.uid = uids->effective;
  }
  ids.gid = *plan->gid;
  ids.groups = std::move(plan->groups);
  return ids;
}

// Twisted's default: the parent writes the child's 0 and reads its 1 and 2.
std::map<int, ChildFd> default_child_fds() {
  return {{0, ChildFd::write()}, {1, ChildFd::read()}, {2, ChildFd::read()}};
}

}  // namespace

// One pipe to the child (or the PTY's master), as the parent holds it: a stream transport over
// the parent's end, whose events go to the process under the child's descriptor number.
class Process::Pipe final : public StreamHandler {
 public:
  Pipe(Process& process, int child_fd) : process_(process), child_fd_(child_fd) {}

  ReactorResult<void> open(OwnedFd parent_end, StreamDirection direction) {
    StreamOptions options;
    options.direction = direction;
    auto made = StreamTransport::open(process_.reactor_, process_.os_, std::move(parent_end), *this,
                                      options);
    if (!made) return tl::unexpected(made.error());
    transport_ = std::move(*made);
    return {};
  }

  StreamTransport& transport() { return *transport_; }
  [[nodiscard]] bool parent_writes() const {
    return transport_->direction() != StreamDirection::kReadOnly;
  }
  [[nodiscard]] bool parent_reads() const {
    return transport_->direction() != StreamDirection::kWriteOnly;
  }

  void data_received(std::span<const std::byte> data) override {
    process_.protocol_.child_data_received(child_fd_, data);
  }
  // Whatever the reason (EOF, EPIPE, a PTY master's EIO once the terminal's last holder is
  // gone), the pipe is over: Twisted's childConnectionLost carries no reason either.
  void connection_lost(const LossReason& /*why*/) override { process_.pipe_lost(child_fd_); }

 private:
  Process& process_;
  int child_fd_;
  std::unique_ptr<StreamTransport> transport_;
};

Process::Process(Reactor& reactor, sys::Syscalls& os, ProcessProtocol& protocol,
                 std::string executable)
    : reactor_(reactor), os_(os), protocol_(protocol), executable_(std::move(executable)) {}

Process::~Process() {
  if (not_started_.active()) (void)not_started_.cancel();
}

namespace {

// A new pseudo-terminal: its master, and its slave opened from the master (TIOCGPTPEER, Linux
// 4.13+: no path is looked up, so nothing can swap /dev/pts/N under us), sized.
struct Terminal {
  OwnedFd master;
  OwnedFd slave;
};

StepResult<Terminal> open_terminal(sys::Syscalls& os, const struct winsize& size) {
  auto master = os.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
  if (!master) return os_failed("open(/dev/ptmx)", master.error());
  Terminal terminal{OwnedFd(os, *master), {}};
  int unlock = 0;
  if (auto done = os.ioctl(*master, TIOCSPTLCK, &unlock); !done) {
    return os_failed("ioctl(TIOCSPTLCK)", done.error());
  }
  constexpr std::uintptr_t kSlaveFlags = O_RDWR | O_NOCTTY | O_CLOEXEC;
  // NOLINTNEXTLINE(performance-no-int-to-ptr): TIOCGPTPEER takes its flags in the pointer.
  auto slave = os.ioctl(*master, TIOCGPTPEER, reinterpret_cast<void*>(kSlaveFlags));
  if (!slave) return os_failed("ioctl(TIOCGPTPEER)", slave.error());
  terminal.slave = OwnedFd(os, *slave);
  struct winsize window = size;
  if (auto done = os.ioctl(*master, TIOCSWINSZ, &window); !done) {
    return os_failed("ioctl(TIOCSWINSZ)", done.error());
  }
  return terminal;
}

}  // namespace

StepResult<std::shared_ptr<Process>> Process::spawn(Reactor& reactor, sys::Syscalls& os,
                                                    ProcessProtocol& protocol,
                                                    SpawnOptions options) {
  if (options.use_pty && !options.child_fds.empty()) {
    return refused("child_fds cannot be combined with use_pty");
  }
  if (!options.use_pty && options.child_fds.empty()) options.child_fds = default_child_fds();
  for (const auto& [child_fd, what] : options.child_fds) {
    if (child_fd < 0 || child_fd >= ChildFdMap::kMaxChildFd) {
      return refused(
          fmt::format("child fd {}: not between 0 and {}", child_fd, ChildFdMap::kMaxChildFd - 1));
    }
    if (what.kind() == ChildFd::Kind::kInherit && what.parent_fd() < 0) {
      return refused(
          fmt::format("child fd {}: parent fd {} is not a descriptor", child_fd, what.parent_fd()));
    }
  }
  const std::string executable = options.executable;
  auto exec = ExecArguments::make(std::move(options.executable), std::move(options.argv),
                                  std::move(options.environment));
  if (!exec) return step_failed(exec.error());
  auto ids = resolve_ids(os, options);
  if (!ids) return step_failed(ids.error());

  // The parent's ends, which the transports make non-blocking, and the child's, which stay
  // blocking, as a program expects its standard descriptors. All close-on-exec: the fd map
  // gives the child its ends, and no other child this process spawns gets any.
  struct ParentEnd {
    int child_fd;
    OwnedFd fd;
    StreamDirection direction;
  };
  std::vector<ParentEnd> parent_ends;
  std::vector<OwnedFd> child_ends;
  std::vector<FdAssignment> assignments;
  ChildOptions child_options;
  if (options.use_pty) {
    auto terminal = open_terminal(os, options.window_size);
    if (!terminal) return step_failed(terminal.error());
    const int slave = terminal->slave.get();
    assignments = {{0, slave}, {1, slave}, {2, slave}};
    child_options.controlling_terminal = slave;
    child_ends.push_back(std::move(terminal->slave));
    parent_ends.push_back({1, std::move(terminal->master), StreamDirection::kReadWrite});
  }
  for (const auto& [child_fd, what] : options.child_fds) {
    if (what.kind() == ChildFd::Kind::kInherit) {
      assignments.push_back({child_fd, what.parent_fd()});
      continue;
    }
    auto pipe = os.pipe2(O_CLOEXEC);
    if (!pipe) return os_failed("pipe2", pipe.error());
    OwnedFd read_end(os, pipe->read_end);
    OwnedFd write_end(os, pipe->write_end);
    const bool parent_reads = what.kind() == ChildFd::Kind::kRead;
    assignments.push_back({child_fd, parent_reads ? write_end.get() : read_end.get()});
    child_ends.push_back(std::move(parent_reads ? write_end : read_end));
    parent_ends.push_back(
        {child_fd, std::move(parent_reads ? read_end : write_end),
         parent_reads ? StreamDirection::kReadOnly : StreamDirection::kWriteOnly});
  }
  auto map = ChildFdMap::make(assignments);
  if (!map) return step_failed(map.error());
  child_options.working_directory = std::move(options.working_directory);
  child_options.ids = std::move(*ids);
  auto plan = ChildPlan::make(std::move(*exec), std::move(*map), std::move(child_options));
  if (!plan) return step_failed(plan.error());

  auto started = start_child(os, *plan);
  child_ends.clear();  // the child has its copies, or is gone
  if (!started) return os_failed("spawn", started.error());
  const auto* running = std::get_if<ChildStarted>(&*started);
  OwnedFd pidfd(os, running != nullptr ? running->pidfd : -1);
  // From here a failure must not leave a running child that nobody reaps: it is killed and
  // reaped, through its pidfd or, lacking one, its pid (still ours: it is not reaped yet).
  auto abandon = [&](std::string_view step, const ReactorError& error) {
    if (running != nullptr) {
      if (pidfd.valid()) {
        (void)os.pidfd_send_signal(pidfd.get(), SIGKILL, 0);
      } else {
        (void)os.kill(running->pid, SIGKILL);
      }
      (void)sys::retry_on_eintr([&] { return os.waitpid(running->pid, 0); });
    }
    return step_failed(StepError::from(StepKind::kExec, step, error.os));
  };

  std::shared_ptr<Process> process(new Process(reactor, os, protocol, executable));
  process->pty_ = options.use_pty;
  for (ParentEnd& end : parent_ends) {
    auto pipe = std::make_unique<Pipe>(*process, end.child_fd);
    if (auto opened = pipe->open(std::move(end.fd), end.direction); !opened) {
      return abandon("watching the child's pipes", opened.error());
    }
    process->pipes_.emplace(end.child_fd, std::move(pipe));
  }
  if (running != nullptr) {
    process->pid_ = running->pid;
    Process* self = process.get();
    auto watch = ChildWatch::start(
        reactor, os, running->pid, std::move(pidfd),
        [self](const ProcessExit& exit) { self->child_reaped(ProcessEnd::exited(exit)); });
    if (!watch) return abandon("watching the child", watch.error());
    process->watch_ = std::move(*watch);
  } else {
    const auto& failed = std::get<ChildNotStarted>(*started);
    process->pid_ = failed.pid;
    Process* self = process.get();
    process->not_started_ = reactor.call_later(Duration::zero(), [self, failure = failed.failure] {
      self->child_reaped(ProcessEnd::not_started(failure, self->executable_));
    });
  }
  process->self_ = process;
  protocol.connection_made(*process);
  return process;
}

Process::Pipe* Process::pipe_for(int child_fd) {
  // A PTY has one descriptor for both directions, the child's 0, 1 and 2 alike.
  if (pty_ && child_fd >= 0 && child_fd <= 2) child_fd = 1;
  auto it = pipes_.find(child_fd);
  return it == pipes_.end() ? nullptr : it->second.get();
}

ProcessResult<Process::Pipe*> Process::written_pipe(int child_fd) {
  Pipe* pipe = pipe_for(child_fd);
  if (pipe == nullptr || !pipe->parent_writes()) {
    return tl::unexpected(ProcessError{ProcessErrc::kNoSuchChildFd, {}, child_fd});
  }
  return pipe;
}

ProcessResult<void> Process::write_to_child(int child_fd, std::span<const std::byte> data) {
  auto pipe = written_pipe(child_fd);
  if (!pipe) return tl::unexpected(pipe.error());
  (*pipe)->transport().write(data);
  return {};
}

ProcessResult<void> Process::write_to_child(int child_fd, std::string_view text) {
  return write_to_child(child_fd, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

ProcessResult<void> Process::register_producer(int child_fd, Producer& producer, bool streaming) {
  auto pipe = written_pipe(child_fd);
  if (!pipe) return tl::unexpected(pipe.error());
  if (auto done = (*pipe)->transport().register_producer(producer, streaming); !done) {
    return tl::unexpected(
        ProcessError{ProcessErrc::kOs, sys::Error{EBUSY, "register_producer", {}}, child_fd});
  }
  return {};
}

void Process::unregister_producer(int child_fd) {
  if (Pipe* pipe = pipe_for(child_fd)) pipe->transport().unregister_producer();
}

void Process::close_child_fd(int child_fd) {
  // The terminal is the child's 0, 1 and 2 at once: closing one would close all (Twisted's
  // PTYProcess ignores these too); lose_connection closes it.
  if (pty_) return;
  if (Pipe* pipe = pipe_for(child_fd)) pipe->transport().lose_connection();
}

void Process::lose_connection() {
  // Collected first: a loss may remove entries.
  std::vector<Pipe*> pipes;
  for (const auto& entry : pipes_) pipes.push_back(entry.second.get());
  for (Pipe* pipe : pipes) pipe->transport().lose_connection();
}

ProcessResult<void> Process::signal(int sig) {
  if (!watch_ || watch_->reaped()) {
    return tl::unexpected(ProcessError{ProcessErrc::kExitedAlready, {}, -1});
  }
  auto sent = watch_->signal(sig);
  if (!sent) return tl::unexpected(ProcessError{ProcessErrc::kOs, sent.error(), -1});
  return {};
}

void Process::pause_producing() {
  for (auto& [fd, pipe] : pipes_) {
    if (pipe->parent_reads()) pipe->transport().pause_producing();
  }
}

void Process::resume_producing() {
  for (auto& [fd, pipe] : pipes_) {
    if (pipe->parent_reads()) pipe->transport().resume_producing();
  }
}

void Process::pipe_lost(int child_fd) {
  // Inside the transport's connection_lost, which allows its destruction; the Pipe (its
  // handler) goes with it and is not touched again.
  pipes_.erase(child_fd);
  protocol_.child_connection_lost(child_fd);
  maybe_end();
}

void Process::child_reaped(const ProcessEnd& end) {
  end_ = end;
  protocol_.process_exited(end);
  maybe_end();
}

void Process::maybe_end() {
  if (ended_ || !end_ || !pipes_.empty()) return;
  ended_ = true;
  // Held until process_ended returns, whatever the protocol drops meanwhile.
  std::shared_ptr<Process> keep = std::move(self_);
  protocol_.process_ended(*end_);
}

}  // namespace daemonkit::core
