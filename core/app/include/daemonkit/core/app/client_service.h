// ClientService: keeps one connection up (Twisted's ClientService). It connects on start; when
// an attempt fails or the connection is lost it waits as its BackoffPolicy says (capped,
// jittered, exponential) and tries again; a connection resets the count. Stop cancels an attempt
// or a wait at once, and closes a connection and completes when it is lost.
//
// How to connect is given as a function, so the service does not depend on any transport: it
// starts one attempt, reports through the callbacks, and returns how to cancel it (before the
// connection) or close it (after).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "daemonkit/core/app/backoff_policy.h"
#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/app/service.h"
#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"

namespace daemonkit::core {

// What one attempt reports: `failed` (never connected), or `connected` and later `lost`. The
// service ignores anything else, and anything from an attempt it has cancelled, so these may be
// called from inside the connect function or long after.
struct ConnectCallbacks {
  std::function<void()> connected;
  std::function<void(std::string reason)> failed;
  std::function<void(std::string reason)> lost;
};

// Starts an attempt; returns the function that cancels it, or closes the connection once
// connected (the service then waits for `lost`). An empty function means there is nothing to
// cancel or close. A std::exception thrown here counts as a failed attempt.
using ConnectFunction = std::function<std::function<void()>(ConnectCallbacks callbacks)>;

struct ClientServiceOptions {
  BackoffPolicy backoff;
  LogSink log;
  // Called on each new connection (Twisted's whenConnected, every time).
  std::function<void()> on_connected;
};

class ClientService : public Service {
 public:
  enum class Phase { kIdle, kConnecting, kWaiting, kConnected, kDisconnecting };

  // `peer` names what it connects to in the log ("tcp:example.com:80"). Without a jitter in
  // options.backoff, the jitter comes from a generator seeded from the reactor's clock and this
  // object's address: it needs to differ between clients, not to be secret.
  ClientService(Reactor& reactor, std::string peer, ConnectFunction connect,
                ClientServiceOptions options = {}, std::string name = {});
  ~ClientService() override;

  [[nodiscard]] Phase phase() const { return phase_; }
  [[nodiscard]] bool connected() const { return phase_ == Phase::kConnected; }
  // Attempts failed (or connections lost) since the last connection.
  [[nodiscard]] unsigned failed_attempts() const { return failed_; }
  // When the next attempt is due, while waiting.
  [[nodiscard]] std::optional<TimePoint> next_attempt() const;

 protected:
  StepResult<void> do_start() override;
  Completion do_stop() override;

 private:
  void attempt();
  void on_connected(std::uint64_t id);
  void on_failed(std::uint64_t id, const std::string& reason);
  void on_lost(std::uint64_t id, const std::string& reason);
  void retry_later(const std::string& reason);
  void cancel_attempt();

  Reactor& reactor_;
  std::string peer_;
  ConnectFunction connect_;
  ClientServiceOptions options_;
  std::mt19937_64 random_;
  Phase phase_ = Phase::kIdle;
  unsigned failed_ = 0;
  // Numbers the attempts: a callback of an attempt that is not the current one is stale.
  std::uint64_t attempt_id_ = 0;
  std::function<void()> cancel_;
  DelayedCall retry_;
  std::optional<Completion> disconnecting_;
  std::shared_ptr<ClientService*> self_;
};

}  // namespace daemonkit::core
