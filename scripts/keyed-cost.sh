#!/usr/bin/env bash
# Instructions per event of a consumer group's dispatch, plain and keyed
# (examples/keyed_cost.rs), counted by callgrind (scripts/callgrind-cost.sh):
# deterministic, unlike the wall-clock benches/keyed.rs on a shared VM.
#
#   bash scripts/keyed-cost.sh              # plain and keyed
#   bash scripts/keyed-cost.sh keyed        # one
set -euo pipefail
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(plain keyed)
exec bash "$(dirname "$0")/callgrind-cost.sh" keyed_cost "${cases[@]}"
