// echod's protocol: one Echo per connection (made by a ServerFactoryOf in echo_service.cpp),
// writing back every byte it receives.
#pragma once

#include <span>

#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/reactor/producer.h"

namespace echod {

// It is also the producer of what its connection sends: once more than the high-water mark
// waits for a peer that does not read, the connection pauses it, and it stops reading that
// peer until the backlog is sent. A client that sends and never reads thus costs a bounded
// amount of memory.
struct Echo : daemonkit::core::Protocol, daemonkit::core::Producer {
  void connection_made(daemonkit::core::Connection& connection) override;
  void data_received(std::span<const std::byte> data) override;
  bool read_eof() override;
  void pause_producing() override;
  void resume_producing() override;
  void stop_producing() override {}
};

}  // namespace echod
