#!/usr/bin/python3
"""Twisted's side of bench/spawn: sequential spawnProcess + reap of /bin/true per second.

Each child is started from the previous one's processEnded (exited, reaped, and its three
pipes closed: Twisted's spawnProcess gives it stdin, stdout and stderr pipes by default), on
Twisted's default reactor. With --resident-mib, that much memory is allocated and touched page by
page first, and kept until the end, so the spawns run in a parent that large.

    twisted_spawn.py --spawns N [--resident-mib M] [--warmup W]

Prints one line: "twisted <version> python <version> spawns_per_s <rate>"; exits 1 if a child
did not exit 0.
"""

import argparse
import os
import platform
import sys
import time

import twisted
from twisted.internet import error, protocol, reactor

PAGE = os.sysconf("SC_PAGE_SIZE")
TRUE = "/bin/true"


class Spawner(protocol.ProcessProtocol):
    """Tells the run when its child has ended."""

    def __init__(self, run):
        self.run = run

    def processEnded(self, reason):
        self.run.ended(reason)


class Run:
    """`spawns` children one after another, then `on_done(self)`; stops the reactor on failure."""

    def __init__(self, spawns, env, on_done):
        self.left = spawns
        self.env = env
        self.on_done = on_done
        self.failure = None
        self.started = None
        self.elapsed = None

    def start(self):
        self.started = time.monotonic()
        self.next()

    def next(self):
        reactor.spawnProcess(Spawner(self), TRUE, [TRUE], env=self.env)

    def ended(self, reason):
        if not reason.check(error.ProcessDone):
            self.failure = reason.getErrorMessage()
            reactor.stop()
            return
        self.left -= 1
        if self.left > 0:
            self.next()
            return
        self.elapsed = time.monotonic() - self.started
        self.on_done(self)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spawns", type=int, required=True)
    parser.add_argument("--resident-mib", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    resident = bytearray(args.resident_mib << 20)
    for offset in range(0, len(resident), PAGE):
        resident[offset] = 1  # bytearray's zeroed pages are not resident until written

    # Warm-up and timed spawns run in one reactor.run: a Twisted reactor does not restart.
    env = dict(os.environ)
    timed = Run(args.spawns, env, lambda run: reactor.stop())
    warmup = Run(args.warmup, env, lambda run: timed.start())
    reactor.callWhenRunning(warmup.start)
    reactor.run()
    failure = warmup.failure or timed.failure
    if failure or timed.elapsed is None:
        print(f"twisted_spawn: {failure or 'did not finish'}", file=sys.stderr)
        return 1
    del resident
    print(f"twisted {twisted.__version__} python {platform.python_version()} "
          f"spawns_per_s {args.spawns / timed.elapsed:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
