#!/usr/bin/env bash
# #16's bench: echod through app::run against twistd running the same echo service from a .tac
# (bench/app/echo.tac), measured in one run.
#   1. start-to-ready: from starting the launcher to it exiting 0, which both do only once the
#      daemon listens (twistd's status pipe after startApplication; app::run's after the
#      services started). bench/launch's timer: rounds interleave the peers in a shuffled
#      order, every daemon is stopped through its PID file. Target: echod <= 1/50 of twistd.
#      The floor beside them: bench/launch's minimal double-fork daemonizer in C (a status pipe
#      that reports at exec of /bin/sleep): what any daemonizing start costs on this machine.
#   2. the idle daemon's memory: VmRSS and Pss (/proc/PID/smaps_rollup) a moment after start.
#   bash bench/app/run.sh [RUNS]        (RUNS defaults to 21)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
runs=${1:-21}
build=${DAEMONKIT_BENCH_BUILD_DIR:-$root/build/bench-app}

DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAEMONKIT_BUILD_BENCH=ON \
  -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target daemonkit_launch_timer daemonkit_bench_minimal_daemon echod \
  daemonkit >&2
echod=$build/examples/echod/echod
daemonkit=$build/cli/daemonkit
twistd=/usr/bin/twistd3
[ -x "$twistd" ] || { echo "missing $twistd (DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/daemonkit-app-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
spec=$work/peers.tsv
# twistd first: the ratios are echod's time over twistd's. Both log to a file in $work and
# listen on a port the kernel picks.
{
  printf 'twistd-echo\t%s --pidfile {pidfile} --logfile {pidfile}.log --rundir %s -y %s\n' \
    "$twistd" "$work" "$root/bench/app/echo.tac"
  printf 'echod-app\t%s --pidfile {pidfile} --logfile {pidfile}.log --rundir %s echo --port 0\n' \
    "$echod" "$work"
  printf 'minimal-c\t%s {pidfile} /bin/sleep 60\n' "$build/bench/launch/daemonkit_bench_minimal_daemon"
} >"$spec"

echo "kernel $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/launch/daemonkit_launch_timer" --spec "$spec" --dir "$work" --runs "$runs" \
  --limits 1024

# The idle daemon's memory, three starts each; kB.
rss_of() {  # NAME COMMAND...: prints "VmRSS Pss" of the daemon the command started
  local name=$1; shift
  local pidfile=$work/$name-rss.pid
  "${@//\{pidfile\}/$pidfile}" >/dev/null
  sleep 0.5
  local pid
  pid=$(cat "$pidfile")
  local rss pss
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
  "$daemonkit" stop --pidfile "$pidfile" --timeout 5 >/dev/null 2>&1 || kill "$pid"
  echo "$rss $pss"
}
printf '\nidle daemon memory (kB, median of 3 starts)\n%-12s %8s %8s\n' peer VmRSS Pss
declare -A rss pss
for peer in twistd-echo echod-app; do
  samples=()
  for _ in 1 2 3; do
    if [ $peer = twistd-echo ]; then
      samples+=("$(rss_of $peer "$twistd" --pidfile '{pidfile}' --logfile "$work/rss.log" \
        --rundir "$work" -y "$root/bench/app/echo.tac")")
    else
      samples+=("$(rss_of $peer "$echod" --pidfile '{pidfile}' --logfile "$work/rss.log" \
        --rundir "$work" echo --port 0)")
    fi
  done
  rss[$peer]=$(printf '%s\n' "${samples[@]}" | awk '{print $1}' | sort -n | sed -n 2p)
  pss[$peer]=$(printf '%s\n' "${samples[@]}" | awk '{print $2}' | sort -n | sed -n 2p)
  printf '%-12s %8s %8s\n' "$peer" "${rss[$peer]}" "${pss[$peer]}"
done
awk -v a="${rss[echod-app]}" -v b="${rss[twistd-echo]}" -v c="${pss[echod-app]}" \
  -v d="${pss[twistd-echo]}" 'BEGIN { printf "echod/twistd: VmRSS %.3f, Pss %.3f\n", a / b, c / d }'
