"""The coordinator dashboard in a real headless browser (Debian's chromium driven by Playwright), plus its HTTP rules."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, sync_playwright

from node.topology import Topology, ncpx, wait_until
from protocol.encoding import format_time

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PERIOD = "jpa-dash"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = Topology(
        tmp_path_factory.mktemp("dash"), ["TH", "MY", "ID", "XI-COORD"], coordinator="XI-COORD"
    )
    topology.create()
    now = datetime.now(UTC)
    topology.declare_period(
        PERIOD, format_time(now - timedelta(days=3)), format_time(now + timedelta(days=27))
    )
    topology.start()
    th = topology.nodes["TH"].client()
    for recipients in (["MY"], ["MY", "ID"], ["MY"]):
        th.json(
            "POST",
            "/v1/enquiries",
            {"recipients": recipients, "area": "people_smuggling", "subject": "s", "text": "t"},
        )
    coordinator = topology.nodes["XI-COORD"].client()
    wait_until(
        lambda: coordinator.json("GET", f"/v1/period/{PERIOD}/tallies")["totals"]["enquiries"] == 4,
        30,
        "tallies",
    )
    yield topology
    topology.stop()


def send(topology: Topology, recipient: str) -> None:
    topology.nodes["TH"].client().json(
        "POST",
        "/v1/enquiries",
        {"recipients": [recipient], "area": "document_visa_fraud", "subject": "s", "text": "t"},
    )


def fetch(
    url: str, data: dict[str, str] | None = None, cookie: str | None = None
) -> tuple[int, dict[str, str], str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)  # noqa: S310 - loopback test URL
    if cookie:
        request.add_header("Cookie", cookie)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_dashboard_in_a_real_browser(world: Topology) -> None:
    coordinator = world.nodes["XI-COORD"]
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        page = context.new_page()
        page.on("console", console)
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        page.goto(coordinator.url + f"/dashboard?period={PERIOD}&refresh=1")
        assert page.locator("form[action='/dashboard/login']").is_visible()
        assert page.locator("g.cell").count() == 0  # nothing shown before signing in

        page.fill("#token", "ncpx_wrong-token")
        page.click("button[type=submit]")
        assert "not accepted" in page.content()
        assert "ncpx_wrong-token" not in page.content()
        assert all("401" in e for e in errors)  # the browser reports the refused sign-in itself, nothing else
        errors.clear()

        page.fill("#token", coordinator.token)
        page.click("button[type=submit]")
        page.goto(coordinator.url + f"/dashboard?period={PERIOD}&refresh=1")
        cell = page.locator('g.cell[data-sender="TH"][data-recipient="MY"] text')
        assert cell.text_content() == "3"
        assert page.locator('g.cell[data-sender="TH"][data-recipient="ID"] text').text_content() == "1"
        [cookie] = [c for c in context.cookies() if c["name"] == "ncpx_session"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/dashboard"

        page.evaluate("window.__noReload = 'still here'")
        send(world, "MY")
        page.wait_for_function(
            """() => document.querySelector('g.cell[data-sender="TH"][data-recipient="MY"] text').textContent === "4\"""",
            timeout=20_000,
        )
        assert page.evaluate("window.__noReload") == "still here"  # refreshed in place, no full reload
        page.screenshot(path=str(Path(world.root) / "dashboard.png"), full_page=True)
        browser.close()
    assert errors == []


def test_unauthenticated_requests_are_refused(world: Topology) -> None:
    url = world.nodes["XI-COORD"].url
    status, headers, body = fetch(url + "/dashboard")
    assert status == 200
    assert 'action="/dashboard/login"' in body
    assert 'g class="cell"' not in body
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert fetch(url + f"/dashboard/fragment?period={PERIOD}")[0] == 401
    assert fetch(url + f"/dashboard/fragment?period={PERIOD}", cookie="ncpx_session=forged")[0] == 401
    assert fetch(url + f"/v1/period/{PERIOD}/tallies")[0] == 401
    status, _, body = fetch(url + "/dashboard/login", {"token": "ncpx_guess"})
    assert status == 401
    assert "ncpx_guess" not in body


