#include "echo_service.h"

#include <charconv>
#include <memory>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/app/stream_server_service.h"
#include "echo.h"

namespace echod {
namespace {

namespace core = daemonkit::core;

// The factory lives in a base declared before StreamServerService, so it is built before the
// service that keeps a reference to it and destroyed after.
struct EchoFactory {
  core::ServerFactoryOf<Echo> factory;
};

class EchoService : private EchoFactory, public core::StreamServerService {
 public:
  EchoService(const core::ServiceContext& context, core::ServerEndpoint endpoint)
      : core::StreamServerService(context.reactor, context.os, std::move(endpoint), factory,
                                  options(context), "echo"),
        log_(context.log) {}

 protected:
  core::StepResult<void> do_start() override {
    if (auto started = core::StreamServerService::do_start(); !started) return started;
    if (port() != nullptr) log_(fmt::format("listening on {}", port()->address()));
    return {};
  }

 private:
  static core::StreamServerOptions options(const core::ServiceContext& context) {
    core::StreamServerOptions options;
    options.log = context.log;
    options.activated = &context.activated;
    options.listen_ssl = context.listen_ssl;
    return options;
  }

  core::LogSink log_;
};

// "7007" is echod's shorthand for its loopback TCP port.
std::string endpoint_text(const std::string& given) {
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), port);
  if (!given.empty() && ec == std::errc{} && end == given.data() + given.size()) {
    return fmt::format("tcp:{}:interface=127.0.0.1", given);
  }
  return given;
}

}  // namespace

core::ServiceMaker echo_maker() {
  core::ServiceMaker maker;
  maker.name = "echo";
  maker.description = "A TCP echo server: every byte received is sent back.";
  maker.options = {core::OptionSpec{
      "port", 'p', "ENDPOINT",
      "Where to listen: an endpoint string, or a port number on 127.0.0.1. Default: "
      "tcp:7007:interface=127.0.0.1, or the first socket a service manager passed."}};
  maker.make = [](const core::MakerOptions& options, const core::ServiceContext& context)
      -> tl::expected<std::shared_ptr<core::Service>, std::string> {
    std::string text = kDefaultEndpoint;
    if (auto given = options.value("port")) {
      text = endpoint_text(*given);
    } else if (!context.activated.empty()) {
      text = "systemd:domain=INET:index=0";
    }
    auto endpoint = core::parse_server_endpoint(text);
    if (!endpoint) return tl::unexpected("--port: " + endpoint.error().message);
    return std::make_shared<EchoService>(context, std::move(*endpoint));
  };
  return maker;
}

}  // namespace echod
