// ProcessProtocol: what a spawned process tells the code that spawned it (Twisted's
// ProcessProtocol). Every call comes on the reactor's thread; each may call anything on the
// Process, including closing its descriptors and dropping the last reference to it.
#pragma once

#include <cstddef>
#include <span>

#include "daemonkit/core/process/process_end.h"

namespace daemonkit::core {

class Process;

class ProcessProtocol {
 public:
  virtual ~ProcessProtocol() = default;

  // The process runs (or, if its program could not be exec'd, is about to end with that
  // reason): from here the protocol may write to it, close its descriptors and signal it.
  virtual void connection_made(Process& /*process*/) {}
  // Bytes the child wrote on `child_fd` (a ChildFd::read() descriptor; 1 for a PTY).
  virtual void child_data_received(int /*child_fd*/, std::span<const std::byte> /*data*/) {}
  // The pipe behind `child_fd` closed: the child closed its end (or ended), or the parent
  // closed it (close_child_fd), or it failed. Once per pipe.
  virtual void child_connection_lost(int /*child_fd*/) {}
  // The child was reaped (or never ran); its pipes may still be open, held by its own
  // children. Once.
  virtual void process_exited(const ProcessEnd& /*end*/) {}
  // Last, once: the child was reaped and every pipe to it has closed. Nothing follows.
  virtual void process_ended(const ProcessEnd& /*end*/) {}
};

}  // namespace daemonkit::core
