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

// Linux keeps a pipe's data in up to 16 page-sized buffers. A write first tops up the last
// buffer with its trailing (size mod 4096) bytes if they fit there entirely, then fills new
// buffers; so the capacity seen by writers depends on the pattern of writes, as on Linux, and
// a write of at most PIPE_BUF bytes never needs more than one buffer: all or nothing.
inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kMaxPages = 16;

struct PipePage {
  std::string data;
  std::size_t offset = 0;  // bytes of data already read
  [[nodiscard]] std::size_t unread() const { return data.size() - offset; }
};

struct Pipe {
  Kernel* kernel = nullptr;
  std::shared_ptr<Inode> inode;
  std::deque<PipePage> pages;
  // Open descriptions of each end (not descriptors: dup and fork share a description).
  int readers = 0;
  int writers = 0;
  // Linux's two wait queues: epoll on a read end waits on rd_wait, on a write end on wr_wait.
  char rd_wait = 0;
  char wr_wait = 0;
};

namespace {

// A read end, a write end, or both at once (a FIFO opened O_RDWR, which Linux counts as a
// reader and a writer).
enum class Ends { kRead, kWrite, kBoth };

class PipeEnd final : public OpenFile {
 public:
  PipeEnd(std::shared_ptr<Pipe> pipe, Ends ends, int flags)
      : OpenFile(pipe->inode, flags), pipe_(std::move(pipe)), ends_(ends) {
    if (reads()) ++pipe_->readers;
    if (writes()) ++pipe_->writers;
  }
  ~PipeEnd() override {
    if (reads()) --pipe_->readers;
    if (writes()) --pipe_->writers;
    // pipe_release: the last reader or writer went while the other side remains.
    if ((pipe_->readers == 0) != (pipe_->writers == 0)) {
      pipe_->kernel->wake(&pipe_->rd_wait, 0);
      pipe_->kernel->wake(&pipe_->wr_wait, 0);
    }
  }

  const void* wait_queue(const Process&) const override {
    return ends_ == Ends::kWrite ? &pipe_->wr_wait : &pipe_->rd_wait;
  }

  std::string describe() const override {
    return fmt::format("pipe:[{}]:{}", inode_->ino,
                       ends_ == Ends::kBoth ? "rw" : (writes() ? "w" : "r"));
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
      PipePage& page = pages.front();
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
    if (writes()) {
      // Room means EPOLLOUT even with no reader left (EPOLLERR says the rest).
      r.writable = pipe_->pages.size() < kMaxPages;
      r.error = pipe_->readers == 0;
    }
    if (reads()) {
      // With every writer gone, an empty pipe reports EPOLLHUP alone (read gives EOF).
      r.readable = !pipe_->pages.empty();
      r.hangup = pipe_->writers == 0;
    }
    return r;
  }

  std::string blocked_reason(const Kernel& kernel) const override {
    // A write waits for room, a read for bytes; an end that does both waits for what its
    // pipe lacks.
    const bool waits_as_writer =
        ends_ == Ends::kWrite || (ends_ == Ends::kBoth && pipe_->pages.size() >= kMaxPages);
    std::vector<pid_t> holders;
    for (const auto& [pid, p] : kernel.processes) {
      for (const auto& [fd, entry] : p.fds) {
        const auto* end = dynamic_cast<const PipeEnd*>(entry.file.get());
        if (end != nullptr && end->pipe_ == pipe_ &&
            (waits_as_writer ? end->reads() : end->writes())) {
          holders.push_back(pid);
          break;
        }
      }
    }
    if (waits_as_writer) {
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
      pages.push_back(PipePage{std::string(bytes + done, n), 0});
      done += n;
    }
    return done;
  }

  [[nodiscard]] bool reads() const { return ends_ != Ends::kWrite; }
  [[nodiscard]] bool writes() const { return ends_ != Ends::kRead; }

  std::shared_ptr<Pipe> pipe_;
  Ends ends_;
};

}  // namespace

sys::Result<sys::PipeFds> Kernel::pipe2(Process& p, int flags) {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) return sys::fail(EINVAL, "pipe2");
  auto pipe = std::make_shared<Pipe>();
  pipe->kernel = this;
  pipe->inode = new_inode(S_IFIFO | 0600, p.uids.effective, p.gids.effective, kPipeDev);
  const bool cloexec = (flags & O_CLOEXEC) != 0;
  const int extra = flags & (O_NONBLOCK | O_DIRECT);
  auto read_fd = allocate_fd(p, std::make_shared<PipeEnd>(pipe, Ends::kRead, O_RDONLY | extra),
                             cloexec, 0, "pipe2");
  if (!read_fd) return sys::fail(read_fd.error());
  auto write_fd = allocate_fd(p, std::make_shared<PipeEnd>(pipe, Ends::kWrite, O_WRONLY | extra),
                              cloexec, 0, "pipe2");
  if (!write_fd) {
    p.fds.erase(*read_fd);
    return sys::fail(write_fd.error());
  }
  return sys::PipeFds{*read_fd, *write_fd};
}

sys::Result<std::shared_ptr<OpenFile>> Kernel::open_fifo(const std::shared_ptr<Inode>& node,
                                                         int status, const char* call) {
  std::shared_ptr<Pipe> pipe = node->fifo.lock();
  if (!pipe) {
    pipe = std::make_shared<Pipe>();
    pipe->kernel = this;
    pipe->inode = node;
    node->fifo = pipe;
  }
  const int access = status & O_ACCMODE;
  const bool nonblocking = (status & O_NONBLOCK) != 0;
  if (access == O_WRONLY && pipe->readers == 0) {
    if (nonblocking) return sys::fail(ENXIO, call);
    return would_block<std::shared_ptr<OpenFile>>(
        call, fmt::format("FIFO inode {} has no reader; open it for reading first, or use "
                          "O_NONBLOCK (which fails with ENXIO)",
                          node->ino));
  }
  if (access == O_RDONLY && pipe->writers == 0 && !nonblocking) {
    return would_block<std::shared_ptr<OpenFile>>(
        call, fmt::format("FIFO inode {} has no writer; open it for writing first, or use "
                          "O_NONBLOCK",
                          node->ino));
  }
  const Ends ends =
      access == O_RDWR ? Ends::kBoth : (access == O_WRONLY ? Ends::kWrite : Ends::kRead);
  return std::shared_ptr<OpenFile>(std::make_shared<PipeEnd>(pipe, ends, status));
}

}  // namespace daemonkit::fake::detail
