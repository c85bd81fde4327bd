#!/usr/bin/env bash
# Explores new seeds for the randomized suites: every test labelled `randomized` in ctest, which
# cmake/daemonkit_helpers.cmake gives to each suite that links rapidcheck (the property tests and
# the differential fake-versus-kernel sequences). Under ctest, CI runs them with one fixed seed
# (DAEMONKIT_RC_PARAMS) so that it passes or fails for a reason, not for the seed it drew; this
# script is where new seeds are drawn, for as long as it is given.
#
# Each round draws a fresh 64-bit seed and runs every randomized test once with it, one test at
# a time (the machine may be shared); a round started before the time is up is finished. Every
# failing seed is printed with the command that replays it, and the run exits 1. Then make the
# counterexample a regression case: a named test that pins the shrunk case rapidcheck printed,
# and for a differential suite the seed in its replayed list (SeedsThatOnceDisagreedNowAgree).
#
#   bash ci/explore_seeds.sh [minutes]          # default 10
#   DAEMONKIT_BUILD_DIR=build bash ci/explore_seeds.sh 30
#
# DAEMONKIT_BUILD_DIR (default build/explore-seeds) is configured like CI's plain stage if it
# has no CMakeCache.txt yet, else reused as it is; only the randomized suites are built, with
# DAEMONKIT_JOBS jobs (default 2). Logs of failed rounds go to <build dir>/explore-seeds/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
minutes=${1:-10}
dir=${DAEMONKIT_BUILD_DIR:-build/explore-seeds}
jobs=${DAEMONKIT_JOBS:-2}

if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
fi
cmake --build "$dir" -j "$jobs" --target daemonkit_randomized_tests

logs=$dir/explore-seeds
mkdir -p "$logs"
deadline=$(( $(date +%s) + minutes * 60 ))
rounds=0
failures=()
echo "explore_seeds: randomized tests of $dir for $minutes minute(s)"
while [ "$(date +%s)" -lt "$deadline" ]; do
  seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
  log=$logs/seed-$seed.log
  rounds=$((rounds + 1))
  started=$(date +%s)
  if RC_PARAMS="seed=$seed" ctest --test-dir "$dir" -L randomized -j1 --timeout 600 \
       --output-on-failure >"$log" 2>&1; then
    echo "round $rounds: seed=$seed passed ($(( $(date +%s) - started )) s)"
    rm -f "$log"
    continue
  fi
  # ctest's summary lists each failed test as "<n> - <name> (<why>)".
  failed=$(sed -n '/The following tests FAILED:/,$p' "$log" |
           sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (.*/\1/p')
  if [ -z "$failed" ]; then
    failed="(ctest itself failed: see $log)"
  fi
  for test in $failed; do
    echo "round $rounds: seed=$seed FAILED $test"
    echo "  replay: RC_PARAMS=\"seed=$seed\" ctest --test-dir $dir -R '^${test//./\\.}\$' --output-on-failure"
    failures+=("seed=$seed $test")
  done
  echo "  log: $log"
done

echo "explore_seeds: $rounds round(s), ${#failures[@]} failure(s)"
for f in "${failures[@]}"; do echo "  $f"; done
[ "${#failures[@]}" -eq 0 ]
