#include "daemonkit/core/reactor/loss_reason.h"

namespace daemonkit::core {

std::string to_string(const LossReason& reason) {
  switch (reason.kind) {
    case LossReason::Kind::kDone:
      return "Connection was closed cleanly.";
    case LossReason::Kind::kAborted:
      return "Connection was aborted.";
    case LossReason::Kind::kTls:
      return reason.detail;
    case LossReason::Kind::kLost:
      break;
  }
  return sys::to_string(reason.error);
}

}  // namespace daemonkit::core
