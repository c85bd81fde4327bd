#include "daemonkit/core/app/ssl_server_endpoint.h"

#include <utility>

#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/tls_context.h"
#include "listen_error.h"

namespace daemonkit::core {

using detail::listen_error;

StepResult<std::unique_ptr<ListeningPort>> listen_ssl_endpoint(Reactor& reactor, sys::Syscalls& os,
                                                               const SslServerEndpoint& endpoint,
                                                               ServerFactory& factory,
                                                               const PortOptions& port) {
  const ServerEndpoint named = endpoint;
  if (!endpoint.extra_cert_chain.empty() || !endpoint.dh_parameters.empty()) {
    return step_failed(
        listen_error(named,
                     "extraCertChain and dhParameters are not supported; give the chain in "
                     "certKey (leaf first) and let TLS 1.2+ use ECDHE"));
  }
  TlsOptions tls;
  tls.private_key = Pem::file(endpoint.private_key);
  tls.certificate_chain =
      Pem::file(endpoint.cert_key.empty() ? endpoint.private_key : endpoint.cert_key);
  auto context = TlsContext::server(os, std::move(tls));
  if (!context) {
    return step_failed(listen_error(named, context.error().message, context.error().os));
  }
  ListenOptions options;
  options.backlog = endpoint.backlog;
  options.interface = endpoint.interface;
  options.port = port;
  auto listening = listen_ssl(reactor, os, endpoint.port, factory, *context, std::move(options));
  if (!listening) return step_failed(listen_error(named, listening.error()));
  return std::move(*listening);
}

}  // namespace daemonkit::core