def test_login_then_logout_ends_the_session(world: Topology) -> None:
    coordinator = world.nodes["XI-COORD"]
    status, headers, _ = fetch(coordinator.url + "/dashboard/login", {"token": coordinator.token})
    assert status == 303
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    assert "Secure" not in headers["Set-Cookie"]  # plain HTTP here; set when the coordinator serves TLS
    status, _, fragment = fetch(coordinator.url + f"/dashboard/fragment?period={PERIOD}", cookie=cookie)
    assert status == 200
    assert 'data-sender="TH"' in fragment
    assert fetch(coordinator.url + "/dashboard/logout", {}, cookie=cookie)[0] == 303
    assert fetch(coordinator.url + f"/dashboard/fragment?period={PERIOD}", cookie=cookie)[0] == 401


def test_tally_command_prints_tables_json_and_csv(world: Topology) -> None:
    coordinator = world.nodes["XI-COORD"]
    env = {"NCPX_NODE": coordinator.url, "NCPX_TOKEN": coordinator.token, "COLUMNS": "200"}
    pairs = json.loads(ncpx("tally", "--period", PERIOD, "--view", "pairs", "--json", env=env))
    counts = {(p["sender"], p["recipient"]): p["count"] for p in pairs}
    assert counts[("TH", "ID")] == 1
    assert counts[("TH", "MY")] >= 3  # the browser test may already have added one
    rows = list(
        csv.DictReader(
            io.StringIO(ncpx("tally", "--period", PERIOD, "--view", "countries", "--csv", env=env))
        )
    )
    assert {r["country"] for r in rows} == {"TH", "MY", "ID"}
    assert next(r for r in rows if r["country"] == "TH")["received"] == "0"
    table = ncpx("tally", "--period", PERIOD, "--view", "totals", env=env)
    assert "enquiries" in table
    for empty in ("flags", "overdue"):  # nothing disputed, nothing past a seven-day deadline yet
        assert (
            ncpx("tally", "--period", PERIOD, "--view", empty, env=env).strip() == f"{PERIOD}: {empty}: none"
        )
    # Ids are never cut: with --wide each row is one line, even at 80 columns.
    outstanding = json.loads(ncpx("tally", "--period", PERIOD, "--view", "outstanding", "--json", env=env))
    wide = ncpx("tally", "--period", PERIOD, "--view", "outstanding", "--wide", env={**env, "COLUMNS": "80"})
    assert outstanding
    for item in outstanding:
        assert any(item["message_id"] in line and item["thread"] in line for line in wide.splitlines())
    report = ncpx("report", "--period", PERIOD, "--format", "csv", env=env)
    assert report.splitlines()[0].startswith("Country,Name,Enquiries sent")


def test_revoking_an_officer_ends_their_dashboard_session_at_once(world: Topology) -> None:
    coordinator = world.nodes["XI-COORD"]
    token = ncpx("officer", "add", "secretariat-temp", "-c", str(coordinator.config)).strip()
    status, headers, _ = fetch(coordinator.url + "/dashboard/login", {"token": token})
    assert status == 303
    cookie = headers["Set-Cookie"].split(";")[0]
    assert fetch(coordinator.url + f"/dashboard/fragment?period={PERIOD}", cookie=cookie)[0] == 200
    ncpx("officer", "revoke", "secretariat-temp", "-c", str(coordinator.config))
    assert fetch(coordinator.url + f"/dashboard/fragment?period={PERIOD}", cookie=cookie)[0] == 401


def test_outcome_submit_sends_only_the_figures_given(world: Topology) -> None:
    th, coordinator = world.nodes["TH"], world.nodes["XI-COORD"]
    env = {"NCPX_NODE": th.url, "NCPX_TOKEN": th.token}
    printed = json.loads(
        ncpx(
            "outcome",
            "submit",
            "--period",
            PERIOD,
            "--arrests",
            "5",
            "--trainings-held",
            "0",
            "--json",
            env=env,
        )
    )
    assert printed["figures"] == {"arrests": 5, "trainings_held": 0}  # a 0 given is a 0
    client = coordinator.client()
    returns = wait_until(
        lambda: client.json("GET", f"/v1/period/{PERIOD}/outcomes")["outcomes"] or None, 30, "TH's return"
    )
    # The six figures left out are absent from the signed return (not reported), not 0.
    assert [(r["participant"], r["figures"]) for r in returns] == [
        ("TH", {"arrests": 5, "trainings_held": 0})
    ]
    report = client.json("GET", f"/v1/period/{PERIOD}/report", query={"format": "json"})
    th_row = next(r for r in report["rows"] if r["country"] == "TH")
    assert th_row["figures"]["persons_assisted"] is None
    assert "TH" in report["not_reported"]["persons_assisted"]
