#!/usr/bin/env bash
# Fails if the program given loads a shared C++ runtime or libfmt: the daemonkit binary links
# them statically (cli/CMakeLists.txt), because loading libstdc++.so and libfmt.so costs a
# launcher about as much as the whole double fork. Reads the program's DT_NEEDED entries.
#   ci/check_static_runtime.sh <program>
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <program>" >&2; exit 2; }

needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "$1: no NEEDED entries read (not a dynamic ELF program?)" >&2; exit 2; }
found=$(echo "$needed" | grep -E '^(libstdc\+\+|libfmt|libgcc_s)\.so' || true)
if [ -n "$found" ]; then
  echo "$1 loads a shared C++ runtime:" >&2
  echo "$found" | sed 's/^/  /' >&2
  exit 1
fi
echo "$1 loads only: $(echo $needed)"
