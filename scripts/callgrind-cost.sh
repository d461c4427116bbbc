#!/usr/bin/env bash
# Instructions per event of an example's cases, counted by callgrind:
# deterministic, unlike wall-clock benches on a shared VM. The example takes
# `<case> <events>`; a case's cost is the difference between runs of 200,000
# and 100,000 events, over 100,000 (start-up cancels out). Needs valgrind.
# Used by dispatch-cost.sh and keyed-cost.sh.
#
#   bash scripts/callgrind-cost.sh <example> <case>...
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
example=$1
shift
cargo build -q --release --example "$example"
bin=${CARGO_TARGET_DIR:-target}/release/examples/$example
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>&1
    callgrind_annotate "$out/cg" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
printf '%-22s %s\n' case "instructions/event"
for c in "$@"; do
    a=$(total "$c" 100000)
    b=$(total "$c" 200000)
    printf '%-22s %.1f\n' "$c" "$(echo "($b - $a) / 100000" | bc -l)"
done
