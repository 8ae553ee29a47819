"""``make demo``: a local Joint Period of Action, every participant a separate process on loopback.

Four country nodes (TH, MY, ID, AU) and the coordinator (XI-COORD) are set up the way operators and the roster
authority do it, a Period of Action is declared, and then:

1. Thailand's officer asks Malaysia about a vessel; the demo follows it from submission to signed receipt, read
   notice and answer, showing what the officers see with the ``ncpx`` command;
2. the countries exchange a few dozen more enquiries (some to several countries at once) and answer most;
3. Thailand and Malaysia deconflict: each has the same phone on its watch list (written differently), private
   matching finds it without either showing the other its list, and Thailand's drafted notice is sent and
   acknowledged;
4. each country submits its signed outcome return;
5. the coordinator, which never sees a message's content, tallies the period and prints the report.

The demo exits 0 only if every state, receipt and figure matches what it sent.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from node.client import Client
from node.topology import Topology, ncpx, wait_until
from protocol.encoding import format_time
from protocol.outcome import FIGURES

console = Console(width=150)
COUNTRIES = ["TH", "MY", "ID", "AU"]
COORDINATOR = "XI-COORD"
PERIOD = "jpa-demo"
AREAS = ["people_smuggling", "thb_labour_exploitation", "thb_sexual_exploitation", "document_visa_fraud"]
URGENCIES = ["urgent_direct", "urgent_indirect", "normal"]
DEBRIEF_2015 = {
    "persons_assisted": 59,
    "search_warrants": 7,
    "suspects_identified": 63,
    "arrests": 32,
    "new_investigations": 8,
    "awareness_activities": 68,
    "trainings_held": 12,
    "officers_trained": 485,
}
"""The 2015 debrief's totals, split across the demo's countries so that the report must add them up again."""


class Checks:
    """Prints each check as it is made and remembers the failures."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        console.print(("[green]✓[/] " if ok else "[red]✗[/] ") + what)
        if not ok:
            self.failures.append(what)


def _state(client: Client, message_id: str, folder: str, wanted: str) -> dict[str, Any] | None:
    page = client.json("GET", "/v1/messages", query={"folder": folder, "limit": 500})
    for item in page["items"]:
        if item["id"] == message_id and item["state"] == wanted:
            return dict(item)
    return None


def _cli(topology: Topology, node_id: str, *args: str) -> str:
    """Show what an officer (or the coordinator) sees with the ncpx command: same token, same API."""
    node = topology.nodes[node_id]
    console.print(f"[dim]$ ncpx {' '.join(args)}    # at {node_id}[/]")
    output = ncpx(*args, env={"NCPX_NODE": node.url, "NCPX_TOKEN": node.token, "COLUMNS": "150"})
    console.print(output, end="", markup=False, highlight=False, soft_wrap=True)
    return output


