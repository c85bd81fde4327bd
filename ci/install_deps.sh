#!/usr/bin/env bash
# Installs the Debian 12 packages daemonkit builds, tests and benchmarks with, when missing.
# Safe to run again: it asks apt only for what dpkg does not already have.
set -euo pipefail

# clang (with its sanitizer runtimes) builds CI's plain and ASan stages, g++ its TSan stage and
# the consumers; lld links the test programs (see ci/test.sh).
packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev lld pkg-config clang-format-14
  libfmt-dev libexpected-dev libssl-dev libgoogle-perftools-dev
  libgtest-dev libgmock-dev librapidcheck-dev
)
if [ "${DAEMONKIT_WITH_BENCH:-0}" = 1 ]; then
  packages+=(libbenchmark-dev libuv1-dev libboost-dev libdaemon-dev python3-twisted python3-daemon
    daemonize dpkg valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
