// Producer: Twisted's IPushProducer/IPullProducer, one interface for both. A consumer (a stream
// transport) calls these to keep a source of data in step with how fast the other side reads.
#pragma once

namespace daemonkit::core {

class Producer {
 public:
  virtual ~Producer() = default;

  // Stop making data for now: the consumer's buffer is above its high-water mark (streaming
  // producers only), or, for a transport's reader side, its owner wants no more input yet.
  virtual void pause_producing() = 0;
  // Make data again. A pull (non-streaming) producer is called here each time the consumer has
  // sent everything, and must write something or unregister: nothing else will ask it again.
  virtual void resume_producing() = 0;
  // The consumer is gone (its connection was lost): make nothing more, ever. Called once, just
  // before the consumer's owner hears the loss, so the producer never writes into a dead one.
  virtual void stop_producing() = 0;
};

}  // namespace daemonkit::core
