#include "daemonkit/core/reactor/stream_transport.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/sys/hot_path.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

namespace {

// Buffers handed to one writev: well under IOV_MAX (1024), and enough that a queue of small
// writes goes out in one call. More stay queued for the next writable event.
constexpr std::size_t kMaxIovecs = 64;

// One read buffer for every transport of the thread, not one per transport: an idle connection
// then costs no 64 KiB, and a handler only ever sees it during data_received.
std::span<std::byte> read_buffer(std::size_t size) {
  thread_local std::vector<std::byte> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return {buffer.data(), size};
}

struct iovec as_iovec(std::span<const std::byte> bytes) {
  // writev never writes through iov_base; the cast only satisfies its C type.
  return {const_cast<std::byte*>(bytes.data()),
          bytes.size()};  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

}  // namespace

std::span<const std::byte> StreamTransport::Chunk::unsent() const {
  const auto whole =
      std::visit([](const auto& b) { return std::as_bytes(std::span(b.data(), b.size())); }, bytes);
  return whole.subspan(sent);
}

DAEMONKIT_HOT StreamTransport::StreamTransport(Reactor& reactor, sys::Syscalls& os, OwnedFd fd,
                                               StreamHandler& handler, StreamOptions options)
    : reactor_(reactor),
      os_(os),
      handler_(handler),
      fd_(fd.release()),
      direction_(static_cast<std::uint8_t>(options.direction)) {
  options.read_size = std::max<std::size_t>(options.read_size, 1);
  options.reads_per_wakeup = std::max(options.reads_per_wakeup, 1);
  const StreamOptions defaults;
  if (options.high_water != defaults.high_water || options.read_size != defaults.read_size ||
      options.reads_per_wakeup != defaults.reads_per_wakeup) {
    rare().options = options;
    custom_options_ = true;
  }
}

StreamTransport::Rare& StreamTransport::rare() {
  if (!rare_) rare_ = std::make_unique<Rare>();
  return *rare_;
}

void StreamTransport::trim_rare() {
  if (!rare_ || custom_options_) return;
  if (rare_->head != rare_->queue.size() || rare_->queue.capacity() != 0) return;
  if (rare_->producer != nullptr || rare_->pending_loss.active()) return;
  rare_.reset();
}

DAEMONKIT_HOT const StreamOptions& StreamTransport::options() const {
  static const StreamOptions kDefaults;
  return rare_ ? rare_->options : kDefaults;
}

ReactorResult<std::unique_ptr<StreamTransport>> StreamTransport::open(Reactor& reactor,
                                                                      sys::Syscalls& os, OwnedFd fd,
                                                                      StreamHandler& handler,
                                                                      StreamOptions options) {
  auto transport = std::make_unique<StreamTransport>(reactor, os, std::move(fd), handler, options);
  if (auto attached = transport->attach(); !attached) return tl::unexpected(attached.error());
  return transport;
}

DAEMONKIT_HOT ReactorResult<void> StreamTransport::attach(bool known_nonblocking) {
  // A blocking descriptor would stall the whole loop on the first read or write it cannot
  // finish at once.
  if (!known_nonblocking) {
    auto flags = os_.fcntl(fd_, F_GETFL, 0);
    if (!flags) return reactor_fail(flags.error());
    if ((*flags & O_NONBLOCK) == 0) {
      if (auto set = os_.fcntl(fd_, F_SETFL, *flags | O_NONBLOCK); !set) {
        return reactor_fail(set.error());
      }
    }
  }
  // Nobody could hear a loss yet: the failure is returned instead (the descriptor is closed
  // with the transport).
  if (auto failed = update_watchers()) return reactor_fail(std::move(*failed));
  return {};
}

DAEMONKIT_HOT StreamTransport::~StreamTransport() {
  if (rare_ && rare_->pending_loss.active()) (void)rare_->pending_loss.cancel();
  if (reader_watched_ || writer_watched_) reactor_.remove_before_close(fd_);
  (void)close_fd();
}

DAEMONKIT_HOT sys::Result<void> StreamTransport::close_fd() {
  if (fd_ < 0) return {};
  // Never retried: the descriptor is gone whatever close says.
  return os_.close(std::exchange(fd_, -1));
}

// ---- Writing --------------------------------------------------------------------------------

void StreamTransport::refuse(const char* what) const {
  throw std::logic_error(
      fmt::format("StreamTransport: {} on a read-only descriptor (fd {})", what, fd_));
}

std::size_t StreamTransport::written(const sys::Result<std::size_t>& wrote) {
  if (wrote) return *wrote;
  if (wrote.error().code != EAGAIN) lose(LossReason::lost(wrote.error()), false);
  return 0;
}

DAEMONKIT_HOT std::size_t StreamTransport::write_now(std::span<const struct iovec> iov) {
  if (!queue_empty() || fd_ < 0) return 0;
  const auto wrote = sys::retry_on_eintr([&] { return send(iov, nullptr); });
  // A pull producer is asked again on the next writable event that finds the buffer drained;
  // with nothing queued, that event is watched for it. Its bytes used to queue instead, a
  // copy of every buffer: a pipe to cat ran at 0.81x a raw poll loop with it.
  if (wrote && producer() != nullptr && !streaming_) ask_producer_ = true;
  return written(wrote);
}

// A vector with a read index rather than a std::deque: libstdc++'s deque allocates a 512-byte
// block and its map at construction, some 600 bytes for every idle connection; this owns no
// heap block until a write has to wait, and gives it back once everything is sent.
void StreamTransport::pop_front() {
  Rare& r = *rare_;
  r.queue[r.head] = Chunk{};  // its bytes are freed now, not when the queue empties
  if (++r.head == r.queue.size()) {
    release_queue();
  } else if (r.head >= 32 && r.head * 2 >= r.queue.size()) {
    // A queue that never quite drains (a steady bulk sender) would otherwise only grow.
    r.queue.erase(r.queue.begin(), r.queue.begin() + static_cast<std::ptrdiff_t>(r.head));
    r.head = 0;
  }
}

// Gives back the queue's block, and the rare block itself when nothing else needs it.
void StreamTransport::release_queue() {
  if (!rare_) return;
  std::vector<Chunk>().swap(rare_->queue);
  rare_->head = 0;
  rare_->buffered = 0;
  trim_rare();
}

void StreamTransport::enqueue(Chunk chunk) {
  const std::size_t n = chunk.unsent().size();
  if (n == 0) return;
  Rare& r = rare();
  r.buffered += n;
  r.queue.push_back(std::move(chunk));
}

DAEMONKIT_HOT void StreamTransport::write(std::span<const std::byte> bytes) {
  if (!writes()) refuse("write");
  if (!accepts_writes() || bytes.empty()) return;
  const struct iovec iov[] = {as_iovec(bytes)};
  // With nothing queued and no producer (both live in rare_), write_now comes down to one
  // write(2): made here, the common echo of a request skips two calls. Marking write_now and
  // send inline instead left GCC calling them: 339 instructions per round trip, not 300
  // (bench/net/callgrind.sh).
  const std::size_t sent =
      rare_ == nullptr && fd_ >= 0
          ? written(sys::retry_on_eintr([&] { return os_.write(fd_, bytes.data(), bytes.size()); }))
          : write_now(iov);
  if (lost_) return;
  // All of it went, with nothing queued before and no producer: nothing that decides the
  // watchers or a producer's pause changed.
  if (sent == bytes.size() && !rare_) return;
  const auto rest = bytes.subspan(sent);
  if (!rest.empty()) {
    enqueue(Chunk{std::string(reinterpret_cast<const char*>(rest.data()), rest.size()), 0, {}});
  }
  after_write();
}

DAEMONKIT_HOT void StreamTransport::write(std::string_view bytes) {
  write(std::as_bytes(std::span(bytes)));
}

void StreamTransport::write(std::string&& bytes) {
  if (!writes()) refuse("write");
  if (!accepts_writes() || bytes.empty()) return;
  write_owned(Chunk{std::move(bytes), 0, {}});
}

void StreamTransport::write(std::vector<std::byte>&& bytes) {
  if (!writes()) refuse("write");
  if (!accepts_writes() || bytes.empty()) return;
  write_owned(Chunk{std::move(bytes), 0, {}});
}

void StreamTransport::write_owned(Chunk chunk) {
  const struct iovec iov[] = {as_iovec(chunk.unsent())};
  chunk.sent = write_now(iov);
  if (lost_) return;
  enqueue(std::move(chunk));
  after_write();
}

sys::Result<void> StreamTransport::write_with_descriptors(std::span<const std::byte> bytes,
                                                          std::span<const int> fds) {
  if (!writes()) refuse("write_with_descriptors");
  if (fds.empty()) {
    write(bytes);
    return {};
  }
  if (bytes.empty())
    return sys::fail(sys::Error{EINVAL, "sendmsg", "descriptors need a byte to travel with"});
  if (fds.size() > kMaxDescriptorsPerWrite) {
    return sys::fail(sys::Error{EINVAL, "sendmsg", fmt::format("{} descriptors", fds.size())});
  }
  if (!accepts_writes()) return {};
  // Copies, whether sent now or queued: the caller's may be closed as soon as this returns,
  // and a bad one fails here, to the caller, rather than as the connection's sendmsg.
  std::vector<OwnedFd> copies;
  copies.reserve(fds.size());
  for (const int fd : fds) {
    auto copy = os_.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (!copy) return sys::fail(copy.error());
    copies.emplace_back(os_, *copy);
  }
  Chunk chunk{std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), 0,
              std::move(copies)};
  if (queue_empty() && fd_ >= 0) {
    const struct iovec iov[] = {as_iovec(chunk.unsent())};
    auto sent = sys::retry_on_eintr([&] { return send(iov, &chunk.fds); });
    if (!sent) {
      if (sent.error().code != EAGAIN) {
        lose(LossReason::lost(sent.error()), false);
        return {};
      }
    } else {
      chunk.sent = *sent;
      chunk.fds.clear();  // they went with the first byte
    }
  }
  enqueue(std::move(chunk));
  after_write();
  return {};
}

