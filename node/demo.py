"""``ncpx demo`` (what ``make demo`` runs): a whole Joint Period of Action on this machine, every participant a
separate process on loopback.

The roster authority, one node per country (the eight of 2015 by default) and one for INTERPOL, and the
coordinator are set up the way operators do it; the authority declares the period; then a seeded plan
(:mod:`node.demo_plan`) is carried out over a compressed week: the federation's clock jumps from step to step
(:mod:`node.stepped_clock`) so that deadlines of hours and days pass in seconds. Along the way:

1. the first enquiry is followed from submission to signed receipt, read notice and answer, showing what the
   officers see with ``ncpx``;
2. the countries send the planned enquiries (some to two or three at once) and answer them after realistic
   delays, some late, some never;
3. two countries deconflict: the same phone on both watch lists, written differently, is found by private
   matching without either showing its list; the notices drafted from the hit are sent and acknowledged;
4. midway one node is killed with SIGKILL; what others send it meanwhile waits in their outboxes and is
   delivered once it is restarted;
5. each country submits its signed outcome return, and the coordinator, which never sees a message's content,
   tallies the period and produces the report.

Every figure of the report is checked against what was sent; the demo exits 0 only if all agree.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from node.client import Client
from node.demo_plan import (
    COUNTRIES_2015,
    INTERPOL,
    KILL_STEP,
    MATCH_STEP,
    STEPS,
    Planned,
    expected,
    matching_pair,
    plan,
    victim,
)
from node.stepped_clock import ENVIRONMENT, SteppedClock
from node.topology import Topology, command, wait_until
from protocol.codes import normalise_country
from protocol.encoding import format_time
from protocol.errors import ConfigError
from protocol.outcome import FIGURES

COORDINATOR = "XI-COORD"
PERIOD = "jpa-demo"
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
NODE_CONFIG: dict[str, Any] = {
    "verify_workers": 0,
    "coordinator_verify_workers": 0,
    "delivery": {"backoff_initial_s": 0.1, "backoff_cap_s": 0.5, "heartbeat_s": 5.0},
}
"""Ten processes share this machine's cores: envelopes are checked in each node's own process rather than in
pools of their own (twenty more interpreters to start), and a peer that was down is retried within half a
second, the compressed time's equivalent of the five minutes a real node waits at most."""
TIMEOUT = 60.0
"""Longest wait for anything the demo expects (a delivery, the coordinator's tallies)."""


class Checks:
    """Records each check, prints it in human mode, and remembers the failures."""

    def __init__(self, out: Console, quiet: bool) -> None:
        self.out, self.quiet = out, quiet
        self.made: list[dict[str, Any]] = []

    def __call__(self, ok: bool, what: str) -> None:
        self.made.append({"check": what, "ok": ok})
        if not self.quiet:
            self.out.print(("[green]✓[/] " if ok else "[red]✗[/] ") + what)

    @property
    def failures(self) -> list[str]:
        """The checks that failed."""
        return [c["check"] for c in self.made if not c["ok"]]


