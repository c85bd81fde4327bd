#include "daemonkit/core/net/connection_list.h"
#include "daemonkit/sys/hot_path.h"

#include <utility>

namespace daemonkit::core {

ConnectionList::~ConnectionList() {
  while (head_ != nullptr) (void)remove(*head_);
}

DAEMONKIT_HOT void ConnectionList::push_back(std::unique_ptr<Connection> connection) {
  Connection* c = connection.release();
  c->prev_ = tail_;
  c->next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = c;
  } else {
    head_ = c;
  }
  tail_ = c;
  ++size_;
}

DAEMONKIT_HOT std::unique_ptr<Connection> ConnectionList::remove(Connection& connection) {
  if (connection.prev_ != nullptr) {
    connection.prev_->next_ = connection.next_;
  } else {
    head_ = connection.next_;
  }
  if (connection.next_ != nullptr) {
    connection.next_->prev_ = connection.prev_;
  } else {
    tail_ = connection.prev_;
  }
  connection.prev_ = connection.next_ = nullptr;
  --size_;
  return std::unique_ptr<Connection>(&connection);
}

// Each connection leaves the list before its protocol hears anything, so what the protocol
// does from there (write to another connection, count them, destroy the owner that is being
// destroyed anyway) meets a list that holds only connections still open.
void ConnectionList::end_all(const LossReason& reason) {
  while (head_ != nullptr) {
    std::unique_ptr<Connection> connection = remove(*head_);
    connection->owner_ = nullptr;
    connection->transport_.end_now(reason);
  }
}

}  // namespace daemonkit::core
