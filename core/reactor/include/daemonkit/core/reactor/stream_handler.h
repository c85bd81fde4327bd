// StreamHandler: what hears a stream transport — Twisted's IProtocol for a connection, with
// IHalfCloseableProtocol's two calls. The same interface serves a child's pipe, a PTY and a
// TCP or UNIX connection, so none of it names what is carried.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "daemonkit/core/base/owned_fd.h"

#include "daemonkit/core/reactor/loss_reason.h"

namespace daemonkit::core {

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;

  // Bytes read, in order. The span is valid only during the call (the transport reuses one
  // read buffer), so keep a copy of what must outlive it.
  virtual void data_received(std::span<const std::byte> data) = 0;
  // The other side will send nothing more (EOF) on a transport that can also write. Return
  // true to stay open for writing (a half-close, Twisted's readConnectionLost): the connection
  // then ends with lose_connection, abort_connection, or once lose_write_connection has shut the
  // write side too. The default, false, loses the connection cleanly at EOF, as a protocol
  // that is not half-closeable does in Twisted.
  virtual bool read_eof() { return false; }
  // lose_write_connection finished: the buffer drained and the write side is shut (Twisted's
  // writeConnectionLost). Reading goes on.
  virtual void write_eof() {}
  // Descriptors that came (SCM_RIGHTS) with the bytes data_received hears next, for a
  // transport asked to receive them (StreamTransport::receive_descriptors); each is CLOEXEC.
  // `truncated`: the kernel cut the message's descriptors short (MSG_CTRUNC: more than
  // StreamTransport::kMaxDescriptorsPerRead at once, or this process out of descriptors), and
  // `fds` is what did arrive. The default closes them all.
  virtual void descriptors_arrived(std::vector<OwnedFd> /*fds*/, bool /*truncated*/) {}
  // The end, exactly once and after everything else: the descriptor is closed already and the
  // transport will call nothing more. The transport may be destroyed from here.
  virtual void connection_lost(const LossReason& reason) = 0;
};

}  // namespace daemonkit::core
