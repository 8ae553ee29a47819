"""Exchange benchmark: two real nodes (separate processes) on loopback, enquiries pushed through the officer API.

Prints, for one run on this machine:

- delivered messages per second at full load (first submit to last signed receipt stored by the sender);
- p50/p99 latency from submit to receipt at a fixed offered load (100 msg/s by default);
- peak RSS of each node process;
- a floor measured in the same run: bare aiohttp POSTs of the same size between two processes, and the
  per-message cryptography done alone; ``floor_per_s`` combines them (a message costs at least one HTTP
  exchange plus its crypto: 1 / (1/http + 1/crypto)), and ``ratio`` is ncpx / floor.

The last line is JSON: {"delivered_per_s", "p50_ms", "p99_ms", "rss_mb", "floor_per_s", "ratio"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys import Identity, Roster, add_participant, new_roster, sign_roster
from keys.roster import Role
from node.topology import LocalNode, Topology, free_port, wait_until
from protocol import (
    EnquiryBody,
    Header,
    Urgency,
    due_at,
    make_receipt,
    open_envelope,
    parse_envelope,
    seal,
    sign_request,
    uuid7,
    verify_receipt,
    verify_request,
)

BODY_TEXT = "x" * 2048
ECHO_SERVER = """
import sys
from aiohttp import web
async def echo(request):
    await request.read()
    return web.json_response({"ok": True})
app = web.Application(client_max_size=1 << 24)
app.add_routes([web.post("/echo", echo)])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def enquiry(i: int) -> dict[str, object]:
    return {
        "recipients": ["MY"],
        "area": "people_smuggling",
        "urgency": "normal",
        "subject": f"Benchmark {i}",
        "text": BODY_TEXT,
    }


def sent_rows(node: LocalNode) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(f"file:{node.folder / 'node.db'}?mode=ro", uri=True) as conn:
        return list(conn.execute("SELECT id, queued_at, delivered_at FROM messages WHERE folder = 'sent'"))


