"""Where each process's CPU goes per delivered message, from a ``bench/exchange.py --profile-dir`` folder.

py-spy's idle detection misses most waits of these processes (in one run it gave the sender's event loop 15 s of
samples for 5.8 s of measured CPU, and an idle executor thread 2.5 s), so raw sample shares mislead. This
summary weighs samples by the CPU the kernel measured instead: each thread's user and system time during the
run (``threads.json``) is spread over that thread's samples, leaving out samples parked in a wait (the event
loop's ``select``, a worker's queue ``get``), and divided by the messages delivered.

The event loop's samples are split into categories: the innermost frame that belongs to an *absorbing* category
(a library doing one job, whatever it calls: Ed25519, sealing, RFC 8785, pydantic, logging, aiosqlite) decides;
failing that, the innermost frame that matches any other category. Every other thread (aiosqlite's connection
threads, where SQLite itself runs without the GIL; asyncio's executor) is one row with its user and system time.

    .venv/bin/python bench/profile_summary.py /tmp/profile --top 25
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

ROLES = ("sender", "receiver", "load")
OURS = re.compile(r"/(node|protocol|keys|bench)/[^/]+(/[^/]+)?$")
"""The tail of a path in one of ncpx's packages (the tree may be any checkout, so no fixed root)."""
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
THREAD = re.compile(r"^thread \((?P<tid>\d+)\)(?:: (?P<name>.*))?$")

ABSORBING: list[tuple[str, tuple[str, ...]]] = [
    ("Ed25519 (libsodium through PyNaCl)", ("nacl/",)),
    ("X25519 + HKDF + ChaCha20-Poly1305 (cryptography)", ("cryptography/", "protocol/sealing.py")),
    ("RFC 8785 encoding (rfc8785 package)", ("rfc8785/",)),
    ("pydantic validation and serialisation", ("pydantic/", "pydantic_core/")),
    ("logging (access log, Logger.info)", ("logging/", "aiohttp/web_log.py")),
    ("aiosqlite, event-loop side (queue put, future, wake-up)", ("aiosqlite/",)),
]
"""Categories that own everything below their innermost frame."""

LEAF: list[tuple[str, tuple[str, ...]]] = [
    ("stdlib json", ("json/",)),
    ("base64", ("base64.py", "b64e ", "b64d ")),
    (
        "time text (format_time, parse_time, datetime)",
        ("format_time ", "parse_time ", "_strptime", "datetime"),
    ),
    ("uuid", ("uuid.py", "protocol/ids.py")),
    ("hashlib SHA-256", ("hashlib", "sha256 (protocol")),
    ("copy.deepcopy", ("copy.py",)),
    ("aiohttp (HTTP parsing, client, server)", ("aiohttp/", "multidict/", "yarl/")),
    ("asyncio event loop and transports", ("asyncio/", "selectors.py", "threading.py", "concurrent/")),
    ("ncpx code, own time (node/, protocol/, keys/)", ("node/", "protocol/", "keys/", "bench/")),
]
"""Categories decided by the innermost matching frame."""

WAITS = (
    ("EpollSelector.select ", "selectors.py"),
    ("_connection_worker_thread ", "aiosqlite/core.py:59"),
    ("_worker ", "concurrent/futures/thread.py:81"),
)
"""Innermost frames (function, file:line) where a thread waits for work rather than computes."""

THREAD_NAMES = (
    ("Thread-1 (_connection_worker_thread)", "aiosqlite Thread-1 (first connection opened: the writer)"),
    ("Thread-2 (_connection_worker_thread)", "aiosqlite Thread-2 (second connection opened: the reader)"),
    ("asyncio_", "asyncio default executor thread"),
)
"""How the threads a node starts read in the table; ``Database.open`` connects the writer before the reader."""


