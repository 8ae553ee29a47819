"""The officer's console in a real headless browser (Debian's chromium driven by Playwright) against three real
node processes: TH asks MY and PH, MY reads, downloads and answers, TH sees the answer. Screenshots of the
inbox, a thread and the compose form are written to ``docs/`` for the README."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from node.topology import Topology

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
DOCS = Path(__file__).resolve().parents[2] / "docs"
SUBJECT = "Crew of the Sea Star, Songkhla"
NOTE = "Do not share with immigration authorities before 1 November."


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = Topology(tmp_path_factory.mktemp("console"), ["TH", "MY", "PH"])
    topology.create()
    topology.start()
    yield topology
    topology.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Officer:
    """One officer's browser tab, recording every console error it shows."""

    def __init__(self, browser: Browser, base: str, width: int = 1280) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def sign_in(self, token: str) -> None:
        self.page.goto(self.base + "/")
        expect(self.page.get_by_label("Officer token")).to_be_visible()
        self.page.get_by_label("Officer token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="Home", exact=True)).to_be_visible()


def test_an_enquiry_from_compose_to_answer_in_real_browsers(
    world: Topology, chromium: Browser, tmp_path: Path
) -> None:
    th_node, my_node = world.nodes["TH"], world.nodes["MY"]
    th = Officer(chromium, th_node.url)
    th.sign_in(th_node.token)

    th.page.get_by_role("link", name="New enquiry").click()
    page = th.page
    page.get_by_role("checkbox", name="MY", exact=True).check()
    page.get_by_role("checkbox", name="PH", exact=True).check()
    page.get_by_label("Subject", exact=True).fill(SUBJECT)
    page.get_by_label("Crime area").select_option("thb_labour_exploitation")
    page.get_by_label("Labour sector").select_option("fishing")
    page.get_by_label("Urgent, information held directly", exact=False).check()
    page.get_by_label("Handling code").select_option("H3")
    page.get_by_label("Handling note").fill(NOTE)
    page.get_by_label("Sharing (TLP)").select_option("TLP:AMBER+STRICT")
    page.get_by_label("Source reliability").select_option("B")
    page.get_by_label("Information accuracy").select_option("2")
    page.get_by_label("Text", exact=True).fill("Twelve crew members reported unpaid for eight months.")
    page.locator("#f-vessel-0-name").fill("Sea Star")
    page.locator("#f-vessel-0-imo").fill("IMO 9074729")
    page.locator("#f-vessel-0-flag").fill("TH")
    crew = tmp_path / "crew-list.txt"
    crew.write_text("Somchai P.\nArief W.\n")
    page.get_by_label("Attachments").set_input_files(str(crew))
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "console-compose.png"), full_page=True)
    page.get_by_role("button", name="Send enquiry").click()

    expect(page.get_by_role("heading", name=SUBJECT)).to_be_visible()
    for peer in ("MY", "PH"):  # the thread refreshes in place until both receipts are in
        expect(page.locator(f'#live tr[data-peer="{peer}"] .badge').first).to_have_text(
            "delivered", timeout=20_000
        )

    my = Officer(chromium, my_node.url)
    my.sign_in(my_node.token)
    my.page.get_by_role("link", name="Inbox").click()
    row = my.page.locator("table.messages tbody tr").filter(has_text=SUBJECT)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(5).locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-.+Z$"))
    expect(row).to_contain_text("TH")
    my.page.screenshot(path=str(DOCS / "console-inbox.png"), full_page=True)
    row.get_by_role("link", name=SUBJECT).click()

    message = my.page
    expect(message.locator(".handling-note")).to_contain_text(NOTE)
    vessels = message.locator('table.subjects[data-kind="vessels"]')
    expect(vessels).to_contain_text("Sea Star")
    expect(vessels).to_contain_text("9074729")
    expect(message.locator("dl.fields")).to_contain_text("TLP:AMBER+STRICT")
    expect(message.locator("dl.fields")).to_contain_text("B: usually reliable")
    message.screenshot(path=str(DOCS / "console-thread.png"), full_page=True)
    with message.expect_download() as download:
        message.get_by_role("link", name="Download crew-list.txt").click()
    assert Path(download.value.path()).read_text() == "Somchai P.\nArief W.\n"
    assert download.value.suggested_filename == "crew-list.txt"

    message.get_by_label("Text", exact=True).fill("Two of the crew are known to us; details follow by phone.")
    message.get_by_label("Handling code").select_option("H2")
    message.get_by_role("button", name="Send reply").click()
    expect(message.locator('#live tr[data-kind="reply"]')).to_have_count(1)

    th.page.reload()
    expect(th.page.locator('#live tr[data-kind="reply"]')).to_have_count(1, timeout=20_000)
    expect(th.page.locator('#live tr[data-peer="MY"][data-kind="enquiry"] .badge').first).to_have_text(
        "answered", timeout=20_000
    )
    th.page.get_by_role("link", name="Sent").click()
    th.page.get_by_role("link", name="Peers").click()
    expect(th.page.locator('tr[data-peer="MY"] .badge')).to_have_text("yes")
    expect(th.page.locator('tr[data-peer="TH"]')).to_contain_text("SHA-256")
    assert th.errors == []
    assert my.errors == []


def test_tabbing_through_the_compose_form_reaches_every_control(world: Topology, chromium: Browser) -> None:
    th = Officer(chromium, world.nodes["TH"].url)
    th.sign_in(world.nodes["TH"].token)
    th.page.goto(th.base + "/compose")
    controls = th.page.evaluate(
        "() => Array.from(document.querySelectorAll('main form :is(input:not([type=hidden]), select, textarea, "
        "button)')).map(e => e.type === 'radio' ? 'group ' + e.name : e.id || e.name + ':' + e.value)"
    )
    reached = []
    th.page.locator("main h1").click()
    for _ in range(len(controls) + 5):
        th.page.keyboard.press("Tab")
        focused = th.page.evaluate(
            "() => { const e = document.activeElement; "
            "return e.type === 'radio' ? 'group ' + e.name : e.id || e.name + ':' + e.value; }"
        )
        if focused in controls and focused not in reached:
            reached.append(focused)
    assert set(reached) == set(controls)  # a radio group is one stop: arrow keys choose inside it
    assert len(controls) > 30
    assert th.errors == []


def test_the_console_fits_a_phone(world: Topology, chromium: Browser) -> None:
    th = Officer(chromium, world.nodes["TH"].url, width=375)
    th.sign_in(world.nodes["TH"].token)
    for path in ("/", "/inbox", "/sent", "/compose", "/peers"):
        th.page.goto(th.base + path)
        overflow = th.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path  # wide tables scroll inside their own box, the page does not
    assert th.errors == []
