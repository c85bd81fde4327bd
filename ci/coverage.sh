#!/usr/bin/env bash
# Line coverage of core/, area by area, from the whole test suite: builds the tree in its own
# build dir with core/ at -O0 and --coverage, runs every test under ctest, then prints
# for each area of core/ (every core/<area>/ with a src/ folder: core/README.md lists them) its
# line coverage and, file by file, the lines no test ran. Exits 1 when an area is below the
# floor (or a test failed), so it can gate CI.
#   bash ci/coverage.sh                      # build, test, report
#   DAEMONKIT_COVERAGE_MIN=90 bash ci/coverage.sh
#   DAEMONKIT_COVERAGE_SKIP_TESTS=1 bash ci/coverage.sh   # report on the counters already there
# An area counts the lines of its src/ (sources and private headers), not its tests and not its
# public headers: only core/ is instrumented (the test programs are not, so that ccache serves
# them), and the templates in public headers (ThreadCallQueue::try_push, call_from_thread) run
# from the callers' instrumentation, so their lines would read as never run. Code that runs only
# in a forked child that leaves by _exit is not counted either: _exit skips gcov's exit handler.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${DAEMONKIT_COVERAGE_BUILD:-build/coverage}
min=${DAEMONKIT_COVERAGE_MIN:-95}
jobs=${DAEMONKIT_COVERAGE_JOBS:-$(nproc)}

bash ci/install_deps.sh
# gcovr is this script's alone, so it is installed here rather than for every build.
if ! command -v gcovr >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends gcovr
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# The everyday build's options (so ccache already holds everything outside core/), with core/'s
# areas, and only them, compiled at -O0 with --coverage by ci/coverage.cmake.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAEMONKIT_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_PROJECT_INCLUDE="$root/ci/coverage.cmake" "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$jobs"

if [ "${DAEMONKIT_COVERAGE_SKIP_TESTS:-0}" != 1 ]; then
  # Counters from an earlier run would add to this one's.
  find "$build" -name '*.gcda' -delete
  # A failing test does not stop the report, but fails the script: the numbers are partial.
  (cd "$build" && ctest -j "$jobs" --timeout 300 --output-on-failure) || {
    echo "coverage: some tests failed; the numbers below miss what they did not run" >&2
    tests_failed=1
  }
fi

# One pass of gcov over every counter file into a JSON trace; each area is then a filter over it.
trace="$build/coverage.json"
gcovr --root "$root" --object-directory "$build" --filter 'core/[a-z_]+/src/' \
  --json "$trace" -j "$jobs"

status=0
summary=()
for dir in core/*/src; do
  area=$(basename "$(dirname "$dir")")
  echo
  echo "=== core/$area"
  # --txt lists every file with its coverage and the lines not covered ("Missing").
  if ! gcovr --add-tracefile "$trace" --root "$root" --filter "core/$area/src/" --txt - \
         --fail-under-line "$min"; then
    status=1
  fi
  pct=$(gcovr --add-tracefile "$trace" --root "$root" --filter "core/$area/src/" --json-summary - |
        python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["line_percent"])')
  summary+=("$(printf '%-14s %6s%%' "core/$area" "$pct")")
done

echo
echo "=== line coverage per area (floor ${min}%)"
printf '%s\n' "${summary[@]}"
if [ "$status" -ne 0 ]; then
  echo "coverage: an area is below ${min}% of lines (see the Missing column above)" >&2
fi
if [ "${tests_failed:-0}" = 1 ]; then status=1; fi
exit "$status"
