// How a server endpoint's listen failure reads, for StreamServerService and the ssl: endpoint
// listener (ssl_server_endpoint.cpp): "<endpoint>: <why>", or, for core/net's OS errors that
// already name their call and address, "<kind>: bind(127.0.0.1:80): ...".
#pragma once

#include <optional>
#include <string_view>

#include "daemonkit/core/app/endpoint_string.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/reactor/reactor_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core::detail {

[[nodiscard]] StepError listen_error(const ServerEndpoint& endpoint, std::string_view why,
                                     std::optional<sys::Error> cause = std::nullopt);
[[nodiscard]] StepError listen_error(const ServerEndpoint& endpoint, const ReactorError& error);

}  // namespace daemonkit::core::detail
