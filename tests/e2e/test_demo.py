"""``ncpx demo`` as a newcomer runs it, in a real subprocess: its JSON figures against the seeded plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from node.demo_plan import INTERPOL, plan

pytestmark = pytest.mark.e2e

COUNTRIES = ["TH", "MY", "PH"]
SEED = 7


def test_demo_json_figures_match_the_plan() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", "demo", "--countries", ",".join(COUNTRIES), "--enquiries", "30",
         "--seed", str(SEED), "--json"],
        capture_output=True, text=True, timeout=240, check=False, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # stdout is the JSON alone; progress went to stderr
    assert summary["ok"] is True
    assert [c["check"] for c in summary["checks"] if not c["ok"]] == []

    planned = plan(COUNTRIES, 30, SEED)
    messages = [(p.sender, a.recipient, a.at) for p in planned for a in p.answers]
    pairs = Counter((s, r) for s, r, _ in messages)
    answered = Counter((s, r) for s, r, at in messages if at is not None)
    tallies = summary["report"]["tallies"]
    got = {(p["sender"], p["recipient"]): (p["count"], p["answered"]) for p in tallies["pairs"]}
    assert got == {pair: (n, answered[pair]) for pair, n in pairs.items()}
    assert set(summary["participants"]) == {*COUNTRIES, INTERPOL}

    totals = tallies["totals"]
    assert totals["enquiry_threads"] == 31  # the walkthrough's enquiry and the 30 planned
    assert totals["enquiries"] == len(messages)
    assert totals["answered"] == totals["replies"] == sum(answered.values())
    assert totals["outstanding"] == len(messages) - sum(answered.values())
    overdue = sum(1 for p in planned for a in p.answers if a.at is None and p.due() < 185)
    assert 0 < totals["overdue"] == overdue < totals["outstanding"]
    assert totals["notices"] == totals["notices_acknowledged"] == summary["notices_sent"] >= 1
    assert totals["unproven"] == totals["disputed"] == totals["unconfirmed"] == 0

    assert sorted((h["holder"], h["item"]) for h in summary["hits"]) == [
        ("MY", "phone:+66812345678"),
        ("TH", "phone:+66812345678"),
    ]
    restart = summary["restart"]
    assert restart["node"] == "PH"
    assert restart["waited"] >= 1
    assert summary["report"]["totals"]["arrests"] == 32  # the 2015 debrief, added back up from three returns