class Demo:
    """One run: the topology, the plan, and what was actually sent (message ids by sender and recipient)."""

    def __init__(
        self, root: Path, countries: list[str], enquiries: int, seed: int, out: Console, as_json: bool
    ) -> None:
        self.root, self.countries, self.out, self.as_json = root, countries, out, as_json
        self.members = [*countries, INTERPOL]
        self.plan = plan(countries, enquiries, seed)
        self.check = Checks(out, as_json)
        self.clock = SteppedClock(root / "clock-offset")
        self.topology = Topology(root, [*self.members, COORDINATOR], NODE_CONFIG, coordinator=COORDINATOR)
        self.clients: dict[str, Client] = {}
        self.sent: dict[tuple[int, str], str] = {}
        """Message id of each planned enquiry's message to each recipient."""
        self.replied: dict[tuple[int, str], str] = {}
        """Message id of each recipient's reply to a planned enquiry."""
        self.notices = 0
        self.restart: dict[str, Any] = {}

    # -- output ----------------------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Educational output, human mode only."""
        if not self.as_json:
            self.out.print(text)

    def rule(self, text: str) -> None:
        if not self.as_json:
            self.out.rule(text)

    def cli(self, node_id: str, *args: str) -> str:
        """Show what an officer (or the coordinator) sees with the ``ncpx`` command: same token, same API."""
        node = self.topology.nodes[node_id]
        output = command(*args, env={"NCPX_NODE": node.url, "NCPX_TOKEN": node.token})
        if not self.as_json:
            self.out.print(f"[dim]$ ncpx {' '.join(args)}    # at {node_id}[/]")
            self.out.print(output, end="", markup=False, highlight=False, soft_wrap=True)
        return output

    # -- set-up ----------------------------------------------------------------------------------------------

    def set_up(self) -> None:
        """Authority, roster, every node folder and officer, the period; all nodes started at once."""
        self.clock.advance(timedelta(0))
        self.topology.create()
        now = datetime.now(UTC)
        self.topology.declare_period(
            PERIOD, format_time(now - timedelta(days=1)), format_time(now + timedelta(days=29)), self.members
        )
        self.topology.start(TIMEOUT, {ENVIRONMENT: str(self.clock.path)})
        self.clients = {pid: node.client() for pid, node in self.topology.nodes.items()}

    # -- the exchange ----------------------------------------------------------------------------------------

    def submit(self, p: Planned) -> None:
        """Send one planned enquiry from its sender's node."""
        body: dict[str, Any] = {
            "recipients": [a.recipient for a in p.answers],
            "area": p.area.value,
            "urgency": p.urgency.value,
            "subject": f"Operation query {p.number}: {p.area.value.replace('_', ' ')}",
            "text": "Do you hold records on the persons, the phone and the vessel listed? Please check your "
            "immigration, maritime and phone subscriber records.",
            "handling": "H0",
            "tlp": "TLP:AMBER",
            "subjects": {
                "persons": [{"family_name": f"Subject{p.number}", "nationality": "ID"}],
                "phones": [{"number": f"+6681{p.number:07d}"}],
            },
        }
        if p.sector is not None:
            body["sector"] = p.sector.value
        created = self.clients[p.sender].json(
            "POST", "/v1/enquiries", body, headers={"Idempotency-Key": f"demo-{p.number}"}
        )
        for message in created["messages"]:
            self.sent[(p.number, message["recipient"])] = message["id"]

    def respond(self, step: int, who: Callable[[str], bool]) -> None:
        """Recipients chosen by ``who`` act on what they received before ``step``: open it (all but every third
        enquiry they never answer), and answer those whose planned time has come."""
        for p in self.plan:
            for a in p.answers:
                if not who(a.recipient) or p.sent >= step or p.number == 0:
                    continue
                message = self.sent[(p.number, a.recipient)]
                client = self.clients[a.recipient]
                if a.at == step:
                    client.json("POST", f"/v1/messages/{message}/read")
                    answer = {"text": "Checked: the subject is known to us; summary below.", "handling": "H1"}
                    reply = client.json("POST", f"/v1/messages/{message}/replies", answer)
                    self.replied[(p.number, a.recipient)] = reply["messages"][0]["id"]
                elif a.at is None and p.number % 3 and _next_step(p.sent) == step:
                    client.json("POST", f"/v1/messages/{message}/read")

    def send_wave(self, step: int, who: Callable[[str], bool]) -> None:
        for p in self.plan:
            if p.sent == step and p.number != 0 and who(p.sender):
                self.submit(p)

    def settle(self) -> None:
        """Wait until every message sent so far holds its recipient's signed receipt and the coordinator has
        counted every enquiry and reply: nothing is in flight when the clock jumps."""
        for sender in self.members:
            mine = self._sent_by(sender) | {
                m for (_, replier), m in self.replied.items() if replier == sender
            }
            wait_until(lambda: not self.undelivered(sender, mine), TIMEOUT, f"{sender}'s receipts")  # noqa: B023
        enquiries, replies = len(self.sent), len(self.replied)
        coordinator = self.clients[COORDINATOR]

        def counted() -> bool:
            t = coordinator.json("GET", f"/v1/period/{PERIOD}/tallies")["totals"]
            return bool(
                t["enquiries"] == enquiries and t["replies"] == replies and t["notices"] == self.notices
            )

        wait_until(counted, TIMEOUT, "the coordinator to count every record")

    def undelivered(self, sender: str, ids: set[str]) -> set[str]:
        """Which of ``ids`` (messages ``sender`` sent) lack their recipient's signed receipt."""
        client = self.clients[sender]
        done: set[str] = set()
        cursor = None
        while True:
            page = client.json(
                "GET", "/v1/messages", query={"folder": "sent", "limit": 500, "cursor": cursor}
            )
            for item in page["items"]:
                if item.get("delivered_at"):
                    done.add(item["id"])
            cursor = page.get("next")
            if not cursor:
                return ids - done

    # -- the walkthrough -------------------------------------------------------------------------------------

    def walkthrough(self) -> None:
        """The first enquiry, followed from submission to answer as both officers see it."""
        first = self.plan[0]
        asker, answerer = first.sender, first.answers[0].recipient
        a, b = self.clients[asker], self.clients[answerer]
        self.rule(
            f"{asker} asks {answerer} about a vessel (urgent, information held directly: due in 8 hours)"
        )
        created = a.json(
            "POST",
            "/v1/enquiries",
            {
                "recipients": [answerer],
                "area": first.area.value,
                "urgency": first.urgency.value,
                "subject": "Vessel suspected of carrying 40 migrants towards Langkawi",
                "text": "Please confirm the vessel's last port of call and the registered owner.",
                "handling": "H2",
                "tlp": "TLP:AMBER",
                "evaluation": {"source": "B", "information": "2"},
                "subjects": {
                    "vessels": [{"name": "KM Harapan Jaya", "imo": "9074729", "flag": "ID"}],
                    "phones": [{"number": "+60123456789", "note": "skipper"}],
                },
                "attachments": [
                    {"name": "photo.txt", "media_type": "text/plain", "data": "dmVzc2VsIHBob3Rv"}
                ],
            },
            headers={"Idempotency-Key": "demo-walkthrough"},
        )
        enquiry = created["messages"][0]["id"]
        self.sent[(0, answerer)] = enquiry
        self.check(bool(created["messages"][0]["due_at"]), f"enquiry {enquiry} queued with a deadline")
        wait_until(lambda: _state(a, enquiry, "sent", "delivered"), TIMEOUT, "the signed receipt")
        self.check(True, f"{asker} holds {answerer}'s signed receipt: state delivered")
        self.rule(f"{answerer}'s officer opens the inbox and reads the enquiry")
        self.cli(answerer, "inbox")
        opened = b.json("GET", f"/v1/messages/{enquiry}")["message"]
        self.check(
            opened["subjects"]["vessels"][0]["imo"] == "9074729",
            f"{answerer} opens the sealed body: vessel IMO intact",
        )
        self.check(opened["attachments"][0]["size"] == len(b"vessel photo"), "attachment intact")
        b.json("POST", f"/v1/messages/{enquiry}/read")
        wait_until(lambda: _state(a, enquiry, "sent", "read"), TIMEOUT, "the read notice")
        self.check(True, f"{asker} sees that {answerer} read it: state read")
        self.rule(f"{answerer} answers; the reply threads under the enquiry")
        reply = b.json(
            "POST",
            f"/v1/messages/{enquiry}/replies",
            {"text": "Last port of call: Belawan. Owner identified; details follow.", "handling": "H1"},
        )["messages"][0]["id"]
        self.replied[(0, answerer)] = reply
        wait_until(lambda: _state(b, reply, "sent", "delivered"), TIMEOUT, "the reply's receipt")
        wait_until(lambda: _state(a, enquiry, "sent", "answered"), TIMEOUT, "the enquiry to show answered")
        self.check(
            True, f"{answerer} holds {asker}'s signed receipt for the reply; {asker}'s enquiry shows answered"
        )
        thread = a.json("GET", f"/v1/messages/{reply}")
        self.check(
            [m["kind"] for m in thread["thread"]] == ["enquiry", "reply"]
            and thread["message"]["text"].startswith("Last"),
            f"{asker} reads the reply in the enquiry's thread",
        )
        if not self.as_json:
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
            self.out.print(table)

    # -- deconfliction ---------------------------------------------------------------------------------------

    def deconfliction(self) -> list[dict[str, Any]]:
        """The same phone on two watch lists: found privately, alerted on both sides, the drafted notices sent
        and acknowledged. Returns both sides' hits."""
        first, second = matching_pair(self.countries)
        self.rule(f"deconfliction: {first} and {second} match their watch lists privately")
        a, b = self.clients[first], self.clients[second]
        expires = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
        thai = first == "TH"
        for client, number, case in (
            (a, "081 234 5678" if thai else "+66 81 234 5678", f"{first}-TIP-2015-031"),
            (b, "+66 81-234-5678", f"{second}-ATIPSOM-88"),
        ):
            entry = {
                "kind": "phone",
                "number": number,
                "case_reference": case,
                "contact": f"duty officer, {case[:2]}",
            }
            region = {"region": "TH"} if client is a and thai else {}
            client.json("POST", "/v1/watchlist", entry | region | {"expires_on": expires})
        private = {"kind": "document", "number": "AA1234567", "case_reference": f"{first}-TIP-2015-031"}
        a.json("POST", "/v1/watchlist", private | {"contact": "duty officer", "expires_on": expires})
        self.cli(first, "match", "--with", second)
        self.cli(first, "hits")
        hits = [
            h | {"holder": c}
            for c, client in ((first, a), (second, b))
            for h in client.json("GET", "/v1/hits")["items"]
        ]
        self.check(
            sorted((h["holder"], h["item"]) for h in hits)
            == sorted([(first, "phone:+66812345678"), (second, "phone:+66812345678")]),
            "matching: both sides learn the shared phone, and only it (the document stays private)",
        )
        self.check(
            any(h["holder"] == second and h["peer_case"] == f"{first}-TIP-2015-031" for h in hits),
            f"matching: {second} sees {first}'s case and contact for the hit",
        )
        for sender, receiver in ((a, b), (b, a)):
            for draft in sender.json("GET", "/v1/notices/drafts")["items"]:
                [notice] = sender.json("POST", f"/v1/notices/drafts/{draft['id']}/send")["messages"]
                self.notices += 1
                arrived = partial(_state, receiver, notice["id"], "inbox", "received")
                wait_until(arrived, TIMEOUT, "the notice")
                receiver.json("POST", f"/v1/messages/{notice['id']}/acknowledge")
                acknowledged = wait_until(
                    partial(_state, sender, notice["id"], "sent", "acknowledged"),
                    TIMEOUT,
                    "the acknowledgement",
                )
                self.check(
                    acknowledged is not None, "a notice drafted from the hit is delivered and acknowledged"
                )
        self.check(self.notices >= 1, f"{self.notices} deconfliction notices sent")
        return hits

    # -- the crash -------------------------------------------------------------------------------------------

    def crash(self, step: int) -> None:
        """SIGKILL one node right after its own sends; others send to it meanwhile; restart it; all arrives."""
        down = victim(self.countries)
        node = self.topology.nodes[down]
        self.rule(f"{down}'s node is killed with SIGKILL; the others keep sending to it")
        self.respond(step, lambda c: c == down)
        self.send_wave(step, lambda c: c == down)
        node.kill()
        before = set(self.sent)
        self.respond(step, lambda c: c != down)
        self.send_wave(step, lambda c: c != down)
        waiting = {self.sent[k] for k in set(self.sent) - before if k[1] == down}
        senders = {self.plan[k[0]].sender for k in set(self.sent) - before if k[1] == down}
        held = all(
            self.undelivered(s, waiting & self._sent_by(s)) == waiting & self._sent_by(s) for s in senders
        )
        self.check(
            held, f"{len(waiting)} enquiries to {down} wait in their senders' outboxes while it is down"
        )
        started = time.monotonic()
        node.launch({ENVIRONMENT: str(self.clock.path)})
        wait_until(node.ready, TIMEOUT, f"{down} to restart")
        for s in senders:
            mine = waiting & self._sent_by(s)
            wait_until(lambda: self.undelivered(s, mine) == set(), TIMEOUT, f"delivery to {down}")  # noqa: B023
        seconds = time.monotonic() - started
        inbox = {i["id"] for i in _listing(self.clients[down], "inbox")}
        self.check(
            waiting <= inbox, f"{down} restarted; all {len(waiting)} delivered to it within {seconds:.1f} s"
        )
        self.restart = {"node": down, "waited": len(waiting), "delivered_after_s": round(seconds, 1)}

    def _sent_by(self, sender: str) -> set[str]:
        return {m for (number, _), m in self.sent.items() if self.plan[number].sender == sender}

    # -- the end of the period -------------------------------------------------------------------------------

    def outcome_returns(self) -> dict[str, dict[str, int]]:
        """Each country submits its signed return; the 2015 totals are split across them."""
        shares: dict[str, dict[str, int]] = {c: {} for c in self.countries}
        for name, total in DEBRIEF_2015.items():
            base, extra = divmod(total, len(self.countries))
            for index, country in enumerate(self.countries):
                shares[country][name] = base + (1 if index < extra else 0)
        shown = matching_pair(self.countries)[0]
        for country, figures in shares.items():
            if country == shown:
                args = [f"--{name.replace('_', '-')}={value}" for name, value in figures.items()]
                self.cli(country, "outcome", "submit", "--period", PERIOD, *args)
            else:
                self.clients[country].json("POST", "/v1/outcomes", {"period": PERIOD, "figures": figures})
        return shares

    def verify(
        self, report: dict[str, Any], shares: dict[str, dict[str, int]], hits: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The coordinator's figures against what was sent; returns the expected figures."""
        want = expected(self.plan)
        tallies = report["tallies"]
        t = tallies["totals"]
        got_pairs = sorted(
            ({k: p[k] for k in ("sender", "recipient", "count", "answered")} for p in tallies["pairs"]),
            key=lambda p: (p["sender"], p["recipient"]),
        )
        check = self.check
        check(
            got_pairs == want["pairs"],
            f"enquiries and answers per ordered pair match what was sent ({len(got_pairs)} pairs)",
        )
        for key in ("enquiry_threads", "enquiries", "replies", "answered", "outstanding", "overdue"):
            check(t[key] == want[key], f"{key.replace('_', ' ')}: {t[key]} (sent: {want[key]})")
        check(0 < t["overdue"] < t["outstanding"], "some outstanding enquiries are overdue, some not yet due")
        check(
            t["notices"] == self.notices and t["notices_acknowledged"] == self.notices,
            f"{t['notices']} notices, all acknowledged",
        )
        check(t["unconfirmed"] == 0 and t["disputed"] == 0, "both sides of every exchange agree")
        check(t["unproven"] == 0, "every exchange rests on the receiver's signed receipt")
        for row in tallies["countries"]:
            c = row["country"]
            sent = sum(p["count"] for p in want["pairs"] if p["sender"] == c)
            received = sum(p["count"] for p in want["pairs"] if p["recipient"] == c)
            threads = sum(1 for p in self.plan if p.sender == c)
            got = (row["threads_sent"], row["sent"], row["received"])
            check(
                got == (threads, sent, received),
                f"{c}: {threads} enquiries sent as {sent} messages, {received} received",
            )
        totals = report["totals"]
        check(
            all(
                totals[name] == sum(s[name] for s in shares.values()) == DEBRIEF_2015[name]
                for name in FIGURES
            ),
            "report: every debrief figure equals the sum of the countries' returns (the 2015 totals)",
        )
        check(len(hits) >= 2, f"{len(hits)} private-matching hits (one on each side)")
        return want

    def run(self, progress: Progress) -> dict[str, Any]:
        """The whole Period of Action; returns the JSON summary (``ok`` tells whether every check passed)."""
        started = time.monotonic()
        task = progress.add_task("setting up", total=len(STEPS) + 3)
        self.rule(
            f"setting up: roster authority, {len(self.members)} nodes, the coordinator, one officer each"
        )
        self.set_up()
        timings = {"setup_s": round(time.monotonic() - started, 1)}
        progress.update(task, advance=1, description="exchanging")
        down = victim(self.countries)
        hits: list[dict[str, Any]] = []
        for step in STEPS:
            self.clock.advance(timedelta(hours=step))
            progress.update(task, description=f"day {step // 24 + 1}, {step % 24:02d}:00")
            if step == 0:
                self.walkthrough()
                self.rule(
                    f"the Period of Action: {len(self.plan) - 1} enquiries among {', '.join(self.members)}"
                )
            if step == KILL_STEP:
                self.crash(step)
            else:
                self.respond(step, lambda _: True)
                self.send_wave(step, lambda _: True)
            if step == MATCH_STEP:
                hits = self.deconfliction()
            self.settle()
            progress.update(task, advance=1)
        timings["exchange_s"] = round(time.monotonic() - started - timings["setup_s"], 1)
        self.say(f"{len(self.sent)} enquiry messages sent; {down}'s node survived a SIGKILL")
        self.rule("outcome returns, signed by each country")
        shares = self.outcome_returns()
        coordinator = self.clients[COORDINATOR]
        wait_until(
            lambda: (
                len(coordinator.json("GET", f"/v1/period/{PERIOD}/outcomes")["outcomes"])
                == len(self.countries)
            ),
            TIMEOUT,
            "every outcome return at the coordinator",
        )
        progress.update(task, advance=1, description="the period report")
        self.rule("the coordinator's view: metadata only, never content")
        self.cli(COORDINATOR, "tally", "--period", PERIOD, "--view", "pairs")
        self.cli(COORDINATOR, "report", "--period", PERIOD, "--format", "md")
        report = coordinator.json("GET", f"/v1/period/{PERIOD}/report", query={"format": "json"})
        want = self.verify(report, shares, hits)
        progress.update(task, advance=1, description="done")
        return {
            "ok": not self.check.failures,
            "seconds": round(time.monotonic() - started, 1),
            "timings": timings,
            "participants": self.members,
            "coordinator": COORDINATOR,
            "expected": want,
            "hits": [{"holder": h["holder"], "item": h["item"], "peer": h.get("peer")} for h in hits],
            "notices_sent": self.notices,
            "restart": self.restart,
            "checks": self.check.made,
            "report": report,
        }

    def serve(self) -> None:
        """Keep everything running until Ctrl-C: the dashboard's address and every officer's token."""
        coordinator = self.topology.nodes[COORDINATOR]
        self.out.print(f"\ndashboard: {coordinator.url}/dashboard  (coordinator token {coordinator.token})")
        for pid in self.members:
            node = self.topology.nodes[pid]
            self.out.print(f"{pid:12} console {node.url}/  officer token {node.token}", highlight=False)
        self.out.print("the clock stays where the demo left it; Ctrl-C stops every node")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.out.print("stopping")


def _state(client: Client, message_id: str, folder: str, wanted: str) -> dict[str, Any] | None:
    for item in _listing(client, folder):
        if item["id"] == message_id and item["state"] == wanted:
            return dict(item)
    return None


def _listing(client: Client, folder: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.json("GET", "/v1/messages", query={"folder": folder, "limit": 500, "cursor": cursor})
        items += page["items"]
        cursor = page.get("next")
        if not cursor:
            return items


def _next_step(hour: int) -> int | None:
    return next((s for s in STEPS if s > hour), None)


def parse_countries(text: str) -> list[str]:
    """``--countries``: ISO codes, at least two, each once."""
    countries = [normalise_country(c) for c in text.split(",") if c.strip()]
    if len(countries) < 2 or len(set(countries)) != len(countries):
        raise ConfigError("--countries needs at least two different ISO 3166-1 alpha-2 codes, e.g. TH,MY,PH")
    return countries


@contextmanager
def _progress(out: Console) -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description:<20}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=out, transient=False,
    ) as progress:  # fmt: skip
        yield progress


