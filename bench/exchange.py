"""Exchange benchmark: two real nodes (separate processes) on loopback, enquiries pushed through the officer API.

Prints, for one run on this machine:

- delivered messages per second at full load (first submit to last signed receipt stored by the sender);
- p50/p99 latency from submit to receipt at a fixed offered load (100 msg/s by default);
- peak RSS of each node process;
- a floor measured in the same run: bare aiohttp POSTs of the same size between two processes, and the
  per-message cryptography done alone; ``floor_per_s`` combines them (a message costs at least one HTTP
  exchange plus its crypto: 1 / (1/http + 1/crypto)), and ``ratio`` is ncpx / floor;
- CPU time per delivered message at full load, per process (sender node, receiver node, load generator), read
  from /proc: wall-clock rates on a shared machine swing from run to run, CPU time per message does not;
- a CPU floor measured in the same run: the bare primitives a delivered message needs (Ed25519 signatures and
  verifications, one X25519 + ChaCha20-Poly1305 seal and open of the body's size, no encoding) plus the CPU of
  one bare aiohttp POST in both processes; ``cpu_ratio`` is ncpx's CPU per message over that floor.

With ``--nodes 8``, eight country nodes and the coordinator run instead, all sending to each other at once: the
aggregate delivered/s across them and the coordinator's ingest lag (see :func:`federation`).

With ``--profile-dir``, py-spy samples both nodes and the load generator during the full-load run, and each
thread's CPU time is written beside the samples, for ``bench/profile_summary.py``.

The last line is JSON: {"delivered_per_s", "p50_ms", "p99_ms", "rss_mb", "floor_per_s", "ratio",
"cpu_us_per_msg", "cpu_us_sender", "cpu_us_receiver", "cpu_us_load", "primitives_us_per_msg",
"floor_cpu_us_per_msg", "cpu_ratio"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import nacl.bindings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from keys import Identity, Roster, add_participant, new_roster, sign_roster
from keys.roster import Role
from node.demo_plan import COUNTRIES_2015
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
from protocol.encoding import format_time

BODY_TEXT = "x" * 2048
SIGNATURES_PER_MESSAGE = 3
"""Per delivered message: the inner and outer signatures and the receipt (the request signature is per batch)."""
VERIFICATIONS_PER_MESSAGE = 3
"""Per delivered message: outer and inner signatures at the receiver, the receipt at the sender."""
WARM_UP = 16
"""Enquiries delivered before anything is measured."""
PROFILE_RATE = 200
"""py-spy samples per second with ``--profile-dir``: enough for a per-function split over a few seconds of load."""
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


def enquiry(i: int, recipient: str = "MY") -> dict[str, object]:
    return {
        "recipients": [recipient],
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, all its threads included (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def node_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of a node process plus that of its live child processes: the pool that checks
    incoming envelopes (a child's time reaches the parent's /proc figures only once it has exited)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        for child in children:
            try:
                total += cpu_seconds(child)
            except (FileNotFoundError, ProcessLookupError):  # the child ended meanwhile
                continue
    return total


def party_cpu_seconds(pid: int) -> float:
    """CPU seconds of one party to a run: a node with its checking pool, this process (the load generator,
    whose children are the nodes) alone."""
    return cpu_seconds(pid) if pid == os.getpid() else node_cpu_seconds(pid)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def push(
    url: str, token: str, count: int, concurrency: int, offset: int, recipients: tuple[str, ...] = ("MY",)
) -> None:
    """Submit ``count`` enquiries as fast as ``concurrency`` connections allow, to ``recipients`` in turn."""
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(offset + i)
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                body = enquiry(i, recipients[i % len(recipients)])
                async with session.post(url + "/v1/enquiries", json=body) as response:
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


async def http_floor(count: int, concurrency: int) -> tuple[float, float]:
    """Bare aiohttp POSTs of the same size to a separate process: requests per second, and CPU µs per request
    in client and server together."""
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
        pids = [os.getpid(), server.pid]
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    async with session.post(url, data=payload) as response:
                        await response.read()

            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            spent = time.perf_counter() - start
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
            return count / spent, cpu / count * 1e6
    finally:
        server.terminate()
        await server.wait()


def sample_parties(now: datetime) -> tuple[Identity, Identity, Roster]:
    """TH and MY with fresh keys in a roster signed by a fresh authority."""
    authority = Ed25519PrivateKey.generate()
    th, my = Identity.generate("TH"), Identity.generate("MY")
    body = new_roster(authority.public_key(), now - timedelta(minutes=1))
    body = add_participant(body, th.card(), "http://127.0.0.1:1", Role.NODE, "", now - timedelta(minutes=1))
    body = add_participant(body, my.card(), "http://127.0.0.1:2", Role.NODE, "", now - timedelta(minutes=1))
    return th, my, Roster(sign_roster(body, authority), authority.public_key())


def sample_header(th: Identity, recipient_key: str, now: datetime) -> Header:
    """An enquiry header from TH to MY, as the officer API makes it."""
    message_id = uuid7(now, os.urandom(10))
    return Header(
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
        recipient_key=recipient_key,
    )


def crypto_floor(count: int) -> float:
    """Per-message cryptography alone: seal, request signature and check, open, receipt and its check."""
    now = datetime.now(UTC)
    th, my, roster = sample_parties(now)
    kid, to = roster.encryption_key("MY", now)
    enquiry_body = EnquiryBody(subject="Benchmark", text=BODY_TEXT)
    start = time.perf_counter()
    for _ in range(count):
        header = sample_header(th, kid, now)
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


def per_call_us(count: int, call: Callable[[], object]) -> float:
    """CPU µs of one call, the best of three rounds of ``count`` (least disturbed by the other processes)."""
    rounds = []
    for _ in range(3):
        start = time.process_time()
        for _ in range(count):
            call()
        rounds.append((time.process_time() - start) / count * 1e6)
    return min(rounds)


def primitives_floor(count: int) -> dict[str, float]:
    """CPU µs of each bare primitive a delivered message needs, called directly (no encoding, no models).

    Ed25519 is timed through libsodium and through OpenSSL; sealing is an X25519 agreement with a fresh
    ephemeral key and ChaCha20-Poly1305 over a plaintext the size of a real envelope's sealed body.
    """
    now = datetime.now(UTC)
    th, _, roster = sample_parties(now)
    kid, to = roster.encryption_key("MY", now)
    header = sample_header(th, kid, now)
    sealed = seal(header, EnquiryBody(subject="Benchmark", text=BODY_TEXT), th, to, os.urandom(32)).sealed
    plaintext = os.urandom(len(sealed) - 32 - 16)  # what the real body seals: ephemeral key and tag excluded
    message = os.urandom(120)  # about what a signature covers: a tag and two digests (a receipt is longer)
    openssl_key = Ed25519PrivateKey.generate()
    openssl_public = openssl_key.public_key()
    secret = openssl_key.private_bytes_raw() + openssl_public.public_bytes_raw()
    public = openssl_public.public_bytes_raw()
    signature = openssl_key.sign(message)
    nonce = bytes(12)
    recipient = X25519PrivateKey.generate()
    recipient_public = recipient.public_key()

    def seal_once() -> bytes:
        ephemeral = X25519PrivateKey.from_private_bytes(os.urandom(32))
        key = ephemeral.exchange(recipient_public)
        return ephemeral.public_key().public_bytes_raw() + ChaCha20Poly1305(key).encrypt(
            nonce, plaintext, None
        )

    boxed = seal_once()

    def open_once() -> bytes:
        key = recipient.exchange(X25519PublicKey.from_public_bytes(boxed[:32]))
        return ChaCha20Poly1305(key).decrypt(nonce, boxed[32:], None)

    timings = {
        "sign_libsodium": per_call_us(count, lambda: nacl.bindings.crypto_sign(message, secret)),
        "verify_libsodium": per_call_us(
            count, lambda: nacl.bindings.crypto_sign_open(signature + message, public)
        ),
        "sign_openssl": per_call_us(count, lambda: openssl_key.sign(message)),
        "verify_openssl": per_call_us(count, lambda: openssl_public.verify(signature, message)),
        "seal": per_call_us(count, seal_once),
        "open": per_call_us(count, open_once),
    }
    sign_us = min(timings["sign_libsodium"], timings["sign_openssl"])
    verify_us = min(timings["verify_libsodium"], timings["verify_openssl"])
    timings["per_message"] = (
        SIGNATURES_PER_MESSAGE * sign_us
        + VERIFICATIONS_PER_MESSAGE * verify_us
        + timings["seal"]
        + timings["open"]
    )
    timings["plaintext_bytes"] = len(plaintext)
    return timings


def start_profilers(directory: Path, processes: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """Attach ``py-spy record`` to each process; each writes ``<role>.txt`` (collapsed stacks, one line per
    stack, per thread) when stopped. ``--nonblocking`` reads the process without pausing it, which keeps the
    profiled run's CPU per message within about a tenth of an unprofiled run's (pausing added a third)."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile-dir needs py-spy: install it with `pip install py-spy`")
    directory.mkdir(parents=True, exist_ok=True)
    options = [
        "--threads",
        "--full-filenames",
        "--nonblocking",
        "--rate",
        str(PROFILE_RATE),
        "--format",
        "raw",
    ]
    return [
        subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), *options, "--output", str(directory / f"{role}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, pid in processes.items()
    ]


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """User and system CPU seconds of each thread of a process so far, by native thread id (as py-spy names them)."""
    tick = os.sysconf("SC_CLK_TCK")
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended between listing and reading
            continue
        times[task.name] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return times


