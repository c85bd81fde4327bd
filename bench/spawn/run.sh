#!/usr/bin/env bash
# Spawning child programs, measured in one run and stated as ratios: spawn + reap of /bin/true
# per second against raw posix_spawn + waitpid, next to libuv's uv_spawn, Twisted's
# spawnProcess and fork + exec; the same with a 256 MiB resident parent; and stdin -> cat ->
# stdout throughput against a raw poll loop. Prints machine facts, then the table with the
# targets of issue #14 beside daemonkit's rows.
#   bash bench/spawn/run.sh [ROUNDS [SPAWNS [TWISTED_SPAWNS [PIPE_MIB]]]]
# Defaults (5 40 20 256) take about a minute on an idle 2-cpu machine. More rounds steady the
# medians on a busy one. Targets for daemonkit: >= 0.95x raw posix_spawn, at most 5% slower
# with the 256 MiB parent (large/small >= 0.95), pipe throughput >= 0.9x raw.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rounds=${1:-5}
spawns=${2:-40}
twisted_spawns=${3:-20}
pipe_mib=${4:-256}
build=${DAEMONKIT_BENCH_BUILD_DIR:-$root/build/bench-spawn}

DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAEMONKIT_BUILD_BENCH=ON \
  -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target daemonkit_spawn_bench >&2
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import twisted' 2>/dev/null || {
  echo "missing python3-twisted (DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh)" >&2
  exit 1
}

echo "uid $(id -u), RLIMIT_NOFILE $(ulimit -n); $(nproc) cpus shared with whatever else runs: load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/spawn/daemonkit_spawn_bench" --rounds "$rounds" --spawns "$spawns" \
  --twisted-spawns "$twisted_spawns" --pipe-mib "$pipe_mib" \
  --twisted "$root/bench/spawn/twisted_spawn.py" --python /usr/bin/python3
