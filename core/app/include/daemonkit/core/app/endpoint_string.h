// Endpoint strings as twistd users write them ("tcp:8080:interface=127.0.0.1",
// "unix:/run/x.sock:mode=660", "systemd:domain=INET:index=0"), parsed into the values of
// endpoint.h and printed back.
//
// Twisted's grammar: fields split on ':'; in a field the first '=' separates a keyword from its
// value (so "a=b=c" is a=("b=c")); a backslash takes the next character literally ("\:", "\=",
// "\\"). Fields without '=' are positional and fill the kind's parameters in Twisted's order;
// the first one is the kind, matched case-sensitively. Stricter than Twisted, and each refusal
// says which field and why: unknown keywords, a parameter given twice (Twisted keeps the last),
// too many positionals, numbers with signs or spaces, addresses that are not literals, a trailing
// lone backslash (Twisted raises an internal error).
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "daemonkit/core/app/endpoint.h"

namespace daemonkit::core {

struct EndpointError {
  std::string kind;   // "tcp", or empty when the kind itself is what is wrong
  std::string field;  // the parameter at fault ("port"), or empty
  // The whole sentence: "tcp: port 'x80' is not a number from 0 to 65535".
  std::string message;
  friend bool operator==(const EndpointError&, const EndpointError&) = default;
};

template <typename T>
class [[nodiscard]] EndpointResult : public tl::expected<T, EndpointError> {
 public:
  using Base = tl::expected<T, EndpointError>;
  using Base::Base;
  EndpointResult(Base base) : Base(std::move(base)) {}  // NOLINT: implicit on purpose
};

// Servers: tcp, tcp6, unix, ssl, systemd.
[[nodiscard]] EndpointResult<ServerEndpoint> parse_server_endpoint(std::string_view text);
// Clients: tcp, unix.
[[nodiscard]] EndpointResult<ClientEndpoint> parse_client_endpoint(std::string_view text);

// The canonical string: the kind, then for a server its first parameter positional and the
// others as keywords, for a client every parameter as a keyword; only those that differ from
// their default; ':', '=' and '\' escaped. Parsing it gives back the same value.
[[nodiscard]] std::string to_string(const ServerEndpoint& endpoint);
[[nodiscard]] std::string to_string(const ClientEndpoint& endpoint);

// `text` with '\', ':' and '=' escaped, to put any string into an endpoint string as one value
// (Twisted's quoteStringArgument, which also escapes '=' here so that a positional value holding
// one is not read as a keyword).
[[nodiscard]] std::string quote_endpoint_argument(std::string_view text);

}  // namespace daemonkit::core

template <typename T>
struct tl::detail::is_expected_impl<daemonkit::core::EndpointResult<T>> : std::true_type {};
