// DescriptorReceiver: what a protocol on a UNIX stream connection also implements to receive
// descriptors the peer passes (SCM_RIGHTS) — Twisted's IFileDescriptorReceiver. A connection
// whose protocol is one reads with recvmsg and hands each message's descriptors over before
// its bytes; with any other protocol the kernel closes what arrives.
#pragma once

#include <cstddef>
#include <vector>

#include "daemonkit/core/base/owned_fd.h"

namespace daemonkit::core {

class DescriptorReceiver {
 public:
  virtual ~DescriptorReceiver() = default;
  // Descriptors that came with the bytes data_received hears next, in the order the peer sent
  // them; each is close-on-exec, and the protocol's from here (closed if dropped).
  virtual void descriptors_received(std::vector<OwnedFd> fds) = 0;
  // The kernel cut a message's descriptors short (MSG_CTRUNC: more than
  // StreamTransport::kMaxDescriptorsPerRead at once, or this process out of descriptors). The
  // `closed` that did arrive were closed: a partial set would be taken for a whole one. The
  // message's bytes still follow in data_received.
  virtual void descriptors_truncated(std::size_t closed) = 0;
};

}  // namespace daemonkit::core
