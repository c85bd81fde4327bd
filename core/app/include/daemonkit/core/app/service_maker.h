// A service maker: one subcommand of an application's command line (twistd's IServiceMaker
// plugin), with its name, a line for the "Commands:" list, its own options, and the function
// that makes the service from what was given. app::run lists every registered maker and runs
// the one named on the command line.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemonkit/core/app/application.h"
#include "daemonkit/core/app/service.h"
#include "daemonkit/core/app/ssl_server_endpoint.h"
#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/options/option_table.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// What a maker's own options were given: each option at most once, in the order given, and the
// words after them (its operands).
struct MakerOptions {
  std::vector<std::pair<std::string, std::string>> values;  // long name, value ("" for a flag)
  std::vector<std::string> operands;

  // Whether the option of this long name (no dashes) was given.
  [[nodiscard]] bool has(std::string_view long_name) const;
  // Its value when given.
  [[nodiscard]] std::optional<std::string> value(std::string_view long_name) const;
  friend bool operator==(const MakerOptions&, const MakerOptions&) = default;
};

// What a maker builds its service on: the loop and the OS the service will run on, a log that
// speaks into the daemon's log once the runner has set it up, the sockets a service manager
// passed (socket activation; empty when none), and the application, whose user, group and
// process name a maker may set. Everything here outlives the service.
struct ServiceContext {
  Reactor& reactor;
  sys::Syscalls& os;
  LogSink log;
  ActivatedSockets& activated;
  Application& application;
  // What app::run was given for ssl: endpoints (StreamServerOptions::listen_ssl); null in a
  // program without TLS.
  SslEndpointListener listen_ssl = nullptr;
};

// The service, or the sentence saying why the options cannot make one (a usage error, exit 2).
// Nothing may be opened or bound here: that is the service's privileged start or start, after
// the forks. A maker only builds.
using MakeService = std::function<tl::expected<std::shared_ptr<Service>, std::string>(
    const MakerOptions&, const ServiceContext&)>;

struct ServiceMaker {
  std::string name;         // The subcommand, as typed: "echo".
  std::string description;  // One line, for the "Commands:" list and the top of its --help.
  // Its options; --help is added by the command line and must not be among them.
  std::vector<OptionSpec> options;
  std::string usage = "[OPTIONS]";  // What follows the subcommand in its usage line.
  MakeService make;
};

}  // namespace daemonkit::core
