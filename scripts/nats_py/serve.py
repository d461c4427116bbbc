"""Serves quotes on a NATS subject as any non-Rust service would (core NATS
request/reply in a queue group, JSON bodies): {"sku", "qty"} is answered
{"sku", "cents": qty * 250}; qty 0 gets an error reply in the NATS services
convention (empty body, Nats-Service-Error and Nats-Service-Error-Code
headers). Prints "ready" once the server has the subscription, then serves
until killed.

    python serve.py nats://127.0.0.1:4222 pricing.py.quote
"""
import asyncio
import json
import sys

import nats


async def main(url: str, subject: str) -> None:
    nc = await nats.connect(url)

    async def quote(msg):
        q = json.loads(msg.data)
        if q["qty"] == 0:
            headers = {
                "Nats-Service-Error": "qty must be at least 1",
                "Nats-Service-Error-Code": "422",
            }
            await nc.publish(msg.reply, b"", headers=headers)
            return
        reply = json.dumps({"sku": q["sku"], "cents": q["qty"] * 250})
        await nc.publish(msg.reply, reply.encode(),
                         headers={"Content-Type": "application/json"})

    await nc.subscribe(subject, queue="pinbus", cb=quote)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
