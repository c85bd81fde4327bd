#include "daemonkit/core/reactor/reactor_error.h"

namespace daemonkit::core {

std::string to_string(const ReactorError& error) {
  switch (error.code) {
    case ReactorErrc::kOs:
      return sys::to_string(error.os);
    case ReactorErrc::kNotRunning:
      return "Can't stop reactor that isn't running.";
    case ReactorErrc::kAlreadyRunning:
      return "Reactor already running.";
    case ReactorErrc::kNotRestartable:
      return "Reactor cannot be restarted after stop().";
    case ReactorErrc::kAlreadyCalled:
      return "Tried to cancel or change a call that already ran.";
    case ReactorErrc::kAlreadyCancelled:
      return "Tried to cancel or change a cancelled call.";
    case ReactorErrc::kAlreadyRegistered:
      return "Try to register an already registered process.";
    case ReactorErrc::kNotRegistered:
      return "Not registered.";
    case ReactorErrc::kSignalsTaken:
      return "Another reactor already routes these signals.";
    case ReactorErrc::kQueueFull:
      return "Too many calls from threads wait for the reactor.";
  }
  return "unknown reactor error";
}

std::string_view to_string(ReactorErrc code) {
  switch (code) {
    case ReactorErrc::kOs:
      return "kOs";
    case ReactorErrc::kNotRunning:
      return "kNotRunning";
    case ReactorErrc::kAlreadyRunning:
      return "kAlreadyRunning";
    case ReactorErrc::kNotRestartable:
      return "kNotRestartable";
    case ReactorErrc::kAlreadyCalled:
      return "kAlreadyCalled";
    case ReactorErrc::kAlreadyCancelled:
      return "kAlreadyCancelled";
    case ReactorErrc::kAlreadyRegistered:
      return "kAlreadyRegistered";
    case ReactorErrc::kNotRegistered:
      return "kNotRegistered";
    case ReactorErrc::kSignalsTaken:
      return "kSignalsTaken";
    case ReactorErrc::kQueueFull:
      return "kQueueFull";
  }
  return "unknown ReactorErrc";
}

}  // namespace daemonkit::core