def write_thread_cpu(
    path: Path, messages: int, processes: dict[str, int], before: dict[str, dict[str, tuple[float, float]]]
) -> None:
    """Each thread's user and system CPU during the full-load run, so that a profile's samples (py-spy counts
    many waits as busy) can be weighed by the CPU each thread really used."""
    spent = {}
    for role, pid in processes.items():
        start = before[role]
        spent[role] = {
            tid: [user - start.get(tid, (0.0, 0.0))[0], system - start.get(tid, (0.0, 0.0))[1]]
            for tid, (user, system) in thread_cpu(pid).items()
        }
    path.write_text(json.dumps({"messages": messages, "threads": spent}, indent=1))


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    """Interrupt each py-spy as Ctrl-C would, which makes it write its file, and wait for it to finish."""
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(timeout=60)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def proven_at_coordinator(node: LocalNode) -> int:
    """Enquiries the coordinator holds the sender's receipt-backed record of."""
    with sqlite3.connect(f"file:{node.folder / 'node.db'}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT count(*) FROM exchanges WHERE sent_receipt IS NOT NULL").fetchone()
        return int(row[0])


def reached(samples: list[tuple[float, int]], count: int) -> float:
    """When a sampled count first reached ``count``."""
    return next(t for t, n in samples if n >= count)


