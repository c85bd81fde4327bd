// bench/net's echo server on libuv: uv_tcp, uv_read_start into one shared 64 KiB buffer, and the
// echo written back with uv_try_write; only what that leaves goes to uv_write from a heap copy,
// with reading stopped until it completes (the same bytes held, and the same back-pressure, as
// the raw epoll floor). An idle connection costs its uv_tcp_t. Usage: echo_server_args.h.
#include <signal.h>
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "echo_server_args.h"

namespace daemonkit::bench {
namespace {

constexpr std::size_t kReadBytes = 64 * 1024;

char buffer[kReadBytes];

// A uv_write of what uv_try_write left; the bytes it points at follow it in the same block.
struct PendingWrite {
  uv_write_t request;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

void on_closed(uv_handle_t* handle) { std::free(handle); }

void close_connection(uv_stream_t* stream) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(stream)) == 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), on_closed);
  }
}

void lend_buffer(uv_handle_t* /*handle*/, std::size_t /*suggested*/, uv_buf_t* out) {
  *out = uv_buf_init(buffer, sizeof buffer);
}

void on_read(uv_stream_t* stream, ssize_t got, const uv_buf_t* /*buf*/);

void on_written(uv_write_t* request, int status) {
  uv_stream_t* stream = request->handle;
  std::free(request);
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(stream)) != 0) return;
  if (status < 0 || uv_read_start(stream, lend_buffer, on_read) != 0) close_connection(stream);
}

void on_read(uv_stream_t* stream, ssize_t got, const uv_buf_t* /*buf*/) {
  if (got == 0) return;  // EAGAIN, as libuv reports it
  if (got < 0) {
    close_connection(stream);
    return;
  }
  uv_buf_t bytes = uv_buf_init(buffer, static_cast<unsigned>(got));
  int sent = uv_try_write(stream, &bytes, 1);
  if (sent == UV_EAGAIN) sent = 0;
  if (sent < 0) {
    close_connection(stream);
    return;
  }
  if (sent == got) return;
  const auto left = static_cast<std::size_t>(got - sent);
  auto* pending = static_cast<PendingWrite*>(std::malloc(sizeof(PendingWrite) + left));
  std::memcpy(pending->data(), buffer + sent, left);
  bytes = uv_buf_init(pending->data(), static_cast<unsigned>(left));
  uv_read_stop(stream);
  if (uv_write(&pending->request, stream, &bytes, 1, on_written) != 0) {
    std::free(pending);
    close_connection(stream);
  }
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    std::fprintf(stderr, "echo_server_uv: listen: %s\n", uv_strerror(status));
    return;
  }
  auto* client = static_cast<uv_tcp_t*>(std::malloc(sizeof(uv_tcp_t)));
  uv_tcp_init(server->loop, client);
  auto* stream = reinterpret_cast<uv_stream_t*>(client);
  if (uv_accept(server, stream) != 0) {
    close_connection(stream);
    return;
  }
  uv_tcp_nodelay(client, 1);
  if (uv_read_start(stream, lend_buffer, on_read) != 0) close_connection(stream);
}

int serve(const EchoServerArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit();
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  sockaddr_in address{};
  uv_ip4_addr("127.0.0.1", args.port, &address);
  int failed = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&address), 0);
  if (failed == 0) {
    failed = uv_listen(reinterpret_cast<uv_stream_t*>(&server), args.backlog, on_connection);
  }
  if (failed != 0) {
    std::fprintf(stderr, "echo_server_uv: listen: %s\n", uv_strerror(failed));
    return 1;
  }
  sockaddr_in bound{};
  int size = sizeof bound;
  uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &size);
  announce_port(ntohs(bound.sin_port));
  return uv_run(loop, UV_RUN_DEFAULT);
}

}  // namespace
}  // namespace daemonkit::bench

int main(int argc, char** argv) {
  const auto args = daemonkit::bench::parse_echo_server_args(argc, argv);
  if (!args) return 2;
  return daemonkit::bench::serve(*args);
}
