// bench/net's echo server on Boost.Asio, written as Asio's own examples write one: a session
// per connection owning a 64 KiB buffer, async_read_some into it, async_write of what came, then
// read again; one io_context on one thread. The buffer is left uninitialised, so an idle
// connection holds only the pages its first read touched. Usage: echo_server_args.h.
#include <signal.h>

// The parts used, not <boost/asio.hpp>: Boost 1.74's awaitable.hpp misses <utility> under
// GCC 12's C++20.
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <memory>
#include <utility>

#include "echo_server_args.h"

namespace daemonkit::bench {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::size_t kReadBytes = 64 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket)
      : socket_(std::move(socket)), buffer_(std::make_unique_for_overwrite<char[]>(kReadBytes)) {}

  void read() {
    socket_.async_read_some(
        asio::buffer(buffer_.get(), kReadBytes),
        [self = shared_from_this()](boost::system::error_code failed, std::size_t got) {
          if (!failed) self->write(got);
        });
  }

 private:
  void write(std::size_t size) {
    asio::async_write(socket_, asio::buffer(buffer_.get(), size),
                      [self = shared_from_this()](boost::system::error_code failed, std::size_t) {
                        if (!failed) self->read();
                      });
  }

  tcp::socket socket_;
  std::unique_ptr<char[]> buffer_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code failed, tcp::socket socket) {
    if (failed) {
      std::fprintf(stderr, "echo_server_asio: accept: %s\n", failed.message().c_str());
    } else {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket))->read();
    }
    accept(acceptor);
  });
}

int serve(const EchoServerArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit();
  asio::io_context io(1);  // one thread: Asio may then skip its locks
  tcp::acceptor acceptor(io);
  const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), args.port);
  boost::system::error_code failed;
  acceptor.open(endpoint.protocol(), failed);
  if (!failed) acceptor.set_option(tcp::acceptor::reuse_address(true), failed);
  if (!failed) acceptor.bind(endpoint, failed);
  if (!failed) acceptor.listen(args.backlog, failed);
  if (failed) {
    std::fprintf(stderr, "echo_server_asio: listen: %s\n", failed.message().c_str());
    return 1;
  }
  announce_port(acceptor.local_endpoint().port());
  accept(acceptor);
  io.run();
  return 0;
}

}  // namespace
}  // namespace daemonkit::bench

int main(int argc, char** argv) {
  const auto args = daemonkit::bench::parse_echo_server_args(argc, argv);
  if (!args) return 2;
  return daemonkit::bench::serve(*args);
}
