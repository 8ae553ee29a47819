"""The console's deconfliction pages over plain HTTP on two real nodes: hits from a real matching round, draft
notices sent from the hits page, the watch list and planned operations, each form refused without its CSRF
token and every action in the audit table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from node.officer_api import OFFICERS
from protocol.watchlist import SUBJECT_FIELDS
from tests.node.support import Node, wait_for
from tests.node.test_console import browser, get, pair, sign_in

__all__ = ["browser", "pair"]  # fixtures, used by name

FUTURE = (datetime.now(UTC) + timedelta(days=90)).date().isoformat()
PHONE = "+66812345678"


def entry(case: str, contact: str, **fields: Any) -> dict[str, Any]:
    return {"case_reference": case, "contact": contact, "expires_on": FUTURE, **fields}


async def actions(node: Node) -> list[tuple[str, str | None]]:
    return [(action, target) for _, _, action, target, _ in await node.app[OFFICERS].audit_trail()]


async def post(client: aiohttp.ClientSession, url: str, form: dict[str, str]) -> tuple[int, str, str | None]:
    async with client.post(url, data=form, allow_redirects=False) as answer:
        return answer.status, await answer.text(), answer.headers.get("Location")


async def shared_targets(th: Node, my: Node) -> None:
    """TH and MY both watch the same phone (written two ways) and the same passport."""
    await th.call(
        "POST", "/v1/watchlist", body=entry("TH-TIP-7", "Pol. Lt. Somchai", kind="phone", number=PHONE)
    )
    await th.call(
        "POST",
        "/v1/watchlist",
        body=entry("TH-TIP-9", "Pol. Lt. Somchai", kind="document", number="AA1234567"),
    )
    await my.call(
        "POST",
        "/v1/watchlist",
        body=entry("MY-ATIP-3", "Insp. Aziz", kind="phone", number="081-234-5678", region="TH"),
    )
    await my.call(
        "POST", "/v1/watchlist", body=entry("MY-ATIP-3", "Insp. Aziz", kind="document", number="AA 1234567")
    )


async def test_match_now_shows_each_session_and_the_hits_on_the_hits_and_home_pages(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, my = pair
    await shared_targets(th, my)
    csrf = await sign_in(browser, th)
    status, page, _ = await get(browser, th.api_url + "/hits")
    assert status == 200
    assert "No hits yet." in page

    status, _, _ = await post(browser, th.api_url + "/hits/match", {"peer": "MY"})
    assert status == 403  # a forged form runs no round
    assert th.rows("SELECT count(*) AS n FROM hits")[0]["n"] == 0
    assert not any(action == "match_run" for action, _ in await actions(th))

    status, page, _ = await post(browser, th.api_url + "/hits/match", {"peer": "MY", "csrf": csrf})
    assert status == 200, page
    assert "MY: 2 items compared, 2 held by both, 2 new hit(s)." in page
    assert f"<code>phone:{PHONE}</code>" in page
    assert "TH-TIP-7" in page
    assert "not told yet" in page  # MY's own round has not run
    assert ("match_run", "MY") in await actions(th)

    # MY's round tells TH who to call; a round with every country reports MY's session too.
    await my.call("POST", "/v1/matching", body={"peer": "TH"})
    status, page, _ = await post(browser, th.api_url + "/hits/match", {"peer": "", "csrf": csrf})
    assert "MY: 2 items compared, 2 held by both, 0 new hit(s)." in page
    assert "MY-ATIP-3" in page
    assert "Insp. Aziz" in page

    status, home, _ = await get(browser, th.api_url + "/")
    assert status == 200
    assert f"<code>phone:{PHONE}</code>" in home
    assert home.index("New hits") < home.index("Overdue")


async def test_a_draft_notice_is_sent_or_discarded_from_the_hits_page(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, my = pair
    await shared_targets(th, my)
    csrf = await sign_in(browser, th)
    await post(browser, th.api_url + "/hits/match", {"peer": "MY", "csrf": csrf})
    _, page, _ = await get(browser, th.api_url + "/hits")
    assert "Deconfliction: a phone MY also holds" in page
    drafts = dict(
        re.findall(r'<tr data-id="([0-9a-f-]+)">\s*<td>MY</td>\s*<td>Deconfliction: a (\w+) MY', page)
    )
    phone, document = (next(i for i, kind in drafts.items() if kind == k) for k in ("phone", "document"))

    for path in (f"/drafts/{phone}/send", f"/drafts/{document}/discard"):
        assert (await post(browser, th.api_url + path, {}))[0] == 403
    assert th.count("drafts") == 2
    assert th.count() == 0

    status, _, location = await post(browser, th.api_url + f"/drafts/{phone}/send", {"csrf": csrf})
    assert status == 303
    assert location is not None
    message_id = location.removeprefix("/messages/")
    await wait_for(lambda: my.state_is(message_id, "inbox", "received"), what="the notice at MY")
    status, _, location = await post(browser, th.api_url + f"/drafts/{document}/discard", {"csrf": csrf})
    assert (status, location) == (303, "/hits")
    _, page, _ = await get(browser, th.api_url + "/hits")
    assert "No draft notices." in page
    trail = await actions(th)
    assert ("send_notice", message_id) in trail
    assert ("discard_draft", document) in trail


PHONE_FORM = {
    "kind": "phone",
    "number": "081 234 5678",
    "region": "th",
    "case_reference": "TH-TIP-7",
    "contact": "Pol. Lt. Somchai",
    "expires_on": FUTURE,
    "handling": "H0",
}


async def test_a_watch_list_entry_is_added_refused_by_field_and_removed_through_the_console(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    status, page, _ = await get(browser, th.api_url + "/watchlist?kind=phone")
    assert status == 200
    assert 'id="f-number"' in page
    assert 'id="f-region"' in page
    assert 'id="f-imo"' not in page

    def stored() -> int:
        return int(th.rows("SELECT count(*) AS n FROM watch_entries")[0]["n"])

    assert (await post(browser, th.api_url + "/watchlist", PHONE_FORM))[0] == 403
    assert stored() == 0

    wrong = PHONE_FORM | {"csrf": csrf, "contact": "", "region": "Thailand", "handling": "H3"}
    status, page, _ = await post(browser, th.api_url + "/watchlist", wrong)
    assert status == 400
    assert '<p class="field-problem" id="p-contact">required</p>' in page
    assert 'id="f-contact" name="contact" type="text" value="" aria-describedby="p-contact' in page
    assert "a two-letter country code" in page
    assert "Correct what is named above and send again." in page
    assert 'value="081 234 5678"' in page  # the form comes back as typed
    status, page, _ = await post(
        browser, th.api_url + "/watchlist", PHONE_FORM | {"csrf": csrf, "expires_on": "2020-01-01"}
    )
    assert status == 422
    assert "expires_on has passed" in page
    assert "Correct the entry as the sentence above says, then add it again." in page
    assert stored() == 0

    status, _, location = await post(browser, th.api_url + "/watchlist", PHONE_FORM | {"csrf": csrf})
    assert (status, location) == (303, "/watchlist?kind=phone")
    _, page, _ = await get(browser, th.api_url + "/watchlist")
    assert f"<code>phone:{PHONE}</code>" in page
    [entry_id] = re.findall(r'action="/watchlist/([0-9a-f-]+)/remove"', page)

    assert (await post(browser, th.api_url + f"/watchlist/{entry_id}/remove", {}))[0] == 403
    assert (await th.call("GET", "/v1/watchlist"))["items"][0]["id"] == entry_id
    status, _, location = await post(browser, th.api_url + f"/watchlist/{entry_id}/remove", {"csrf": csrf})
    assert (status, location) == (303, "/watchlist")
    _, page, _ = await get(browser, th.api_url + "/watchlist")
    assert "The watch list is empty." in page
    trail = await actions(th)
    assert ("watch_remove", entry_id) in trail
    assert ("watch_list", None) in trail
    assert any(action == "watch_add" for action, _ in trail)


async def test_an_operation_is_planned_in_local_time_refused_by_field_and_cancelled(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    form = {
        "csrf": csrf,
        "kind": "raid",
        "latitude": "13.7563",
        "longitude": "100.5018",
        "radius_m": "300",
        "lines": "",
        "city": "",
        "country": "",
        "start": f"{day}T06:00",
        "end": f"{day}T09:00",
        "zone": "Asia/Bangkok",
        "case_reference": "TH-OP-1",
        "contact": "Pol. Lt. Somchai",
        "handling": "H0",
        "handling_note": "",
    }

    def planned() -> int:
        return int(th.rows("SELECT count(*) AS n FROM operations")[0]["n"])

    status, page, _ = await post(browser, th.api_url + "/operations", form | {"zone": "Bangkok"})
    assert status == 400
    assert '<p class="field-problem" id="p-zone">an IANA time zone name' in page
    both = form | {"lines": "12 Sukhumvit Road", "country": "th"}
    status, page, _ = await post(browser, th.api_url + "/operations", both)
    assert status == 400
    assert (
        '<p class="field-problem" id="p-latitude">give either a point with its radius or an address' in page
    )
    assert "12 Sukhumvit Road</textarea>" in page
    backwards = form | {"end": f"{day}T05:00"}
    status, page, _ = await post(browser, th.api_url + "/operations", backwards)
    assert status == 400
    assert '<p class="field-problem" id="p-end">the end must come after the start</p>' in page
    assert (await post(browser, th.api_url + "/operations", {k: v for k, v in form.items() if k != "csrf"}))[
        0
    ] == 403
    assert planned() == 0

    status, _, location = await post(browser, th.api_url + "/operations", form)
    assert (status, location) == (303, "/operations")
    _, page, _ = await get(browser, th.api_url + "/operations")
    assert (
        '<time datetime="' + f"{(datetime.fromisoformat(day) - timedelta(days=1)).date()}T23:00:00.000Z"
        in page
    )
    assert "planned in Asia/Bangkok" in page
    [operation_id] = re.findall(r'<tr data-id="([0-9a-f-]+)" data-status="active">', page)

    assert (await post(browser, th.api_url + f"/operations/{operation_id}/cancel", {}))[0] == 403
    assert th.rows("SELECT status FROM operations")[0]["status"] == "active"
    status, _, _ = await post(browser, th.api_url + f"/operations/{operation_id}/cancel", {"csrf": csrf})
    assert status == 303
    _, page, _ = await get(browser, th.api_url + "/operations")
    assert f'<tr data-id="{operation_id}" data-status="cancelled">' in page
    trail = await actions(th)
    assert ("operation_add", operation_id) in trail
    assert ("operation_cancel", operation_id) in trail


async def test_the_deconfliction_pages_need_a_session(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    await th.call(
        "POST", "/v1/watchlist", body=entry("TH-TIP-7", "Pol. Lt. Somchai", kind="phone", number=PHONE)
    )
    for path in ("/hits", "/watchlist", "/operations"):
        status, _, headers = await get(browser, th.api_url + path)
        assert (status, headers["Location"]) == (303, "/signin")
    for path in ("/hits/match", "/watchlist", "/operations"):
        assert (await post(browser, th.api_url + path, {"csrf": "guess"}))[0] == 401
    assert not any(action == "match_run" for action, _ in await actions(th))
    assert len((await th.call("GET", "/v1/watchlist"))["items"]) == 1


async def test_every_kind_of_entry_has_labelled_fields_with_words_from_the_catalogue(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    await sign_in(browser, th)
    for kind, fields in SUBJECT_FIELDS.items():
        status, page, _ = await get(browser, th.api_url + f"/watchlist?kind={kind}")
        assert status == 200
        for name in (*fields, "case_reference", "contact", "expires_on", "handling", "handling_note"):
            assert f'<label for="f-{name}">' in page, (kind, name)
        assert not re.search(r"\b(watch|hitkind|operation|problem)\.[a-z_.]+\b", page), kind
        assert "&#34;" not in page  # attributes written as attributes, not as escaped text
    status, page, _ = await get(browser, th.api_url + "/operations")
    assert not re.search(r"\b(watch|operation|problem)\.[a-z_.]+\b", page)
    status, page, _ = await get(browser, th.api_url + "/watchlist?kind=spaceship")
    assert status == 400
