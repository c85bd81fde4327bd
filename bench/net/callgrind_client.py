"""The load of bench/net/callgrind.sh: drives one echo server, slowly enough for callgrind.

    callgrind_client.py PORT pingpong CONNECTIONS ROUNDS
        CONNECTIONS connections; each round sends 64 bytes on every one, then reads every
        echo back (CONNECTIONS x ROUNDS round trips), then closes them.
    callgrind_client.py PORT accepts COUNT
        COUNT times: connect, one 64-byte round trip, reset (SO_LINGER 0), as the accepts
        case of net_bench does.

Every echo is checked; a wrong or missing one exits 1 with the reason.
"""
import socket
import struct
import sys

MESSAGE = b"a" * 64


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_echo(s):
    got = b""
    while len(got) < len(MESSAGE):
        chunk = s.recv(len(MESSAGE) - len(got))
        if not chunk:
            sys.exit("the server closed a connection before its echo")
        got += chunk
    if got != MESSAGE:
        sys.exit("a wrong echo")


def ping_pong(port, connections, rounds):
    sockets = [connect(port) for _ in range(connections)]
    for _ in range(rounds):
        for s in sockets:
            s.sendall(MESSAGE)
        for s in sockets:
            read_echo(s)
    for s in sockets:
        s.close()


def accepts(port, count):
    for _ in range(count):
        s = connect(port)
        s.sendall(MESSAGE)
        read_echo(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    if case == "pingpong":
        ping_pong(port, int(sys.argv[3]), int(sys.argv[4]))
    elif case == "accepts":
        accepts(port, int(sys.argv[3]))
    else:
        sys.exit(f"unknown case {case}")


main()
