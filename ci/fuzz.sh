#!/usr/bin/env bash
# Builds every libFuzzer target with clang in build/ci-fuzz and runs each for the given number of
# seconds over a working copy of its seed corpus (fuzz/corpus/<name>/), then prints executions
# per second and findings. Crashers land in build/ci-fuzz/artifacts/<name>/; a finding, once
# fixed, belongs in the seed corpus so ctest replays it from then on.
#   bash ci/fuzz.sh [seconds-per-target]     # default 60
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-60}
# Not build/fuzz: that is where a build in build/ (the usual one) puts the fuzz directory.
build=build/ci-fuzz

bash ci/install_deps.sh

# The libraries are instrumented for coverage and sanitizers too, not only the fuzz targets,
# so the fuzzer sees the branches inside the decoder.
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDAEMONKIT_FUZZ=ON -DDAEMONKIT_BUILD_TOOLS=ON -DDAEMONKIT_STATIC_CLI_RUNTIME=OFF -DDAEMONKIT_INSTALL=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
  >/dev/null

targets=()
for corpus in fuzz/corpus/*/; do targets+=("$(basename "$corpus")"); done
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/%/_fuzz}"

status=0
summary=()
for name in "${targets[@]}"; do
  work=$build/corpus/$name
  artifacts=$build/artifacts/$name
  log=$build/$name.log
  rm -rf "$work" "$artifacts" && mkdir -p "$work" "$artifacts"
  cp fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "=== fuzzing $name for ${seconds}s"
  rc=0
  "$build/fuzz/${name}_fuzz" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  found=$(find "$artifacts" -type f | wc -l)
  summary+=("$name: ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) files, findings $found")
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    status=1
    tail -40 "$log" >&2
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
