#!/usr/bin/env bash
# Export and import throughput of the NATS bridge on loopback, and the
# request/reply round trip (the figures in docs/benchmarks.md, "NATS
# bridge"). Starts its own nats-server (file store in a temp dir, free
# port), runs examples/nats_producer, nats_consumer and nats_call in release
# mode, prints one JSON line per run.
#
#   bash scripts/bench-nats.sh [events per run, default 200000] [runs, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
runs=${2:-3}
server=$(command -v nats-server || echo /usr/sbin/nats-server)
store=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" -a 127.0.0.1 -p "$port" -js -sd "$store" >"$store/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -rf "$store"' EXIT
url="nats://127.0.0.1:$port"
cargo build --release --features nats --example nats_producer --example nats_consumer \
    --example nats_call >&2
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
echo "# $("$server" --version), $(nproc) cores, $count events per run, file storage" >&2
for codec in json binary; do
    for in_flight in 1 64 1024; do
        for run in $(seq "$runs"); do
            subject="orders.$codec$in_flight.r$run"
            ./target/release/examples/nats_producer --url "$url" --count "$count" \
                --subject "$subject" --codec "$codec" --in-flight "$in_flight" --json \
                | sed "s/}$/,\"run\":$run}/"
            if [ "$in_flight" = 1024 ]; then
                ./target/release/examples/nats_consumer --url "$url" --count "$count" \
                    --filter "$subject" --durable "d$codec$run" --codec "$codec" --json \
                    | sed "s/}$/,\"run\":$run}/"
            fi
        done
    done
done
# Request/reply (core NATS): a served Service called through a remote
# stand-in, and the bare async-nats request/respond pair, same run.
for run in $(seq "$runs"); do
    ./target/release/examples/nats_call --url "$url" --count 20000 --json \
        | sed "s/}$/,\"run\":$run}/"
done