async def federation(nodes: int, total: int, concurrency: int) -> None:
    """``--nodes N``: N country nodes (the 2015 countries) and the coordinator, each its own process, all
    sending at once, each to every other in turn. Prints the aggregate delivered/s (first submit to last receipt,
    all senders together) and the coordinator's ingest lag: how long after the senders held the k-th receipt
    the coordinator had k receipt-backed records (sampled every 50 ms; p50 and max over k), and how long it took
    to catch up after the last receipt. Envelopes and records are checked in each node's own process
    (``verify_workers = 0``): N nodes share this machine's cores, and pools would only add processes."""
    countries = list(COUNTRIES_2015[:nodes])
    if len(countries) != nodes:
        raise SystemExit(f"--nodes takes 3 to {len(COUNTRIES_2015)}")
    root = Path(tempfile.mkdtemp(prefix="ncpx-bench-"))
    topology = Topology(
        root,
        [*countries, "XI-COORD"],
        {"verify_workers": 0, "coordinator_verify_workers": 0},
        coordinator="XI-COORD",
    )
    topology.create()
    now = datetime.now(UTC)
    topology.declare_period(
        "bench", format_time(now - timedelta(days=1)), format_time(now + timedelta(days=1))
    )
    topology.start()
    coordinator = topology.nodes["XI-COORD"]
    senders = [topology.nodes[c] for c in countries]
    per_node = total // nodes

    def delivered() -> int:
        return sum(delivered_count(n) for n in senders)

    try:
        for node in senders:  # connections and delivery tasks up before anything is measured
            others = tuple(c for c in countries if c != node.id)
            await push(node.url, node.token, len(others), 4, 0, others)
        warm = delivered()
        wait_until(
            lambda: proven_at_coordinator(coordinator) >= warm, 120, "the warm-up's records", interval=0.1
        )
        print(
            f"{nodes} nodes and the coordinator: {per_node * nodes} enquiries of 2 KiB, {concurrency} connections each"
        )
        samples: list[tuple[float, int, int]] = []
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                samples.append((time.time(), delivered() - warm, proven_at_coordinator(coordinator) - warm))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        start = time.time()
        await asyncio.gather(
            *(
                push(n.url, n.token, per_node, concurrency, 1000, tuple(c for c in countries if c != n.id))
                for n in senders
            )
        )
        expected = per_node * nodes
        while samples[-1][2] < expected:
            if time.time() - start > 600:
                raise RuntimeError("the coordinator did not catch up within 10 minutes")
            await asyncio.sleep(0.1)
        done.set()
        await sampler
    finally:
        topology.stop()
    last_receipt = max(stamp(r[2]) for n in senders for r in sent_rows(n) if r[2] is not None)
    delivered_per_s = expected / (last_receipt - start)
    deliveries = [(t, d) for t, d, _ in samples]
    ingests = [(t, c) for t, _, c in samples]
    lags = sorted(
        reached(ingests, k) - reached(deliveries, k)
        for k in range(max(1, expected // 100), expected + 1, max(1, expected // 100))
    )
    catch_up = reached(ingests, expected) - reached(deliveries, expected)
    print(
        f"  delivered: {delivered_per_s:.0f} messages/s across {nodes} nodes (first submit to last receipt)"
    )
    print(
        f"  coordinator ingest lag: p50 {percentile(lags, 0.5):.2f} s, max {lags[-1]:.2f} s; "
        f"all records {catch_up:.2f} s after the last receipt"
    )
    print(
        json.dumps(
            {
                "nodes": nodes,
                "delivered_per_s": round(delivered_per_s, 1),
                "ingest_lag_p50_s": round(percentile(lags, 0.5), 2),
                "ingest_lag_max_s": round(lags[-1], 2),
                "ingest_catch_up_s": round(catch_up, 2),
            }
        )
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="enquiries in the full-load run")
    parser.add_argument("--concurrency", type=int, default=32, help="parallel officer API connections")
    parser.add_argument("--rate", type=float, default=100.0, help="offered load for the latency run (msg/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="sample both nodes and the load generator with py-spy during the full-load run and write "
        "sender.txt, receiver.txt and load.txt (collapsed stacks) here; sampling adds CPU, so take the "
        "figures from a run without it",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=2,
        help="with 3 or more: that many country nodes and the coordinator, all sending to each other; reports "
        "the aggregate delivered/s and the coordinator's ingest lag (with --n and --concurrency) instead",
    )
    args = parser.parse_args()
    if args.nodes > 2:
        await federation(args.nodes, args.n, args.concurrency)
        return

    root = Path(tempfile.mkdtemp(prefix="ncpx-bench-"))
    topology = Topology(root, ["TH", "MY"])
    topology.create()
    topology.start()
    th, my = topology.nodes["TH"], topology.nodes["MY"]
    try:
        # A few enquiries first: connections, the delivery task and MY's checking processes start before the
        # measurement, which is of a running node, not of its start.
        await push(th.url, th.token, WARM_UP, 4, 0)
        wait_until(lambda: delivered_count(th) >= WARM_UP, 120, "the warm-up's receipts", interval=0.1)
        print(f"full load: {args.n} enquiries of 2 KiB, {args.concurrency} connections")
        processes = {"load": os.getpid()}
        for role, node in (("sender", th), ("receiver", my)):
            if node.process is None:
                raise RuntimeError(f"node {node.id} is not running")
            processes[role] = node.process.pid
        profilers = start_profilers(args.profile_dir, processes) if args.profile_dir else []
        threads_before = {name: thread_cpu(pid) for name, pid in processes.items()}
        cpu_before = {name: party_cpu_seconds(pid) for name, pid in processes.items()}
        submit_start = time.time()
        await push(th.url, th.token, args.n, args.concurrency, WARM_UP)
        submitted = time.time()
        wait_until(lambda: delivered_count(th) >= WARM_UP + args.n, 600, "every receipt", interval=0.1)
        cpu_us = {
            name: (party_cpu_seconds(pid) - cpu_before[name]) / args.n * 1e6
            for name, pid in processes.items()
        }
        if args.profile_dir:
            write_thread_cpu(args.profile_dir / "threads.json", args.n, processes, threads_before)
            stop_profilers(profilers)
        cpu_us_per_msg = sum(cpu_us.values())
        rows = sent_rows(th)
        last = max(stamp(r[2]) for r in rows if r[2])
        delivered_per_s = args.n / (last - submit_start)
        print(
            f"  submitted in {submitted - submit_start:.2f} s ({args.n / (submitted - submit_start):.0f}/s)"
        )
        print(f"  delivered: {delivered_per_s:.0f} messages/s (first submit to last receipt)")
        print(
            f"  CPU per delivered message: {cpu_us_per_msg:.0f} µs "
            f"(sender {cpu_us['sender']:.0f}, receiver {cpu_us['receiver']:.0f}, "
            f"load generator {cpu_us['load']:.0f})"
        )

        print(f"latency: {args.rate:.0f} msg/s offered for {args.seconds:.0f} s")
        before = {r[0] for r in rows}
        total = await paced(th.url, th.token, args.rate, args.seconds, WARM_UP + args.n)
        wait_until(
            lambda: delivered_count(th) >= WARM_UP + args.n + total,
            600,
            "the paced run's receipts",
            interval=0.1,
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
    http, http_cpu_us = await http_floor(args.n, args.concurrency)
    print(
        f"  bare aiohttp POSTs of the same size between two processes: {http:.0f}/s, {http_cpu_us:.0f} µs CPU each"
    )
    crypto = crypto_floor(min(args.n, 1000))
    print(f"  per-message crypto alone (seal, request sig, open, receipt): {crypto:.0f}/s")
    floor = 1 / (1 / http + 1 / crypto)
    print(f"  floor (one HTTP exchange plus the crypto, 1/(1/http+1/crypto)): {floor:.0f}/s")
    ratio = delivered_per_s / floor
    print(f"ncpx / floor: {ratio:.2f}")
    bare = primitives_floor(min(args.n, 1000))
    print(f"bare primitives, CPU µs per call (plaintext of {bare['plaintext_bytes']:.0f} bytes):")
    print(
        f"  Ed25519 sign: libsodium {bare['sign_libsodium']:.1f}, OpenSSL {bare['sign_openssl']:.1f}; "
        f"verify: libsodium {bare['verify_libsodium']:.1f}, OpenSSL {bare['verify_openssl']:.1f}"
    )
    print(f"  X25519 + ChaCha20-Poly1305: seal {bare['seal']:.1f}, open {bare['open']:.1f}")
    print(
        f"  per message ({SIGNATURES_PER_MESSAGE} signatures, {VERIFICATIONS_PER_MESSAGE} verifications, "
        f"one seal and one open, the faster library each): {bare['per_message']:.0f} µs"
    )
    floor_cpu = bare["per_message"] + http_cpu_us
    cpu_ratio = cpu_us_per_msg / floor_cpu
    print(f"CPU floor per message (bare primitives plus one bare HTTP POST): {floor_cpu:.0f} µs")
    print(f"ncpx CPU per message / CPU floor: {cpu_ratio:.2f}")
    print(
        json.dumps(
            {
                "delivered_per_s": round(delivered_per_s, 1),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "rss_mb": round(max(rss.values()), 1),
                "floor_per_s": round(floor, 1),
                "ratio": round(ratio, 3),
                "cpu_us_per_msg": round(cpu_us_per_msg),
                "cpu_us_sender": round(cpu_us["sender"]),
                "cpu_us_receiver": round(cpu_us["receiver"]),
                "cpu_us_load": round(cpu_us["load"]),
                "primitives_us_per_msg": round(bare["per_message"]),
                "floor_cpu_us_per_msg": round(floor_cpu),
                "cpu_ratio": round(cpu_ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
