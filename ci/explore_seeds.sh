#!/usr/bin/env bash
# Explores new seeds for the randomized suites: the test programs ctest labels `randomized`,
# which cmake/daemonkit_helpers.cmake gives to each suite that links rapidcheck (the property
# tests and the differential fake-versus-kernel sequences). Under ctest, CI runs them with one
# fixed seed (DAEMONKIT_RC_PARAMS) so that it passes or fails for a reason, not for the seed it
# drew; this script is where new seeds are drawn, for as long as it is given.
#
# Each round draws a fresh 64-bit seed and runs every randomized program once with it, one at a
# time (the machine may be shared) and without ctest's per-test timeouts (a loaded machine is
# not a counterexample); a round started before the time is up is finished. Every failing seed
# is printed with the command that replays it, and the run exits 1. Then make the
# counterexample a regression case: a named test that pins the shrunk case rapidcheck printed,
# and for a differential suite the seed in its replayed list (SeedsThatOnceDisagreedNowAgree).
#
#   bash ci/explore_seeds.sh [minutes]          # default 10
#   DAEMONKIT_BUILD_DIR=build bash ci/explore_seeds.sh 30
#   RC_PARAMS="max_success=1000" bash ci/explore_seeds.sh 60    # longer runs per seed
#
# DAEMONKIT_BUILD_DIR (default build/explore-seeds) is configured like CI's plain stage if it
# has no CMakeCache.txt yet, else reused as it is; only the randomized suites are built, with
# DAEMONKIT_JOBS jobs (default 2). Logs of failed runs go to <build dir>/explore-seeds/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=${1:-10}
dir=${DAEMONKIT_BUILD_DIR:-build/explore-seeds}
jobs=${DAEMONKIT_JOBS:-2}
extra_params=${RC_PARAMS:-}

if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
fi
cmake --build "$dir" -j "$jobs" --target daemonkit_randomized_tests

# The programs behind the randomized tests, as ctest would run them.
mapfile -t programs < <(ctest --test-dir "$dir" -N -V -L randomized |
                        sed -n 's/^[0-9]*: Test command: \([^ ]*\).*/\1/p' | sort -u)
if [ "${#programs[@]}" -eq 0 ]; then
  echo "explore_seeds: no test labelled randomized in $dir" >&2
  exit 2
fi

logs=$dir/explore-seeds
mkdir -p "$logs"
deadline=$(( $(date +%s) + minutes * 60 ))
rounds=0
failures=()
echo "explore_seeds: ${#programs[@]} randomized programs of $dir for $minutes minute(s)"
while [ "$(date +%s)" -lt "$deadline" ]; do
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  rounds=$((rounds + 1))
  started=$(date +%s)
  failed_round=0
  for program in "${programs[@]}"; do
    log=$logs/seed-$seed-$(basename "$program").log
    status=0
    RC_PARAMS="$extra_params seed=$seed" timeout 3600 "$program" >"$log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then
      rm -f "$log"
      continue
    fi
    failed_round=1
    # gtest's verdict line of each failed test: "[  FAILED  ] Suite.Name (12 ms)", with
    # ", where GetParam() = ..." before the time for a parameterized one.
    tests=$(sed -n 's/^\[  FAILED  \] \([^ ,]*\).* ([0-9]* ms)$/\1/p' "$log")
    replay="RC_PARAMS=\"${extra_params:+$extra_params }seed=$seed\" $program"
    if [ -z "$tests" ]; then  # a crash, a timeout, a bad RC_PARAMS: no verdict line
      echo "round $rounds: seed=$seed FAILED $(basename "$program") (exit status $status)"
      echo "  replay: $replay"
      failures+=("seed=$seed $(basename "$program") (exit status $status)")
    fi
    while read -r test; do
      [ -n "$test" ] || continue
      echo "round $rounds: seed=$seed FAILED $test"
      echo "  replay: $replay --gtest_filter='$test'"
      failures+=("seed=$seed $test")
    done <<<"$tests"
    echo "  log: $log"
  done
  [ "$failed_round" -eq 1 ] || echo "round $rounds: seed=$seed passed ($(( $(date +%s) - started )) s)"
done

echo "explore_seeds: $rounds round(s), ${#failures[@]} failure(s)"
for f in "${failures[@]+"${failures[@]}"}"; do echo "  $f"; done
[ "${#failures[@]}" -eq 0 ]