DAEMONKIT_HOT sys::Result<std::size_t> StreamTransport::send(std::span<const struct iovec> iov,
                                                             const std::vector<OwnedFd>* fds) {
  if (fds != nullptr && !fds->empty()) return send_with_descriptors(iov, *fds);
  // One buffer, the usual reply, goes by write(2): writev has the kernel copy in and check an
  // iovec array first.
  if (iov.size() == 1) return os_.write(fd_, iov[0].iov_base, iov[0].iov_len);
  return os_.writev(fd_, iov);
}

sys::Result<std::size_t> StreamTransport::send_with_descriptors(std::span<const struct iovec> iov,
                                                                const std::vector<OwnedFd>& fds) {
  std::vector<int> numbers;
  numbers.reserve(fds.size());
  for (const OwnedFd& f : fds) numbers.push_back(f.get());
  const std::size_t payload = numbers.size() * sizeof(int);
  std::vector<std::byte> control(CMSG_SPACE(payload));
  msghdr msg{};
  // sendmsg never writes through msg_iov; the cast only satisfies its C type.
  msg.msg_iov =
      const_cast<struct iovec*>(iov.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  msg.msg_iovlen = iov.size();
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* header = CMSG_FIRSTHDR(&msg);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(payload);
  std::memcpy(CMSG_DATA(header), numbers.data(), payload);
  return os_.sendmsg(fd_, &msg, 0);
}

void StreamTransport::write_sequence(std::span<const std::span<const std::byte>> buffers) {
  if (!writes()) refuse("write_sequence");
  if (!accepts_writes()) return;
  std::vector<struct iovec> iov;
  for (const auto& b : buffers) {
    if (!b.empty() && iov.size() < kMaxIovecs) iov.push_back(as_iovec(b));
  }
  std::size_t sent = iov.empty() ? 0 : write_now(iov);
  if (lost_) return;
  for (const auto& b : buffers) {
    const std::size_t skip = std::min(sent, b.size());
    sent -= skip;
    const auto rest = b.subspan(skip);
    if (!rest.empty()) {
      enqueue(Chunk{std::string(reinterpret_cast<const char*>(rest.data()), rest.size()), 0, {}});
    }
  }
  after_write();
}

void StreamTransport::write_sequence(std::vector<std::string>&& buffers) {
  if (!writes()) refuse("write_sequence");
  if (!accepts_writes()) return;
  std::vector<struct iovec> iov;
  for (const auto& b : buffers) {
    if (!b.empty() && iov.size() < kMaxIovecs) iov.push_back(as_iovec(std::as_bytes(std::span(b))));
  }
  std::size_t sent = iov.empty() ? 0 : write_now(iov);
  if (lost_) return;
  for (auto& b : buffers) {
    Chunk chunk{std::move(b), 0, {}};
    chunk.sent = std::min(sent, chunk.unsent().size());
    sent -= chunk.sent;
    enqueue(std::move(chunk));
  }
  after_write();
}

void StreamTransport::after_write() {
  if (lost_) return;
  const detail::Liveness::Guard alive(liveness_);
  maybe_pause_producer();
  if (alive.alive() && !lost_) (void)watch(false);
}

void StreamTransport::maybe_pause_producer() {
  Producer* producer = this->producer();
  if (producer == nullptr || !streaming_ || producer_paused_) return;
  if (buffered() <= options().high_water) return;
  producer_paused_ = true;
  producer->pause_producing();
}

// ---- Closing --------------------------------------------------------------------------------

void StreamTransport::lose_connection() {
  if (lost_ || disconnecting_) return;
  disconnecting_ = true;
  read_closed_ = true;
  // Nothing can be written, or nothing waits to be sent: close now (the handler hears it on
  // the next turn, as Twisted's does). Waiting for a writable event instead could wait forever:
  // a peer that never reads keeps its receive buffer, and so our send buffer, full.
  if (!writes() || write_closed_ || nothing_to_send()) {
    lose(LossReason::done(), false);
    return;
  }
  (void)watch(false);
}

bool StreamTransport::nothing_to_send() const {
  return queue_empty() && (producer() == nullptr || (streaming_ && !producer_paused_));
}

void StreamTransport::lose_write_connection() {
  if (!writes()) refuse("lose_write_connection");
  if (!reads()) {
    lose_connection();
    return;
  }
  if (lost_ || write_closing_ || write_closed_) return;
  write_closing_ = true;
  (void)watch(false);
}

void StreamTransport::abort_connection() {
  if (lost_) return;
  lose(LossReason::aborted(), false);
}

void StreamTransport::end_now(LossReason reason) {
  if (!lost_) {
    lose(std::move(reason), true);
    return;
  }
  if (rare_ && rare_->pending_loss.active()) {
    (void)rare_->pending_loss.cancel();
    deliver_pending();
  }
}

// ---- Flow control ---------------------------------------------------------------------------

ReactorResult<void> StreamTransport::register_producer(Producer& producer, bool streaming) {
  if (this->producer() != nullptr) return reactor_fail(ReactorErrc::kAlreadyRegistered);
  if (lost_) {
    producer.stop_producing();
    return {};
  }
  rare().producer = &producer;
  streaming_ = streaming;
  producer_paused_ = false;
  if (!streaming) {
    producer.resume_producing();
  } else {
    maybe_pause_producer();
  }
  return {};
}

void StreamTransport::unregister_producer() {
  if (rare_) rare_->producer = nullptr;
  producer_paused_ = false;
  trim_rare();
  // A close that waited for the producer goes ahead: now when nothing is queued, else once the
  // buffer drains.
  if (lost_ || !disconnecting_) return;
  if (nothing_to_send()) {
    lose(LossReason::done(), false);
  } else {
    (void)watch(false);
  }
}

void StreamTransport::pause_producing() {
  paused_ = true;
  if (!lost_) (void)watch(false);
}

void StreamTransport::resume_producing() {
  paused_ = false;
  if (!lost_) (void)watch(false);
}

void StreamTransport::stop_producing() { lose_connection(); }

// ---- The loop's side ------------------------------------------------------------------------

DAEMONKIT_HOT bool StreamTransport::watch(bool now) {
  if (lost_) return true;
  auto failed = update_watchers();
  if (!failed) return true;
  lose(LossReason::lost(std::move(*failed)), now);
  return false;
}

DAEMONKIT_HOT std::optional<sys::Error> StreamTransport::update_watchers() {
  const int fd = fd_;
  // A write-only descriptor stays in epoll for input it never has, to hear EPOLLERR (see
  // StreamDirection::kWriteOnly).
  const bool want_reader = !reads() || (!read_closed_ && !paused_);
  const bool want_writer =
      writes() && (!queue_empty() || (ask_producer_ && producer() != nullptr) ||
                   ((disconnecting_ || write_closing_) && !write_closed_));
  if (want_reader != reader_watched_) {
    auto r = want_reader ? reactor_.add_reader(fd, {&StreamTransport::readable, this})
                         : reactor_.remove_reader(fd);
    if (!r) return r.error().os;
    reader_watched_ = want_reader;
  }
  if (want_writer != writer_watched_) {
    auto r = want_writer ? reactor_.add_writer(fd, {&StreamTransport::writable, this})
                         : reactor_.remove_writer(fd);
    if (!r) return r.error().os;
    writer_watched_ = want_writer;
  }
  return std::nullopt;
}

DAEMONKIT_HOT void StreamTransport::readable(void* self) {
  static_cast<StreamTransport*>(self)->on_readable();
}

void StreamTransport::writable(void* self) { static_cast<StreamTransport*>(self)->on_writable(); }

DAEMONKIT_HOT void StreamTransport::on_readable() {
  if (lost_) return;
  if (reads()) {
    read_some();
    return;
  }
  // A write-only descriptor is "readable" only with EPOLLERR: its reader is gone. With bytes
  // queued, the write itself says how (EPIPE); without, that is what it would say.
  if (!queue_empty()) {
    on_writable();
    return;
  }
  lose(LossReason::lost(sys::Error{EPIPE, "epoll_wait", "EPOLLERR"}), true);
}

DAEMONKIT_HOT void StreamTransport::read_some() {
  const detail::Liveness::Guard alive(liveness_);
  const StreamOptions& options = this->options();
  for (int i = 0; i < options.reads_per_wakeup; ++i) {
    if (lost_ || read_closed_ || paused_) return;
    const auto buffer = read_buffer(options.read_size);
    // read(2) inline: the path of every request.
    const auto got =
        receive_descriptors_
            ? read_with_descriptors(buffer)
            : sys::retry_on_eintr([&] { return os_.read(fd_, buffer.data(), buffer.size()); });
    if (!alive.alive()) return;
    if (!got) {
      if (got.error().code != EAGAIN) lose(LossReason::lost(got.error()), true);
      return;
    }
    if (*got == 0) {
      input_ended(alive);
      return;
    }
    if (lost_) return;  // a protocol handed descriptors may have ended the connection
    handler_.data_received(buffer.first(*got));
    if (!alive.alive()) return;
    // A short read emptied the kernel's buffer: another read would only say EAGAIN.
    if (*got < buffer.size()) return;
  }
}

void StreamTransport::input_ended(const detail::Liveness::Guard& alive) {
  read_closed_ = true;
  if (!writes() || write_closed_ || disconnecting_) {
    lose(LossReason::done(), true);
    return;
  }
  // Asked before the reader is unwatched: most handlers do not half-close, and their loss
  // closes the descriptor now, which ends its registration with no EPOLL_CTL_DEL.
  const bool stay = handler_.read_eof();
  if (!alive.alive() || lost_) return;
  if (stay) {
    (void)watch(true);
  } else {
    lose(LossReason::done(), true);
  }
}

sys::Result<std::size_t> StreamTransport::read_with_descriptors(std::span<std::byte> buffer) {
  std::vector<OwnedFd> fds;
  bool truncated = false;
  auto got = sys::retry_on_eintr([&] { return receive(buffer, fds, truncated); });
  if (got && (!fds.empty() || truncated)) {
    // Before the bytes they came with, so that a protocol reading a request knows its
    // descriptors already. It may end the connection or destroy the transport: read_some
    // looks before it goes on.
    handler_.descriptors_arrived(std::move(fds), truncated);
  }
  return got;
}

sys::Result<std::size_t> StreamTransport::receive(std::span<std::byte> buffer,
                                                  std::vector<OwnedFd>& fds, bool& truncated) {
  alignas(cmsghdr) std::byte control[CMSG_SPACE(kMaxDescriptorsPerRead * sizeof(int))];
  struct iovec iov = as_iovec(buffer);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  auto got = os_.recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
  if (!got) return got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(os_, fd);
    }
  }
  truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  return got;
}

