#!/usr/bin/env bash
# Runs the NATS bridge tests (tests/nats_*.rs) against real nats-server
# processes, with a missing server or Python counted as a failure, not a
# skip. Installs what is missing: the Debian nats-server package (as root)
# and the nats-py venv under target/ (scripts/nats_py/venv.sh).
#
#   bash scripts/test-nats.sh            # the NATS tests
#   bash scripts/test-nats.sh --setup    # only install and print the exports
set -euo pipefail
cd "$(dirname "$0")/.."

nats_server() {
    command -v nats-server 2>/dev/null && return 0
    for p in /usr/sbin/nats-server /usr/bin/nats-server; do
        [ -x "$p" ] && { echo "$p"; return 0; }
    done
    return 1
}

if ! nats_server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing nats-server (Debian package)" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
    else
        echo "nats-server is missing: apt-get install -y nats-server (as root)" >&2
        exit 1
    fi
fi
# The package starts a system service on 4222 where systemd runs; the tests
# use their own servers on free ports, so it does not matter either way.
server=$(nats_server)
python=$(bash scripts/nats_py/venv.sh)

if [ "${1:-}" = "--setup" ]; then
    echo "export PINBUS_NATS_SERVER=$server PINBUS_NATS_PY=$python PINBUS_REQUIRE_NATS=1"
    exit 0
fi

echo "nats-server: $server ($("$server" --version)); python: $python"
PINBUS_NATS_SERVER="$server" PINBUS_NATS_PY="$python" PINBUS_REQUIRE_NATS=1 \
    cargo test --features nats --test nats_bridge --test nats_faults --test nats_cross_language --test nats_production --test nats_service
