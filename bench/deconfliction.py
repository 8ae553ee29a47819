"""Deconfliction benchmark: private matching of n tokens against a peer list of n tokens, n = 10^3, 10^4, 10^5.

For each size, one session of ``protocol.psi`` as both nodes run it, the asker's and the answerer's steps one
after the other in this process and a pool of ``--workers`` processes (the chunks node/ would hand its own
pool): the asker blinds its tokens, the answerer raises them to its secret and digests its own list, the asker
unblinds and looks them up. A tenth of the tokens are shared. Printed per size:

- each side's wall-clock time and tokens per second, and the total;
- CPU time (user plus system, this process and the pool's, read from /proc) for the whole session;
- bytes on the wire: 32 per blinded and per answered element, 16 per digest (framing aside);

and, in the same run on the same token sets, up to ``--baseline-max`` tokens (10^4 by default):

- ``bare``: the group operations the session needs and nothing else, in one process: 2n hashes to the group
  and 4n scalar multiplications through libsodium, no hashing of tokens, digests, lists or pool;
- ``anchor``: OpenMined's ``openmined-psi`` (ECDH over P-256, ``pip install .[bench]``), server set-up with a
  raw list, client request, server response, client intersection, in one process.

The last line is JSON: {"seconds_1e4", "anchor_seconds_1e4", "bare_seconds_1e4", "bytes_1e4",
"seconds_1e5", "one_core_seconds_1e4", "cpu_1e4", "anchor_cpu_1e4", "bare_cpu_1e4"}: ncpx's end-to-end
seconds with the pool, the anchor's and the bare operations' seconds (one core each), the bytes of one 10^4
session, ncpx's seconds with no pool at 10^4, and the CPU seconds of ncpx (pool included), the anchor and the
bare operations at 10^4. On a shared machine the CPU figures are the ones to compare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, TypeVar

import pysodium

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol import psi

T = TypeVar("T")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, all its threads included (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def token_sets(n: int) -> tuple[list[str], list[str]]:
    """Phone tokens for both sides, a tenth of them shared."""
    shared = n // 10
    asker = [f"phone:+6681{i:07d}" for i in range(n)]
    answerer = [f"phone:+6681{i:07d}" for i in range(n - shared, 2 * n - shared)]
    return asker, answerer


class Runner:
    """Runs a step over chunks in a pool (or here, with no pool), and keeps the CPU time of every process."""

    def __init__(self, pool: Pool | None, workers: int) -> None:
        self.pool, self.workers = pool, workers
        self.pids = [os.getpid()] + ([p.pid for p in pool._pool] if pool else [])  # type: ignore[attr-defined]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def map(
        self, step: Callable[[Sequence[T], psi.Secret], list[bytes]], items: Sequence[T], secret: psi.Secret
    ) -> list[bytes]:
        if self.pool is None:
            return step(items, secret)
        size = max(1, -(-len(items) // (self.workers * 4)))
        parts = self.pool.starmap(step, [(chunk, secret) for chunk in psi.chunks(items, size)])
        return [value for part in parts for value in part]


def ncpx_session(n: int, runner: Runner) -> dict[str, float]:
    asker_tokens, answerer_tokens = token_sets(n)
    a, b = psi.secret(os.urandom(64)), psi.secret(os.urandom(64))
    cpu0 = runner.cpu()
    t0 = time.perf_counter()
    blinded = psi.pack_points(runner.map(psi.blind, asker_tokens, a))
    t1 = time.perf_counter()
    answered = psi.pack_points(runner.map(psi.answer, psi.unpack_points(blinded), b))
    own = psi.pack_digests(runner.map(psi.digests, answerer_tokens, b))
    t2 = time.perf_counter()
    unblinded = runner.map(psi.unblind, psi.unpack_points(answered), a)
    found = psi.intersect(asker_tokens, unblinded, psi.unpack_digests(own))
    t3 = time.perf_counter()
    assert len(found) == n // 10, len(found)
    return {
        "asker_s": (t1 - t0) + (t3 - t2),
        "answerer_s": t2 - t1,
        "seconds": t3 - t0,
        "cpu_s": runner.cpu() - cpu0,
        "bytes": len(blinded) + len(answered) + len(own),
    }


def bare(n: int) -> tuple[float, float]:
    """The session's group operations alone, wall and CPU seconds: 2n hashes to the group, 4n scalar
    multiplications."""
    inputs = [hashlib.sha512(i.to_bytes(8, "big")).digest() for i in range(2 * n)]
    scalar = pysodium.crypto_core_ristretto255_scalar_random()
    cpu0 = cpu_seconds(os.getpid())
    t0 = time.perf_counter()
    elements = [pysodium.crypto_core_ristretto255_from_hash(h) for h in inputs]
    for element in elements + elements:
        pysodium.crypto_scalarmult_ristretto255(scalar, element)
    return time.perf_counter() - t0, cpu_seconds(os.getpid()) - cpu0


def anchor(n: int) -> dict[str, float] | None:
    """One openmined-psi session on the same token sets, or None where the package is not installed."""
    try:
        import private_set_intersection.python as openmined  # the optional [bench] extra
    except ImportError:
        return None
    asker_tokens, answerer_tokens = token_sets(n)
    cpu0 = cpu_seconds(os.getpid())
    t0 = time.perf_counter()
    server = openmined.server.CreateWithNewKey(True)
    client = openmined.client.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, n, answerer_tokens, openmined.DataStructure.RAW)
    t1 = time.perf_counter()
    request = client.CreateRequest(asker_tokens)
    t2 = time.perf_counter()
    response = server.ProcessRequest(request)
    t3 = time.perf_counter()
    found = client.GetIntersection(setup, response)
    t4 = time.perf_counter()
    assert len(found) == n // 10, len(found)
    return {
        "asker_s": (t2 - t1) + (t4 - t3),
        "answerer_s": (t1 - t0) + (t3 - t2),
        "seconds": t4 - t0,
        "cpu_s": cpu_seconds(os.getpid()) - cpu0,
        "bytes": sum(len(m.SerializeToString()) for m in (setup, request, response)),
    }


def line(label: str, n: int, figures: dict[str, Any]) -> None:
    per_side = "  ".join(
        f"{side} {figures[side + '_s']:.2f} s ({n / figures[side + '_s']:,.0f}/s)"
        for side in ("asker", "answerer")
        if side + "_s" in figures
    )
    cpu = f"  cpu {figures['cpu_s']:.2f} s" if "cpu_s" in figures else ""
    sent = f"  {figures['bytes'] / 1e6:.2f} MB" if "bytes" in figures else ""
    print(f"  {label:<12} {figures['seconds']:7.2f} s  {per_side}{cpu}{sent}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--baseline-max", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    result: dict[str, Any] = {}
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        pooled, alone = Runner(pool, args.workers), Runner(None, 1)
        for n in sizes:
            print(f"{n:,} x {n:,} tokens, {n // 10:,} shared", flush=True)
            figures = ncpx_session(n, pooled)
            line(f"ncpx ({args.workers} proc)", n, figures)
            result[f"seconds_{n:.0e}".replace("+0", "")] = round(figures["seconds"], 3)
            result[f"bytes_{n:.0e}".replace("+0", "")] = figures["bytes"]
            result[f"cpu_{n:.0e}".replace("+0", "")] = round(figures["cpu_s"], 3)
            if n > args.baseline_max:
                continue
            one = ncpx_session(n, alone)
            line("ncpx (1 proc)", n, one)
            result[f"one_core_seconds_{n:.0e}".replace("+0", "")] = round(one["seconds"], 3)
            seconds, cpu = bare(n)
            print(
                f"  {'bare ops':<12} {seconds:7.2f} s  cpu {cpu:.2f} s  (2n hash-to-group, 4n scalar mult)",
                flush=True,
            )
            result[f"bare_seconds_{n:.0e}".replace("+0", "")] = round(seconds, 3)
            result[f"bare_cpu_{n:.0e}".replace("+0", "")] = round(cpu, 3)
            other = anchor(n)
            if other is None:
                print("  anchor: openmined-psi is not installed (pip install '.[bench]')", flush=True)
            else:
                line("openmined", n, other)
                result[f"anchor_seconds_{n:.0e}".replace("+0", "")] = round(other["seconds"], 3)
                result[f"anchor_cpu_{n:.0e}".replace("+0", "")] = round(other["cpu_s"], 3)
    keys = [
        "seconds_1e4",
        "anchor_seconds_1e4",
        "bare_seconds_1e4",
        "bytes_1e4",
        "seconds_1e5",
        "one_core_seconds_1e4",
        "cpu_1e4",
        "anchor_cpu_1e4",
        "bare_cpu_1e4",
    ]
    print(json.dumps({key: result.get(key) for key in keys}))


if __name__ == "__main__":
    main()
