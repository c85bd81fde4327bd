#include "daemonkit/core/reactor/signal_routing.h"

#include <array>
#include <cstring>

namespace daemonkit::core {

namespace {

// One slot per signal number; 64 covers every standard and real-time signal on Linux.
constexpr int kSlots = 65;
std::array<std::atomic<SignalRouting*>, kSlots> g_routes{};

bool in_range(int sig) { return sig > 0 && sig < kSlots; }

}  // namespace

void SignalRouting::handle(int sig) noexcept {
  if (!in_range(sig)) return;
  SignalRouting* router = g_routes[static_cast<std::size_t>(sig)].load(std::memory_order_acquire);
  if (router == nullptr) return;
  router->caught_.fetch_or(std::uint64_t{1} << (sig - 1), std::memory_order_seq_cst);
  router->waker_.wake();  // keeps errno intact
}

ReactorResult<bool> SignalRouting::route(int sig, bool only_if_default) {
  if (!in_range(sig)) return reactor_fail(sys::Error{EINVAL, "sigaction", {}});
  auto& slot = g_routes[static_cast<std::size_t>(sig)];
  if (routes(sig)) return true;
  struct sigaction current {};
  if (auto r = sys_.sigaction(sig, nullptr, &current); !r) return reactor_fail(r.error());
  if (only_if_default && current.sa_handler != SIG_DFL) return false;

  SignalRouting* expected = nullptr;
  if (!slot.compare_exchange_strong(expected, this, std::memory_order_acq_rel)) {
    return reactor_fail(ReactorErrc::kSignalsTaken);
  }
  struct sigaction action {};
  action.sa_handler = &SignalRouting::handle;
  // SA_RESTART: a signal must not make other code's blocking calls fail with EINTR.
  action.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  if (auto r = sys_.sigaction(sig, &action, &previous); !r) {
    slot.store(nullptr, std::memory_order_release);
    return reactor_fail(r.error());
  }
  saved_.push_back(Saved{sig, previous});
  return true;
}

void SignalRouting::uninstall() {
  // Newest first, so a signal routed twice by mistake still ends at its oldest disposition.
  for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
    (void)sys_.sigaction(it->sig, &it->previous, nullptr);
    g_routes[static_cast<std::size_t>(it->sig)].store(nullptr, std::memory_order_release);
  }
  saved_.clear();
}

std::vector<int> SignalRouting::take_caught() {
  const std::uint64_t bits = caught_.exchange(0, std::memory_order_seq_cst);
  std::vector<int> out;
  for (int sig = 1; sig < kSlots; ++sig) {
    if (bits & (std::uint64_t{1} << (sig - 1))) out.push_back(sig);
  }
  return out;
}

bool SignalRouting::routes(int sig) const {
  return in_range(sig) &&
         g_routes[static_cast<std::size_t>(sig)].load(std::memory_order_acquire) == this;
}

}  // namespace daemonkit::core