def short(path: str) -> str:
    """A file as a reader finds it: from its package in site-packages or in ncpx, or the stdlib's own name."""
    for marker in ("/site-packages/", "/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    match = OURS.search(path)
    return match[0][1:] if match else path


def frame_text(frame: str) -> str:
    """``function (short/path.py:line)`` from py-spy's full-filename frame."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    line = f":{match['line']}" if match["line"] else ""
    return f"{match['function']} ({short(match['file'])}{line})"


def parse(path: Path) -> dict[str, tuple[str, Counter[tuple[str, ...]]]]:
    """py-spy raw lines by thread id: the thread's name and its stacks (outermost first, short names) with counts."""
    threads: dict[str, tuple[str, Counter[tuple[str, ...]]]] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        head, *frames = stack.split(";")
        match = THREAD.match(head)
        if match is None:
            raise ValueError(f"{path}: record the profile with py-spy --threads (line starts {head[:40]!r})")
        _, stacks = threads.setdefault(match["tid"], (match["name"] or "unnamed", Counter()))
        stacks[tuple(frame_text(frame) for frame in frames)] += int(count)
    return threads


def waiting(frame: str) -> bool:
    """Whether an innermost frame is a thread parked in a wait."""
    return any(frame.startswith(function) and place in frame for function, place in WAITS)


def category(frames: tuple[str, ...]) -> str:
    """The category of one event-loop stack (see the module docstring for the rule)."""
    for table in (ABSORBING, LEAF):
        for frame in reversed(frames):
            for name, patterns in table:
                if any(pattern in frame for pattern in patterns):
                    return name
    return "other"


def function_of(frame: str) -> str:
    """``function (file)`` without the line number, so that a function's lines add up."""
    return re.sub(r":\d+\)$", ")", frame)


def ours(frame: str) -> bool:
    """Whether a frame is ncpx's own code (what the lead can change)."""
    return any(f"({package}/" in frame for package in ("node", "protocol", "keys", "bench"))


def thread_label(name: str) -> str:
    """A thread's row title: what it does where known, else py-spy's name for it."""
    for prefix, label in THREAD_NAMES:
        if name.startswith(prefix):
            return label
    return f"thread {name}"


def ranked(values: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda item: -item[1])


def print_table(rows: list[tuple[str, float]], total: float) -> None:
    print("| where | µs per message | share |")
    print("|---|---|---|")
    for name, us in rows:
        if us >= 0.5:
            print(f"| {name} | {us:.0f} | {us / total:.0%} |")
    print(f"| **total** | **{total:.0f}** | 100% |")


def summarise_process(
    role: str, folder: Path, spent: dict[str, list[float]], messages: int, top: int
) -> None:
    """One process: its CPU by category and thread, then its event loop's costliest functions."""
    threads = parse(folder / f"{role}.txt")
    cpu = {tid: (user / messages * 1e6, system / messages * 1e6) for tid, (user, system) in spent.items()}
    total = sum(user + system for user, system in cpu.values())
    by_category: defaultdict[str, float] = defaultdict(float)
    own: defaultdict[str, float] = defaultdict(float)
    inclusive: defaultdict[str, float] = defaultdict(float)
    loop_us = 0.0
    loop_tid = next((tid for tid, (name, _) in threads.items() if name == "MainThread"), None)
    if loop_tid is not None:
        busy = {frames: n for frames, n in threads[loop_tid][1].items() if frames and not waiting(frames[-1])}
        samples = sum(busy.values())
        loop_us = sum(cpu.pop(loop_tid, (0.0, 0.0)))
        for frames, n in busy.items():
            share = loop_us * n / samples
            by_category[f"event loop: {category(frames)}"] += share
            own[function_of(frames[-1])] += share
            for function in {function_of(frame) for frame in frames if ours(frame)}:
                inclusive[function] += share
    others: defaultdict[str, float] = defaultdict(float)
    for tid, (user, system) in cpu.items():
        name = threads[tid][0] if tid in threads else "never sampled"
        others[f"{thread_label(name)} (user {user:.0f} + system {system:.0f})"] += user + system
    print(f"## {role}: {total:.0f} µs of CPU per delivered message\n")
    print_table(ranked(by_category) + ranked(others), total)
    print(
        f"\n{role}, event loop: the top {top} functions by own time (innermost Python frame; a C call counts"
    )
    print(
        "to the Python line that makes it) and ncpx's by inclusive time (entry points left out), µs per message:\n"
    )
    print("| own time | µs | ncpx, inclusive | µs |")
    print("|---|---|---|---|")
    own_rows = ranked(own)[:top]
    inclusive_rows = [(function, us) for function, us in ranked(inclusive) if us < 0.9 * loop_us][:top]
    for i in range(top):
        left = f"{own_rows[i][0]} | {own_rows[i][1]:.0f}" if i < len(own_rows) else " | "
        right = f"{inclusive_rows[i][0]} | {inclusive_rows[i][1]:.0f}" if i < len(inclusive_rows) else " | "
        print(f"| {left} | {right} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="the --profile-dir of a bench/exchange.py run")
    parser.add_argument("--top", type=int, default=25, help="functions listed per process")
    args = parser.parse_args()
    spent = json.loads((args.folder / "threads.json").read_text())
    print(
        f"{spent['messages']} delivered messages; CPU from each thread's /proc figures, split by py-spy samples\n"
    )
    for role in ROLES:
        summarise_process(role, args.folder, spent["threads"][role], spent["messages"], args.top)


if __name__ == "__main__":
    main()
