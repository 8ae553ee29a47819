"""What ``ncpx`` shows an officer, and the sentences it refuses with, as real processes against real nodes.

Each refusal is checked by its sentence (what rule failed, what to do), not only by its code: the code is for
scripts, the sentence for the officer who typed the command.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.cli_officer import reason
from node.config import Limits, MiB
from node.officer_api import OFFICERS
from node.storage.officers import Officers
from tests.node.support import Federation, Node, wait_for
from tests.node.test_cli import ncpx

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "subjects.json"
COORD = "XI-COORD"


def words(text: str) -> str:
    """Output with every run of whitespace as one space (rich wraps long lines at spaces)."""
    return " ".join(text.split())


@pytest.fixture
async def nodes(federation: Callable[..., Federation]) -> tuple[Node, Node]:
    fed = federation(["TH", "MY"])
    return await fed.start("TH"), await fed.start("MY")


async def test_show_prints_everything_the_sender_wrote_and_listing_marks_nothing_read(
    nodes: tuple[Node, Node],
) -> None:
    th, my = nodes
    sent = (
        await ncpx(
            th, "send", "--to", "MY", "--area", "thb_labour_exploitation", "--sector", "fishing",
            "--subject", "Crew of KM Harapan", "--text", "Who recruited the crew?", "--handling", "H3",
            "--handling-note", "Do not share with immigration", "--tlp", "TLP:RED", "--evaluation", "b2",
            "--subjects", str(EXAMPLE), "--json",
        )
    ).json()  # fmt: skip
    enquiry = sent["messages"][0]["id"]
    await wait_for(lambda: th.state_is(enquiry, "sent", "delivered"), what="delivery")

    listed = await ncpx(my, "inbox")
    assert listed.code == 0, listed.err
    assert enquiry in listed.out  # whole, at the 80 columns of a pipe
    wide = await ncpx(my, "inbox", "--wide")
    row = next(line for line in wide.out.splitlines() if enquiry in line)
    assert "│ Crew of KM Harapan │" in row
    assert "received" in row
    # Listing opened each subject, and still marked nothing read: no read notice is queued for TH.
    [item] = await my.listing(folder="inbox")
    assert (item["state"], item.get("read_at")) == ("received", None)
    assert my.rows("SELECT count(*) FROM outbox WHERE peer = 'TH'")[0][0] == 0

    shown = await ncpx(my, "show", enquiry)
    assert shown.code == 0, shown.err
    text = words(shown.out)
    for expected in (
        "handling: H3 (other restrictions, stated in the handling note)",
        "handling note: Do not share with immigration",
        "sharing: TLP:RED",
        "evaluation: B2 (usually reliable source; known personally to the source but not to the officer)",
        "sector: fishing",
        "Crew of KM Harapan",
        "Who recruited the crew?",
    ):
        assert expected in text, expected
    # Every structured subject of the example file, as tables.
    for expected in (
        "persons", "Santoso", "1978-04-12", "Pak Budi", "passport", "B1234567", "phones", "+66812345678",
        "travel documents", "SB-0042", "vessels", "KM Harapan", "9074729", "bank accounts", "TH0123456789",
        "addresses", "12 Jalan Pelabuhan", "Belawan",
    ):  # fmt: skip
        assert expected in shown.out, expected
    opened = (await ncpx(my, "show", enquiry, "--json")).json()["message"]
    assert opened["subjects"]["vessels"][0]["imo"] == "9074729"  # "IMO 9074729" in the file, stored bare
    assert opened["evaluation"] == {"source": "B", "information": "2"}


def subjects_file(tmp_path: Path, content: str) -> str:
    path = tmp_path / "subjects.json"
    path.write_text(content)
    return str(path)


SEND = ["send", "--to", "MY", "--area", "other", "--subject", "s", "--text", "t"]


@pytest.mark.parametrize(
    ("extra", "exit_code", "code", "sentence"),
    [
        (
            ["--subjects", '{"vessels": [{"name": "KM Harapan", "imo": "IMO 9074728"}]}'],
            2,
            "malformed",
            "The IMO number of vessel 1: the check digit (the last of the 7 digits) does not match the other six",
        ),
        (
            ["--subjects", '{"vessels": [{"name": "KM Harapan", "imo": "IMO 90747"}]}'],
            2,
            "malformed",
            "an IMO number is 7 digits, with or without the prefix IMO, e.g. IMO 9074729",
        ),
        (
            ["--subjects", '{"phones": [{"number": "0812 345 678"}]}'],
            2,
            "malformed",
            "The number of phone 1 is not an E.164 phone number: write a plus sign, the country code and the "
            "number, with no spaces or dashes, e.g. +66812345678",
        ),
        (
            ["--subjects", '{"persons": [{"family_name": "X", "secret_field": 1}]}'],
            2,
            "malformed",
            "Person 1 has a field ncpx does not know: remove it.",
        ),
        (
            ["--subjects", '{"phones": [\n  {"number": "+66812345678"},\n]}'],
            2,
            "malformed",
            "is not valid JSON: expecting value at line 3, column 1",
        ),
        (
            ["--subjects", '["+66812345678"]'],
            2,
            "malformed",
            "must hold one JSON object of lists",
        ),
        (
            ["--handling", "H3"],
            2,
            "malformed",
            "Handling code H3 requires a handling note that states the restrictions.",
        ),
        (
            ["--evaluation", "B7"],
            2,
            "malformed",
            "--evaluation is the 4x4 grade: a source letter (A, B, C or X) then an information digit (1 to 4)",
        ),
    ],
    ids=[
        "imo-check-digit",
        "imo-form",
        "phone-e164",
        "unknown-field",
        "subjects-json",
        "subjects-list",
        "h3-note",
        "evaluation",
    ],
)
async def test_input_errors_say_which_rule_failed(
    nodes: tuple[Node, Node], tmp_path: Path, extra: list[str], exit_code: int, code: str, sentence: str
) -> None:
    th, _ = nodes
    args = [a if not a.lstrip().startswith(("{", "[")) else subjects_file(tmp_path, a) for a in extra]
    result = await ncpx(th, *SEND, *args)
    assert result.code == exit_code, result.err
    assert f"[{code}]" in result.err
    assert sentence in words(result.err)
    assert "Traceback" not in result.err
    assert "secret_field" not in result.err  # an unknown field is never echoed
    assert "subjects.vessels" not in result.err
    assert "subjects.phones" not in result.err
    assert th.count() == 0


async def test_size_limits_are_told_in_mib(federation: Callable[..., Federation], tmp_path: Path) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH", limits=Limits(max_request_bytes=256 * 1024, max_attachment_bytes=MiB // 16))
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(b"x" * (100 * 1024))
    large.write_bytes(b"x" * (300 * 1024))

    attachments = await ncpx(th, *SEND, "--attach", str(small))
    assert attachments.code == 2, attachments.err
    assert "[too_large]" in attachments.err
    assert "the attachments add up to more than this node's limit of 0.0625 MiB per message" in words(
        attachments.err
    )
    request = await ncpx(th, *SEND, "--attach", str(large))
    assert request.code == 2, request.err
    assert "the request is larger than this node's limit of 0.25 MiB" in words(request.err)
    assert th.count() == 0


async def test_wrong_and_revoked_tokens_are_told_apart_from_a_missing_one(nodes: tuple[Node, Node]) -> None:
    th, _ = nodes
    told = "this token is not valid or was revoked: ask your operator for a new one with `ncpx officer add`"
    wrong = await ncpx(th, "inbox", token="ncpx_wrong")
    assert (wrong.code, "[unauthorized]" in wrong.err) == (3, True)
    assert told in words(wrong.err)

    officers: Officers = th.app[OFFICERS]
    revoked = await officers.add("officer-leaving", datetime.now(UTC))
    assert (await ncpx(th, "inbox", token=revoked)).code == 0
    await officers.revoke("officer-leaving", datetime.now(UTC))
    refused = await ncpx(th, "inbox", token=revoked)
    assert refused.code == 3
    assert told in words(refused.err)

    missing = await th.request("GET", "/v1/messages", token=None)
    assert missing.problem("unauthorized", 401)["detail"].startswith("no officer token was given")


async def test_sending_to_yourself_or_to_the_coordinator_and_a_coordinator_token(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY", COORD], coordinator=COORD)
    th, coordinator = await fed.start("TH"), await fed.start(COORD)

    yourself = await ncpx(th, "send", "--to", "TH", "--area", "other", "--subject", "s", "--text", "t")
    assert yourself.code == 5
    assert "[unknown_recipient]" in yourself.err
    assert "TH is your own country: a message goes to another country's node" in words(yourself.err)

    to_coordinator = await ncpx(th, "send", "--to", COORD, "--area", "other", "--subject", "s", "--text", "t")
    assert to_coordinator.code == 5
    assert "[not_a_node]" in to_coordinator.err
    assert f"{COORD} is the coordinator, which sees only metadata and takes no messages" in words(
        to_coordinator.err
    )
    assert th.count() == 0

    with_its_token = await ncpx(coordinator, *SEND)
    assert with_its_token.code == 5
    assert "[not_a_node]" in with_its_token.err
    assert "this is a coordinator token" in words(with_its_token.err)
    inbox = await ncpx(coordinator, "inbox")
    assert "this is a coordinator token" in words(inbox.err)


async def test_a_message_for_a_peer_that_is_down_is_waiting_with_a_sentence(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th = await fed.start("TH")  # MY is in the roster, and not running
    sent = (await ncpx(th, *SEND, "--json")).json()
    enquiry = sent["messages"][0]["id"]

    async def waited() -> object:
        item = await th.summary(enquiry, "sent")
        return item if item and item.get("last_error") else None

    await wait_for(waited, what="a failed delivery attempt")

    listed = await ncpx(th, "inbox", "--folder", "sent", "--wide")
    assert listed.code == 0, listed.err
    line = next(line for line in listed.out.splitlines() if enquiry in line)
    assert "waiting (peer unreachable since " in line
    assert " sent " not in line.replace("│", " ")

    shown = await ncpx(th, "show", enquiry)
    assert "state: waiting (peer unreachable since " in words(shown.out)

    peers = (await ncpx(th, "peers", "--json")).json()
    [my] = peers["peers"]
    assert my["reachable"] is False
    assert my["unreachable_since"]
    assert (
        my["last_error"]
        == "the peer's node refused the connection or cannot be reached at its roster address"
    )
    table = await ncpx(th, "peers", "--wide")
    assert "refused the connection" in table.out
    assert fed.url("MY") in table.out  # the URL whole, on one line
    assert "ClientConnectorError" not in table.out


@pytest.mark.parametrize(
    ("stored", "told"),
    [
        ("peer unreachable; will retry", "peer unreachable; will retry"),
        ("too_large; will retry", "the peer refused it: input exceeds the size limit; will retry"),
        ("revoked_key", "the peer refused it: key has been revoked"),
        ("gave_up", "no receipt came back before the give-up age"),
        ("ncpx_error; will retry", "the peer's answer proved nothing about it; will retry"),
    ],
)
def test_a_stored_delivery_error_is_told_as_a_sentence(stored: str, told: str) -> None:
    assert reason(stored) == told
