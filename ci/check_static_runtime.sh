#!/usr/bin/env bash
# Fails if the program given loads a shared C++ runtime or libfmt: the daemonkit binary and echod
# link them statically (cmake/daemonkit_helpers.cmake, daemonkit_static_runtime), because loading
# libstdc++.so and libfmt.so costs a launcher about as much as the whole double fork.
#   ci/check_static_runtime.sh <program>
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <program>" >&2; exit 2; }
exec "$(dirname "$0")/check_needed.sh" "$1" '^(libstdc\+\+|libfmt|libgcc_s)\.so'
