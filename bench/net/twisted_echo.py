#!/usr/bin/python3
"""Twisted's echo server for bench/net: a Protocol whose dataReceived writes the bytes back, on
the epoll reactor, listening on 127.0.0.1 with the same backlog as the others (Twisted's default
of 50 overflows under the 10,000-connection burst and stalls on SYN retransmits).

    twisted_echo.py [--port N] [--backlog N]

Prints the port it listens on as one line, then serves until a signal ends it.
"""

import argparse
import resource
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor  # noqa: E402  (after the reactor is chosen)


class Echo(protocol.Protocol):
    def connectionMade(self):
        # The C++ servers set TCP_NODELAY on each connection; so does this one.
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data):
        self.transport.write(data)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    factory = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(args.port, factory, backlog=args.backlog, interface="127.0.0.1")
    sys.stdout.write("%d\n" % port.getHost().port)
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
