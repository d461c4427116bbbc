#!/usr/bin/env bash
# Instructions per event (publish + dispatch) for each middleware case of
# examples/dispatch_cost.rs, counted by callgrind: deterministic, unlike
# wall-clock benches on a shared VM. Needs valgrind.
#
#   bash scripts/dispatch-cost.sh                 # every case
#   bash scripts/dispatch-cost.sh core filter     # some
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(core filter rate_limit logging spans_1in64 latency_1in64 \
    intercept_admit intercept_rate_limit trace_forward)
cargo build -q --release --example dispatch_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/dispatch_cost
out=$(mktemp -d)
total() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>&1
    callgrind_annotate "$out/cg" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
printf '%-22s %s\n' case "instructions/event"
for c in "${cases[@]}"; do
    a=$(total "$c" 100000)
    b=$(total "$c" 200000)
    printf '%-22s %.1f\n' "$c" "$(echo "($b - $a) / 100000" | bc -l)"
done
rm -rf "$out"
