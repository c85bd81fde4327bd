#!/usr/bin/env bash
# Instructions per operation of daemonkit's echo server, libuv's and the raw epoll one, counted by
# callgrind: the user-space share of what run.sh measures as CPU time, without the machine's
# noise (on a shared host run.sh's ratios move by a few hundredths from run to run; these
# counts do not). The kernel's share is not counted: strace -c shows the system calls.
#   bash bench/net/callgrind.sh [pingpong CONNECTIONS ROUNDS | accepts COUNT]
# With no case: pingpong 100 200, then accepts 2000. Each server runs under callgrind twice,
# once with the load and once with its first round (or accept) only; the difference over the
# rest of the operations is the figure, so neither start-up nor connecting is charged to a
# round trip. The load is callgrind_client.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
build=${DAEMONKIT_BENCH_CALLGRIND_DIR:-$root/build/bench-callgrind}

DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g \
  -DDAEMONKIT_BUILD_BENCH=ON -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target daemonkit_echo_server echo_server_epoll echo_server_uv >&2

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Instructions the server at $1 executes while serving `callgrind_client.py PORT $2...`. The
# profile stays in $build/callgrind/, named after the server and the load.
instructions() {
  local server=$1
  shift
  local out
  out="$build/callgrind/$(basename "$server")-$(IFS=-; echo "$*").out"
  mkdir -p "$build/callgrind"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$server" --port 0 \
    >"$scratch/port" 2>"$scratch/valgrind" &
  local pid=$! port=""
  for _ in $(seq 300); do
    port=$(head -n1 "$scratch/port")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$server did not announce its port" >&2; kill "$pid"; exit 1; }
  /usr/bin/python3 "$root/bench/net/callgrind_client.py" "$port" "$@"
  kill -TERM "$pid"
  wait "$pid" || true
  callgrind_annotate "$out" | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

# Prints one line: instructions per operation for both servers. $2 is how many operations the
# load ($3...) makes beyond its baseline (the same with one round, or one accept), which is
# measured too and subtracted.
measure() {
  local name=$1 operations=$2
  shift 2
  local -a load=("$@") baseline
  if [ "$1" = pingpong ]; then baseline=(pingpong "$2" 1); else baseline=(accepts 1); fi
  local server figures=()
  for server in echo_server_epoll echo_server_uv daemonkit_echo_server; do
    local all one
    all=$(instructions "$build/bench/net/$server" "${load[@]}")
    one=$(instructions "$build/bench/net/$server" "${baseline[@]}")
    figures+=($(((all - one) / operations)))
  done
  printf '%-34s raw epoll %6d   libuv %6d   daemonkit %6d instructions per operation\n' \
    "$name" "${figures[0]}" "${figures[1]}" "${figures[2]}"
}

case "${1:-}" in
  pingpong) measure "ping-pong, $2 x $3 round trips" $(($2 * ($3 - 1))) pingpong "$2" "$3" ;;
  accepts) measure "accepts, $2" $(($2 - 1)) accepts "$2" ;;
  "")
    measure "ping-pong, 100 x 200 round trips" 19900 pingpong 100 200
    measure "accepts, 2000" 1999 accepts 2000
    ;;
  *) echo "usage: $0 [pingpong CONNECTIONS ROUNDS | accepts COUNT]" >&2; exit 2 ;;
esac
