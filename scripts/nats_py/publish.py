"""Publishes N JSON orders to a JetStream subject, as any non-Rust service
would: plain JSON bodies, a Nats-Msg-Id per message, a W3C traceparent.

    python publish.py nats://127.0.0.1:4222 orders.py.created 1000
"""
import asyncio
import json
import sys

import nats


async def main(url: str, subject: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for i in range(count):
        body = json.dumps({"id": i, "cents": i * 5, "note": f"from python {i}"})
        headers = {
            "Nats-Msg-Id": f"python-{subject}-{i}",
            "traceparent": f"00-{i + 1:032x}-{i + 1:016x}-01",
        }
        await js.publish(subject, body.encode(), headers=headers)
    await nc.drain()
    print(f"published {count}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
