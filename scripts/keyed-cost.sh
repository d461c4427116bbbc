#!/usr/bin/env bash
# Instructions per event of a consumer group's dispatch, plain and keyed
# (examples/keyed_cost.rs), counted by callgrind: deterministic, unlike the
# wall-clock benches/keyed.rs on a shared VM. Needs valgrind.
#
#   bash scripts/keyed-cost.sh              # plain and keyed
#   bash scripts/keyed-cost.sh keyed        # one
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(plain keyed)
cargo build -q --release --example keyed_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/keyed_cost
out=$(mktemp -d)
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>&1
    callgrind_annotate "$out/cg" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
printf '%-8s %s\n' case "instructions/event"
for c in "${cases[@]}"; do
    a=$(total "$c" 100000)
    b=$(total "$c" 200000)
    printf '%-8s %.1f\n' "$c" "$(echo "($b - $a) / 100000" | bc -l)"
done
rm -rf "$out"
