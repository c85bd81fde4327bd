// StreamServerService: listens on an endpoint while running (Twisted's
// StreamServerEndpointService, and strports.service for an endpoint string). The port is opened
// in privileged_start when the service has one (port 80 is bound before privileges are shed),
// else in start; a listen that fails is the start's error, naming the endpoint:
// "tcp:80: bind(0.0.0.0:80): Permission denied (EACCES)" (Twisted only logs it unless a private
// flag is set, #8170).
//
// Stop closes the listening socket at once. What happens to the connections the port made is an
// option: by default they are closed on the loop's next turn; with a drain timeout the stop
// waits for them to end by themselves, up to that long, and then closes the ones left. Either
// way the stop's Completion completes once the port and its connections are gone (never inside
// stop(), which may be called from one of their callbacks), and never errs: closing cannot
// fail, and a drain cut short is logged.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/app/endpoint.h"
#include "daemonkit/core/app/endpoint_string.h"
#include "daemonkit/core/app/service.h"
#include "daemonkit/core/app/ssl_server_endpoint.h"
#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct StreamServerOptions {
  // Hears a drain cut short; also the port's log (accept errors) unless port.log is set.
  LogSink log;
  // Unset: stop closes the open connections with the port (each protocol hears "aborted"; see
  // ListeningPort's destructor; one may let go of the service from there). Set: stop waits up to this long for them to end, then closes
  // what is left and logs how many.
  std::optional<Duration> drain_timeout;
  // How often a draining stop looks at the count of open connections (the port tells nobody
  // when one ends, so the service looks; the cost is one timer per period while draining).
  Duration drain_check = std::chrono::milliseconds(100);
  // The accepted connections' options (backlog, mode, interface come from the endpoint).
  PortOptions port;
  // For systemd: endpoints, the sockets the service manager passed (listen_fds); the service
  // takes its one by index or name when it listens. Must outlive the service. Unset: such an
  // endpoint fails to start ("no sockets were passed").
  ActivatedSockets* activated = nullptr;
  // For ssl: endpoints: core::listen_ssl_endpoint (ssl_server_endpoint.h). Unset, such an
  // endpoint fails to start, saying so, and the program links no OpenSSL.
  SslEndpointListener listen_ssl = nullptr;
};

class StreamServerService : public Service {
 public:
  // `factory` must outlive the service.
  StreamServerService(Reactor& reactor, sys::Syscalls& os, ServerEndpoint endpoint,
                      ServerFactory& factory, StreamServerOptions options = {},
                      std::string name = {});
  // Twisted's strports.service: the endpoint given as a string ("tcp:8080:interface=::1"),
  // refused with the parser's message when it is not a server endpoint.
  [[nodiscard]] static EndpointResult<std::shared_ptr<StreamServerService>> from_string(
      Reactor& reactor, sys::Syscalls& os, std::string_view endpoint, ServerFactory& factory,
      StreamServerOptions options = {}, std::string name = {});
  ~StreamServerService() override;

  [[nodiscard]] const ServerEndpoint& endpoint() const { return endpoint_; }
  // The port from the listen until the stop completes (no longer listening once stop() has
  // returned), else null: its address() says which port the kernel chose for tcp:0.
  [[nodiscard]] ListeningPort* port() const { return port_.get(); }
  // Connections closed by the last stop because its drain timed out (or because there was
  // none).
  [[nodiscard]] std::size_t aborted_connections() const { return aborted_; }

 protected:
  StepResult<void> do_privileged_start() override;
  StepResult<void> do_start() override;
  Completion do_stop() override;

 private:
  StepResult<void> listen();
  void check_drain();
  void check_after(Duration wait);
  // Closes the port and what it still holds, and completes the stop under way.
  void finish_stop();

  Reactor& reactor_;
  sys::Syscalls& os_;
  ServerEndpoint endpoint_;
  ServerFactory& factory_;
  StreamServerOptions options_;
  std::unique_ptr<ListeningPort> port_;
  std::size_t aborted_ = 0;
  TimePoint drain_deadline_{};
  DelayedCall drain_timer_;
  std::optional<Completion> stopping_;
  // Invalidated by the destructor, so that a drain timer of a destroyed service finds nothing.
  std::shared_ptr<StreamServerService*> self_;
};

}  // namespace daemonkit::core
