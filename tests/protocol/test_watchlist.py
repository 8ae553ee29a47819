"""Watch-list entries and operations as officers give them: tokens, CSV rows and refusals in sentences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import grid
from protocol.errors import InvalidRows, InvalidSubject, Malformed
from protocol.watchlist import COLUMNS, NewOperation, parse_csv, parse_entry, parse_operation, to_csv

TODAY = date(2015, 9, 28)
SHARED = {"case_reference": "LK-1", "contact": "desk", "expires_on": "2015-10-28"}


def tokens(**fields: Any) -> frozenset[str]:
    return parse_entry({**SHARED, **fields}, TODAY)[1]


def test_the_same_subject_written_two_ways_gives_one_token() -> None:
    assert tokens(kind="phone", number="081-234-5678", region="TH") == tokens(
        kind="phone", number="+66812345678"
    )
    assert tokens(
        kind="person", names="Perera, Kamal", date_of_birth="1984-03-07", nationality="lk"
    ) == tokens(kind="person", names="KAMAL PERERA", date_of_birth="1984-03-07", nationality="LK")
    assert tokens(kind="document", number="n 1234567-8") == {"document:N12345678"}


def test_a_vessel_is_matched_by_its_imo_number_and_by_its_name_under_its_flag() -> None:
    assert tokens(kind="vessel", name="KM Harapan", imo="9074729", flag="ID") == {
        "vessel:imo:9074729",
        "vessel:name:ID:km harapan",
    }
    assert tokens(kind="vessel", imo="9074729") == {"vessel:imo:9074729"}
    with pytest.raises(InvalidSubject, match="IMO number, or its name and flag"):
        tokens(kind="vessel", name="KM Harapan")


def test_an_entry_is_matched_through_its_last_day_and_refused_after_it() -> None:
    assert parse_entry({**SHARED, "kind": "document", "number": "A1"}, date(2015, 10, 28))
    with pytest.raises(InvalidSubject, match="expires_on has passed"):
        parse_entry({**SHARED, "kind": "document", "number": "A1"}, date(2015, 10, 29))


def test_refusals_name_fields_never_values() -> None:
    with pytest.raises(Malformed) as refused:
        parse_entry(
            {**SHARED, "kind": "person", "names": "Q", "date_of_birth": "SECRET", "secret_key": 1}, TODAY
        )
    assert "date_of_birth: Input should be a valid date" in refused.value.detail
    assert "nationality is required for a person entry" in refused.value.detail
    assert "a field unknown to a person entry was given" in refused.value.detail
    assert "SECRET" not in refused.value.detail
    assert "secret_key" not in refused.value.detail


def wordy(text: str) -> bool:
    return any(c.isalnum() for c in text)


ENTRIES = st.one_of(
    st.builds(
        lambda n, d: {"kind": "person", "names": n, "date_of_birth": d.isoformat(), "nationality": "MY"},
        st.text("abcdefgh ,'", min_size=1, max_size=30).filter(lambda s: any(c.isalpha() for c in s)),
        st.dates(date(1930, 1, 1), date(2010, 1, 1)),
    ),
    st.builds(
        lambda n: {"kind": "document", "number": n},
        st.text("ABC0123456789", min_size=1, max_size=20),
    ),
    st.builds(
        lambda lines, city: {"kind": "address", "lines": lines, "city": city, "country": "PH"},
        st.lists(st.text('abc 12,"\n', min_size=1, max_size=20).filter(wordy), min_size=1, max_size=3),
        st.text("Manila é", min_size=1, max_size=10).filter(str.strip),
    ),
)


@given(st.lists(ENTRIES, min_size=1, max_size=8), st.sampled_from(["H0", "H1", "H2"]))
@settings(max_examples=60, deadline=None)
def test_an_exported_list_imports_back_to_the_same_entries_and_tokens(
    given_entries: list[dict[str, Any]], handling: str
) -> None:
    rows = [parse_entry({**SHARED, "handling": handling, **e}, TODAY) for e in given_entries]
    again = parse_csv(to_csv(entry for entry, _ in rows), TODAY)
    assert [tokens for _, tokens in again] == [tokens for _, tokens in rows]
    assert [entry.model_dump()["kind"] for entry, _ in again] == [e["kind"] for e in given_entries]


def test_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    text = (
        "\ufeffkind,number,lines,country,case_reference,contact,expires_on\r\n"
        'address,,"1 Road\n2nd floor",TH,LK-1,desk,2015-10-28\r\n'  # row 2 spans two lines of the file
        "document,,,,LK-1,desk,2015-10-28\r\n"  # row 3: no number
        "document,A1,,,LK-1,desk,2015-10-28,extra\r\n"  # row 4: a cell beyond the header
    )
    with pytest.raises(InvalidRows) as refused:
        parse_csv(text, TODAY)
    assert refused.value.rows == [
        (3, "number is required for a document entry"),
        (4, "the row has more cells than the header has columns"),
    ]


def test_the_columns_are_every_field_of_every_kind() -> None:
    assert COLUMNS[0] == "kind"
    assert {
        "names",
        "date_of_birth",
        "nationality",
        "number",
        "region",
        "imo",
        "flag",
        "lines",
        "city",
    } <= set(COLUMNS)
    assert COLUMNS[-5:] == ("case_reference", "contact", "expires_on", "handling", "handling_note")


OPERATION = {
    "kind": "boarding",
    "point": {"latitude": 6.9271, "longitude": 79.8612, "radius_m": 500},
    "case_reference": "LK-OP-1",
    "contact": "SLN ops",
}


def test_an_unknown_field_is_never_named_even_inside_a_known_one() -> None:
    body = {**OPERATION, "zone": "UTC", "start": "2015-10-01T04:00Z", "end": "2015-10-01T05:00Z"}
    body["point"] = {**OPERATION["point"], "target_mobile_0812345678": 1}
    with pytest.raises(Malformed) as refused:
        parse_operation(body, datetime(2015, 9, 28, tzinfo=UTC))
    assert refused.value.detail == "a field unknown to an operation was given"
    with pytest.raises(Malformed, match="zone is required for an operation"):
        parse_operation(
            {**OPERATION, "start": "2015-10-01T04:00Z", "end": "2015-10-01T05:00Z"},
            datetime(2015, 9, 28, tzinfo=UTC),
        )


def test_local_times_are_read_in_the_zone_given_with_summer_time() -> None:
    summer = NewOperation.model_validate(
        {**OPERATION, "zone": "Europe/London", "start": "2015-07-01T06:00", "end": "2015-07-01T08:00"}
    )
    assert summer.start == datetime(2015, 7, 1, 5, tzinfo=UTC)
    winter = NewOperation.model_validate(
        {**OPERATION, "zone": "Europe/London", "start": "2015-12-01T06:00", "end": "2015-12-01T08:00"}
    )
    assert winter.start == datetime(2015, 12, 1, 6, tzinfo=UTC)
    offset = NewOperation.model_validate(
        {**OPERATION, "zone": "Asia/Colombo", "start": "2015-12-01T06:00+07:00", "end": "2015-12-01T08:00Z"}
    )
    assert offset.start == datetime(2015, 11, 30, 23, tzinfo=UTC)  # an explicit offset wins over the zone
    assert offset.model_dump(mode="json")["start"] == "2015-11-30T23:00:00.000Z"


def test_a_point_operation_has_the_grid_tokens_and_an_over_one_is_refused() -> None:
    start = datetime(2015, 10, 1, 4, tzinfo=UTC)
    body = {**OPERATION, "zone": "UTC", "start": "2015-10-01T04:00:00Z", "end": "2015-10-01T06:00:00Z"}
    operation, found = parse_operation(body, start - timedelta(days=1))
    assert found == grid.operation(6.9271, 79.8612, 500, start, start + timedelta(hours=2))
    assert operation.tokens() == found
    with pytest.raises(InvalidSubject, match="window is over"):
        parse_operation(body, start + timedelta(hours=2))
