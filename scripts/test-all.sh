#!/usr/bin/env bash
# Runs every test of the project: unit, integration and doc tests (all
# features, the NATS bridge tests against real nats-server processes
# included), the loom models, and Miri on the modules with unsafe code.
# Installs what it needs (nats-server, a nats-py venv, nightly Miri) when
# missing.
#
#   bash scripts/test-all.sh            # everything
#   PINBUS_SKIP_LOOM=1 / PINBUS_SKIP_MIRI=1 to leave a part out locally
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "NATS bridge prerequisites (nats-server package, nats-py venv under target/)"
# The bridge tests (tests/nats_*.rs) start their own nats-server processes;
# here a missing server or Python is a failure, not a skip.
eval "$(bash scripts/test-nats.sh --setup)"

step "cargo test (workspace, all features)"
cargo test --workspace --all-features

if [ -z "${PINBUS_SKIP_LOOM:-}" ]; then
    step "loom models (loom-tests/, --cfg loom, LOOM_MAX_PREEMPTIONS=2)"
    loom_start=$(date +%s)
    loom=(env RUSTFLAGS="--cfg loom -C debug-assertions" LOOM_MAX_PREEMPTIONS=2
        CARGO_TARGET_DIR=target/loom)
    "${loom[@]}" cargo test --release -p loom-tests --no-run \
        --message-format=json-render-diagnostics \
        >target/loom-models.json
    # The models are independent programs: run two at a time (the machine
    # has two cores), the longest (loom_group) first; any failure fails.
    python3 - target/loom-models.json <<'PY' >target/loom-models.txt
import json, sys
models = {}
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["kind"] == ["test"]:
        models[m["target"]["name"]] = m["executable"]
for name in sorted(models, key=lambda n: (n != "loom_group", n)):
    print(name, models[name])
PY
    LOOM_MAX_PREEMPTIONS=2 xargs -P 2 -L 1 sh -c \
        'out=$("$2" 2>&1); rc=$?; printf "== %s\n%s\n" "$1" "$out"; exit $rc' sh \
        <target/loom-models.txt
    echo "loom models took $(( $(date +%s) - loom_start )) s"
fi

if [ -z "${PINBUS_SKIP_MIRI:-}" ]; then
    step "Miri (core: ring, snapshot, producer slots; strict provenance)"
    if ! cargo +nightly miri --version >/dev/null 2>&1; then
        echo "installing the nightly toolchain's miri and rust-src components"
        rustup toolchain install nightly --profile minimal --component miri,rust-src
    fi
    MIRIFLAGS="-Zmiri-strict-provenance" \
        cargo +nightly miri test --lib -- core::ring:: core::snapshot:: core::producer::
fi

echo
echo "all tests passed in $(( $(date +%s) - started )) s"
