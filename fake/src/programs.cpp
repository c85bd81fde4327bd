// Fake programs: the code a test installs at a path, run by the kernel as the process that
// exec'd it, in turns.
//
// The turn model. The fake runs one process's code at a time, on the test's own stack, so a
// program cannot run alongside its parent; it runs where its parent would wait for it. A
// program is a step function holding its own state; each turn it makes non-blocking progress
// as its own process (its pid, its descriptors, its calls recorded and subject to faults) and
// says whether it is still running or waiting. A call that would block inside a turn fails
// with EAGAIN rather than EDEADLK (Kernel::block_forever): that is the program's cue to wait,
// so a program written like a plain blocking one still works, whatever its descriptors' flags.
//
// Turns come in rounds, each giving a turn to every program that may have something to do:
// one that said kRunning, one that has never run, and one whose stamp (Kernel::changes and
// the clock) moved since its last turn — a wait-queue wake-up, a signal or an exit anywhere
// may be what it waits for. Rounds go on until one in which nobody ran or everybody who ran
// said kWaiting: a fixpoint, reached because progress is self-reported and a waiting program
// makes none. A program that keeps saying kRunning would turn this into an endless loop, so
// rounds are bounded and the bound aborts with the programs' names.
//
// Why not re-run a program only when the descriptor it waits on changes: a waiting program
// may wait on several things, or on time, or on a signal; the stamp over-approximates all of
// them with one counter, at the price of an occasional turn that finds nothing to do (visible
// in the transcript as a failed read or write). And why is progress self-reported, not
// measured: a failed pipe write still wakes the pipe's readers (as Linux does for epoll), so
// two programs stuck on full pipes would wake each other forever if a wake-up counted as
// progress.
#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fake_syscalls_call.h"
#include "kernel.h"

