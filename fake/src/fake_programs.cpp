// The ready-made fake programs. Each is a small state machine whose step makes as much
// progress as it can and reports Turn::kRunning when it made any, Turn::kWaiting when it made
// none (see programs.cpp for the turn model).
#include "daemonkit/fake/fake_programs.h"

#include <errno.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace daemonkit::fake::programs {
namespace {

// A failure that only means "not now": the program waits (EAGAIN) or tries again (EINTR).
bool not_now(const sys::Error& error) { return error.code == EAGAIN || error.code == EINTR; }

Turn waiting_after(bool progressed) { return progressed ? Turn::kRunning : Turn::kWaiting; }

// Writes texts to descriptors in order, each completely, then exits with a code.
class WriteThenExit {
 public:
  WriteThenExit(std::vector<std::pair<int, std::string>> writes, int code)
      : writes_(std::move(writes)), code_(code) {}

  Turn operator()(sys::Syscalls& os) {
    bool progressed = false;
    while (next_ < writes_.size()) {
      const auto& [fd, text] = writes_[next_];
      if (offset_ == text.size()) {
        ++next_;
        offset_ = 0;
        continue;
      }
      auto n = os.write(fd, text.data() + offset_, text.size() - offset_);
      if (!n) {
        if (not_now(n.error())) return waiting_after(progressed);
        os.exit_now(1);
      }
      offset_ += *n;
      progressed = true;
    }
    os.exit_now(code_);
    return Turn::kWaiting;  // not reached: exit_now ends the process
  }

 private:
  std::vector<std::pair<int, std::string>> writes_;
  int code_;
  std::size_t next_ = 0;
  std::size_t offset_ = 0;
};

class Cat {
 public:
  Turn operator()(sys::Syscalls& os) {
    bool progressed = false;
    for (;;) {
      if (pending_ < held_) {
        auto n = os.write(1, buffer_.data() + pending_, held_ - pending_);
        if (!n) {
          if (not_now(n.error())) return waiting_after(progressed);
          os.exit_now(1);
        }
        pending_ += *n;
        progressed = true;
        continue;
      }
      if (eof_) os.exit_now(0);
      // A pipe's worth at a time, as the pipe holds at most that much.
      buffer_.resize(kChunk);
      auto n = os.read(0, buffer_.data(), buffer_.size());
      if (!n) {
        if (not_now(n.error())) return waiting_after(progressed);
        os.exit_now(1);
      }
      eof_ = *n == 0;
      held_ = *n;
      pending_ = 0;
      progressed = true;
    }
  }

 private:
  static constexpr std::size_t kChunk = 65536;
  std::string buffer_;
  std::size_t held_ = 0;     // bytes of buffer_ read from stdin
  std::size_t pending_ = 0;  // of which written to stdout already
  bool eof_ = false;
};

}  // namespace

FakeProgram cat() {
  return [](const ExecRecord&) -> ProgramStep { return Cat{}; };
}

FakeProgram exit_with(int code) {
  return [code](const ExecRecord&) -> ProgramStep {
    return [code](sys::Syscalls& os) {
      os.exit_now(code);
      return Turn::kWaiting;  // not reached: exit_now ends the process
    };
  };
}

FakeProgram write_then_exit(std::string out, std::string err, int code) {
  return [out = std::move(out), err = std::move(err), code](const ExecRecord&) -> ProgramStep {
    return WriteThenExit({{1, out}, {2, err}}, code);
  };
}

FakeProgram write_to_fd(int fd, std::string text, int code) {
  return [fd, text = std::move(text), code](const ExecRecord&) -> ProgramStep {
    return WriteThenExit({{fd, text}}, code);
  };
}

FakeProgram never_reads() {
  return [](const ExecRecord&) -> ProgramStep {
    return [](sys::Syscalls&) { return Turn::kWaiting; };
  };
}

FakeProgram echo_args() {
  return [](const ExecRecord& exec) -> ProgramStep {
    std::string text;
    for (const auto& arg : exec.argv) text += arg + "\n";
    text += "\n";
    for (const auto& entry : exec.envp) text += entry + "\n";
    return WriteThenExit({{1, std::move(text)}}, 0);
  };
}

}  // namespace daemonkit::fake::programs
