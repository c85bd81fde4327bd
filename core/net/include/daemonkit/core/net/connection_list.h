// ConnectionList: the connections an owner (a listening port) holds, in a doubly-linked list
// threaded through the connections themselves. A std::unordered_map of unique_ptrs cost each
// idle connection a 40-byte node and its share of the buckets; the links cost 16 bytes inside
// the connection, and taking one out is O(1) without a look-up.
#pragma once

#include <cstddef>
#include <memory>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/reactor/loss_reason.h"

namespace daemonkit::core {

class ConnectionList {
 public:
  ConnectionList() = default;
  // Destroys the connections still held, telling no protocol (see end_all for the other way).
  ~ConnectionList();
  ConnectionList(const ConnectionList&) = delete;
  ConnectionList& operator=(const ConnectionList&) = delete;

  // Takes ownership; `connection` must be in no list.
  void push_back(std::unique_ptr<Connection> connection);
  // Takes `connection` (which must be in this list) out, and gives back its ownership.
  [[nodiscard]] std::unique_ptr<Connection> remove(Connection& connection);
  // Ends every connection now, each protocol hearing connection_lost once with `reason` (or
  // with the loss it was about to hear on the next turn), then destroys it; its owner is not
  // told. A protocol may destroy the list's owner from its connection_lost only while the owner
  // is being destroyed already (the owner's destructor calls this).
  void end_all(const LossReason& reason);

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

 private:
  Connection* head_ = nullptr;
  Connection* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace daemonkit::core
