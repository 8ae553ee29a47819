"""The dashboard's per-country table and outcome-returns status over plain HTTP, on a real coordinator node."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import aiohttp

from keys.roster import add_period
from node.coordinator.api import COORDINATOR
from node.coordinator.report import local_time
from node.officer_api import OFFICERS
from protocol.codes import Urgency
from protocol.encoding import format_time
from protocol.outcome import Figures, make_return
from protocol.period import Period
from tests.coordinator.support import Coordinator
from tests.node.support import Federation, post_signed


async def test_per_country_table_and_missing_returns(tmp_path: Path, database_url: str | None) -> None:
    now = datetime.now(UTC)
    period = Period(
        name="jpa-http",
        start=now - timedelta(days=2),
        end=now + timedelta(days=28),
        participants=["TH", "MY", "ID"],
        coordinator="XI-COORD",
        timezone="Asia/Bangkok",
    )
    async with aiohttp.ClientSession() as session:
        fed = Federation(
            tmp_path,
            session,
            ["TH", "MY", "ID", "XI-COORD"],
            coordinator="XI-COORD",
            coordinator_database_url=database_url,
        )
        assert fed.body is not None
        fed.body = add_period(fed.body, period, now)
        try:
            node = await fed.start("XI-COORD")
            service = node.app[COORDINATOR]
            c = Coordinator(
                service, service.store, period, fed.identities, service.trust.roster, [now], random.Random(11)
            )
            early = now - timedelta(hours=10)
            answered = c.enquiry("TH", "MY", early)[0]
            await c.deliver(answered)
            await c.answer(answered, early + timedelta(hours=2))
            await c.deliver(c.enquiry("TH", "MY", early)[0])
            await c.deliver(c.enquiry("TH", "ID", early, urgency=Urgency.URGENT_DIRECT)[0])  # 8 h: overdue
            await c.deliver(c.enquiry("MY", "TH", now - timedelta(hours=1))[0])
            outcome = make_return(
                "jpa-http", Figures(arrests=3), fed.identities["TH"], now - timedelta(minutes=1)
            )
            await service.receive_outcome("TH", outcome.wire())

            login = await session.post(
                node.api_url + "/dashboard/login", data={"token": node.token}, allow_redirects=False
            )
            assert login.status == 303
            cookie = login.headers["Set-Cookie"].split(";")[0]
            response = await session.get(
                node.api_url + "/dashboard/fragment",
                params={"period": "jpa-http"},
                headers={"Cookie": cookie},
            )
            assert response.status == 200
            page = await response.text()
        finally:
            await fed.stop_all()

    rows = {
        country: [unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", cells)]
        for country, cells in re.findall(
            r'<tr data-country="([A-Z]+)">(.*?)</tr>', re.sub(r"</?a[^>]*>", "", page)
        )
    }
    submitted = local_time(period, outcome.submitted_at)
    #       country, name, sent, received, replied, outstanding, overdue, median response, return
    assert rows == {
        "ID": ["ID", "Indonesia", "0", "1", "0", "1", "1", "n/a", "missing"],
        "MY": ["MY", "Malaysia", "1", "2", "1", "1", "0", "2.0 h", "missing"],
        "TH": ["TH", "Thailand", "3", "1", "0", "1", "0", "n/a", submitted],
    }
    assert "Outcome returns (1 of 3 received)" in page
    assert re.findall(r'<li data-missing="([A-Z]+)">[A-Z]+ \(([^)]+)\)', page) == [
        ("ID", "Indonesia"),
        ("MY", "Malaysia"),
    ]
    gaps = dict(re.findall(r"<tr><td>([^<]+)</td><td>([A-Z, ]+)</td></tr>", page))
    assert gaps["Trafficked persons / victims assisted"] == "TH"  # TH's return leaves it out
    assert "Arrests" not in gaps
    assert "(Asia/Bangkok)" in page


async def test_outstanding_filters_drill_down_export_and_reminders(
    tmp_path: Path, database_url: str | None
) -> None:
    now = datetime.now(UTC)
    period = Period(
        name="jpa-chase",
        start=now - timedelta(days=2),
        end=now + timedelta(days=28),
        participants=["TH", "MY", "ID"],
        coordinator="XI-COORD",
        timezone="Asia/Bangkok",
    )
    async with aiohttp.ClientSession() as session:
        fed = Federation(
            tmp_path,
            session,
            ["TH", "MY", "ID", "XI-COORD"],
            coordinator="XI-COORD",
            coordinator_database_url=database_url,
        )
        assert fed.body is not None
        fed.body = add_period(fed.body, period, now)
        try:
            node = await fed.start("XI-COORD")
            my = await fed.start("MY")  # ID's node is never started: its reminder cannot be delivered
            service = node.app[COORDINATOR]
            c = Coordinator(
                service, service.store, period, fed.identities, service.trust.roster, [now], random.Random(7)
            )
            early = now - timedelta(hours=10)
            answered = c.enquiry("TH", "MY", early)[0]
            await c.deliver(answered)
            await c.answer(answered, early + timedelta(hours=1))
            normal = c.enquiry("TH", "MY", early)[0]  # due in about 6.6 days
            urgent = c.enquiry("TH", "ID", early, urgency=Urgency.URGENT_DIRECT)[0]  # overdue by 2 hours
            indirect = c.enquiry("MY", "TH", now - timedelta(hours=1), urgency=Urgency.URGENT_INDIRECT)[0]
            for envelope in (normal, urgent, indirect):
                await c.deliver(envelope)
            th_return = make_return("jpa-chase", Figures(arrests=1), fed.identities["TH"], now)
            await service.receive_outcome("TH", th_return.wire())
            tallies = await c.tallies()
            cell = next(p.count for p in tallies.pairs if (p.sender, p.recipient) == ("TH", "MY"))

            login = await session.post(
                node.api_url + "/dashboard/login", data={"token": node.token}, allow_redirects=False
            )
            cookie = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}

            async def get(path: str, **params: str) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
                response = await session.get(
                    node.api_url + path, params=params, headers=cookie, allow_redirects=False
                )
                return response.status, await response.text(), response.headers

            _, page, _ = await get("/dashboard/fragment", period="jpa-chase")
            listed = re.findall(r'<tr data-message="([^"]+)"( class=overdue)?>', page)
            assert listed == [
                (urgent.header.id, " class=overdue"),
                (indirect.header.id, ""),
                (normal.header.id, ""),
            ]
            _, page, _ = await get("/dashboard/fragment", period="jpa-chase", urgency="normal")
            assert re.findall(r'<tr data-message="([^"]+)"', page) == [normal.header.id]
            _, page, _ = await get("/dashboard/fragment", period="jpa-chase", country="ID")
            assert re.findall(r'<tr data-message="([^"]+)"', page) == [urgent.header.id]
            status, _, _ = await get("/dashboard/fragment", period="jpa-chase", area="not-an-area")
            assert status == 400

            # The heatmap cell links to exactly the exchanges it counts.
            _, page, _ = await get("/dashboard", period="jpa-chase")
            link = unescape(
                re.search(r'data-sender="TH" data-recipient="MY"><a href="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            )
            status, drill, _ = await get(link)
            assert status == 200
            shown = dict(
                re.findall(r'<tr data-message="([^"]+)" data-kind="enquiry" data-state="([a-z]+)"', drill)
            )
            assert len(shown) == cell == 2
            assert shown == {answered.header.id: "answered", normal.header.id: "open"}

            status, exported, headers = await get("/dashboard/report", period="jpa-chase", format="csv")
            assert status == 200
            assert 'filename="jpa-chase-report.csv"' in headers["Content-Disposition"]
            rows = {r["Country"]: r for r in csv.DictReader(io.StringIO(exported))}
            flows = {f.country: f for f in tallies.countries}
            assert {k: int(rows[k]["Enquiries sent (threads)"]) for k in rows if k in flows} == {
                k: f.threads_sent for k, f in flows.items()
            }

            async def remind(country: str, origin: str | None = None) -> int:
                response = await session.post(
                    node.api_url + "/dashboard/remind",
                    data={"period": "jpa-chase", "country": country},
                    headers={**cookie, **({"Origin": origin} if origin else {})},
                    allow_redirects=False,
                )
                return response.status

            assert await remind("MY", origin="https://elsewhere.example") == 401  # a cross-site form

            assert await remind("MY") == 303
            assert await remind("ID") == 303
            assert await remind("TH") == 409  # its return is in
            assert await remind("AU") == 404
            kept = (await my.call("GET", "/v1/reminders"))["reminders"]
            assert [(r["period"], r["coordinator"], r["about"]) for r in kept] == [
                ("jpa-chase", "XI-COORD", "outcome_return")
            ]
            _, page, _ = await get("/dashboard/fragment", period="jpa-chase")
            missing = dict(re.findall(r'<li data-missing="([A-Z]+)">(.*?)<form', page))
            assert "reminded" in missing["MY"]
            assert "did not answer" not in missing["MY"]
            assert "did not answer" in missing["ID"]
            trail = await node.app[OFFICERS].audit_trail()
            assert [(a[2], a[3], a[4]) for a in trail[:2]] == [
                ("remind_outcome_return", "jpa-chase/ID", "not delivered"),
                ("remind_outcome_return", "jpa-chase/MY", "delivered"),
            ]

            # Only the period's coordinator may remind: a country signing the same notice is refused.
            forged = await post_signed(
                session,
                my,
                "/federation/v1/reminders",
                json.dumps(
                    {"period": "jpa-chase", "about": "outcome_return", "sent_at": format_time(now)}
                ).encode(),
                fed.identities["TH"],
            )
            assert forged.problem("not_a_coordinator")
            assert len((await my.call("GET", "/v1/reminders"))["reminders"]) == 1
        finally:
            await fed.stop_all()
