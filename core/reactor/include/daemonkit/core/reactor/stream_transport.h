// StreamTransport: Twisted's FileDescriptor — one descriptor on the reactor with a write buffer,
// a clean close after the buffer drains, an abort, half-close, and flow control both ways. It
// carries bytes and knows nothing of what the descriptor is: the process layer puts a child's
// pipes and PTY on it, the network layer its connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/internal/liveness.h"
#include "daemonkit/core/reactor/loss_reason.h"
#include "daemonkit/core/reactor/producer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/stream_handler.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// What the descriptor is used for. A pipe has two ends of one direction each; a socket or a
// PTY master both directions on one descriptor.
enum class StreamDirection {
  kReadWrite,
  // Reading only (a pipe's read end). Writing to it, or lose_write_connection, is a
  // programming error, refused with a std::logic_error that says so.
  kReadOnly,
  // Writing only (a pipe's write end). Linux reports EPOLLERR on a pipe's write end once every
  // reader is gone, whatever events were asked for, so the transport keeps the descriptor in
  // epoll for input (which a write end never has) and hears the other side close even while
  // it has nothing to write (Twisted's ProcessWriter forceReadHack). That loss says EPIPE, what
  // the next write would fail with, found through epoll_wait.
  kWriteOnly,
};

struct StreamOptions {
  StreamDirection direction = StreamDirection::kReadWrite;
  // A streaming producer is paused once more than this many bytes wait to be sent, and resumed
  // when all of them are sent. Twisted's 64 KiB: together with the kernel's own buffer (64 KiB
  // for a pipe, some 200 KiB for a socket) it keeps the descriptor busy while the producer
  // waits, and bounds what one slow reader costs to about this much per connection.
  std::size_t high_water = 64 * 1024;
  // Bytes asked of one read, and reads per wake-up (stopping at the first short read): up to
  // 256 KiB for one readable descriptor before the loop turns to the others, so a fast sender
  // cannot starve them. Larger than a pipe's default 64 KiB, so a read that empties a full
  // pipe is short and is not followed by one that can only fail with EAGAIN (with 64 KiB
  // reads, 2,048 of the 6,151 reads that took 256 MiB back from cat). The buffer is one per
  // thread, not per transport.
  std::size_t read_size = 128 * 1024;
  int reads_per_wakeup = 2;
};

class StreamTransport final : public Producer {
 public:
  // Takes `fd` (closed on every path, this one's failure included), sets O_NONBLOCK on it, and
  // starts reading (for kReadOnly and kReadWrite) or watching for the reader's end
  // (kWriteOnly). `handler` must outlive the transport or its connection_lost, whichever comes
  // first, and `reactor` the transport. Fails with the fcntl or epoll_ctl error.
  static ReactorResult<std::unique_ptr<StreamTransport>> open(Reactor& reactor, sys::Syscalls& os,
                                                              OwnedFd fd, StreamHandler& handler,
                                                              StreamOptions options = {});
  // For an owner that embeds the transport rather than holding it on the heap (a network
  // Connection: one block per connection, not two). The constructor takes `fd` and touches
  // nothing else; attach() then does what open does (O_NONBLOCK, watching), and fails with the
  // same errors. Until attach succeeds the transport is inert: destroying it closes `fd`.
  // `known_nonblocking`: the owner made `fd` itself with SOCK_NONBLOCK (accept4, socket), so
  // the F_GETFL that would check it is skipped (one system call per accepted connection).
  StreamTransport(Reactor& reactor, sys::Syscalls& os, OwnedFd fd, StreamHandler& handler,
                  StreamOptions options = {});
  [[nodiscard]] ReactorResult<void> attach(bool known_nonblocking = false);
  // Destroying the transport closes its descriptor and drops what was not sent; neither the
  // handler nor a registered producer hears anything (the owner chose this). Safe from inside
  // any callback the transport makes.
  ~StreamTransport() override;
  StreamTransport(const StreamTransport&) = delete;
  StreamTransport& operator=(const StreamTransport&) = delete;