def walkthrough(topology: Topology, check: Checks) -> None:
    """One enquiry followed from submission to answer, as the two officers see it."""
    th, my = topology.nodes["TH"].client(), topology.nodes["MY"].client()
    console.rule("TH asks MY about a vessel (urgent, information held directly: due in 8 hours)")
    created = th.json(
        "POST",
        "/v1/enquiries",
        {
            "recipients": ["MY"],
            "area": "people_smuggling",
            "urgency": "urgent_direct",
            "subject": "Vessel suspected of carrying 40 migrants towards Langkawi",
            "text": "Please confirm the vessel's last port of call and the registered owner.",
            "handling": "H2",
            "tlp": "TLP:AMBER",
            "evaluation": {"source": "B", "information": "2"},
            "subjects": {
                "vessels": [{"name": "KM Harapan Jaya", "imo": "9074729", "flag": "ID"}],
                "phones": [{"number": "+60123456789", "note": "skipper"}],
            },
            "attachments": [{"name": "photo.txt", "media_type": "text/plain", "data": "dmVzc2VsIHBob3Rv"}],
        },
        headers={"Idempotency-Key": "demo-enquiry-1"},
    )
    enquiry = created["messages"][0]["id"]
    check(bool(created["messages"][0]["due_at"]), f"enquiry {enquiry} queued with a deadline")
    delivered = wait_until(lambda: _state(th, enquiry, "sent", "delivered"), 30, "the signed receipt")
    check(delivered["delivered_at"] is not None, "TH holds MY's signed receipt: state delivered")

    console.rule("MY's officer opens the inbox and reads the enquiry")
    _cli(topology, "MY", "inbox")
    opened = my.json("GET", f"/v1/messages/{enquiry}")["message"]
    check(opened["subjects"]["vessels"][0]["imo"] == "9074729", "MY opens the sealed body: vessel IMO intact")
    check(opened["attachments"][0]["size"] == len(b"vessel photo"), "attachment intact")
    my.json("POST", f"/v1/messages/{enquiry}/read")
    wait_until(lambda: _state(th, enquiry, "sent", "read"), 30, "the read notice")
    check(True, "TH sees that MY read it: state read")

    console.rule("MY answers; the reply threads under the enquiry")
    reply = my.json(
        "POST",
        f"/v1/messages/{enquiry}/replies",
        {"text": "Last port of call: Belawan. Owner identified; details follow.", "handling": "H1"},
    )["messages"][0]["id"]
    wait_until(lambda: _state(my, reply, "sent", "delivered"), 30, "the reply's receipt")
    wait_until(lambda: _state(th, enquiry, "sent", "answered"), 30, "the enquiry to show answered")
    check(True, "MY holds TH's signed receipt for the reply; TH's enquiry shows answered")
    thread = th.json("GET", f"/v1/messages/{reply}")
    check(
        [m["kind"] for m in thread["thread"]] == ["enquiry", "reply"]
        and thread["message"]["text"].startswith("Last"),
        "TH reads the reply in the enquiry's thread",
    )
    table = Table(
        "kind", "from → to", "state", "created", "delivered", "receipt signed by", "envelope digest"
    )
    for m in thread["thread"]:
        receipt = m.get("receipt") or {}
        table.add_row(
            m["kind"],
            f"{m['sender']} → {m['recipient']}",
            m["state"],
            m["created_at"],
            m.get("delivered_at") or "",
            f"{receipt.get('receiver', '')} ({receipt.get('receiver_key', '')})",
            m["envelope_digest"][:16] + "…",
        )
    console.print(table)


def traffic(topology: Topology) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str]]:
    """A few dozen enquiries among the countries, most answered; returns (enquiry messages per pair, replies per
    country, enquiries per sending country as threads)."""
    plan = random.Random(2015)  # noqa: S311 - a reproducible plan of demo traffic, not a secret
    clients = {c: topology.nodes[c].client() for c in COUNTRIES}
    pairs: Counter[tuple[str, str]] = Counter()
    threads: Counter[str] = Counter()
    sent: list[tuple[str, str, str]] = []  # (sender, recipient, message id)
    for i in range(30):
        sender = plan.choice(COUNTRIES)
        others = [c for c in COUNTRIES if c != sender]
        recipients = plan.sample(others, 2) if i % 7 == 0 else [plan.choice(others)]
        created = clients[sender].json(
            "POST",
            "/v1/enquiries",
            {
                "recipients": recipients,
                "area": plan.choice(AREAS),
                "urgency": plan.choice(URGENCIES),
                "subject": f"Operation query {i + 1}",
                "text": "Do you hold records on the persons and the phone listed?",
                "subjects": {
                    "persons": [{"family_name": f"Subject{i}"}],
                    "phones": [{"number": "+6612345678"}],
                },
            },
        )
        threads[sender] += 1
        for message in created["messages"]:
            pairs[(sender, message["recipient"])] += 1
            sent.append((sender, message["recipient"], message["id"]))
    console.print(f"{len(sent)} enquiries sent among {', '.join(COUNTRIES)}")
    for sender, _, message_id in sent:
        wait_until(lambda: _state(clients[sender], message_id, "sent", "delivered"), 30, "delivery")  # noqa: B023 - called at once
    replies: Counter[str] = Counter()
    for _, recipient, message_id in sent:
        clients[recipient].json("POST", f"/v1/messages/{message_id}/read")
        if plan.random() < 0.7:
            clients[recipient].json(
                "POST", f"/v1/messages/{message_id}/replies", {"text": "Checked: see the attached summary."}
            )
            replies[recipient] += 1
    console.print(f"{sum(replies.values())} answered, {len(sent) - sum(replies.values())} left outstanding")
    return pairs, replies, threads


