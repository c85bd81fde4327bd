// Pipes: 16 page-sized buffers shared by a read end and a write end. EOF once every write end
// is closed, EPIPE (and SIGPIPE, raised by the write path) once every read end is closed,
// writes of at most PIPE_BUF bytes all-or-nothing.
#include <limits.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <string>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {
namespace {

// Linux keeps a pipe's data in up to 16 page-sized buffers. A write first tops up the last
// buffer with its trailing (size mod 4096) bytes if they fit there entirely, then fills new
// buffers; so the capacity seen by writers depends on the pattern of writes, as on Linux, and
// a write of at most PIPE_BUF bytes never needs more than one buffer: all or nothing.
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kMaxPages = 16;

struct Page {
  std::string data;
  std::size_t offset = 0;  // bytes of data already read
  [[nodiscard]] std::size_t unread() const { return data.size() - offset; }
};

struct Pipe {
  Kernel* kernel = nullptr;
  std::shared_ptr<Inode> inode;
  std::deque<Page> pages;
  // Open descriptions of each end (not descriptors: dup and fork share a description).
  int readers = 0;
  int writers = 0;
  // Linux's two wait queues: epoll on a read end waits on rd_wait, on a write end on wr_wait.
  char rd_wait = 0;
  char wr_wait = 0;
};

class PipeEnd final : public OpenFile {
 public:
  PipeEnd(std::shared_ptr<Pipe> pipe, bool write_end, int flags)
      : OpenFile(pipe->inode, flags), pipe_(std::move(pipe)), write_end_(write_end) {
    ++(write_end_ ? pipe_->writers : pipe_->readers);
  }
  ~PipeEnd() override {
    --(write_end_ ? pipe_->writers : pipe_->readers);
    // pipe_release: the last reader or writer went while the other side remains.
    if ((pipe_->readers == 0) != (pipe_->writers == 0)) {
      pipe_->kernel->wake(&pipe_->rd_wait, 0);
      pipe_->kernel->wake(&pipe_->wr_wait, 0);
    }
  }

  const void* wait_queue(const Process&) const override {
    return write_end_ ? &pipe_->wr_wait : &pipe_->rd_wait;
  }

  std::string describe() const override {
    return fmt::format("pipe:[{}]:{}", inode_->ino, write_end_ ? "w" : "r");
  }

  sys::Result<std::size_t> read(Kernel& kernel, Process&, std::span<std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    auto& pages = pipe_->pages;
    if (pages.empty()) {
      if (pipe_->writers == 0) return std::size_t{0};
      return sys::fail(EAGAIN, "read");
    }
    std::size_t done = 0;
    bool freed_a_full_pipe = false;
    while (done < buf.size() && !pages.empty()) {
      Page& page = pages.front();
      const std::size_t n = std::min(buf.size() - done, page.unread());
      std::memcpy(buf.data() + done, page.data.data() + page.offset, n);
      page.offset += n;
      done += n;
      if (page.unread() == 0) {
        freed_a_full_pipe |= pages.size() >= kMaxPages;
        pages.pop_front();
      }
    }
    // pipe_read wakes writers only when it made room in a full pipe.
    if (freed_a_full_pipe) kernel.wake(&pipe_->wr_wait, EPOLLOUT | EPOLLWRNORM);
    return done;
  }

  sys::Result<std::size_t> write(Kernel& kernel, Process&,
                                 std::span<const std::byte> buf) override {
    // Linux lets an empty write succeed before it even looks for readers.
    if (buf.empty()) return std::size_t{0};
    // Every other write wakes the readers' queue once polled, even one that fails ("Epoll
    // nonsensically wants a wakeup whether the pipe was already empty or not").
    auto result = write_pages(buf);
    kernel.wake(&pipe_->rd_wait, EPOLLIN | EPOLLRDNORM);
    return result;
  }

  Readiness readiness() const override {
    Readiness r;
    if (write_end_) {
      // Room means EPOLLOUT even with no reader left (EPOLLERR says the rest).
      r.writable = pipe_->pages.size() < kMaxPages;
      r.error = pipe_->readers == 0;
    } else {
      // With every writer gone, an empty pipe reports EPOLLHUP alone (read gives EOF).
      r.readable = !pipe_->pages.empty();
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
  // The bytes go in as Linux fills its pages.
  sys::Result<std::size_t> write_pages(std::span<const std::byte> buf) {
    if (pipe_->readers == 0) return sys::fail(EPIPE, "write");
    auto& pages = pipe_->pages;
    const auto* bytes = reinterpret_cast<const char*>(buf.data());
    std::size_t done = 0;
    const std::size_t tail = buf.size() % kPageSize;
    if (tail != 0 && !pages.empty() && pages.back().data.size() + tail <= kPageSize) {
      pages.back().data.append(bytes, tail);
      done = tail;
    }
    while (done < buf.size()) {
      if (pages.size() >= kMaxPages) {
        // Linux would sleep here until a reader makes room. Nothing was written yet for a
        // write of at most PIPE_BUF bytes; a larger one returns what it wrote so far (in
        // the fake, no reader can run meanwhile).
        if (done == 0) return sys::fail(EAGAIN, "write");
        return done;
      }
      const std::size_t n = std::min(kPageSize, buf.size() - done);
      pages.push_back(Page{std::string(bytes + done, n), 0});
      done += n;
    }
    return done;
  }

  std::shared_ptr<Pipe> pipe_;
  bool write_end_;
};

}  // namespace

sys::Result<sys::PipeFds> Kernel::pipe2(Process& p, int flags) {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) return sys::fail(EINVAL, "pipe2");
  auto pipe = std::make_shared<Pipe>();
  pipe->kernel = this;
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
