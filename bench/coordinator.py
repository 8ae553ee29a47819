"""Coordinator benchmark: ingest signed metadata records at growing sizes, then time every tally query.

For each size (10^4, 10^5, 10^6 records by default) it fills a fresh SQLite file through the coordinator's own
ingest path (schema check, roster lookup, Ed25519 verification, idempotent insert and fold), in batches of 500
as nodes send them, and then times each tally query. Next to it, in the same run, a baseline: bare Ed25519
verification of the same records and bare SQLite inserts of the same rows, combined as 1/(1/verify + 1/insert).

Ingest runs as the coordinator runs it: several nodes' batches at once (``--senders``), verified by its pool of
processes (``--verify-workers``, 0 to verify in the event loop). Peak RSS counts the coordinator process and its
verifying processes together, and so does CPU time per record (user plus system, read from /proc over the
ingest: the figure that stays put when other work shares the machine). Signing the synthetic records is set-up,
not measured (a separate pool).
The last line is JSON: {"ingest_per_s", "query_p50_ms_at_1e6", "rss_mb", "baseline_ingest_per_s",
"cpu_us_per_record", "baseline_us_per_record", "cpu_ratio"}, where the query figure is the slowest single tally
query (``all_tallies``, every query of the dashboard in a row, is printed but not counted as one), the CPU figure
the highest over the sizes, and ``cpu_ratio`` is that over the baseline's CPU per record at the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from keys import Identity, Roster, add_participant, new_roster, sign_roster
from keys.roster import Role, add_period
from node.coordinator import tallies
from node.coordinator.service import CoordinatorService
from node.coordinator.store import SqliteStore, Window
from node.storage.database import Database
from node.trust import Trust
from protocol.codes import CrimeArea, Kind, Urgency, due_at
from protocol.encoding import b64e, canonical
from protocol.ids import uuid7
from protocol.models import Header, MetadataRecord, Receipt
from protocol.period import Period
from protocol.receipts import sign_receipt
from protocol.records import make_record
from protocol.signing import ed25519_public, verify

COUNTRIES = ["AU", "ID", "LK", "MV", "MY", "NZ", "PH", "TH"]
START = datetime(2015, 9, 28, tzinfo=UTC)
END = datetime(2015, 10, 28, tzinfo=UTC)
BATCH = 500


def identity(pid: str) -> Identity:
    """Fixed keys per participant, so worker processes agree with the main one."""
    seed = sum(pid.encode()) % 250 + 1
    return Identity(
        pid,
        [Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)],
        [X25519PrivateKey.from_private_bytes(bytes([seed + 1]) * 32)],
    )


def make_batches(seed: int, messages: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Signed records of ``messages`` synthetic exchanges, grouped per reporter in batches of 500.

    Every record is one the coordinator accepts: a ``sent`` record carries the receiver's signed receipt, and an
    answered enquiry comes with the recipient's ``answered`` record and the reply's own two records.
    """
    rng = random.Random(seed)
    ids = {c: identity(c) for c in COUNTRIES}
    queues: dict[str, list[dict[str, Any]]] = {c: [] for c in COUNTRIES}
    out: list[tuple[str, list[dict[str, Any]]]] = []

    def exchange(header: Header, digest: str, at: datetime) -> None:
        """The sender's record with the receiver's receipt, and the receiver's own record."""
        receiver = ids[header.recipient]
        receipt = sign_receipt(
            Receipt(
                message_id=header.id,
                sender=header.sender,
                receiver=header.recipient,
                envelope_digest=digest,
                received_at=at,
                receiver_key=receiver.signing_kid,
            ),
            receiver,
        )
        queues[header.sender].append(
            make_record(header, "sent", ids[header.sender], at, digest, rng.randbytes(10), receipt).wire()
        )
        queues[header.recipient].append(
            make_record(header, "received", receiver, at, digest, rng.randbytes(10), receipt).wire()
        )

    for _ in range(messages):
        sender, recipient = rng.sample(COUNTRIES, 2)
        created = START + timedelta(seconds=rng.randrange(30 * 86400), milliseconds=rng.randrange(1000))
        urgency = rng.choice(list(Urgency))
        message_id = uuid7(created, rng.randbytes(10))
        header = Header(
            id=message_id,
            kind=Kind.ENQUIRY,
            thread=message_id,
            sender=sender,
            recipient=recipient,
            created_at=created,
            area=rng.choice(list(CrimeArea)),
            urgency=urgency,
            due_at=due_at(urgency, created),
            sender_key=ids[sender].signing_kid,
            recipient_key=ids[recipient].encryption_kid,
        )
        digest = b64e(rng.randbytes(32))
        exchange(header, digest, created + timedelta(seconds=2))
        if rng.random() < 0.6:
            answered = created + timedelta(seconds=rng.randrange(60, 8 * 86400))
            reply = header.model_copy(
                update={
                    "id": uuid7(answered, rng.randbytes(10)),
                    "kind": Kind.REPLY,
                    "sender": recipient,
                    "recipient": sender,
                    "created_at": answered,
                    "in_reply_to": message_id,
                    "due_at": None,
                    "sender_key": ids[recipient].signing_kid,
                    "recipient_key": ids[sender].encryption_kid,
                }
            )
            reply_digest = b64e(rng.randbytes(32))
            named = (reply.id, reply_digest)
            queues[recipient].append(
                make_record(
                    header, "answered", ids[recipient], answered, digest, rng.randbytes(10), None, named
                ).wire()
            )
            exchange(reply, reply_digest, answered + timedelta(seconds=2))
        for country, queue in queues.items():
            if len(queue) >= BATCH:
                out.append((country, queue[:BATCH]))
                del queue[:BATCH]
    out += [(country, queue) for country, queue in queues.items() if queue]
    return out


