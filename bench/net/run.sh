#!/usr/bin/env bash
# Echo servers over loopback, measured in one run and stated as ratios against a raw epoll
# server (the floor): daemonkit's, libuv's, Boost.Asio's and Twisted's. Cases: 64-byte ping-pong
# over 1, 64 and 1,000 connections (round trips/s, and the server's CPU time per round trip from
# /proc/PID/task/*/schedstat, the steady figure on a 2-cpu machine where the rate swings 2x with
# where client and server land); bulk echo over one connection (MiB/s); accepts/s (connect, one
# round trip, reset, 32 in flight) with CPU per accept; the server's VmRSS per idle connection
# with 10,000 open, and how long that burst of connects took. Prints machine facts, then one
# table with the targets of issue #15 beside daemonkit's rows:
#   CPU per round trip and per accept <= 1.05x raw epoll, bulk >= 0.90x raw, <= 256 B per idle
#   connection.
#   bash bench/net/run.sh [ROUNDS [SECONDS [IDLE_CONNECTIONS]]]
# Defaults (3 1 10000) take about two minutes on an idle 2-cpu machine; more rounds and longer
# windows (5 3) steady the medians on a busy one. The servers and the load client are separate
# processes; every case is bounded in time and a failing one says why in its row.
#
# daemonkit's row is filled when bench/net/daemonkit_echo_server.cpp exists and core/net is
# built (CMake target daemonkit_core_net); until then it reads "not built (core/net missing)".
# bench/net/README.md says what that program must do.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rounds=${1:-3}
seconds=${2:-1}
idle=${3:-10000}
build=${DAEMONKIT_BENCH_BUILD_DIR:-$root/build/bench-net}

DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAEMONKIT_BUILD_BENCH=ON \
  -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target daemonkit_net_bench >&2
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import twisted' 2>/dev/null || {
  echo "missing python3-twisted (DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh)" >&2
  exit 1
}

echo "uid $(id -u); $(nproc) cpus shared with whatever else runs: load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peers: $(dpkg-query -W -f='${Package} ${Version}, ' libuv1-dev libboost-dev python3-twisted)python $(/usr/bin/python3 -c 'import platform; print(platform.python_version())')"
"$build/bench/net/daemonkit_net_bench" --bin-dir "$build/bench/net" --rounds "$rounds" \
  --seconds "$seconds" --idle "$idle" --twisted "$root/bench/net/twisted_echo.py" \
  --python /usr/bin/python3