def outcome_returns(topology: Topology) -> dict[str, dict[str, int]]:
    """Each country submits its signed return; the 2015 totals are split across them."""
    shares: dict[str, dict[str, int]] = {c: {} for c in COUNTRIES}
    for name, total in DEBRIEF_2015.items():
        base, extra = divmod(total, len(COUNTRIES))
        for index, country in enumerate(COUNTRIES):
            shares[country][name] = base + (1 if index < extra else 0)
    for country, figures in shares.items():
        args = [f"--{name.replace('_', '-')}={value}" for name, value in figures.items()]
        if country == "TH":
            _cli(topology, country, "outcome", "submit", "--period", PERIOD, *args)
        else:
            ncpx(
                "outcome", "submit", "--period", PERIOD, *args,
                env={"NCPX_NODE": topology.nodes[country].url, "NCPX_TOKEN": topology.nodes[country].token},
            )  # fmt: skip
    return shares


def deconfliction(topology: Topology, check: Checks) -> None:
    """The same phone on two watch lists: found privately, alerted on both sides, a notice sent and acknowledged."""
    th, my = topology.nodes["TH"].client(), topology.nodes["MY"].client()
    expires = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    for client, number, region, case, contact in (
        (th, "081 234 5678", "TH", "TH-TIP-2015-031", "Pol. Maj. Somchai, +66 2 205 1000"),
        (my, "+66 81-234-5678", None, "MY-ATIPSOM-88", "Insp. Aziz, +60 3 2266 0000"),
    ):
        entry = {
            "kind": "phone",
            "number": number,
            "case_reference": case,
            "contact": contact,
            "expires_on": expires,
        }
        client.json("POST", "/v1/watchlist", entry | ({"region": region} if region else {}))
    client_doc = {"kind": "document", "number": "AA1234567", "case_reference": "TH-TIP-2015-031"}
    th.json("POST", "/v1/watchlist", client_doc | {"contact": "Pol. Maj. Somchai", "expires_on": expires})
    _cli(topology, "TH", "match", "--with", "MY")
    _cli(topology, "TH", "hits")
    th_hits, my_hits = th.json("GET", "/v1/hits")["items"], my.json("GET", "/v1/hits")["items"]
    check(
        [h["item"] for h in th_hits] == ["phone:+66812345678"]
        and [h["item"] for h in my_hits] == ["phone:+66812345678"],
        "matching: both sides learn the shared phone, and only it (TH's document stays private)",
    )
    check(my_hits[0]["peer_case"] == "TH-TIP-2015-031", "matching: MY sees TH's case and contact for the hit")
    [draft] = th.json("GET", "/v1/notices/drafts")["items"]
    [notice] = th.json("POST", f"/v1/notices/drafts/{draft['id']}/send")["messages"]
    wait_until(lambda: _state(my, notice["id"], "inbox", "received"), 30, "the notice at MY")
    my.json("POST", f"/v1/messages/{notice['id']}/acknowledge")
    acknowledged = wait_until(
        lambda: _state(th, notice["id"], "sent", "acknowledged"), 30, "MY's acknowledgement"
    )
    check(acknowledged is not None, "the notice drafted from the hit is delivered and acknowledged")