  // ---- Writing -------------------------------------------------------------------------------
  //
  // Buffered: bytes go out in order, with one writev per writable event over the queued
  // buffers. With nothing queued, a write is tried at once and only what the kernel did not
  // take is kept (a pull producer whose write went out whole is asked again on the next
  // writable event). Owned buffers (moved in) are sent from where they are, never
  // copied; borrowed ones are copied at most once, and only the part not written at once. A
  // write failure is not returned here: it ends the connection, and the handler hears it from
  // the loop.
  //
  // Writes are dropped, silently, once the connection is lost or aborted, or after
  // lose_write_connection (Twisted's rule: a transport that is gone takes writes and does
  // nothing). Writes after lose_connection but before the close are still sent, as Twisted's
  // are: the close waits for the buffer, and a producer registered then keeps writing until it
  // is unregistered. An empty write does nothing.
  void write(std::span<const std::byte> bytes);
  void write(std::string_view bytes);
  void write(const char* text) { write(std::string_view(text)); }
  void write(std::string&& bytes);
  void write(std::vector<std::byte>&& bytes);
  // A write whose first byte carries `fds` (SCM_RIGHTS on a UNIX stream socket), queued in
  // order with the other writes: the peer receives the descriptors with that byte. They are
  // duplicated here (F_DUPFD_CLOEXEC), so the caller may close its own at once; the copies are
  // closed once sent or dropped. Fails, sending nothing, when `bytes` is empty while `fds` is
  // not (descriptors travel with a byte), with more than kMaxDescriptorsPerWrite (EINVAL, as
  // sendmsg would), or when a descriptor cannot be duplicated (EBADF, EMFILE). A send failure
  // is not returned: it ends the connection, as a write's does.
  [[nodiscard]] sys::Result<void> write_with_descriptors(std::span<const std::byte> bytes,
                                                         std::span<const int> fds);
  // Linux's SCM_MAX_FD: the most descriptors one sendmsg may carry.
  static constexpr std::size_t kMaxDescriptorsPerWrite = 253;
  // Receiving: room for this many descriptors per read; a message carrying more is cut short
  // by the kernel (MSG_CTRUNC, see StreamHandler::descriptors_arrived).
  static constexpr std::size_t kMaxDescriptorsPerRead = 64;
  // Reads with recvmsg (MSG_CMSG_CLOEXEC) and hands descriptors that arrive to the handler's
  // descriptors_arrived before the bytes they came with. Off by default: a plain read costs
  // less, and the kernel closes descriptors that reach a reader that did not ask for them.
  void receive_descriptors(bool on) { receive_descriptors_ = on; }

  // As writes one after the other, but the producer is paused (if at all) once, after the last.
  void write_sequence(std::span<const std::span<const std::byte>> buffers);
  void write_sequence(std::vector<std::string>&& buffers);

  // ---- Closing ------------------------------------------------------------------------------

  // Stops reading now; closes once everything buffered is sent (at once when nothing is), and
  // the handler then hears "done cleanly", never from inside this call. While a pull producer,
  // or a paused streaming producer, is registered the close waits for unregister_producer (it
  // still has data to give). A no-op when already closing or lost.
  void lose_connection();
  // Half-close: once the buffer drains, shutdown(SHUT_WR) and the handler's write_eof; reading
  // goes on. For a write-only descriptor this is lose_connection (closing a pipe's write end is
  // its half-close). A descriptor that is not a socket fails the shutdown (ENOTSOCK), which ends
  // the connection with that reason.
  void lose_write_connection();
  // Drops the buffer and closes the descriptor now; the handler hears "aborted" on the next
  // turn of the loop (never from inside this call, so a handler may abort from anywhere).
  void abort_connection();
  // Ends the connection now with `reason`: the buffer is dropped, the descriptor closed, and
  // the producer and then the handler hear it from inside this call. A loss that was waiting
  // for the loop's next turn (after abort_connection, say) is told now instead, with its own
  // reason; once told, this does nothing. For an owner that is going away and cannot wait for
  // the loop's next turn (a listening port destroyed with its connections open), never for a
  // handler's own use.
  void end_now(LossReason reason);

