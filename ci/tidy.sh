#!/usr/bin/env bash
# Runs clang-tidy (Debian's clang-tidy-14) with the root .clang-tidy over core/'s sources and the
# core headers they include, and fails on any finding. It needs only a configured build tree for
# compile_commands.json, not a built one.
#   bash ci/tidy.sh                 # configure build/tidy, check every core/*/src/*.cpp
#   bash ci/tidy.sh core/daemon/src/pid_file.cpp   # just these files
#   DAEMONKIT_TIDY_BUILD=build/dev bash ci/tidy.sh  # reuse a configured tree
set -euo pipefail
cd "$(dirname "$0")/.."
build=${DAEMONKIT_TIDY_BUILD:-build/tidy}
jobs=${DAEMONKIT_TIDY_JOBS:-$(nproc)}

tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [ -z "$tidy" ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    clang-tidy-14
  tidy=clang-tidy-14
fi

if [ ! -f "$build/compile_commands.json" ]; then
  bash ci/install_deps.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi

if [ $# -gt 0 ]; then
  files=("$@")
else
  files=(core/*/src/*.cpp)
fi

# One clang-tidy per file, $jobs at a time; xargs exits non-zero if any of them found something.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if printf '%s\n' "${files[@]}" |
     xargs -P "$jobs" -n 1 "$tidy" -p "$build" --quiet >"$log" 2>&1; then
  echo "tidy: ${#files[@]} files of core/ clean"
else
  # clang-tidy's own chatter ("N warnings generated") hides the findings; keep the findings.
  grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing' "$log" >&2 || true
  echo "tidy: findings above (checks and reasons: .clang-tidy)" >&2
  exit 1
fi
