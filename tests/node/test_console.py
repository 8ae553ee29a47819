"""The officer's console over plain HTTP on real nodes: sessions, CSRF, revocation, idle timeout, refusals as
pages that say what to do, and the audit trail. The browser journey is in ``test_console_browser.py``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources

import aiohttp
import pytest
from yarl import URL

from node.officer_api import OFFICERS
from protocol.errors import Conflict
from tests.node.support import Federation, Node, wait_for

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps cookies like a browser (loopback addresses included) and does not follow redirects."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        yield client


@pytest.fixture
async def pair(federation: Callable[..., Federation]) -> tuple[Node, Node]:
    fed = federation(["TH", "MY"])
    return await fed.start("TH"), await fed.start("MY")


async def sign_in(client: aiohttp.ClientSession, node: Node, token: str | None = None) -> str:
    """Sign in through the form; returns the CSRF token of the session's pages."""
    async with client.get(node.api_url + "/signin") as page:
        nonce = CSRF.search(await page.text())
    assert nonce is not None
    form = {"csrf": nonce.group(1), "token": token or node.token}
    async with client.post(node.api_url + "/signin", data=form, allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()
        assert answer.headers["Location"] == "/"
    async with client.get(node.api_url + "/compose") as page:
        assert page.status == 200
        found = CSRF.search(await page.text())
    assert found is not None
    return found.group(1)


def enquiry(csrf: str | None, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    values = {
        "recipients": "MY",
        "subject": "Crew of the Sea Star",
        "area": "thb_labour_exploitation",
        "urgency": "urgent_direct",
        "handling": "H0",
        "tlp": "TLP:AMBER",
        "text": "Please check the crew list.",
        "vessel-rows": "1",
        "vessel-0-name": "Sea Star",
        "vessel-0-imo": "IMO 9074729",
    } | fields
    if csrf is not None:
        values["csrf"] = csrf
    for name, value in values.items():
        form.add_field(name, value)
    form.add_field("attachments", b"crew list", filename="crew.txt", content_type="text/plain")
    return form


async def get(client: aiohttp.ClientSession, url: str) -> tuple[int, str, dict[str, str]]:
    async with client.get(url, allow_redirects=False) as answer:
        return answer.status, await answer.text(), dict(answer.headers)


async def test_pages_without_a_session_send_the_browser_to_sign_in(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    for path in ("/", "/inbox", "/sent", "/compose", "/peers"):
        status, _, headers = await get(browser, th.api_url + path)
        assert (status, headers["Location"]) == (303, "/signin")
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    status, body, _ = await get(browser, th.api_url + "/inbox?part=live")
    assert status == 401
    assert "Sign in again with your officer token." in body
    async with browser.post(th.api_url + "/compose", data=enquiry("guess"), allow_redirects=False) as answer:
        assert answer.status == 401
    assert th.count() == 0


async def test_the_sign_in_form_needs_its_csrf_token_and_a_valid_token(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    status, page, headers = await get(browser, th.api_url + "/signin")
    assert status == 200
    assert "HttpOnly" in headers["Set-Cookie"]
    async with browser.post(
        th.api_url + "/signin", data={"token": th.token}, allow_redirects=False
    ) as answer:
        assert answer.status == 403
        assert "Form not accepted" in await answer.text()
        assert "ncpx_console=" not in answer.headers.get("Set-Cookie", "")
    nonce = CSRF.search(page)
    assert nonce is not None
    form = {"csrf": nonce.group(1), "token": "ncpx_wrong"}
    async with browser.post(th.api_url + "/signin", data=form, allow_redirects=False) as answer:
        assert answer.status == 401
        text = await answer.text()
        assert "That token was not accepted" in text
        assert "ncpx_wrong" not in text
    trail = await th.app[OFFICERS].audit_trail()
    assert any(action == "console_sign_in" and outcome == "refused" for _, _, action, _, outcome in trail)


async def test_a_session_cookie_is_http_only_and_strict(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    async with browser.get(th.api_url + "/signin") as page:
        nonce = CSRF.search(await page.text())
    assert nonce is not None
    form = {"csrf": nonce.group(1), "token": th.token}
    async with browser.post(th.api_url + "/signin", data=form, allow_redirects=False) as answer:
        cookie = next(v for v in answer.headers.getall("Set-Cookie") if v.startswith("ncpx_console="))
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/;" in cookie or cookie.endswith("Path=/")
    assert "Secure" not in cookie  # plain HTTP on loopback here; set when the officer listener is TLS


async def test_forms_without_the_sessions_csrf_token_or_from_another_origin_are_refused(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    for form, headers in (
        (enquiry(None), {}),
        (enquiry("0" * 64), {}),
        (enquiry(csrf), {"Origin": "https://elsewhere.example"}),
    ):
        async with browser.post(
            th.api_url + "/compose", data=form, headers=headers, allow_redirects=False
        ) as answer:
            assert answer.status == 403
            text = await answer.text()
            assert "Form not accepted" in text
            assert "Reload the page and send the form again from it." in text
    assert th.count() == 0
    async with browser.post(th.api_url + "/compose", data=enquiry(csrf), allow_redirects=False) as answer:
        assert answer.status == 303
        assert answer.headers["Location"].startswith("/messages/")
    assert th.count() == 1


async def test_signing_out_ends_the_session(pair: tuple[Node, Node], browser: aiohttp.ClientSession) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    cookie = browser.cookie_jar.filter_cookies(URL(th.api_url))["ncpx_console"].value
    async with browser.post(th.api_url + "/signout", data={}, allow_redirects=False) as answer:
        assert answer.status == 403  # sign-out is a form too: without its token it is refused
    async with browser.post(th.api_url + "/signout", data={"csrf": csrf}, allow_redirects=False) as answer:
        assert answer.status == 303
        assert answer.headers["Location"] == "/signin?m=out"
    async with aiohttp.ClientSession(cookies={"ncpx_console": cookie}) as replay:
        status, _, headers = await get(replay, th.api_url + "/inbox")
    assert (status, headers["Location"]) == (303, "/signin")


async def test_revoking_the_officer_ends_their_session_at_once(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    await sign_in(browser, th)
    assert (await get(browser, th.api_url + "/inbox"))[0] == 200
    old_cookies = "; ".join(f"{c.key}={c.value}" for c in browser.cookie_jar)
    await th.app[OFFICERS].revoke("officer-th", datetime.now(UTC))
    status, _, headers = await get(browser, th.api_url + "/inbox")
    assert (status, headers["Location"]) == (303, "/signin")
    # A new token for the same officer (a lost token replaced) does not bring the old session back.
    new_token = await th.app[OFFICERS].add("officer-th", datetime.now(UTC))
    async with (
        aiohttp.ClientSession() as replay,
        replay.get(th.api_url + "/inbox", headers={"Cookie": old_cookies}, allow_redirects=False) as answer,
    ):
        assert (answer.status, answer.headers["Location"]) == (303, "/signin")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as fresh:
        await sign_in(fresh, th, new_token)
        assert (await get(fresh, th.api_url + "/inbox"))[0] == 200
    with pytest.raises(Conflict, match="revoke it first"):
        await th.app[OFFICERS].add("officer-th", datetime.now(UTC))


async def test_an_idle_session_ends_and_activity_keeps_it(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    await sign_in(browser, th)
    th.clock.offset = timedelta(minutes=20)
    assert (await get(browser, th.api_url + "/inbox"))[0] == 200
    th.clock.offset = timedelta(minutes=45)  # 25 minutes after the last page: still within the idle time
    assert (await get(browser, th.api_url + "/inbox?part=live"))[0] == 200
    th.clock.offset = timedelta(minutes=60)  # the live refresh is not activity: 40 minutes idle
    status, _, headers = await get(browser, th.api_url + "/inbox")
    assert (status, headers["Location"]) == (303, "/signin")


async def test_a_session_ends_after_a_shift_however_busy(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    await sign_in(browser, th)
    for minutes in range(25, 12 * 60, 25):
        th.clock.offset = timedelta(minutes=minutes)
        assert (await get(browser, th.api_url + "/inbox"))[0] == 200
    th.clock.offset = timedelta(hours=12, minutes=1)
    status, _, headers = await get(browser, th.api_url + "/inbox")
    assert (status, headers["Location"]) == (303, "/signin")


async def test_a_refused_enquiry_names_each_rule_and_what_to_do(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    async with browser.post(
        th.api_url + "/compose", data=enquiry(csrf, handling="H3"), allow_redirects=False
    ) as answer:
        assert answer.status == 400
        assert "Handling note: handling code H3 needs a note" in await answer.text()
    form = enquiry(csrf, **{"vessel-0-imo": "9074728", "phone-rows": "1", "phone-0-number": "0812345678"})
    async with browser.post(th.api_url + "/compose", data=form, allow_redirects=False) as answer:
        assert answer.status == 400
        text = await answer.text()
    assert "Malformed input" in text
    assert "Vessels 1: IMO number: seven digits whose last is the check digit" in text
    assert "Phone numbers 1: Number: E.164" in text
    assert "Correct what is named above and send again." in text
    assert "Traceback" not in text
    assert 'value="Crew of the Sea Star"' in text  # the form comes back as the officer left it
    assert th.count() == 0


async def test_adding_a_row_shows_the_form_again_and_sends_nothing(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    async with browser.post(
        th.api_url + "/compose", data=enquiry(csrf, add="vessel"), allow_redirects=False
    ) as answer:
        assert answer.status == 200
        text = await answer.text()
    assert 'name="vessel-1-imo"' in text
    assert 'value="Sea Star"' in text
    assert th.count() == 0


async def test_a_form_submitted_twice_sends_once_and_shows_the_first_message(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    status, page, _ = await get(browser, th.api_url + "/compose")
    assert status == 200
    submission = page.split('name="submission" value="')[1].split('"')[0]
    assert len(submission) >= 16
    locations = []
    for _ in range(2):  # a double click, or the page sent again after the browser's back button
        async with browser.post(
            th.api_url + "/compose", data=enquiry(csrf, submission=submission), allow_redirects=False
        ) as answer:
            assert answer.status == 303
            locations.append(answer.headers["Location"])
    assert locations[0] == locations[1]
    assert th.count() == 1
    # A fresh form is a fresh enquiry.
    async with browser.post(th.api_url + "/compose", data=enquiry(csrf), allow_redirects=False) as answer:
        assert answer.headers["Location"] != locations[0]
    assert th.count() == 2
    # A refused form keeps its key, so correcting and sending it still sends once.
    async with browser.post(
        th.api_url + "/compose", data=enquiry(csrf, subject="", submission="k" * 20), allow_redirects=False
    ) as answer:
        assert 'name="submission" value="' + "k" * 20 + '"' in await answer.text()


async def test_enquiry_read_and_reply_through_the_console_are_audited(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, my = pair
    csrf = await sign_in(browser, th)
    async with browser.post(th.api_url + "/compose", data=enquiry(csrf), allow_redirects=False) as answer:
        message_id = answer.headers["Location"].removeprefix("/messages/")
    await wait_for(lambda: my.summary(message_id, "inbox"), what="delivery to MY")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as my_browser:
        my_csrf = await sign_in(my_browser, my)
        status, inbox, _ = await get(my_browser, my.api_url + "/inbox")
        assert status == 200
        assert "Crew of the Sea Star" in inbox
        status, page, _ = await get(my_browser, my.api_url + f"/messages/{message_id}?from=TH")
        assert status == 200
        assert "Sea Star" in page
        assert "9074729" in page
        status, data, headers = await get(
            my_browser, my.api_url + f"/messages/{message_id}/attachments/0?from=TH"
        )
        assert (status, data) == (200, "crew list")
        assert headers["Content-Disposition"].startswith("attachment;")
        form = aiohttp.FormData(
            {"csrf": my_csrf, "text": "Two of the crew are known to us.", "handling": "H2"}
        )
        async with my_browser.post(
            my.api_url + f"/messages/{message_id}/reply?from=TH", data=form, allow_redirects=False
        ) as answer:
            assert answer.status == 303
    await wait_for(lambda: th.state_is(message_id, "sent", "answered"), what="the answer at TH")
    actions = {(actor, action) for _, actor, action, _, _ in await my.app[OFFICERS].audit_trail()}
    assert {
        ("officer-my", "console_sign_in"),
        ("officer-my", "mark_read"),
        ("officer-my", "open_message"),
        ("officer-my", "download_attachment"),
        ("officer-my", "send_reply"),
    } <= actions
    assert ("officer-th", "send_enquiry") in {
        (a, b) for _, a, b, _, _ in await th.app[OFFICERS].audit_trail()
    }


async def test_filters_choose_what_a_folder_lists(
    pair: tuple[Node, Node], browser: aiohttp.ClientSession
) -> None:
    th, _ = pair
    csrf = await sign_in(browser, th)
    for urgency, subject in (("urgent_direct", "Urgent one"), ("normal", "Normal one")):
        async with browser.post(
            th.api_url + "/compose",
            data=enquiry(csrf, urgency=urgency, subject=subject),
            allow_redirects=False,
        ) as answer:
            assert answer.status == 303
    _, urgent, _ = await get(browser, th.api_url + "/sent?urgency=urgent_direct")
    assert "Urgent one" in urgent
    assert "Normal one" not in urgent
    _, everything, _ = await get(browser, th.api_url + "/sent")
    assert "Urgent one" in everything
    assert "Normal one" in everything
    status, refused, _ = await get(browser, th.api_url + "/sent?urgency=soon")
    assert status == 400
    assert "Malformed input" in refused


class _Text(HTMLParser):
    """Collects text outside tags and the values of attributes people read (labels, titles)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_data(self, data: str) -> None:
        self.found.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(v or "" for k, v in attrs if k in ("title", "aria-label", "placeholder", "alt"))
        if tag == "script" and not any(k == "src" for k, _ in attrs):
            self.found.append("inline script")
        if any(k == "style" for k, _ in attrs) or tag == "style":
            self.found.append("inline style")


def test_templates_hold_no_words_of_their_own_and_no_inline_script_or_style() -> None:
    folder = resources.files("node.console") / "templates"
    for template in folder.iterdir():
        source = template.read_text(encoding="utf-8")
        stripped = re.sub(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", "", source, flags=re.DOTALL)
        parser = _Text()
        parser.feed(stripped)
        words = [w for w in parser.found if re.search(r"[A-Za-z]{2,}", w)]
        assert words == [], (template.name, words)