void StreamTransport::on_writable() {
  if (lost_) return;
  if (!queue_empty()) {
    std::array<struct iovec, kMaxIovecs> iov{};
    std::size_t count = 0;
    for (std::size_t i = rare_->head; i < rare_->queue.size() && count < iov.size(); ++i) {
      // Descriptors go with the first byte of one sendmsg: a chunk carrying some starts the
      // next send, never the middle of this one.
      if (i != rare_->head && !rare_->queue[i].fds.empty()) break;
      iov[count++] = as_iovec(rare_->queue[i].unsent());
    }
    const std::vector<OwnedFd>* fds = &rare_->queue[rare_->head].fds;
    auto wrote = sys::retry_on_eintr([&] { return send(std::span(iov.data(), count), fds); });
    if (!wrote) {
      if (wrote.error().code != EAGAIN) lose(LossReason::lost(wrote.error()), true);
      return;
    }
    std::size_t left = *wrote;
    rare_->buffered -= left;
    if (left > 0) rare_->queue[rare_->head].fds.clear();  // sent: our copies close
    // pop_front may give the block back with the last chunk, when `left` is 0 too.
    while (left > 0) {
      Chunk& front = rare_->queue[rare_->head];
      const std::size_t n = std::min(left, front.unsent().size());
      front.sent += n;
      left -= n;
      if (front.unsent().empty()) pop_front();
    }
    if (!queue_empty()) return;
  }
  on_drained();
}

