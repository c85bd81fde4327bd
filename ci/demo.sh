#!/usr/bin/env bash
# The README's main job, end to end: build daemonkit and the sample echod, start echod as a
# daemon with a PID file and a log file (and, as root, as user nobody), show the PID file, send
# a line and print the echo, ask for its status, stop it. Exits non-zero if any step fails.
#   bash ci/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${DAEMONKIT_DEMO_BUILD_DIR:-$root/build/demo}

bash ci/install_deps.sh
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDAEMONKIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target daemonkit echod >/dev/null
daemonkit=$build/cli/daemonkit
echod=$build/examples/echod/echod

run_dir=$(mktemp -d /tmp/daemonkit-demo.XXXXXX)
pidfile=$run_dir/echod.pid
logfile=$run_dir/echod.log
cleanup() {
  # Whatever happened above, leave no daemon behind.
  if [ -e "$pidfile" ]; then "$daemonkit" stop --pidfile "$pidfile" --timeout 5 || true; fi
  rm -rf "$run_dir"
}
trap cleanup EXIT

step() { printf '\n$ %s\n' "$*"; "$@"; }
as_user=()
[ "$(id -u)" = 0 ] && as_user=(--uid nobody)

step "$daemonkit" run --pidfile "$pidfile" --logfile "$logfile" "${as_user[@]}" \
  --ready=pipe --timeout 10 -- "$echod" --nodaemon echo --port 0
step cat "$pidfile"
step cat "$logfile"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logfile" | tail -n 1)
[ -n "$port" ] || { echo "demo: echod did not log its port" >&2; exit 1; }

printf '\n$ echo "hello, daemon" > /dev/tcp/127.0.0.1/%s\n' "$port"
exec 3<>"/dev/tcp/127.0.0.1/$port"
echo "hello, daemon" >&3
IFS= read -r -t 5 reply <&3
exec 3>&-
echo "$reply"
[ "$reply" = "hello, daemon" ] || { echo "demo: echo mismatch: '$reply'" >&2; exit 1; }

step "$daemonkit" status --pidfile "$pidfile"
step "$daemonkit" stop --pidfile "$pidfile"
printf '\n$ %s status --pidfile %s\n' "$daemonkit" "$pidfile"
status=0
"$daemonkit" status --pidfile "$pidfile" || status=$?
[ "$status" = 3 ] || { echo "demo: status after stop was $status, not 3" >&2; exit 1; }
step cat "$logfile"

# The second way: echod is a daemonkit application (app::run), so it daemonizes by itself with
# twistd's options, and the same daemonkit stop and status work on its PID file.
printf '\n# echod on its own command line, daemonizing itself\n'
app_dir=$run_dir/app
mkdir -p "$app_dir"
if [ "$(id -u)" = 0 ]; then
  # The daemon, once it is nobody, removes its PID file from a directory it may write.
  chmod 755 "$run_dir"
  chown nobody "$app_dir"
fi
app_pidfile=$app_dir/echod.pid
app_logfile=$run_dir/echod-app.log
pidfile=$app_pidfile  # what cleanup stops
step "$echod" --pidfile "$app_pidfile" --logfile "$app_logfile" "${as_user[@]}" echo --port 0
step cat "$app_logfile"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$app_logfile" | tail -n 1)
[ -n "$port" ] || { echo "demo: echod did not log its port" >&2; exit 1; }
printf '\n$ echo "hello again" > /dev/tcp/127.0.0.1/%s\n' "$port"
exec 3<>"/dev/tcp/127.0.0.1/$port"
echo "hello again" >&3
IFS= read -r -t 5 reply <&3
exec 3>&-
echo "$reply"
[ "$reply" = "hello again" ] || { echo "demo: echo mismatch: '$reply'" >&2; exit 1; }
step "$daemonkit" status --pidfile "$app_pidfile"
step "$daemonkit" stop --pidfile "$app_pidfile"
step cat "$app_logfile"
[ ! -e "$app_pidfile" ] || { echo "demo: echod left its PID file" >&2; exit 1; }
printf '\ndemo: every step passed\n'
