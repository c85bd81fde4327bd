#include "daemonkit/core/app/client_service.h"

#include <chrono>
#include <cstdint>
#include <exception>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

ClientService::ClientService(Reactor& reactor, std::string peer, ConnectFunction connect,
                             ClientServiceOptions options, std::string name)
    : Service(std::move(name)),
      reactor_(reactor),
      peer_(std::move(peer)),
      connect_(std::move(connect)),
      options_(std::move(options)),
      self_(std::make_shared<ClientService*>(this)) {
  if (!options_.backoff.jitter) {
    random_.seed(static_cast<std::uint64_t>(reactor_.now().time_since_epoch().count()) ^
                 static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(this)));
    options_.backoff.jitter = [this] {
      return std::uniform_real_distribution<double>(0.0, 1.0)(random_);
    };
  }
}

ClientService::~ClientService() {
  self_.reset();
  if (retry_.active()) (void)retry_.cancel();
  if (cancel_) {
    auto cancel = std::move(cancel_);
    cancel();
  }
}

std::optional<TimePoint> ClientService::next_attempt() const {
  if (phase_ != Phase::kWaiting || !retry_.active()) return std::nullopt;
  return retry_.time();
}

StepResult<void> ClientService::do_start() {
  failed_ = 0;
  attempt();
  return {};
}

void ClientService::attempt() {
  phase_ = Phase::kConnecting;
  const std::uint64_t id = ++attempt_id_;
  const std::weak_ptr<ClientService*> self = self_;
  ConnectCallbacks callbacks{
      [self, id] {
        if (auto alive = self.lock()) (*alive)->on_connected(id);
      },
      [self, id](std::string reason) {
        if (auto alive = self.lock()) (*alive)->on_failed(id, reason);
      },
      [self, id](std::string reason) {
        if (auto alive = self.lock()) (*alive)->on_lost(id, reason);
      },
  };
  std::function<void()> cancel;
  try {
    cancel = connect_(std::move(callbacks));
  } catch (const std::exception& e) {
    // An attempt that could not even begin (a resolver that threw) is a failed attempt: the
    // service keeps trying, as for any other failure.
    on_failed(id, e.what());
    return;
  }
  // The attempt may have reported already (a refusal known at once); its handle is kept only
  // while it is still the current attempt and has something to cancel or close.
  if (id == attempt_id_ && (phase_ == Phase::kConnecting || phase_ == Phase::kConnected)) {
    cancel_ = std::move(cancel);
  }
}

void ClientService::on_connected(std::uint64_t id) {
  if (id != attempt_id_ || phase_ != Phase::kConnecting) return;
  phase_ = Phase::kConnected;
  failed_ = 0;
  log_line(options_.log, fmt::format("{}: connected to {}", label(), peer_));
  if (options_.on_connected) options_.on_connected();
}

void ClientService::on_failed(std::uint64_t id, const std::string& reason) {
  if (id != attempt_id_) return;
  if (phase_ == Phase::kConnecting) {
    cancel_ = nullptr;
    retry_later(reason);
  } else if (phase_ == Phase::kDisconnecting || phase_ == Phase::kConnected) {
    // A transport that reports the end of a connection as a failure: take it as the loss.
    on_lost(id, reason);
  }
}

void ClientService::on_lost(std::uint64_t id, const std::string& reason) {
  if (id != attempt_id_) return;
  if (phase_ == Phase::kConnected) {
    cancel_ = nullptr;
    log_line(options_.log,
             fmt::format("{}: lost the connection to {}: {}", label(), peer_, reason));
    retry_later(reason);
  } else if (phase_ == Phase::kDisconnecting) {
    cancel_ = nullptr;
    phase_ = Phase::kIdle;
    ++attempt_id_;
    Completion done = *disconnecting_;
    disconnecting_.reset();
    done.complete();
  }
}

void ClientService::retry_later(const std::string& reason) {
  ++failed_;
  const Duration wait = options_.backoff.delay(failed_);
  log_line(options_.log,
           fmt::format("{}: scheduling retry {} to connect {} in {:.3f} seconds ({})", label(),
                       failed_, peer_, std::chrono::duration<double>(wait).count(), reason));
  phase_ = Phase::kWaiting;
  retry_ = reactor_.call_later(wait, [self = std::weak_ptr<ClientService*>(self_)] {
    if (auto alive = self.lock()) (*alive)->attempt();
  });
}

void ClientService::cancel_attempt() {
  ++attempt_id_;  // whatever the cancelled attempt reports now is stale
  if (cancel_) {
    auto cancel = std::move(cancel_);
    cancel_ = nullptr;
    cancel();
  }
}

Completion ClientService::do_stop() {
  switch (phase_) {
    case Phase::kConnecting:
      phase_ = Phase::kIdle;
      cancel_attempt();
      return Completion::done();
    case Phase::kWaiting:
      phase_ = Phase::kIdle;
      if (retry_.active()) (void)retry_.cancel();
      return Completion::done();
    case Phase::kConnected: {
      // Closing may drain what is queued; the stop completes when the loss is reported.
      if (!cancel_) {
        // Nothing to close, and so nothing that would report the loss: waiting would never end.
        phase_ = Phase::kIdle;
        ++attempt_id_;
        return Completion::done();
      }
      phase_ = Phase::kDisconnecting;
      disconnecting_.emplace();
      Completion done = *disconnecting_;
      auto close = std::move(cancel_);
      cancel_ = nullptr;
      close();
      return done;
    }
    case Phase::kIdle:
    case Phase::kDisconnecting:
      break;
  }
  return Completion::done();
}

}  // namespace daemonkit::core