def delivered_count(node: LocalNode) -> int:
    with sqlite3.connect(f"file:{node.folder / 'node.db'}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM messages WHERE folder = 'sent' AND delivered_at IS NOT NULL"
        ).fetchone()
        return int(row[0])


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def push(url: str, token: str, count: int, concurrency: int, offset: int) -> None:
    """Submit ``count`` enquiries as fast as ``concurrency`` connections allow."""
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(offset + i)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                async with session.post(url + "/v1/enquiries", json=enquiry(i)) as response:
                    if response.status != 201:
                        raise RuntimeError(f"submit failed: {response.status} {await response.text()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def paced(url: str, token: str, rate: float, seconds: float, offset: int) -> int:
    """Submit at a fixed offered rate; returns how many were sent."""
    headers = {"Authorization": f"Bearer {token}"}
    total = int(rate * seconds)
    start = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(i: int) -> None:
            async with session.post(url + "/v1/enquiries", json=enquiry(offset + i)) as response:
                if response.status != 201:
                    raise RuntimeError(f"submit failed: {response.status}")

        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return total


async def http_floor(count: int, concurrency: int) -> float:
    """Bare aiohttp POSTs of the same size to a separate process: requests per second."""
    port = free_port()
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", ECHO_SERVER, str(port))
    try:
        url = f"http://127.0.0.1:{port}/echo"
        payload = json.dumps(enquiry(0)).encode()

        async def up() -> bool:
            try:
                async with aiohttp.ClientSession() as s, s.post(url, data=payload) as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        deadline = time.monotonic() + 20
        while not await up():
            if time.monotonic() > deadline:
                raise RuntimeError("echo server did not start")
            await asyncio.sleep(0.05)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    async with session.post(url, data=payload) as response:
                        await response.read()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return count / (time.perf_counter() - start)
    finally:
        server.terminate()
        await server.wait()


def crypto_floor(count: int) -> float:
    """Per-message cryptography alone: seal, request signature and check, open, receipt and its check."""
    now = datetime.now(UTC)
    authority = Ed25519PrivateKey.generate()
    th, my = Identity.generate("TH"), Identity.generate("MY")
    body = new_roster(authority.public_key(), now - timedelta(minutes=1))
    body = add_participant(body, th.card(), "http://127.0.0.1:1", Role.NODE, "", now - timedelta(minutes=1))
    body = add_participant(body, my.card(), "http://127.0.0.1:2", Role.NODE, "", now - timedelta(minutes=1))
    roster = Roster(sign_roster(body, authority), authority.public_key())
    kid, to = roster.encryption_key("MY", now)
    enquiry_body = EnquiryBody(subject="Benchmark", text=BODY_TEXT)
    start = time.perf_counter()
    for _ in range(count):
        message_id = uuid7(now, os.urandom(10))
        header = Header(
            id=message_id,
            kind="enquiry",
            thread=message_id,
            sender="TH",
            recipient="MY",
            created_at=now,
            area="people_smuggling",
            urgency="normal",
            due_at=due_at(Urgency.NORMAL, now),
            sender_key=th.signing_kid,
            recipient_key=kid,
        )
        raw = seal(header, enquiry_body, th, to, os.urandom(32)).canonical_bytes()
        headers = sign_request("POST", "/federation/v1/envelopes", "MY", raw, th, now)
        verify_request(
            "POST", "/federation/v1/envelopes", headers, raw, roster, "MY", now, timedelta(minutes=5)
        )
        envelope = parse_envelope(raw, 1 << 24)
        open_envelope(
            envelope,
            roster,
            my,
            now,
            skew=timedelta(minutes=5),
            max_age=timedelta(days=1),
            max_attachment_bytes=1 << 20,
        )
        verify_receipt(make_receipt(envelope, my, now), envelope, roster)
    return count / (time.perf_counter() - start)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(p * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="enquiries in the full-load run")
    parser.add_argument("--concurrency", type=int, default=32, help="parallel officer API connections")
    parser.add_argument("--rate", type=float, default=100.0, help="offered load for the latency run (msg/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ncpx-bench-"))
    topology = Topology(root, ["TH", "MY"])
    topology.create()
    topology.start()
    th, my = topology.nodes["TH"], topology.nodes["MY"]
    try:
        print(f"full load: {args.n} enquiries of 2 KiB, {args.concurrency} connections")
        submit_start = time.time()
        await push(th.url, th.token, args.n, args.concurrency, 0)
        submitted = time.time()
        wait_until(lambda: delivered_count(th) >= args.n, 600, "every receipt", interval=0.1)
        rows = sent_rows(th)
        last = max(stamp(r[2]) for r in rows if r[2])
        delivered_per_s = args.n / (last - submit_start)
        print(
            f"  submitted in {submitted - submit_start:.2f} s ({args.n / (submitted - submit_start):.0f}/s)"
        )
        print(f"  delivered: {delivered_per_s:.0f} messages/s (first submit to last receipt)")

        print(f"latency: {args.rate:.0f} msg/s offered for {args.seconds:.0f} s")
        before = {r[0] for r in rows}
        total = await paced(th.url, th.token, args.rate, args.seconds, args.n)
        wait_until(
            lambda: delivered_count(th) >= args.n + total, 600, "the paced run's receipts", interval=0.1
        )
        latencies = [
            (stamp(r[2]) - stamp(r[1])) * 1000
            for r in sent_rows(th)
            if r[0] not in before and r[2] is not None
        ]
        p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
        print(
            f"  submit → receipt: p50 {p50:.1f} ms, p99 {p99:.1f} ms, mean {statistics.mean(latencies):.1f} ms"
        )
        rss = {node.id: peak_rss_mb(node.process.pid) for node in (th, my) if node.process is not None}
        print("  peak RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    finally:
        topology.stop()

    print("floor, measured now on the same machine:")
    http = await http_floor(args.n, args.concurrency)
    print(f"  bare aiohttp POSTs of the same size between two processes: {http:.0f}/s")
    crypto = crypto_floor(min(args.n, 1000))
    print(f"  per-message crypto alone (seal, request sig, open, receipt): {crypto:.0f}/s")
    floor = 1 / (1 / http + 1 / crypto)
    print(f"  floor (one HTTP exchange plus the crypto, 1/(1/http+1/crypto)): {floor:.0f}/s")
    ratio = delivered_per_s / floor
    print(f"ncpx / floor: {ratio:.2f}")
    print(
        json.dumps(
            {
                "delivered_per_s": round(delivered_per_s, 1),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "rss_mb": round(max(rss.values()), 1),
                "floor_per_s": round(floor, 1),
                "ratio": round(ratio, 3),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
