"""The dashboard's per-country table and outcome-returns status over plain HTTP, on a real coordinator node."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import aiohttp

from keys.roster import add_period
from node.coordinator.api import COORDINATOR
from node.coordinator.report import local_time
from protocol.codes import Urgency
from protocol.outcome import Figures, make_return
from protocol.period import Period
from tests.coordinator.support import Coordinator
from tests.node.support import Federation


async def test_per_country_table_and_missing_returns(tmp_path: Path) -> None:
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
        fed = Federation(tmp_path, session, ["TH", "MY", "ID", "XI-COORD"], coordinator="XI-COORD")
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
        for country, cells in re.findall(r'<tr data-country="([A-Z]+)">(.*?)</tr>', page)
    }
    submitted = local_time(period, outcome.submitted_at)
    #       country, name, sent, received, replied, outstanding, overdue, median response, return
    assert rows == {
        "ID": ["ID", "Indonesia", "0", "1", "0", "1", "1", "n/a", "missing"],
        "MY": ["MY", "Malaysia", "1", "2", "1", "1", "0", "2.0 h", "missing"],
        "TH": ["TH", "Thailand", "3", "1", "0", "1", "0", "n/a", submitted],
    }
    assert "Outcome returns (1 of 3 received)" in page
    assert "Missing: ID (Indonesia), MY (Malaysia)" in page
    gaps = dict(re.findall(r"<tr><td>([^<]+)</td><td>([A-Z, ]+)</td></tr>", page))
    assert gaps["Trafficked persons / victims assisted"] == "TH"  # TH's return leaves it out
    assert "Arrests" not in gaps
    assert "(Asia/Bangkok)" in page