// Twisted's order once everything is sent: a producer that waits for room gets it first (and a
// close waits for it); otherwise a pending close, then a pending half-close.
void StreamTransport::on_drained() {
  ask_producer_ = false;
  if (Producer* producer = this->producer();
      producer != nullptr && (!streaming_ || producer_paused_)) {
    // Asked before the watchers are updated: a producer that writes again keeps the writer
    // watched, where dropping it first and adding it back cost two epoll_ctl calls per
    // buffer: a pipe to a child went from 0.88x to 0.92x a raw poll loop (bench/spawn).
    producer_paused_ = false;
    const detail::Liveness::Guard alive(liveness_);
    producer->resume_producing();
    if (alive.alive()) (void)watch(true);
    return;
  }
  if (!watch(true)) return;
  if (disconnecting_) {
    lose(LossReason::done(), true);
    return;
  }
  if (write_closing_ && !write_closed_) close_write_side();
}

void StreamTransport::close_write_side() {
  const detail::Liveness::Guard alive(liveness_);
  if (auto shut = os_.shutdown(fd_, SHUT_WR); !shut) {
    lose(LossReason::lost(shut.error()), true);
    return;
  }
  write_closed_ = true;
  if (!watch(true)) return;
  handler_.write_eof();
  if (!alive.alive() || lost_) return;
  // Both directions are over once the peer's EOF came too.
  if (read_closed_) lose(LossReason::done(), true);
}

