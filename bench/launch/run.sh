#!/usr/bin/env bash
# Launch latency of `daemonkit run -- /bin/sleep 60` against its peers, measured in one run:
# a minimal double-fork + status-pipe C program (the reference), libdaemon, python-daemon,
# twistd, daemonize(1) and start-stop-daemon(8), each at RLIMIT_NOFILE 1024 and at the highest
# limit this machine allows. Prints medians (microseconds) and ratios; every daemon started is
# stopped through its own PID file.
#   bash bench/launch/run.sh [RUNS]        (RUNS defaults to 21)
# Targets for daemonkit: within 1.2x of the reference, and no growth from the low to the high
# limit (high/low close to 1, as the reference's).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
runs=${1:-21}
build=${DAEMONKIT_BENCH_BUILD_DIR:-$root/build/bench-launch}

DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDAEMONKIT_BUILD_BENCH=ON \
  -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
targets=(daemonkit_launch_timer daemonkit_bench_minimal_daemon)
have_libdaemon=0
if grep -q '^LIBDAEMON_FOUND:INTERNAL=1' "$build/CMakeCache.txt"; then
  targets+=(daemonkit_bench_libdaemon_daemon)
  have_libdaemon=1
fi
[ -f "$root/cli/CMakeLists.txt" ] && targets+=(daemonkit)
cmake --build "$build" -j2 --target "${targets[@]}" >&2
# daemonkit joins once its `run` works here. The daemon lives a moment: one already dead when the
# launcher sees its exec is reported as a failure, and /bin/true may be.
have_daemonkit=0
if [ -x "$build/cli/daemonkit" ] && "$build/cli/daemonkit" run -- /bin/sleep 1 2>/dev/null; then
  have_daemonkit=1
fi

work=$(mktemp -d /tmp/daemonkit-launch.XXXXXX)
trap 'rm -rf "$work"' EXIT
spec=$work/peers.tsv
launch=$build/bench/launch
{
  printf 'minimal-c\t%s {pidfile} /bin/sleep 60\n' "$launch/daemonkit_bench_minimal_daemon"
  if [ $have_daemonkit = 1 ]; then
    printf 'daemonkit\t%s run --pidfile {pidfile} -- /bin/sleep 60\n' "$build/cli/daemonkit"
  fi
  if [ $have_libdaemon = 1 ]; then
    printf 'libdaemon\t%s {pidfile} /bin/sleep 60\n' "$launch/daemonkit_bench_libdaemon_daemon"
  fi
  printf 'python-daemon\t/usr/bin/python3 %s {pidfile} /bin/sleep 60\n' \
    "$root/bench/launch/python_daemon.py"
  printf 'twistd\t/usr/bin/twistd3 --pidfile {pidfile} --logfile /dev/null --rundir %s -y %s\n' \
    "$work" "$root/bench/launch/tiny.tac"
  printf 'daemonize\t/usr/bin/daemonize -p {pidfile} /bin/sleep 60\n'
  printf 'start-stop-daemon\t/sbin/start-stop-daemon --start --quiet --background --make-pidfile --pidfile {pidfile} --startas /bin/sleep -- 60\n'
} >"$spec"
for tool in /usr/bin/twistd3 /usr/bin/daemonize /sbin/start-stop-daemon; do
  [ -x "$tool" ] || { echo "missing $tool (DAEMONKIT_WITH_BENCH=1 bash ci/install_deps.sh)" >&2; exit 1; }
done

echo "kernel $(uname -r), $(nproc) cpus, uid $(id -u), RLIMIT_NOFILE hard $(ulimit -Hn), fs.nr_open $(cat /proc/sys/fs/nr_open)"
"$launch/daemonkit_launch_timer" --spec "$spec" --dir "$work" --runs "$runs" --limits 1024,max
