// Pipes: a 65536-byte buffer shared by a read end and a write end. EOF once every write end
// is closed, EPIPE (and SIGPIPE, raised by the write path) once every read end is closed,
// writes of at most PIPE_BUF bytes all-or-nothing.
#include <limits.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {
namespace {

inline constexpr std::size_t kPipeCapacity = 65536;

struct Pipe {
  std::shared_ptr<Inode> inode;
  std::deque<std::byte> buffer;
  // Open descriptions of each end (not descriptors: dup and fork share a description).
  int readers = 0;
  int writers = 0;
};

class PipeEnd final : public OpenFile {
 public:
  PipeEnd(std::shared_ptr<Pipe> pipe, bool write_end, int flags)
      : OpenFile(pipe->inode, flags), pipe_(std::move(pipe)), write_end_(write_end) {
    ++(write_end_ ? pipe_->writers : pipe_->readers);
  }
  ~PipeEnd() override { --(write_end_ ? pipe_->writers : pipe_->readers); }

  std::string describe() const override {
    return fmt::format("pipe:[{}]:{}", inode_->ino, write_end_ ? "w" : "r");
  }

  sys::Result<std::size_t> read(Kernel&, Process&, std::span<std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    auto& data = pipe_->buffer;
    if (data.empty()) {
      if (pipe_->writers == 0) return std::size_t{0};
      return sys::fail(EAGAIN, "read");
    }
    const std::size_t n = std::min(buf.size(), data.size());
    std::copy_n(data.begin(), n, buf.begin());
    data.erase(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }

  sys::Result<std::size_t> write(Kernel&, Process&, std::span<const std::byte> buf) override {
    if (pipe_->readers == 0) return sys::fail(EPIPE, "write");
    if (buf.empty()) return std::size_t{0};
    const std::size_t space = kPipeCapacity - pipe_->buffer.size();
    // Up to PIPE_BUF bytes go in whole or not at all, so writers never interleave within them.
    if (buf.size() <= PIPE_BUF && space < buf.size()) return sys::fail(EAGAIN, "write");
    if (space == 0) return sys::fail(EAGAIN, "write");
    // A larger write takes what fits. Linux would then sleep until the rest fits; with no
    // reader able to run meanwhile, the fake returns the partial count instead.
    const std::size_t n = std::min(space, buf.size());
    pipe_->buffer.insert(pipe_->buffer.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }

  Readiness readiness() const override {
    Readiness r;
    if (write_end_) {
      r.writable = pipe_->readers > 0 && pipe_->buffer.size() < kPipeCapacity;
      r.error = pipe_->readers == 0;
    } else {
      r.readable = !pipe_->buffer.empty() || pipe_->writers == 0;
      r.hangup = pipe_->writers == 0;
    }
    return r;
  }

  std::string blocked_reason(const Kernel& kernel) const override {
    std::vector<pid_t> holders;
    for (const auto& [pid, p] : kernel.processes) {
      for (const auto& [fd, entry] : p.fds) {
        const auto* end = dynamic_cast<const PipeEnd*>(entry.file.get());
        if (end != nullptr && end->pipe_ == pipe_ && end->write_end_ != write_end_) {
          holders.push_back(pid);
          break;
        }
      }
    }
    if (write_end_) {
      return fmt::format("{} is full and its read end is still open in pid(s) {}", describe(),
                         fmt::join(holders, ", "));
    }
    return fmt::format(
        "{} is empty and its write end is still open in pid(s) {}; switch to a writer and "
        "write or close it first, or use O_NONBLOCK",
        describe(), fmt::join(holders, ", "));
  }

 private:
  std::shared_ptr<Pipe> pipe_;
  bool write_end_;
};

}  // namespace

sys::Result<sys::PipeFds> Kernel::pipe2(Process& p, int flags) {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) return sys::fail(EINVAL, "pipe2");
  auto pipe = std::make_shared<Pipe>();
  pipe->inode = new_inode(S_IFIFO | 0600, p.uids.effective, p.gids.effective, kPipeDev);
  const bool cloexec = (flags & O_CLOEXEC) != 0;
  const int extra = flags & (O_NONBLOCK | O_DIRECT);
  auto read_fd = allocate_fd(p, std::make_shared<PipeEnd>(pipe, false, O_RDONLY | extra),
                             cloexec, 0, "pipe2");
  if (!read_fd) return sys::fail(read_fd.error());
  auto write_fd = allocate_fd(p, std::make_shared<PipeEnd>(pipe, true, O_WRONLY | extra),
                              cloexec, 0, "pipe2");
  if (!write_fd) {
    p.fds.erase(*read_fd);
    return sys::fail(write_fd.error());
  }
  return sys::PipeFds{*read_fd, *write_fd};
}

}  // namespace daemonkit::fake::detail
