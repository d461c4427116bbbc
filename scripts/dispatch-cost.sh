#!/usr/bin/env bash
# Instructions per event (publish + dispatch) for each middleware case of
# examples/dispatch_cost.rs, counted by callgrind (scripts/callgrind-cost.sh).
#
#   bash scripts/dispatch-cost.sh                 # every case
#   bash scripts/dispatch-cost.sh core filter     # some
set -euo pipefail
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(core filter rate_limit logging spans_1in64 latency_1in64 \
    intercept_admit intercept_rate_limit trace_forward)
exec bash "$(dirname "$0")/callgrind-cost.sh" dispatch_cost "${cases[@]}"
