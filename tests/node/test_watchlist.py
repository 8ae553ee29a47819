"""Watch lists and planned operations on real nodes: the officer API, the CSV import and export, and what the
repository hands private matching (active tokens and the entries holding them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from node.storage.watchlist import Ref, Watchlist
from protocol.encoding import format_time
from tests.node.support import Federation, Node

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "watchlist.csv"
HEADER = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
FUTURE = "2035-12-31"
BANGKOK = (13.7563, 100.5018)
METRES_PER_DEGREE_LATITUDE = 111_195.0


def entry(**fields: Any) -> dict[str, Any]:
    return {"case_reference": "TH-TIP-1", "contact": "desk +66 2 205 1000", "expires_on": FUTURE, **fields}


def operation(north_m: float, start: datetime, hours: float = 1.0, **fields: Any) -> dict[str, Any]:
    """A raid ``north_m`` metres north of central Bangkok, from ``start`` for ``hours``."""
    return {
        "kind": "raid",
        "point": {
            "latitude": BANGKOK[0] + north_m / METRES_PER_DEGREE_LATITUDE,
            "longitude": BANGKOK[1],
            "radius_m": 100,
        },
        "zone": "Asia/Bangkok",
        "start": format_time(start),
        "end": format_time(start + timedelta(hours=hours)),
        "case_reference": "TH-OP-1",
        "contact": "ops room +66 2 205 1111",
        **fields,
    }


def repository(node: Node) -> Watchlist:
    return Watchlist(node.service.mailbox.db)


async def tokens_by_item(node: Node) -> dict[Ref, set[str]]:
    found: dict[Ref, set[str]] = {}
    for token, ref in await repository(node).tokens(node.clock()):
        found.setdefault(ref, set()).add(token)
    return found


def actions(node: Node) -> list[tuple[str, str | None, str]]:
    rows = node.rows(
        "SELECT action, target, outcome FROM audit WHERE actor = ? ORDER BY seq", ("officer-th",)
    )
    return [(r[0], r[1], r[2]) for r in rows]


@pytest.fixture
async def th(federation: Callable[..., Federation]) -> Node:
    return await federation(["TH", "MY"]).start("TH")


async def test_entries_are_added_listed_and_removed_and_every_step_is_audited(th: Node) -> None:
    phone = await th.call(
        "POST", "/v1/watchlist", body=entry(kind="phone", number="081 234 5678", region="TH")
    )
    assert phone["tokens"] == ["phone:+66812345678"]
    assert phone["entry"]["number"] == "081 234 5678"  # kept as the officer typed it
    assert phone["officer"] == "officer-th"
    vessel = await th.call(
        "POST", "/v1/watchlist", body=entry(kind="vessel", name="KM Harapan", imo="IMO 9074729", flag="ID")
    )
    assert vessel["tokens"] == ["vessel:imo:9074729", "vessel:name:ID:km harapan"]

    listed = await th.call("GET", "/v1/watchlist")
    assert [item["id"] for item in listed["items"]] == [phone["id"], vessel["id"]]
    assert listed["items"][1]["entry"]["case_reference"] == "TH-TIP-1"

    removed = await th.call("DELETE", f"/v1/watchlist/{phone['id']}")
    assert removed["id"] == phone["id"]
    assert [item["id"] for item in (await th.call("GET", "/v1/watchlist"))["items"]] == [vessel["id"]]
    (await th.request("DELETE", f"/v1/watchlist/{phone['id']}")).problem("not_found", 404)
    (await th.request("DELETE", "/v1/watchlist/not-an-id")).problem("not_found", 404)
    assert set(await tokens_by_item(th)) == {Ref("entry", vessel["id"])}

    assert actions(th) == [
        ("watch_add", phone["id"], "ok"),
        ("watch_add", vessel["id"], "ok"),
        ("watch_list", None, "ok"),
        ("watch_remove", phone["id"], "ok"),
        ("watch_list", None, "ok"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "code", "sentence"),
    [
        (entry(kind="phone", number="+66 12"), 422, "invalid_phone", "not valid for its country code"),
        (entry(kind="vessel", imo="9074728"), 422, "invalid_imo", "check digit"),
        (entry(kind="account", number="GB82 WEST 1234 5698 7654 31"), 422, "invalid_account", "IBAN"),
        (entry(kind="vessel", name="KM Harapan"), 422, "invalid_subject", "IMO number, or its name and flag"),
        (entry(kind="person", names="Kamal Perera"), 400, "malformed", "date_of_birth is required"),
        (
            entry(kind="person", names="K P", date_of_birth="1984-03-07", nationality="Lanka"),
            400,
            "malformed",
            "nationality: must be an ISO 3166-1 alpha-2 country code",
        ),
        (entry(kind="document", number="A1", imo="9074729"), 400, "malformed", "imo does not apply"),
        (entry(kind="ship", number="A1"), 400, "malformed", "kind must be one of person, document"),
        (entry(kind="document", number="A1", handling="H3"), 400, "malformed", "H3 requires handling_note"),
        (entry(kind="document", number="A1", expires_on="2015-10-28"), 422, "invalid_subject", "has passed"),
    ],
    ids=["phone", "imo", "iban", "vessel", "missing", "country", "foreign-field", "kind", "h3", "expired"],
)
async def test_a_bad_entry_is_refused_with_a_sentence_and_nothing_is_stored(
    th: Node, body: dict[str, Any], status: int, code: str, sentence: str
) -> None:
    response = await th.request("POST", "/v1/watchlist", body=body)
    problem = response.problem(code, status)
    assert sentence in problem["detail"]
    assert th.count("watch_entries") == 0
    assert th.count("watch_tokens") == 0


async def test_a_refusal_never_echoes_what_was_refused(th: Node) -> None:
    body = entry(kind="person", names="Secretname Q", date_of_birth="1984-13-40", nationality="LK", xyzzy="Q")
    response = await th.request("POST", "/v1/watchlist", body=body)
    detail = response.problem("malformed", 400)["detail"]
    assert "date_of_birth" in detail
    assert "a field unknown to a person entry was given" in detail
    assert b"Secretname" not in response.body
    assert b"1984-13-40" not in response.body
    assert b"xyzzy" not in response.body


async def test_a_csv_import_with_bad_rows_names_each_and_imports_nothing(th: Node) -> None:
    rows = [
        HEADER,
        "phone,,,,+66 81 234 5678,,,,,,,,TH-1,desk,2035-12-31,H0,",
        "phone,,,,+66 12,,,,,,,,TH-1,desk,2035-12-31,H0,",  # row 3: invalid number
        "document,,,,A 123,,,,,,,,TH-1,desk,2035-12-31,H0,",
        "person,Kamal Perera,,LK,,,,,,,,,TH-1,desk,2035-12-31,H0,",  # row 5: no date of birth
        "vessel,,,,,,,IMO 9074728,,,,,TH-1,desk,2035-12-31,H0,",  # row 6: check digit
        "",
        "address,,,,,,,,,TH,88 Moo 4,,TH-1,desk,2035-12-31,H3,",  # row 8: H3 without its note
    ]
    response = await th.request("POST", "/v1/watchlist/import", data="\n".join(rows).encode())
    problem = response.problem("invalid_rows", 422)
    assert [row["row"] for row in problem["rows"]] == [3, 5, 6, 8]
    assert "not valid for its country code" in problem["rows"][0]["problem"]
    assert problem["rows"][1]["problem"] == "date_of_birth is required for a person entry"
    assert "check digit" in problem["rows"][2]["problem"]
    assert "H3 requires handling_note" in problem["rows"][3]["problem"]
    assert "nothing was imported: 4 rows are invalid" in problem["detail"]
    assert "\nrow 5: date_of_birth is required for a person entry" in problem["detail"]
    assert th.count("watch_entries") == 0
    assert actions(th) == [("watch_import", None, "refused")]

    good = "\n".join(row for number, row in enumerate(rows, 1) if number in (1, 2, 4))
    imported = await th.call("POST", "/v1/watchlist/import", data=good.encode())
    assert imported["imported"] == 2
    assert th.count("watch_entries") == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind,number,nickname\n", "column 3 of the header is not one of kind, names"),
        ("number,case_reference\n", "the header has no kind column"),
        ("kind,number,number\n", "the header names a column twice"),
    ],
)
async def test_a_bad_header_is_row_1(th: Node, text: str, problem: str) -> None:
    response = await th.request("POST", "/v1/watchlist/import", data=text.encode())
    [row] = response.problem("invalid_rows", 422)["rows"]
    assert row["row"] == 1
    assert row["problem"].startswith(problem)


async def test_a_file_that_is_not_utf8_is_refused(th: Node) -> None:
    response = await th.request("POST", "/v1/watchlist/import", data=HEADER.encode() + b"\nperson,\xff\n")
    assert "CSV UTF-8" in response.problem("malformed", 400)["detail"]


async def test_the_example_file_imports_and_an_export_imports_into_another_node_unchanged(
    federation: Callable[..., Federation],
) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    imported = await th.call("POST", "/v1/watchlist/import", data=EXAMPLE.read_bytes())
    assert imported["imported"] == 8
    kinds = [item["entry"]["kind"] for item in (await th.call("GET", "/v1/watchlist"))["items"]]
    assert kinds == ["person", "person", "document", "phone", "phone", "vessel", "account", "address"]

    exported = await th.request("GET", "/v1/watchlist/export")
    assert exported.status == 200
    assert exported.content_type == "text/csv"
    assert exported.body.decode().splitlines()[0] == HEADER
    assert (await my.call("POST", "/v1/watchlist/import", data=exported.body))["imported"] == 8
    assert (await my.request("GET", "/v1/watchlist/export")).body == exported.body
    th_tokens = sorted(token for token, _ in await repository(th).tokens(th.clock()))
    assert th_tokens == sorted(token for token, _ in await repository(my).tokens(my.clock()))
    assert "phone:+60123456789" in th_tokens
    assert ("watch_export", None, "ok") in actions(th)


async def test_expired_and_removed_entries_leave_what_matching_sees(th: Node) -> None:
    today = th.clock().date().isoformat()
    short = await th.call("POST", "/v1/watchlist", body=entry(kind="document", number="A1", expires_on=today))
    long = await th.call("POST", "/v1/watchlist", body=entry(kind="document", number="B2"))
    assert set(await tokens_by_item(th)) == {Ref("entry", short["id"]), Ref("entry", long["id"])}

    th.clock.offset = timedelta(days=1)
    assert await tokens_by_item(th) == {Ref("entry", long["id"]): {"document:B2"}}
    listed = (await th.call("GET", "/v1/watchlist"))["items"]
    assert [(item["id"], item["expired"]) for item in listed] == [(short["id"], True), (long["id"], False)]
    assert "A1" not in (await th.request("GET", "/v1/watchlist/export")).body.decode()
    assert await repository(th).entries_for(["document:A1"], th.clock()) == {}

    await th.call("DELETE", f"/v1/watchlist/{long['id']}")
    assert await repository(th).tokens(th.clock()) == []


async def test_entries_for_names_case_contact_and_handling_of_every_holder(th: Node) -> None:
    first = await th.call(
        "POST", "/v1/watchlist", body=entry(kind="phone", number="+66 81 234 5678", handling="H2")
    )
    second = await th.call(
        "POST",
        "/v1/watchlist",
        body=entry(
            kind="phone", number="081-234-5678", region="TH", case_reference="TH-TIP-2", contact="Nok"
        ),
    )
    found = await repository(th).entries_for(["phone:+66812345678", "phone:+66800000000"], th.clock())
    assert list(found) == ["phone:+66812345678"]
    held = {(h.ref.id, h.kind, h.case_reference, h.contact, h.handling) for h in found["phone:+66812345678"]}
    assert held == {
        (first["id"], "phone", "TH-TIP-1", "desk +66 2 205 1000", "H2"),
        (second["id"], "phone", "TH-TIP-2", "Nok", "H0"),
    }


async def test_operations_300_m_and_40_minutes_apart_share_a_token_30_km_or_2_days_apart_do_not(
    th: Node,
) -> None:
    start = (th.clock() + timedelta(days=3)).replace(minute=10, second=0, microsecond=0)
    raid = await th.call("POST", "/v1/operations", body=operation(0, start))
    near = await th.call("POST", "/v1/operations", body=operation(300, start + timedelta(minutes=100)))
    far = await th.call("POST", "/v1/operations", body=operation(30_000, start))
    later = await th.call("POST", "/v1/operations", body=operation(0, start + timedelta(days=2)))
    held = await tokens_by_item(th)
    mine = held[Ref("operation", raid["id"])]
    assert raid["token_count"] == len(mine)
    shared = mine & held[Ref("operation", near["id"])]
    assert shared
    assert not mine & held[Ref("operation", far["id"])]
    assert not mine & held[Ref("operation", later["id"])]

    found = await repository(th).entries_for(shared, th.clock())
    holders = {h.ref.id for token in shared for h in found[token]}
    assert holders == {raid["id"], near["id"]}
    assert {(h.kind, h.case_reference, h.contact) for h in found[min(shared)]} == {
        ("raid", "TH-OP-1", "ops room +66 2 205 1111")
    }

    cancelled = await th.call("POST", f"/v1/operations/{near['id']}/cancel")
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"]
    assert Ref("operation", near["id"]) not in await tokens_by_item(th)
    (await th.request("POST", f"/v1/operations/{near['id']}/cancel")).problem("invalid_state", 409)
    (await th.request("POST", "/v1/operations/01900000-0000-7000-8000-000000000000/cancel")).problem(
        "not_found", 404
    )
    listed = (await th.call("GET", "/v1/operations"))["items"]
    assert [(item["id"], item["status"]) for item in listed] == [
        (raid["id"], "active"),
        (near["id"], "cancelled"),
        (far["id"], "active"),
        (later["id"], "active"),
    ]
    assert ("operation_cancel", near["id"], "ok") in actions(th)
    assert ("operation_list", None, "ok") in actions(th)

    th.clock.offset = timedelta(days=3, hours=3)  # the first raids are over, the later one still planned
    assert set(await tokens_by_item(th)) == {Ref("operation", later["id"])}


async def test_local_times_are_kept_in_utc_and_an_address_operation_meets_a_watched_address(th: Node) -> None:
    year = th.clock().year + 1
    address = {"lines": ["88/12 Moo 4", "Soi Sukhumvit 101"], "city": "Samut Prakan", "country": "TH"}
    body = operation(0, th.clock(), point=None, address=address)
    body.update(start=f"{year}-10-05T06:00", end=f"{year}-10-05T09:30")
    planned = await th.call("POST", "/v1/operations", body=body)
    assert planned["operation"]["start"] == f"{year}-10-04T23:00:00.000Z"
    assert planned["operation"]["end"] == f"{year}-10-05T02:30:00.000Z"
    assert planned["operation"]["zone"] == "Asia/Bangkok"
    assert planned["token_count"] == 1
    watched = await th.call("POST", "/v1/watchlist", body=entry(kind="address", **address))
    [token] = watched["tokens"]
    found = await repository(th).entries_for([token], th.clock())
    assert {h.ref for h in found[token]} == {Ref("entry", watched["id"]), Ref("operation", planned["id"])}


@pytest.mark.parametrize(
    ("change", "status", "code", "sentence"),
    [
        ({"zone": "Asia/Atlantis"}, 400, "malformed", "zone: must be an IANA time zone name"),
        ({"address": {"lines": ["1 Road"], "country": "TH"}}, 400, "malformed", "exactly one of point"),
        ({"point": None}, 400, "malformed", "exactly one of point"),
        ({"kind": "picnic"}, 400, "malformed", "kind: Input should be 'raid'"),
        ({"end": "2015-09-28T00:00:00Z"}, 400, "malformed", "end must come after start"),
        ({"start": "2015-09-28T00:00:00Z"}, 422, "invalid_operation", "last at most 31 days"),
        ({"start": "2015-09-28T00:00:00Z", "end": "2015-09-28T04:00:00Z"}, 422, "invalid_operation", "over"),
        ({"contact": ""}, 400, "malformed", "contact: String should have at least 1 character"),
    ],
    ids=["zone", "two-places", "no-place", "kind", "order", "too-long", "over", "contact"],
)
async def test_a_bad_operation_is_refused_with_a_sentence_and_nothing_is_stored(
    th: Node, change: dict[str, Any], status: int, code: str, sentence: str
) -> None:
    body = operation(0, th.clock() + timedelta(days=1)) | change
    problem = (await th.request("POST", "/v1/operations", body=body)).problem(code, status)
    assert sentence in problem["detail"]
    assert th.count("operations") == 0


async def test_the_openapi_document_lists_the_watch_and_operation_routes(th: Node) -> None:
    document = await th.call("GET", "/v1/openapi.json", token=None)
    for path in (
        "/v1/watchlist",
        "/v1/watchlist/{id}",
        "/v1/watchlist/import",
        "/v1/watchlist/export",
        "/v1/operations",
        "/v1/operations/{id}/cancel",
    ):
        assert path in document["paths"], path
    assert "EntryView" in document["components"]["schemas"]
