"""``ncpx watch`` and ``ncpx operation`` as real processes against a real node."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.node.support import Federation, Node
from tests.node.test_cli import ncpx
from tests.node.test_watchlist import EXAMPLE, HEADER

LISTING = ("--case", "TH-TIP-1", "--contact", "desk +66 2 205 1000")


@pytest.fixture
async def th(federation: Callable[..., Federation], monkeypatch: pytest.MonkeyPatch) -> Node:
    monkeypatch.setenv("COLUMNS", "250")  # tables as wide as their content, so that cells are not wrapped
    return await federation(["TH", "MY"]).start("TH")


async def test_watch_add_list_remove(th: Node) -> None:
    added = (
        await ncpx(th, "watch", "add", "phone", "--number", "081 234 5678", "--region", "TH",
                   "--expires", "2035-12-31", *LISTING, "--json")
    ).json()  # fmt: skip
    assert added["tokens"] == ["phone:+66812345678"]
    address = (
        await ncpx(th, "watch", "add", "address", "--line", "88/12 Moo 4", "--line", "Soi Sukhumvit 101",
                   "--country", "TH", "--expires", "2035-12-31", *LISTING, "--handling", "H2", "--json")
    ).json()  # fmt: skip
    assert address["entry"]["lines"] == ["88/12 Moo 4", "Soi Sukhumvit 101"]
    assert address["entry"]["handling"] == "H2"

    listed = (await ncpx(th, "watch", "list", "--json")).json()
    assert [item["id"] for item in listed["items"]] == [added["id"], address["id"]]
    table = await ncpx(th, "watch", "list")
    assert table.code == 0
    assert added["id"] in table.out
    assert "Soi Sukhumvit 101" in table.out
    assert "phone:+66812345678" in table.out  # what the entry is matched as

    removed = await ncpx(th, "watch", "remove", added["id"])
    assert removed.code == 0, removed.err
    assert f"removed {added['id']}" in removed.out
    again = await ncpx(th, "watch", "remove", added["id"])
    assert again.code == 4
    assert "[not_found]" in again.err
    assert [item["id"] for item in (await ncpx(th, "watch", "list", "--json")).json()["items"]] == [
        address["id"]
    ]


async def test_watch_add_refuses_what_cannot_be_matched(th: Node) -> None:
    refused = await ncpx(
        th, "watch", "add", "vessel", "--imo", "9074728", "--expires", "2035-12-31", *LISTING
    )
    assert refused.code == 5
    assert "[invalid_imo]" in refused.err
    assert th.count("watch_entries") == 0


async def test_watch_import_and_export(th: Node, tmp_path: Path) -> None:
    imported = await ncpx(th, "watch", "import", str(EXAMPLE))
    assert imported.code == 0, imported.err
    assert "imported 8 entries" in imported.out

    printed = await ncpx(th, "watch", "export")
    assert printed.code == 0, printed.err
    assert printed.out.splitlines()[0] == HEADER
    saved = tmp_path / "export.csv"
    assert (await ncpx(th, "watch", "export", "--output", str(saved))).code == 0
    assert saved.read_bytes() == (await th.request("GET", "/v1/watchlist/export")).body
    refused = await ncpx(th, "watch", "export", "--output", str(saved))
    assert refused.code == 2  # never over an existing file
    assert "[file]" in refused.err


async def test_watch_import_names_each_bad_row_and_imports_nothing(th: Node, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"{HEADER}\n"
        "phone,,,,+66 12,,,,,,,,TH-1,desk,2035-12-31,H0,\n"
        "document,,,,A 123,,,,,,,,TH-1,desk,2035-12-31,H0,\n"
        "person,Kamal Perera,1984-03-07,,,,,,,,,,TH-1,desk,2035-12-31,H0,\n",
        encoding="utf-8",
    )
    result = await ncpx(th, "watch", "import", str(bad))
    assert result.code == 5
    assert "[invalid_rows]" in result.err
    assert "row 2: The phone number is not valid" in result.err
    assert "row 4: nationality is required for a person entry" in result.err
    assert "row 3" not in result.err
    assert th.count("watch_entries") == 0


async def test_operation_add_list_cancel_in_local_time(th: Node) -> None:
    year = th.clock().year + 1
    planned = (
        await ncpx(th, "operation", "add", "raid", "--lat", "13.7563", "--lon", "100.5018", "--radius", "150",
                   "--start", f"{year}-10-05 06:00", "--end", f"{year}-10-05 09:30", "--zone", "Asia/Bangkok",
                   *LISTING, "--json")
    ).json()  # fmt: skip
    assert planned["operation"]["start"] == f"{year}-10-04T23:00:00.000Z"
    assert planned["token_count"] > 0
    at_address = (
        await ncpx(th, "operation", "add", "surveillance", "--line", "88/12 Moo 4", "--city", "Samut Prakan",
                   "--country", "TH", "--start", f"{year}-10-06 20:00", "--end", f"{year}-10-07 02:00",
                   "--zone", "Asia/Bangkok", *LISTING, "--json")
    ).json()  # fmt: skip
    assert at_address["token_count"] == 1

    table = await ncpx(th, "operation", "list")
    assert table.code == 0, table.err
    assert f"{year}-10-05 06:00 +07" in table.out  # shown in the operation's zone, not in UTC
    assert f"{year}-10-05 09:30 +07" in table.out
    assert "Samut Prakan" in table.out
    listed = (await ncpx(th, "operation", "list", "--json")).json()
    assert [item["id"] for item in listed["items"]] == [planned["id"], at_address["id"]]

    cancelled = (await ncpx(th, "operation", "cancel", planned["id"], "--json")).json()
    assert cancelled["status"] == "cancelled"
    again = await ncpx(th, "operation", "cancel", planned["id"])
    assert again.code == 5
    assert "[invalid_state]" in again.err


async def test_operation_add_needs_a_place(th: Node) -> None:
    start = th.clock() + timedelta(days=1)
    result = await ncpx(th, "operation", "add", "arrest", "--start", f"{start:%Y-%m-%d %H:%M}",
                        "--end", f"{start + timedelta(hours=1):%Y-%m-%d %H:%M}", "--zone", "UTC", *LISTING)  # fmt: skip
    assert result.code == 2
    assert "give the place as --lat and --lon" in result.err
    assert th.count("operations") == 0