  // ---- Flow control --------------------------------------------------------------------------

  // A source of data for this transport. A streaming producer is paused above the high-water
  // mark and resumed when the buffer has drained; a pull producer is asked (resume_producing)
  // now and each time the buffer has drained. Both hear stop_producing when the connection is
  // lost; registering on a lost transport calls it at once. Fails with kAlreadyRegistered while
  // another producer is registered (Twisted's RuntimeError).
  ReactorResult<void> register_producer(Producer& producer, bool streaming);
  // Forgets the producer; a lose_connection that waited for it proceeds.
  void unregister_producer();

  // The transport as a producer of input, for whoever consumes what it reads: pause stops
  // reading, resume starts again (unless closing, lost, or at EOF); stop_producing is
  // lose_connection. Input that arrives meanwhile waits in the kernel, whose full buffer then
  // stops the sender.
  void pause_producing() override;
  void resume_producing() override;
  void stop_producing() override;

  // ---- State ---------------------------------------------------------------------------------

  // True until the connection is lost or aborted.
  [[nodiscard]] bool connected() const { return !lost_; }
  // lose_connection, or lose_write_connection, was called (the close may still wait for the
  // buffer): no layer may start above a connection that is going away.
  [[nodiscard]] bool disconnecting() const { return disconnecting_; }
  [[nodiscard]] bool write_side_closing() const { return write_closing_ || write_closed_; }
  // Bytes accepted by write and not yet sent.
  [[nodiscard]] std::size_t buffered() const { return rare_ ? rare_->buffered : 0; }
  // The descriptor, or -1 once closed.
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] StreamDirection direction() const {
    return static_cast<StreamDirection>(direction_);
  }
  // Marks its guards once this transport is destroyed: an owner that embeds the transport
  // guards its callback frames with it instead of keeping a Liveness of its own.
  [[nodiscard]] detail::Liveness& liveness() { return liveness_; }
  [[nodiscard]] Reactor& reactor() const { return reactor_; }
  [[nodiscard]] sys::Syscalls& os() const { return os_; }

 private:
  // One queued buffer: owned as it came, with how much of it is sent already.
  struct Chunk {
    std::variant<std::string, std::vector<std::byte>> bytes;
    std::size_t sent = 0;
    // Sent (SCM_RIGHTS) with the chunk's first byte, then closed: empty once sent.
    std::vector<OwnedFd> fds;
    [[nodiscard]] std::span<const std::byte> unsent() const;
  };
  // What an idle transport with default options does not need, allocated when first needed
  // and given back once unneeded again: the write queue (a write that had to wait), the
  // producer, the loss waiting for the next turn, and options other than the defaults. An idle
  // transport is then 64 bytes and no heap block (it was 176: a server with 10,000 idle
  // connections paid 1.1 MB for state that only busy ones use).
  struct Rare {
    StreamOptions options;
    // Queued buffers from head on (see pop_front); empty, and owning no heap block, while
    // nothing waits to be sent.
    std::vector<Chunk> queue;
    std::size_t head = 0;
    std::size_t buffered = 0;
    Producer* producer = nullptr;
    // The loss told on the loop's next turn (see lose), and why.
    DelayedCall pending_loss;
    LossReason pending_reason;
  };

  Rare& rare();
  // Gives the block back once it holds nothing but defaults.
  void trim_rare();
  [[nodiscard]] const StreamOptions& options() const;
  [[nodiscard]] Producer* producer() const { return rare_ ? rare_->producer : nullptr; }

  [[nodiscard]] bool reads() const { return direction() != StreamDirection::kWriteOnly; }
  [[nodiscard]] bool writes() const { return direction() != StreamDirection::kReadOnly; }
  [[nodiscard]] bool accepts_writes() const { return !lost_ && !write_closing_ && !write_closed_; }
  void refuse(const char* what) const;
  // Tries a write at once when nothing is queued; returns how much of `bytes` the kernel took
  // (0 when it took nothing or the connection was lost trying).
  std::size_t write_now(std::span<const struct iovec> iov);
  void enqueue(Chunk chunk);
  [[nodiscard]] bool queue_empty() const { return !rare_ || rare_->head == rare_->queue.size(); }
  void pop_front();
  void release_queue();
  // An owned buffer, non-empty, on a transport that accepts it: tried at once, the rest queued.
  void write_owned(Chunk chunk);
  void after_write();
  void maybe_pause_producer();
  // No byte queued and no producer still to be heard: a close need not wait for anything.
  [[nodiscard]] bool nothing_to_send() const;
  // Registers or removes the reader and the writer to match the state; false if epoll_ctl
  // failed (the connection is then lost, delivered as `now` says).
  bool watch(bool now);
  std::optional<sys::Error> update_watchers();
  void on_readable();
  void on_writable();
  // The reactor's FdCallbacks: `self` is the transport.
  static void readable(void* self);
  static void writable(void* self);
  void on_drained();
  void read_some();
  // The peer's EOF: the loss, or the half-close a handler asks to stay for.
  void input_ended(const detail::Liveness::Guard& alive);
  // recvmsg(2) into `buffer` (retried on EINTR); the descriptors that came with the bytes go to
  // the handler first, which may end the connection or destroy the transport.
  sys::Result<std::size_t> read_with_descriptors(std::span<std::byte> buffer);
  // One recvmsg(2) into `buffer`, taking the descriptors that came with it into `fds`.
  sys::Result<std::size_t> receive(std::span<std::byte> buffer, std::vector<OwnedFd>& fds,
                                   bool& truncated);
  // write(2) of one buffer, writev(2) of more, or sendmsg(2) with `fds` on the first byte.
  sys::Result<std::size_t> send(std::span<const struct iovec> iov, const std::vector<OwnedFd>* fds);
  sys::Result<std::size_t> send_with_descriptors(std::span<const struct iovec> iov,
                                                 const std::vector<OwnedFd>& fds);
  // What a write's result means to the queue: the bytes sent, or 0 after EAGAIN, or 0 and the
  // connection lost after any other error.
  std::size_t written(const sys::Result<std::size_t>& wrote);
  void close_write_side();
  sys::Result<void> close_fd();
  // Ends the connection once: stops watching, drops the buffer, closes the descriptor, then
  // tells the producer and the handler — now (from the loop's callbacks) or on the next turn
  // (from calls the owner makes, so no callback runs inside them).
  void lose(LossReason reason, bool now);
  void deliver(LossReason reason);
  void deliver_pending();

  Reactor& reactor_;
  sys::Syscalls& os_;
  StreamHandler& handler_;
  // Every callback frame checks it after calling out: the owner may have destroyed the
  // transport meanwhile.
  detail::Liveness liveness_;
  std::unique_ptr<Rare> rare_;
  int fd_ = -1;  // owned: closed by lose or the destructor

  std::uint8_t direction_ : 2;
  bool custom_options_ : 1 = false;  // rare_ holds options other than the defaults: keep it
  bool streaming_ : 1 = false;
  bool producer_paused_ : 1 = false;
  bool ask_producer_ : 1 = false;  // a pull producer's write went out whole: ask it when writable
  bool reader_watched_ : 1 = false;
  bool writer_watched_ : 1 = false;
  bool paused_ : 1 = false;         // pause_producing: not reading for now
  bool read_closed_ : 1 = false;    // EOF seen, or reading stopped for good by lose_connection
  bool disconnecting_ : 1 = false;  // lose_connection: close once drained
  bool write_closing_ : 1 = false;  // lose_write_connection: shutdown once drained
  bool write_closed_ : 1 = false;   // the write side is shut
  bool lost_ : 1 = false;
  bool receive_descriptors_ : 1 = false;
};

}  // namespace daemonkit::core