DAEMONKIT_HOT void StreamTransport::lose(LossReason reason, bool now) {
  if (lost_) return;
  lost_ = true;
  if (reader_watched_ || writer_watched_) reactor_.remove_before_close(fd_);
  reader_watched_ = writer_watched_ = false;
  release_queue();
  // A close that fails after a clean end may have lost what was written (EIO on some
  // filesystems): that is no longer clean.
  if (auto closed = close_fd(); !closed && reason.clean()) {
    reason = LossReason::lost(closed.error());
  }
  if (now) {
    deliver(std::move(reason));
    return;
  }
  Rare& r = rare();
  r.pending_reason = std::move(reason);
  r.pending_loss = reactor_.call_later(Duration{0}, [this] { deliver_pending(); });
}

void StreamTransport::deliver_pending() { deliver(std::exchange(rare_->pending_reason, {})); }

DAEMONKIT_HOT void StreamTransport::deliver(LossReason reason) {
  const detail::Liveness::Guard alive(liveness_);
  if (Producer* producer = rare_ ? std::exchange(rare_->producer, nullptr) : nullptr) {
    producer->stop_producing();
    if (!alive.alive()) return;
  }
  handler_.connection_lost(reason);
}

}  // namespace daemonkit::core

namespace daemonkit::core {
// An idle connection's cost (issue #15: 256 bytes all told): the transport is embedded in each
// network Connection, so every byte here is paid once per connection.
static_assert(sizeof(StreamTransport) <= 64, "StreamTransport grew: see Rare");
}  // namespace daemonkit::core