namespace daemonkit::fake {
namespace detail {

void Kernel::start_program(Process& p, ino_t ino, const ExecRecord& exec) {
  // Whatever the process ran before is gone with its old image. A turn running that program
  // keeps its step alive (RunningProgram::step is shared) until the turn unwinds.
  running_programs.erase(p.pid);
  auto installed = installed_programs.find(ino);
  if (installed == installed_programs.end()) return;
  ProgramStep step = installed->second(exec);
  if (!step)
    fatal(fmt::format("the program installed at {} made no step for pid {}", exec.path, p.pid));
  running_programs[p.pid] =
      RunningProgram{std::make_shared<ProgramStep>(std::move(step)), exec.path, {}, {}};
}

Kernel::ProgramStamp Kernel::program_stamp() const {
  return {changes, clock.monotonic().count(), clock.realtime().count()};
}

}  // namespace detail

namespace {

// A round gives each program one turn; real exchanges settle in a handful (a pipeline of
// programs passing a pipe's worth of bytes each round takes one round per 64 KiB).
constexpr int kMaxRounds = 10000;

// Whether a read or write of `entry` would wait: only on a blocking descriptor that is not
// ready. (epoll_wait, poll and waitpid always count, whatever their timeout or options: code
// under test that polls with timeout 0 also means to let the world move.)
bool would_wait(const detail::FdEntry* entry, bool reading) {
  if (entry == nullptr || entry->file->nonblocking()) return false;
  const detail::Readiness ready = entry->file->readiness();
  if (reading) return !(ready.readable || ready.hangup || ready.error);
  return !(ready.writable || ready.error);
}

}  // namespace

void FakeSyscalls::run_programs() {
  auto& k = *kernel_;
  if (k.in_program_turn) detail::Kernel::fatal("run_programs() called inside a program's turn");
  const pid_t caller = k.current_pid;
  struct Restore {
    detail::Kernel& kernel;
    pid_t caller;
    ~Restore() {
      const detail::Process* p = kernel.find(caller);
      kernel.current_pid = p != nullptr && p->alive() ? caller : 0;
    }
  } restore{k, caller};
  run_program_rounds(true);
}

void FakeSyscalls::run_programs_at(WaitPoint wait) {
  auto& k = *kernel_;
  if (wait.on == WaitOn::kNothing || k.running_programs.empty() || k.in_program_turn) return;
  const pid_t caller = k.current_pid;
  // With no process current, begin_call aborts with its own message.
  if (caller == 0) return;
  if (wait.on != WaitOn::kAnything) {
    if (!would_wait(k.fd_entry(k.current(), wait.fd), wait.on == WaitOn::kReadable)) return;
  }
  {
    struct Restore {
      detail::Kernel& kernel;
      pid_t caller;
      ~Restore() { kernel.current_pid = caller; }
    } restore{k, caller};
    run_program_rounds(false);
  }
  // A program may have killed the caller (its parent, say): it died before its call, which
  // is never made, as when the before_each_call hook kills it.
  const detail::Process& p = k.processes.at(caller);
  if (!p.alive()) {
    k.current_pid = 0;
    throw ProcessEnded{caller, p.wait_status, false};
  }
}

void FakeSyscalls::run_program_rounds(bool everyone) {
  auto& k = *kernel_;
  for (int round = 0; round < kMaxRounds; ++round) {
    // Programs that start during the round (a program that spawns one) join the next one.
    std::vector<pid_t> order;
    for (const auto& [pid, run] : k.running_programs) order.push_back(pid);
    bool running = false;
    for (const pid_t pid : order) {
      auto it = k.running_programs.find(pid);
      if (it == k.running_programs.end()) continue;
      const detail::Process* p = k.find(pid);
      if (p == nullptr || !p->alive()) {
        k.running_programs.erase(it);
        continue;
      }
      const detail::Kernel::RunningProgram& run = it->second;
      const bool may_progress =
          !run.last || *run.last == Turn::kRunning || run.stamp != k.program_stamp();
      if (!everyone && !may_progress) continue;
      running = take_turn(pid) == Turn::kRunning || running;
    }
    everyone = false;
    if (!running) return;
  }
  std::vector<std::string> names;
  for (const auto& [pid, run] : k.running_programs) {
    if (run.last == Turn::kRunning) names.push_back(fmt::format("pid {} ({})", pid, run.path));
  }
  detail::Kernel::fatal(fmt::format(
      "fake programs did not settle after {} rounds of turns: {} said Turn::kRunning after each "
      "of them. A program's step must return Turn::kWaiting when its turn could do nothing.",
      kMaxRounds, fmt::join(names, ", ")));
}

Turn FakeSyscalls::take_turn(pid_t pid) {
  auto& k = *kernel_;
  const std::shared_ptr<ProgramStep> step = k.running_programs.at(pid).step;
  k.current_pid = pid;
  k.in_program_turn = true;
  struct EndTurn {
    detail::Kernel& kernel;
    ~EndTurn() { kernel.in_program_turn = false; }
  } end_turn{k};
  Turn turn = Turn::kWaiting;
  try {
    turn = (*step)(*this);
  } catch (const ProcessEnded& ended) {
    if (ended.pid != pid) throw;
    // Exited, killed, or exec'd: after an exec into another program, that one runs next round.
    turn = ended.by_exec && k.running_programs.count(pid) != 0 ? Turn::kRunning : Turn::kWaiting;
  } catch (...) {
    // A real program would die of the exception (std::terminate); the test gets it to see why.
    detail::Process& p = k.processes.at(pid);
    if (p.alive()) k.terminate(p, SIGABRT);
    k.running_programs.erase(pid);
    throw;
  }
  auto it = k.running_programs.find(pid);
  // An exec replaced the step: the new program keeps its "never ran" state.
  if (it == k.running_programs.end() || it->second.step != step) return turn;
  if (!k.processes.at(pid).alive()) {
    k.running_programs.erase(it);
    return turn;
  }
  it->second.last = turn;
  it->second.stamp = k.program_stamp();
  return turn;
}

}  // namespace daemonkit::fake