def demo(
    countries: Annotated[
        str,
        typer.Option("--countries", help="Participating countries (ISO codes); INTERPOL always takes part"),
    ] = ",".join(COUNTRIES_2015),
    enquiries: Annotated[
        int, typer.Option("--enquiries", min=1, max=2000, help="Enquiries in the plan")
    ] = 80,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the plan (same seed, same period)")] = 2015,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep it running after the report (Ctrl-C stops)")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the report and checks as JSON (progress on stderr)")
    ] = False,
) -> None:
    """Run a whole Period of Action on this machine: every participant its own process, every figure checked."""
    out = Console(stderr=as_json, width=None if as_json else 150)
    root = Path(tempfile.mkdtemp(prefix="ncpx-demo-"))
    run = Demo(root, parse_countries(countries), enquiries, seed, out, as_json)
    summary: dict[str, Any] | None = None
    try:
        with _progress(out) as progress:
            summary = run.run(progress)
        if as_json:
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        elif summary["ok"]:
            out.print(
                f"[bold green]all {len(run.check.made)} checks passed[/] in {summary['seconds']} s: encrypted end "
                "to end, signed, receipted, answered, tallied"
            )
        if summary["ok"] and serve:
            run.serve()
    except Exception as exc:
        out.print(f"[red]demo failed:[/] {exc}  (node folders and logs kept in {root})")
        raise typer.Exit(1) from None
    finally:
        run.topology.stop()
    if summary is None or not summary["ok"]:
        out.print(f"[red]{len(run.check.failures)} checks failed[/]; node folders and logs kept in {root}")
        raise typer.Exit(1)
    shutil.rmtree(root, ignore_errors=True)


def register_demo(app: typer.Typer) -> None:
    """``ncpx demo``."""
    app.command("demo")(demo)


if __name__ == "__main__":
    typer.run(demo)
