"""The secretariat's screen with a dozen participants, in Debian's chromium driven by Playwright: the per-country
table, the returns status, the outstanding list, a drill-down and an export, each against counts this test worked
out from what it fed; no two chart labels overlap; no console errors; the print stylesheet drops the controls."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright

from keys.roster import add_period
from node.coordinator.api import COORDINATOR
from protocol.codes import CrimeArea, Urgency
from protocol.outcome import Figures, make_return
from protocol.period import Period
from tests.coordinator.support import Coordinator
from tests.coordinator.test_dashboard import ARGS, CHROMIUM
from tests.node.support import Federation

pytestmark = pytest.mark.e2e

COUNTRIES = ["AU", "ID", "MY", "MV", "NZ", "PH", "LK", "TH", "KH", "VN", "SG", "XI-INTERPOL"]
RETURNED = ["AU", "TH", "XI-INTERPOL"]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


async def label_boxes(page: Page) -> dict[str, list[dict[str, float]]]:
    """The on-screen boxes of every non-empty text of each chart."""
    boxes: dict[str, list[dict[str, float]]] = await page.evaluate(
        """() => {
            const found = {};
            document.querySelectorAll("svg").forEach((svg, i) => {
                found[(svg.getAttribute("aria-label") || "") + " #" + i] = Array.from(svg.querySelectorAll("text"))
                    .filter(t => t.textContent.trim() !== "")
                    .map(t => { const r = t.getBoundingClientRect();
                                return {x: r.x, y: r.y, width: r.width, height: r.height, text: t.textContent}; });
            });
            return found;
        }"""
    )
    return boxes


async def test_twelve_participants_in_a_real_browser(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    period = Period(
        name="jpa-twelve",
        title="Joint Period of Action",
        start=now - timedelta(days=5),
        end=now + timedelta(days=25),
        participants=COUNTRIES,
        coordinator="XI-COORD",
        timezone="Asia/Bangkok",
    )
    rng = random.Random(12)
    plan: list[tuple[str, str, Urgency, bool]] = []
    for _ in range(40):
        sender, recipient = rng.sample(COUNTRIES, 2)
        plan.append(
            (sender, recipient, rng.choice([Urgency.NORMAL, Urgency.URGENT_DIRECT]), rng.random() < 0.4)
        )
    plan.append(("XI-INTERPOL", "TH", Urgency.URGENT_DIRECT, False))  # overdue for sure
    sent, received, replied, outstanding = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    pairs = Counter[tuple[str, str]]()
    for sender, recipient, _, answered in plan:
        sent[sender] += 1
        received[recipient] += 1
        pairs[(sender, recipient)] += 1
        if answered:
            replied[recipient] += 1
        else:
            outstanding[recipient] += 1

    errors: list[str] = []
    async with aiohttp.ClientSession() as session:
        fed = Federation(tmp_path, session, [*COUNTRIES, "XI-COORD"], coordinator="XI-COORD")
        assert fed.body is not None
        fed.body = add_period(fed.body, period, now)
        try:
            node = await fed.start("XI-COORD")
            service = node.app[COORDINATOR]
            c = Coordinator(service, service.store, period, fed.identities, service.trust.roster, [now], rng)
            created = now - timedelta(days=1)
            for sender, recipient, urgency, answered in plan:
                [envelope] = c.enquiry(sender, recipient, created, CrimeArea.THB_LABOUR, urgency)
                await c.deliver(envelope)
                if answered:
                    await c.answer(envelope, created + timedelta(hours=2))
            for country in RETURNED:
                outcome = make_return(period.name, Figures(arrests=2), fed.identities[country], now)
                await service.receive_outcome(country, outcome.wire())

            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = await browser.new_context(
                    viewport={"width": 1400, "height": 1000}, accept_downloads=True
                )
                page = await context.new_page()

                def console(message: ConsoleMessage) -> None:
                    if message.type == "error":
                        errors.append(message.text)

                page.on("console", console)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(node.api_url + "/dashboard")
                await page.fill("#token", node.token)
                await page.click("button[type=submit]")
                await page.goto(node.api_url + f"/dashboard?period={period.name}&refresh=600")
                DOCS.mkdir(exist_ok=True)  # the README shows the screen this test checks, as of its last run
                await page.screenshot(path=str(DOCS / "dashboard.png"), full_page=False)

                # The per-country table.
                table: dict[str, list[str]] = {}
                for row in await page.locator("table.countries tbody tr").all():
                    cells = [t.strip() for t in await row.locator("td").all_inner_texts()]
                    table[cells[0]] = cells
                assert set(table) == set(COUNTRIES)
                for country in COUNTRIES:
                    figures = [int(v) for v in table[country][2:6]]
                    assert figures == [
                        sent[country],
                        received[country],
                        replied[country],
                        outstanding[country],
                    ]
                    assert (table[country][8] == "missing") == (country not in RETURNED)
                assert table["XI-INTERPOL"][1] == "INTERPOL"
                assert table["NZ"][1] == "New Zealand"

                # The returns status: who is missing, each with a reminder button.
                missing = await page.locator("ul.missing li").evaluate_all(
                    "items => items.map(i => i.getAttribute('data-missing'))"
                )
                assert sorted(missing) == sorted(set(COUNTRIES) - set(RETURNED))
                assert await page.locator("ul.missing li form.remind button").count() == len(missing)

                # The outstanding list: every unanswered enquiry, the overdue ones first.
                rows = page.locator("table.outstanding tbody tr")
                assert await rows.count() == sum(outstanding.values())
                overdue = await page.locator("table.outstanding tbody tr.overdue").count()
                assert overdue >= 1
                states = [t.strip() for t in await rows.locator("td:nth-child(6)").all_inner_texts()]
                assert states[:overdue] == ["overdue"] * overdue
                assert all(s.startswith("due in") for s in states[overdue:])

                # No two labels of any chart overlap, with twelve participants and XI-INTERPOL among them.
                boxes = await label_boxes(page)
                assert any("XI-INTERPOL" in b["text"] for chart in boxes.values() for b in chart)
                clashes: list[Any] = [
                    (name, a["text"], b["text"])
                    for name, chart in boxes.items()
                    for i, a in enumerate(chart)
                    for b in chart[i + 1 :]
                    if overlaps(a, b)
                ]
                assert clashes == []
                sizes = await page.locator("svg text").evaluate_all(
                    "ts => ts.map(t => parseFloat(getComputedStyle(t).fontSize) * Math.hypot(t.getScreenCTM().a, t.getScreenCTM().b))"
                )
                assert min(sizes) >= 11  # drawn at natural size: no 7 px labels

                # An export, checked against the same counts.
                async with page.expect_download() as waiting:
                    await page.click("a.export:text('CSV')")
                download = await waiting.value
                exported = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
                by_country = {r["Country"]: r for r in csv.DictReader(io.StringIO(exported))}
                assert {k: int(by_country[k]["Enquiries received"]) for k in COUNTRIES} == {
                    k: received[k] for k in COUNTRIES
                }

                # The print stylesheet leaves the controls off the paper.
                await page.emulate_media(media="print")
                assert not await page.locator(".tools").is_visible()
                assert not await page.locator("form.remind").first.is_visible()
                assert await page.locator("table.countries").is_visible()
                await page.emulate_media(media="screen")

                # A drill-down from a heatmap cell lists exactly the exchanges it counts.
                (busiest_sender, busiest_recipient), count = pairs.most_common(1)[0]
                cell = page.locator(
                    f'g.cell[data-sender="{busiest_sender}"][data-recipient="{busiest_recipient}"]'
                )
                assert (await cell.locator("text").text_content()) == str(count)
                await cell.locator("a").click()
                await page.wait_for_url("**/dashboard/exchanges?**")
                listed = page.locator('table.exchanges tbody tr[data-kind="enquiry"]')
                assert await listed.count() == count
                await page.screenshot(path=str(tmp_path / "drill.png"), full_page=True)
                await browser.close()
        finally:
            await fed.stop_all()
    assert errors == []