def run(root: Path) -> list[str]:
    """Run the whole Period of Action; returns the failed checks (empty when all passed)."""
    check = Checks()
    topology = Topology(root, [*COUNTRIES, COORDINATOR], coordinator=COORDINATOR)
    console.rule("setting up: roster authority, four country nodes, the coordinator, one officer each")
    topology.create()
    now = datetime.now(UTC)
    topology.declare_period(
        PERIOD, format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29))
    )
    topology.start()
    try:
        walkthrough(topology, check)
        console.rule("the Period of Action: enquiries among four countries")
        pairs, replies, threads = traffic(topology)
        pairs[("TH", "MY")] += 1
        replies["MY"] += 1
        threads["TH"] += 1
        console.rule("deconfliction: TH and MY match their watch lists privately")
        deconfliction(topology, check)
        console.rule("outcome returns, signed by each country")
        shares = outcome_returns(topology)
        console.rule("the coordinator's view: metadata only, never content")
        coordinator = topology.nodes[COORDINATOR].client()
        total = sum(pairs.values())

        def settled() -> dict[str, Any] | None:
            tallies = coordinator.json("GET", f"/v1/period/{PERIOD}/tallies")
            outcomes = coordinator.json("GET", f"/v1/period/{PERIOD}/outcomes")["outcomes"]
            t = tallies["totals"]
            done = (
                t["enquiries"] == total
                and t["replies"] == sum(replies.values())
                and t["answered"] == t["replies"]
            )
            return tallies if done and len(outcomes) == len(COUNTRIES) else None

        tallies = wait_until(settled, 60, "the coordinator to tally every record and return")
        verify(tallies, pairs, replies, threads, check)
        _cli(topology, COORDINATOR, "tally", "--period", PERIOD, "--view", "pairs")
        report = _cli(topology, COORDINATOR, "report", "--period", PERIOD, "--format", "md")
        verify_report(report, shares, sum(threads.values()), total, check)
    finally:
        topology.stop()
    return check.failures


def verify(
    tallies: dict[str, Any],
    pairs: Counter[tuple[str, str]],
    replies: Counter[str],
    threads: Counter[str],
    check: Checks,
) -> None:
    """The coordinator's figures against what the demo itself sent."""
    got_pairs = {(p["sender"], p["recipient"]): p["count"] for p in tallies["pairs"]}
    check(got_pairs == dict(pairs), f"enquiries per ordered pair match what was sent ({len(pairs)} pairs)")
    for country in tallies["countries"]:
        c = country["country"]
        sent = sum(n for (s, _), n in pairs.items() if s == c)
        received = sum(n for (_, r), n in pairs.items() if r == c)
        got = (country["threads_sent"], country["sent"], country["received"], country["replies_sent"])
        check(
            got == (threads[c], sent, received, replies[c]),
            f"{c}: {threads[c]} enquiries sent as {sent} messages, {received} received, {replies[c]} answered",
        )
    t = tallies["totals"]
    check(t["outstanding"] == t["enquiries"] - t["answered"], f"{t['outstanding']} outstanding")
    check(t["unconfirmed"] == 0 and t["disputed"] == 0, "both sides of every exchange agree")
    check(t["unproven"] == 0, "every exchange rests on the receiver's signed receipt")


def verify_report(
    report: str, shares: dict[str, dict[str, int]], threads: int, enquiries: int, check: Checks
) -> None:
    """The report's total row carries the exchange's enquiries (threads and messages) and the sum of the returns."""
    lines = report.splitlines()
    header = [
        c.strip()
        for c in next(line for line in lines if line.startswith("| Country |")).strip("|").split("|")
    ]
    total_row = next(line for line in lines if line.startswith("| Total |"))
    cells = dict(zip(header, (c.strip() for c in total_row.strip("|").split("|")), strict=True))
    figures = [cells[FIGURES[name]] for name in FIGURES]
    expected = [str(sum(shares[c][name] for c in shares)) for name in FIGURES]
    counted = [cells["Enquiries sent (threads)"], cells["Enquiry messages sent (one per recipient)"]]
    check(
        counted == [str(threads), str(enquiries)],
        f"report: {threads} enquiries sent as {enquiries} messages, computed from the exchange itself",
    )
    check(figures == expected, "report: every debrief figure equals the sum of the countries' returns")
    check(
        expected == [str(DEBRIEF_2015[name]) for name in FIGURES], "report totals reproduce the 2015 debrief"
    )


def main() -> None:
    """Run the demo in a fresh folder; keep the folder only when something failed."""
    root = Path(tempfile.mkdtemp(prefix="ncpx-demo-"))
    try:
        failures = run(root)
    except Exception as exc:
        console.print(f"[red]demo failed:[/] {exc}  (node folders and logs kept in {root})")
        sys.exit(1)
    if failures:
        console.print(f"[red]{len(failures)} checks failed[/]; node folders and logs kept in {root}")
        sys.exit(1)
    console.print(
        "[bold green]all checks passed[/]: encrypted end to end, signed, receipted, answered, tallied"
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
