"""Calls a NATS service as any non-Rust client would (core NATS
request/reply, JSON bodies): N quotes {"sku", "qty"} with qty = 0..N-1,
then one body that is not JSON. Prints one JSON line per reply: {"data"
(the decoded JSON body, or null), "headers"}; a missing responder is
{"error": "no responders"}.

    python call.py nats://127.0.0.1:4222 pricing.quote 200
"""
import asyncio
import json
import sys

import nats
from nats.errors import NoRespondersError


async def call(nc, subject: str, body: bytes) -> dict:
    try:
        msg = await nc.request(subject, body, timeout=10)
    except NoRespondersError:
        return {"error": "no responders"}
    data = json.loads(msg.data) if msg.data else None
    return {"data": data, "headers": msg.headers or {}}


async def main(url: str, subject: str, count: int) -> None:
    nc = await nats.connect(url)
    bodies = [json.dumps({"sku": f"sku-{i}", "qty": i}).encode() for i in range(count)]
    bodies.append(b"this is not json")
    # A few in flight at once, as a busy client would have them.
    replies = await asyncio.gather(*(call(nc, subject, b) for b in bodies))
    for reply in replies:
        print(json.dumps(reply), flush=True)
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
