#!/usr/bin/env bash
# Fails if the program given names a shared library matching REGEX among its DT_NEEDED entries:
# what a program loads at every start is decided at link time (--as-needed drops what it never
# calls), and a start-up cost comes back silently when a reference sneaks in.
#   ci/check_needed.sh <program> <regex>     e.g. ci/check_needed.sh echod '^lib(ssl|crypto)\.so'
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 <program> <regex>" >&2; exit 2; }

needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "$1: no NEEDED entries read (not a dynamic ELF program?)" >&2; exit 2; }
found=$(echo "$needed" | grep -E "$2" || true)
if [ -n "$found" ]; then
  echo "$1 loads what it should not ($2):" >&2
  echo "$found" | sed 's/^/  /' >&2
  exit 1
fi
echo "$1 loads only: $(echo $needed)"