def peak_rss_mb(pid: int) -> float:
    """Peak resident set of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, all its threads included (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def _task(args: tuple[int, int]) -> list[tuple[str, list[dict[str, Any]]]]:
    return make_batches(*args)


def generate(records: int, workers: int, path: Path) -> None:
    """About ``records`` signed records (3.8 per exchange on average), signed in parallel and written to
    ``path`` one batch per line, so that the measured ingest afterwards has both cores and flat memory."""
    messages = max(1, int(records / 3.8))
    chunk = 4_000
    tasks = [(seed, min(chunk, messages - start)) for seed, start in enumerate(range(0, messages, chunk))]
    with ProcessPoolExecutor(workers) as pool, path.open("w", encoding="utf-8") as out:
        pending = deque(pool.submit(_task, t) for t in tasks[: 2 * workers])
        queued = len(pending)
        while pending:
            for reporter, batch in pending.popleft().result():
                out.write(json.dumps([reporter, batch]) + "\n")
            if queued < len(tasks):
                pending.append(pool.submit(_task, tasks[queued]))
                queued += 1


def batches_in(path: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The batches written by :func:`generate`."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            reporter, batch = json.loads(line)
            yield reporter, batch


async def open_coordinator(
    path: Path, verifiers: ProcessPoolExecutor | None = None
) -> tuple[Database, CoordinatorService, Period]:
    authority = Ed25519PrivateKey.from_private_bytes(bytes([200]) * 32)
    body = new_roster(authority.public_key(), START - timedelta(days=60))
    for pid in [*COUNTRIES, "XI-COORD"]:
        role = Role.COORDINATOR if pid == "XI-COORD" else Role.NODE
        body = add_participant(
            body, identity(pid).card(), f"http://{pid.lower()}", role, pid, START - timedelta(days=60)
        )
    period = Period(name="bench", start=START, end=END, participants=COUNTRIES, coordinator="XI-COORD")
    body = add_period(body, period, START - timedelta(days=60))
    db = await Database.open(path)
    trust = Trust(identity("XI-COORD"), Roster(sign_roster(body, authority), authority.public_key()), db)
    now = END + timedelta(days=10)  # after every synthetic answer, which may come 8 days after its enquiry
    return db, CoordinatorService(trust, SqliteStore(db), lambda: now, workers=verifiers), period


def queries(service: CoordinatorService, period: Period) -> dict[str, Callable[[], Awaitable[Any]]]:
    store, now = service.store, service.clock()
    w = Window(period, now)
    return {
        "countries": lambda: tallies.country_flows(store, w),
        "pairs": lambda: store.counts(w, Kind.ENQUIRY, ("sender", "recipient")),
        "days": lambda: tallies._counts(store, w, "created_day"),
        "areas": lambda: tallies._counts(store, w, "area"),
        "urgencies": lambda: tallies._counts(store, w, "urgency"),
        "response_by_country": lambda: tallies._response(store, w, ("recipient",)),
        "response_by_pair": lambda: tallies._response(store, w, ("sender", "recipient")),
        "overdue_list": lambda: tallies.open_enquiries(store, period, now, overdue_only=True, limit=1000),
        "flags": lambda: tallies.flags(store, w, now, service.grace_s),
        "all_tallies": lambda: tallies.compute(store, period, now, service.grace_s),
    }


async def measure(size: int, workers: int, verify_workers: int, senders: int, root: Path) -> dict[str, Any]:
    source = root / f"records-{size}.jsonl"
    generate(size, workers, source)
    verifiers = (
        ProcessPoolExecutor(verify_workers, mp_context=multiprocessing.get_context("spawn"))
        if verify_workers
        else None
    )
    db, service, period = await open_coordinator(root / f"coordinator-{size}.db", verifiers)
    sample: list[tuple[str, list[dict[str, Any]]]] = []
    batches = batches_in(source)
    count = 0

    async def sender() -> None:
        """One node posting its batches one after another, as nodes do; several run at once."""
        nonlocal count
        for reporter, batch in batches:
            if len(sample) < 40:
                sample.append((reporter, batch))
            results = await service.receive_records(reporter, {"records": batch, "backlog": 0})
            refused = [r.error.code for r in results if r.error is not None]
            if refused:
                raise RuntimeError(f"the coordinator refused synthetic records: {sorted(set(refused))}")
            count += len(batch)

    if verifiers is not None:  # start the workers before the clock runs
        await asyncio.gather(
            *(asyncio.get_running_loop().run_in_executor(verifiers, int) for _ in range(verify_workers))
        )
    pids = [os.getpid(), *(list(verifiers._processes) if verifiers is not None else [])]
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    spent = time.perf_counter() - started
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    worker_rss = 0.0
    if verifiers is not None:
        worker_rss = sum(peak_rss_mb(pid) for pid in list(verifiers._processes))
        verifiers.shutdown()
    source.unlink()
    timings: dict[str, float] = {}
    for name, run in queries(service, period).items():
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            await run()
            samples.append((time.perf_counter() - t0) * 1000)
        timings[name] = statistics.median(samples)
    await db.close()
    baseline = baseline_rates(sample, root / f"baseline-{size}.db")
    rss = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + worker_rss
    )  # the coordinator and its verifiers
    return {
        "size": count,
        "ingest_per_s": count / spent,
        "cpu_us_per_record": cpu / count * 1e6,
        "queries_ms": timings,
        "rss_mb": rss,
        "baseline": baseline,
    }


def baseline_rates(batches: list[tuple[str, list[dict[str, Any]]]], path: Path) -> dict[str, float]:
    """Bare Ed25519 verification and bare SQLite inserts of the same records, measured alone."""
    records = [MetadataRecord.model_validate(r) for _, batch in batches for r in batch]
    keys = {c: ed25519_public(identity(c).signing_keys[0].public_key().public_bytes_raw()) for c in COUNTRIES}
    payloads = []
    for record in records:
        data = record.wire()
        data.pop("sig")
        payloads.append((keys[record.reporter], canonical(data), record.sig))
    t0, c0 = time.perf_counter(), time.process_time()
    for key, payload, sig in payloads:
        verify(key, "record", payload, sig)
    verify_rate = len(payloads) / (time.perf_counter() - t0)
    verify_cpu = time.process_time() - c0
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE r (id TEXT PRIMARY KEY, reporter TEXT, event TEXT, message TEXT, raw BLOB)")
    rows = [(r.record_id, r.reporter, r.event, r.message_id, canonical(r.wire())) for r in records]
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(rows), BATCH):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?)", rows[start : start + BATCH])
        conn.execute("COMMIT")
    insert_rate = len(rows) / (time.perf_counter() - t0)
    insert_cpu = time.process_time() - c0
    conn.close()
    return {
        "verify_per_s": verify_rate,
        "insert_per_s": insert_rate,
        "combined_per_s": 1 / (1 / verify_rate + 1 / insert_rate),
        "cpu_us_per_record": (verify_cpu + insert_cpu) / len(records) * 1e6,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1e4,1e5,1e6", help="comma-separated record counts")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="processes signing the records"
    )
    parser.add_argument(
        "--verify-workers",
        type=int,
        default=2,
        help="the coordinator's verifying processes (0: in the event loop)",
    )
    parser.add_argument("--senders", type=int, default=4, help="nodes sending batches at the same time")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="ncpx-bench-coordinator-"))
    results = []
    for size in sizes:
        print(f"== {size:,} records: signing (set-up, not measured) …", flush=True)
        result = await measure(size, args.workers, args.verify_workers, args.senders, root)
        results.append(result)
        b = result["baseline"]
        print(
            f"   ingest with verification: {result['ingest_per_s']:,.0f} records/s   "
            f"(baseline: verify alone {b['verify_per_s']:,.0f}/s, insert alone {b['insert_per_s']:,.0f}/s, "
            f"combined {b['combined_per_s']:,.0f}/s)"
        )
        print(
            f"   CPU per record (coordinator and its verifying processes): {result['cpu_us_per_record']:.0f} µs   "
            f"(baseline, verify and insert alone: {b['cpu_us_per_record']:.0f} µs)"
        )
        print(f"   peak RSS so far: {result['rss_mb']:.0f} MB")
        for name, ms in result["queries_ms"].items():
            print(f"   {name:<20} p50 {ms:8.1f} ms")
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = last["size"] / first["size"]
        print(f"growth over {growth:,.0f}x records:")
        for name in first["queries_ms"]:
            print(f"   {name:<20} {last['queries_ms'][name] / max(first['queries_ms'][name], 0.001):6.1f}x")
    largest = results[-1]
    costliest = max(results, key=lambda r: r["cpu_us_per_record"])
    baseline_us = costliest["baseline"]["cpu_us_per_record"]
    print(
        json.dumps(
            {
                "ingest_per_s": round(min(r["ingest_per_s"] for r in results), 1),
                "query_p50_ms_at_1e6": round(
                    max(v for k, v in largest["queries_ms"].items() if k != "all_tallies"), 1
                )
                if largest["size"] >= 900_000
                else None,
                "rss_mb": round(max(r["rss_mb"] for r in results), 1),
                "baseline_ingest_per_s": round(min(r["baseline"]["combined_per_s"] for r in results), 1),
                "cpu_us_per_record": round(costliest["cpu_us_per_record"]),
                "baseline_us_per_record": round(baseline_us),
                "cpu_ratio": round(costliest["cpu_us_per_record"] / baseline_us, 2),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
