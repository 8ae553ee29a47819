"""The officer commands of ``ncpx`` as real processes, against real in-process nodes on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.node.support import Federation, Node, free_port, run_cli, wait_for


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


async def ncpx(node: Node | str, *args: str, token: str | None = None) -> Run:
    """Run ``python -m node.cli`` in a subprocess as the officer of ``node`` (or at the URL given)."""
    url = node if isinstance(node, str) else node.api_url
    env = {"NCPX_NODE": url, "NCPX_TOKEN": token or (node.token if isinstance(node, Node) else "")}
    return Run(*(await run_cli(*args, env=env)))


@pytest.fixture
async def nodes(federation: Callable[..., Federation]) -> tuple[Node, Node]:
    fed = federation(["TH", "MY"])
    return await fed.start("TH"), await fed.start("MY")


async def test_send_inbox_show_reply_peers(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    th, my = nodes
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(bytes(range(256)) * 3)
    subjects = tmp_path / "subjects.json"
    subjects.write_text(json.dumps({"phones": [{"number": "+60123456789"}]}))

    sent = (
        await ncpx(
            th, "send", "--to", "MY", "--area", "people_smuggling", "--urgency", "urgent_direct",
            "--subject", "Vessel", "--text", "Where did it sail from?", "--subjects", str(subjects),
            "--attach", str(photo), "--idempotency-key", "cli-1", "--json",
        )
    ).json()  # fmt: skip
    [message] = sent["messages"]
    enquiry = message["id"]
    assert message["recipient"] == "MY"
    assert message["state"] == "queued"
    thread = sent["thread"]
    assert thread != enquiry  # a thread id of its own, which no recipient can claim as a message id
    again = (
        await ncpx(
            th, "send", "--to", "MY", "--area", "people_smuggling", "--urgency", "urgent_direct",
            "--subject", "Vessel", "--text", "Where did it sail from?", "--subjects", str(subjects),
            "--attach", str(photo), "--idempotency-key", "cli-1", "--json",
        )
    ).json()  # fmt: skip
    assert again == sent
    await wait_for(lambda: th.state_is(enquiry, "sent", "delivered"), what="delivery")

    inbox = (await ncpx(my, "inbox", "--json")).json()
    assert [i["id"] for i in inbox["items"]] == [enquiry]
    assert inbox["items"][0]["state"] == "received"
    assert inbox["items"][0]["urgency"] == "urgent_direct"
    outbox = (await ncpx(th, "inbox", "--folder", "sent", "--peer", "MY", "--json")).json()
    assert [i["id"] for i in outbox["items"]] == [enquiry]

    saved = tmp_path / "saved"
    shown = (await ncpx(my, "show", enquiry, "--save-attachments", str(saved), "--json")).json()
    assert shown["message"]["text"] == "Where did it sail from?"
    assert shown["message"]["subjects"]["phones"][0]["number"] == "+60123456789"
    assert shown["message"]["state"] == "read"  # show marks a received message read
    assert (saved / "photo.jpg").read_bytes() == photo.read_bytes()
    await wait_for(lambda: th.state_is(enquiry, "sent", "read"), what="the read notice")

    replied = (await ncpx(my, "reply", enquiry, "--text", "From Belawan.", "--json")).json()
    assert replied["thread"] == thread
    assert replied["messages"][0]["recipient"] == "TH"
    await wait_for(lambda: th.state_is(enquiry, "sent", "answered"), what="the answer")
    thread = (await ncpx(th, "show", replied["messages"][0]["id"], "--json")).json()
    assert [m["kind"] for m in thread["thread"]] == ["enquiry", "reply"]
    assert thread["message"]["text"] == "From Belawan."

    peers = (await ncpx(th, "peers", "--json")).json()
    assert peers["me"] == "TH"
    assert [(p["id"], p["backlog"], p["reachable"]) for p in peers["peers"]] == [("MY", 0, True)]

    # The table forms work too (no --json), and show the full message id.
    table = await ncpx(my, "inbox")
    assert table.code == 0
    assert enquiry in table.out


@pytest.mark.parametrize(
    ("args", "token", "exit_code", "code"),
    [
        (["inbox", "--json"], "ncpx_wrong", 3, "unauthorized"),
        (["show", "01900000-0000-7000-8000-000000000000", "--json"], None, 4, "not_found"),
        (
            ["send", "--to", "FR", "--area", "other", "--subject", "s", "--text", "t"],
            None,
            5,
            "unknown_recipient",
        ),
        (["send", "--to", "MY", "--area", "other", "--subject", "s"], None, 2, "malformed"),
        (["inbox", "--folder", "trash"], None, 2, "malformed"),
    ],
    ids=["bad-token", "unknown-message", "unknown-country", "no-text", "bad-folder"],
)
async def test_errors_exit_non_zero_with_the_code(
    nodes: tuple[Node, Node], args: list[str], token: str | None, exit_code: int, code: str
) -> None:
    th, _ = nodes
    result = await ncpx(th, *args, token=token)
    assert result.code == exit_code, result.err
    assert f"[{code}]" in result.err
    assert result.out == ""
    assert th.count() == 0


async def test_unreachable_node(tmp_path: Path) -> None:
    result = await ncpx(f"http://127.0.0.1:{free_port()}", "peers", "--json", token="ncpx_x")
    assert result.code == 6
    assert "[config]" in result.err


async def test_peer_text_is_printed_as_text_and_saved_files_are_never_overwritten(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    th, my = nodes
    attachment = {"name": "photo.jpg", "media_type": "image/jpeg", "data": "AAEC"}
    created = await th.call(
        "POST",
        "/v1/enquiries",
        body={
            "recipients": ["MY"],
            "area": "other",
            "subject": "[/] [link=https://evil.example]click[/link]",
            "text": "first line\x1b[2J\u202eend",
            "attachments": [attachment],
        },
    )
    enquiry = created["messages"][0]["id"]
    await wait_for(lambda: th.state_is(enquiry, "sent", "delivered"), what="delivery")
    shown = await ncpx(my, "show", enquiry)
    assert shown.code == 0, shown.err
    assert "[/] [link=https://evil.example]click[/link]" in shown.out  # shown as written, never as markup
    assert "\x1b" not in shown.out
    assert "\u202e" not in shown.out
    assert "first line[2Jend" in shown.out
    saved = tmp_path / "saved"
    for _ in range(2):
        assert (await ncpx(my, "show", enquiry, "--save-attachments", str(saved))).code == 0
    assert sorted(p.name for p in saved.iterdir()) == ["photo (1).jpg", "photo.jpg"]
    assert (saved / "photo (1).jpg").read_bytes() == (saved / "photo.jpg").read_bytes() == b"\x00\x01\x02"
