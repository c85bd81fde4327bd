#include "daemonkit/core/process/process.h"

#include <fcntl.h>

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
    if (!entry) return step_failed(StepError::from(StepKind::kPrivileges, "getpwuid", entry.error()));
    if (!entry->has_value()) {
      auto gids = os.getresgid();
      if (!gids) return step_failed(StepError::from(StepKind::kPrivileges, "getresgid", gids.error()));
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
    if (!uids) return step_failed(StepError::from(StepKind::kPrivileges, "getresuid", uids.error()));
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

// One pipe to the child, as the parent holds it: a stream transport over the parent's end.
class Process::Pipe final : public StreamHandler {
 public:
  Pipe(Process& process, int child_fd) : process_(process), child_fd_(child_fd) {}

  ReactorResult<void> open(OwnedFd parent_end, bool parent_reads) {
    StreamTransport::Options options;
    options.read = parent_reads;
    options.write = !parent_reads;
    auto made = StreamTransport::open(process_.reactor_, process_.os_, std::move(parent_end), *this,
                                      options);
    if (!made) return tl::unexpected(made.error());
    transport_ = std::move(*made);
    return {};
  }

  StreamTransport& transport() { return *transport_; }

  void data_received(std::span<const std::byte> data) override {
    process_.protocol_.child_data_received(child_fd_, data);
  }
  void connection_lost(const StreamLoss& /*why*/) override { process_.pipe_lost(child_fd_); }

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

StepResult<std::shared_ptr<Process>> Process::spawn(Reactor& reactor, sys::Syscalls& os,
                                                    ProcessProtocol& protocol,
                                                    SpawnOptions options) {
  if (options.use_pty && !options.child_fds.empty()) {
    return refused("child_fds cannot be combined with use_pty");
  }
  if (options.use_pty) return refused("use_pty: not supported yet");
  if (options.child_fds.empty()) options.child_fds = default_child_fds();
  for (const auto& [child_fd, what] : options.child_fds) {
    if (child_fd < 0 || child_fd >= ChildFdMap::kMaxChildFd) {
      return refused(fmt::format("child fd {}: not between 0 and {}", child_fd,
                                 ChildFdMap::kMaxChildFd - 1));
    }
    if (what.kind() == ChildFd::Kind::kInherit && what.parent_fd() < 0) {
      return refused(fmt::format("child fd {}: parent fd {} is not a descriptor", child_fd,
                                 what.parent_fd()));
    }
  }
  const std::string executable = options.executable;
  auto exec = ExecArguments::make(std::move(options.executable), std::move(options.argv),
                                  std::move(options.environment));
  if (!exec) return step_failed(exec.error());
  auto ids = resolve_ids(os, options);
  if (!ids) return step_failed(ids.error());

  // The pipes: the parent's ends (non-blocking: the reactor drives them) and the child's
  // (blocking, as a program expects its standard descriptors). All close-on-exec: the fd map
  // gives the child its ends, and no other child this process spawns gets any.
  struct ParentEnd {
    int child_fd;
    OwnedFd fd;
    bool parent_reads;
  };
  std::vector<ParentEnd> parent_ends;
  std::vector<OwnedFd> child_ends;
  std::vector<FdAssignment> assignments;
  for (const auto& [child_fd, what] : options.child_fds) {
    if (what.kind() == ChildFd::Kind::kInherit) {
      assignments.push_back({child_fd, what.parent_fd()});
      continue;
    }
    auto pipe = os.pipe2(O_CLOEXEC);
    if (!pipe) return os_failed("pipe2", pipe.error());
    const bool parent_reads = what.kind() == ChildFd::Kind::kRead;
    OwnedFd read_end(os, pipe->read_end);
    OwnedFd write_end(os, pipe->write_end);
    OwnedFd& parent = parent_reads ? read_end : write_end;
    auto flags = os.fcntl(parent.get(), F_GETFL, 0);
    if (!flags) return os_failed("fcntl(F_GETFL)", flags.error());
    if (auto set = os.fcntl(parent.get(), F_SETFL, *flags | O_NONBLOCK); !set) {
      return os_failed("fcntl(F_SETFL, O_NONBLOCK)", set.error());
    }
    OwnedFd& child = parent_reads ? write_end : read_end;
    assignments.push_back({child_fd, child.get()});
    child_ends.push_back(std::move(child));
    parent_ends.push_back({child_fd, std::move(parent), parent_reads});
  }
  auto map = ChildFdMap::make(assignments);
  if (!map) return step_failed(map.error());
  ChildOptions child_options;
  child_options.working_directory = std::move(options.working_directory);
  child_options.ids = std::move(*ids);
  auto plan = ChildPlan::make(std::move(*exec), std::move(*map), std::move(child_options));
  if (!plan) return step_failed(plan.error());

  auto started = start_child(os, *plan);
  child_ends.clear();  // the child has its copies, or is gone
  if (!started) return os_failed("spawn", started.error());

  std::shared_ptr<Process> process(new Process(reactor, os, protocol, executable));
  for (ParentEnd& end : parent_ends) {
    auto pipe = std::make_unique<Pipe>(*process, end.child_fd);
    // A failure here leaves the pipes made so far to the process: they close with it.
    if (auto opened = pipe->open(std::move(end.fd), end.parent_reads); !opened) {
      if (const auto* run = std::get_if<ChildStarted>(&*started)) {
        // The child runs with nobody to reap it: ours to end.
        (void)os.pidfd_send_signal(run->pidfd, SIGKILL, 0);
        (void)os.waitpid(run->pid, 0);
        (void)os.close(run->pidfd);
      }
      return step_failed(StepError::from(StepKind::kExec, "epoll_ctl", opened.error().os));
    }
    process->pipes_.emplace(end.child_fd, std::move(pipe));
  }
  process->self_ = process;

  if (const auto* run = std::get_if<ChildStarted>(&*started)) {
    process->pid_ = run->pid;
    Process* self = process.get();
    auto watch = ChildWatch::start(reactor, os, run->pid, OwnedFd(os, run->pidfd),
                                   [self](const ProcessExit& exit) {
                                     self->child_reaped(ProcessEnd::exited(exit));
                                   });
    if (!watch) {
      // As above: nobody would reap it. The pidfd went with the failed watch, so by pid: the
      // child is ours and unreaped, so the pid is still its.
      (void)os.kill(run->pid, SIGKILL);
      (void)os.waitpid(run->pid, 0);
      process->self_.reset();
      return step_failed(StepError::from(StepKind::kExec, "epoll_ctl", watch.error().os));
    }
    process->watch_ = std::move(*watch);
  } else {
    const auto& failed = std::get<ChildNotStarted>(*started);
    process->pid_ = failed.pid;
    Process* self = process.get();
    process->not_started_ = reactor.call_later(
        Duration::zero(), [self, failure = failed.failure] {
          self->child_reaped(ProcessEnd::not_started(failure, self->executable_));
        });
  }
  protocol.connection_made(*process);
  return process;
}

ProcessResult<void> Process::write_to_child(int child_fd, std::span<const std::byte> data) {
  auto it = pipes_.find(child_fd);
  if (it == pipes_.end() || !it->second->transport().writable()) {
    return tl::unexpected(ProcessError{ProcessErrc::kNoSuchChildFd, {}, child_fd});
  }
  it->second->transport().write(data);
  return {};
}

ProcessResult<void> Process::write_to_child(int child_fd, std::string_view text) {
  return write_to_child(child_fd, std::as_bytes(std::span<const char>(text.data(), text.size())));
}

void Process::close_child_fd(int child_fd) {
  auto it = pipes_.find(child_fd);
  if (it == pipes_.end()) return;
  it->second->transport().lose_connection();
}

void Process::lose_connection() {
  // Twisted's order: stdin, stderr, stdout. Collected first: a loss may remove entries.
  std::vector<int> fds;
  for (const auto& entry : pipes_) fds.push_back(entry.first);
  for (int fd : fds) close_child_fd(fd);
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
    if (pipe->transport().readable()) pipe->transport().pause_producing();
  }
}

void Process::resume_producing() {
  for (auto& [fd, pipe] : pipes_) {
    if (pipe->transport().readable()) pipe->transport().resume_producing();
  }
}

void Process::pipe_lost(int child_fd) {
  auto it = pipes_.find(child_fd);
  if (it == pipes_.end()) return;
  // The transport is inside its own callback: it is destroyed once that returns.
  std::unique_ptr<Pipe> pipe = std::move(it->second);
  pipes_.erase(it);
  reactor_.call_later(Duration::zero(), [doomed = std::shared_ptr<Pipe>(std::move(pipe))] {});
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
