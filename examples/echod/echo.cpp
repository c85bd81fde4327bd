#include "echo.h"

#include "daemonkit/core/net/connection.h"

namespace echod {

namespace core = daemonkit::core;

void Echo::connection_made(core::Connection& connection) {
  // Only misuse fails here (a second producer), and this is the only one.
  (void)connection.register_producer(*this, /*streaming=*/true);
}

void Echo::data_received(std::span<const std::byte> data) { connection().write(data); }

bool Echo::read_eof() {
  // The peer is done sending: close once its echo is sent, without waiting for a producer.
  connection().unregister_producer();
  return false;
}

void Echo::pause_producing() { connection().pause_reading(); }

void Echo::resume_producing() { connection().resume_reading(); }

}  // namespace echod
