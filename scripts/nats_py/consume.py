"""Reads N messages of a JetStream subject with a durable pull consumer and
prints each as one JSON line: {"subject", "data" (the decoded JSON body),
"headers"}. Exits non-zero if they do not all arrive within the timeout.

    python consume.py nats://127.0.0.1:4222 STREAM orders.rust.> durable 1000 30
"""
import asyncio
import json
import sys
import time

import nats
from nats.errors import TimeoutError as NatsTimeout


async def main(url: str, stream: str, subject: str, durable: str, count: int,
               timeout_s: float) -> int:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream)
    got = 0
    deadline = time.monotonic() + timeout_s
    while got < count and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(min(256, count - got), timeout=1)
        except NatsTimeout:
            continue
        for m in msgs:
            line = {
                "subject": m.subject,
                "data": json.loads(m.data),
                "headers": dict(m.headers or {}),
            }
            print(json.dumps(line), flush=True)
            await m.ack()
            got += 1
    await nc.drain()
    if got < count:
        print(f"only {got} of {count} messages within {timeout_s}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    a = sys.argv
    sys.exit(asyncio.run(main(a[1], a[2], a[3], a[4], int(a[5]), float(a[6]))))
