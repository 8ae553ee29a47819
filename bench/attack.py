"""A noisy peer: does one member flooding a node with maximal batches slow the others' enquiries down?

Three real nodes on loopback: TH and ID both send to MY. The same measurement runs twice in one run, first with
ID quiet (the baseline), then while ID pushes a backlog of large enquiries (64 KiB attachments) as fast as MY's
per-peer quota lets it through: TH's delivered/s at full load, and the p50/p99 from submit to signed receipt of
TH's enquiries at a fixed offered rate. It prints both and their ratio; the aim is at least 0.8 of the baseline.
The last line is JSON.

    .venv/bin/python bench/attack.py [--n 300] [--noise 1000] [--rate 20] [--seconds 10] [--quota 3000]

The quota applies to every peer alike, so TH's own load must stay under it (the defaults do).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from pathlib import Path

import aiohttp
from exchange import WARM_UP, delivered_count, paced, party_cpu_seconds, percentile, push, sent_rows, stamp

from node.topology import LocalNode, Topology, wait_until

NOISE_ATTACHMENT = base64.urlsafe_b64encode(os.urandom(64 * 1024)).rstrip(b"=").decode()


async def noise(node: LocalNode, count: int) -> None:
    """ID queues ``count`` large enquiries for MY, eight at a time (its node then sends them in batches)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = {
                    "recipients": ["MY"],
                    "area": "other",
                    "subject": f"noise {i}",
                    "text": "noise",
                    "attachments": [
                        {
                            "name": f"noise-{i}.bin",
                            "media_type": "application/octet-stream",
                            "data": NOISE_ATTACHMENT,
                        }
                    ],
                }
                try:
                    async with session.post(node.url + "/v1/enquiries", json=body) as response:
                        if response.status != 201:
                            raise RuntimeError(f"noise submit failed: {response.status}")
                except aiohttp.ClientOSError:  # a kept-alive connection closed under us: submit it again
                    queue.put_nowait(i)

        await asyncio.gather(*(worker() for _ in range(8)))


async def measure(
    th: LocalNode, n: int, rate: float, seconds: float, offset: int, processes: dict[str, int]
) -> dict[str, float]:
    """TH's full-load delivered/s for ``n`` enquiries, then p50/p99 at ``rate`` for ``seconds``; and the CPU
    seconds each of ``processes`` spent during the full-load part."""
    cpu_before = {name: party_cpu_seconds(pid) for name, pid in processes.items()}
    start = time.time()
    await push(th.url, th.token, n, 32, offset)
    wait_until(lambda: delivered_count(th) >= offset + n, 900, "TH's receipts", interval=0.1)
    spent = {f"cpu_s_{name}": party_cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
    wall = time.time() - start
    rows = [r for r in sent_rows(th) if r[2]]
    last = max(stamp(r[2]) for r in rows if r[2] is not None)
    delivered_per_s = n / (last - start)
    before = {r[0] for r in sent_rows(th)}
    total = await paced(th.url, th.token, rate, seconds, offset + n)
    wait_until(lambda: delivered_count(th) >= offset + n + total, 900, "the paced receipts", interval=0.1)
    latencies = [
        (stamp(r[2]) - stamp(r[1])) * 1000 for r in sent_rows(th) if r[0] not in before and r[2] is not None
    ]
    return {
        "delivered_per_s": delivered_per_s,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "wall_s": wall,
        **spent,
    }


def cpu_line(figures: dict[str, float]) -> str:
    """Where the CPU went during a full-load part, against its wall time (two cores: at most twice it)."""
    spent = ", ".join(
        f"{k.removeprefix('cpu_s_')} {v:.1f}" for k, v in figures.items() if k.startswith("cpu_s_")
    )
    return f"  CPU s over {figures['wall_s']:.1f} s of full load: {spent}"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="TH's enquiries at full load, in each phase")
    parser.add_argument("--noise", type=int, default=1000, help="ID's large enquiries (64 KiB each)")
    parser.add_argument("--rate", type=float, default=20.0, help="TH's offered load for the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency run")
    parser.add_argument(
        "--quota",
        type=int,
        default=3000,
        help="MY's limits.peer_messages_per_minute, for every peer: TH's own load stays well under it",
    )
    parser.add_argument(
        "--verify-workers",
        type=int,
        default=2,
        help="every node's checking processes (verify_workers; 0 checks envelopes on a thread)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ncpx-attack-"))
    topology = Topology(
        root,
        ["TH", "MY", "ID"],
        node_config={
            "limits": {"peer_messages_per_minute": args.quota},
            "verify_workers": args.verify_workers,
        },
    )
    topology.create()
    topology.start()
    th, id_ = topology.nodes["TH"], topology.nodes["ID"]
    processes = {"bench": os.getpid()}
    for name, node in topology.nodes.items():
        if node.process is None:
            raise RuntimeError(f"node {name} is not running")
        processes[name] = node.process.pid
    try:
        # Both peers first deliver a few enquiries each, at once: connections, delivery tasks and MY's checking
        # processes are started before anything is measured.
        await asyncio.gather(*(push(node.url, node.token, WARM_UP, 4, 0) for node in (th, id_)))
        warm = (th, id_)
        wait_until(lambda: all(delivered_count(n) >= WARM_UP for n in warm), 120, "the warm-up", interval=0.1)
        print(
            f"baseline: TH alone, {args.n} enquiries at full load, then {args.rate:.0f}/s for {args.seconds:.0f} s"
        )
        quiet = await measure(th, args.n, args.rate, args.seconds, WARM_UP, processes)
        print(
            f"  {quiet['delivered_per_s']:.0f}/s, p50 {quiet['p50_ms']:.0f} ms, p99 {quiet['p99_ms']:.0f} ms"
        )
        print(cpu_line(quiet))
        print(
            f"noisy: ID pushes {args.noise} enquiries of 64 KiB to MY meanwhile (MY's quota: {args.quota}/min)"
        )
        flood = asyncio.create_task(noise(id_, args.noise))
        await asyncio.sleep(1.0)  # let ID's backlog build up before TH starts
        loud = await measure(
            th, args.n, args.rate, args.seconds, WARM_UP + args.n + int(args.rate * args.seconds), processes
        )
        await flood
        print(f"  {loud['delivered_per_s']:.0f}/s, p50 {loud['p50_ms']:.0f} ms, p99 {loud['p99_ms']:.0f} ms")
        print(cpu_line(loud))
        ratio = loud["delivered_per_s"] / quiet["delivered_per_s"]
        print(f"TH's delivered/s with the noisy peer / without: {ratio:.2f} (aim: at least 0.8)")
        print(json.dumps({"quiet": quiet, "noisy": loud, "ratio": round(ratio, 3)}))
    finally:
        topology.stop()


if __name__ == "__main__":
    asyncio.run(main())
