"""From the compose and reply forms to the officer API's own models, and back to the form after a refusal.

The console builds exactly the :class:`~node.api_models.NewEnquiry` or :class:`~node.api_models.NewReply` that
a client of the API would post, so the same validation applies; what differs is that a refusal names the field
by its label and says which rule failed, and the form comes back filled in as the officer left it.
Subjects are rows (a person, a phone, a vessel ...); without a script, "add a row" posts the form back with one
more empty row of that kind.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import ValidationError

from node.api_models import NewEnquiry, NewReply

ROWS: dict[str, tuple[str, ...]] = {
    "person": ("family_name", "given_names", "date_of_birth", "nationality", "document"),
    "phone": ("number", "note"),
    "vessel": ("name", "imo", "flag"),
    "account": ("account", "bank", "country", "holder"),
    "address": ("lines", "city", "country"),
    "document": ("number", "type", "issuing_country"),
}
"""Row kinds of the subjects part of the form and their columns, in display order."""

LISTS = {
    "person": "persons",
    "phone": "phones",
    "vessel": "vessels",
    "account": "bank_accounts",
    "address": "addresses",
    "document": "travel_documents",
}
"""Where each row kind goes in :class:`protocol.models.Subjects`."""

MAX_ROWS = 50
SCALARS = (
    "subject",
    "area",
    "sector",
    "urgency",
    "handling",
    "handling_note",
    "tlp",
    "evaluation_source",
    "evaluation_information",
    "text",
)
COUNTRY_FIELDS = {"nationality", "flag", "country", "issuing_country"}
MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


@dataclass
class Draft:
    """What the officer typed, kept to fill the form in again."""

    values: dict[str, str] = field(default_factory=dict)
    recipients: list[str] = field(default_factory=list)
    rows: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {kind: [dict.fromkeys(cols, "")] for kind, cols in ROWS.items()}
    )
    added: str | None = None
    """The row kind the officer asked one more row of (the form is shown again, nothing is sent)."""
    submission: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    """Written into the form and kept while it is shown again: the form sends once, however often submitted."""


SUBMISSION = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""What a form's own submission key looks like (anything else is replaced by a fresh one)."""


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_draft(form: Form) -> Draft:
    """The form as typed, with one more row where the officer asked for one."""
    draft = Draft(values={name: _text(form, name) for name in SCALARS})
    if SUBMISSION.fullmatch(submission := _text(form, "submission")):
        draft.submission = submission
    draft.recipients = [v for v in form.getall("recipients", []) if isinstance(v, str)]
    added = _text(form, "add")
    for kind, columns in ROWS.items():
        try:
            count = min(max(int(_text(form, f"{kind}-rows") or "1"), 1), MAX_ROWS)
        except ValueError:
            count = 1
        rows = [{col: _text(form, f"{kind}-{i}-{col}") for col in columns} for i in range(count)]
        if added == kind and count < MAX_ROWS:
            rows.append(dict.fromkeys(columns, ""))
            draft.added = kind
        draft.rows[kind] = rows
    return draft


def _present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v not in ("", None, [])}


def _subject(kind: str, row: dict[str, str]) -> dict[str, Any]:
    """One row as the model's shape; spaces officers type inside numbers are dropped."""
    if kind == "person":
        person: dict[str, Any] = {k: row[k] for k in ("family_name", "given_names", "date_of_birth")}
        person["nationality"] = row["nationality"].upper()
        if row["document"]:
            person["travel_documents"] = [{"number": row["document"]}]
        return _present(person)
    if kind == "phone":
        return _present({"number": re.sub(r"[\s().-]", "", row["number"]), "note": row["note"]})
    if kind == "vessel":
        imo = re.sub(r"\s", "", re.sub(r"^\s*IMO", "", row["imo"], flags=re.IGNORECASE))
        return _present({"name": row["name"], "imo": imo, "flag": row["flag"].upper()})
    if kind == "address":
        lines = [line.strip() for line in row["lines"].splitlines() if line.strip()]
        return _present({"lines": lines, "city": row["city"], "country": row["country"].upper()})
    upper = {k: v.upper() if k in COUNTRY_FIELDS else v for k, v in row.items()}
    return _present(upper)


def _filled(row: dict[str, str]) -> bool:
    """Whether the officer wrote anything in a row (a choice list always has a value, so it does not count)."""
    return any(value for column, value in row.items() if column != "type")


def _content(draft: Draft, files: list[web.FileField]) -> dict[str, Any]:
    values = draft.values
    data: dict[str, Any] = {
        "handling": values["handling"] or "H0",
        "tlp": values["tlp"] or "TLP:AMBER",
        "text": values["text"],
        "subjects": {
            LISTS[kind]: [_subject(kind, row) for row in rows if _filled(row)]
            for kind, rows in draft.rows.items()
        },
        "attachments": [
            {
                "name": f.filename,
                "media_type": f.content_type
                if MEDIA_TYPE.match(f.content_type or "")
                else "application/octet-stream",
                "data": f.file.read(),
            }
            for f in files
        ],
    }
    if values["handling_note"]:
        data["handling_note"] = values["handling_note"]
    if values["evaluation_source"] or values["evaluation_information"]:
        data["evaluation"] = _present(
            {"source": values["evaluation_source"], "information": values["evaluation_information"]}
        )
    return data


def files_of(form: Form) -> list[web.FileField]:
    """The files chosen in the form (a file input left empty sends a part without a name)."""
    return [f for f in form.getall("attachments", []) if isinstance(f, web.FileField) and f.filename]


Problem = tuple[str, str]
"""(field label, what is wrong with it), both in the officer's language."""


def enquiry(
    draft: Draft, files: list[web.FileField], t: Callable[..., str]
) -> tuple[NewEnquiry | None, list[Problem]]:
    """The enquiry the form describes, or the problems that keep it from being one."""
    data = _content(draft, files)
    data.update(recipients=draft.recipients, area=draft.values["area"], subject=draft.values["subject"])
    data["urgency"] = draft.values["urgency"] or "normal"
    if draft.values["sector"]:
        data["sector"] = draft.values["sector"]
    try:
        return NewEnquiry.model_validate(data), []
    except ValidationError as exc:
        return None, problems(exc, t)


def reply(
    draft: Draft, files: list[web.FileField], t: Callable[..., str]
) -> tuple[NewReply | None, list[Problem]]:
    """The reply the form describes, or the problems that keep it from being one."""
    try:
        return NewReply.model_validate(_content(draft, files)), []
    except ValidationError as exc:
        return None, problems(exc, t)


def problems(exc: ValidationError, t: Callable[..., str]) -> list[Problem]:
    """Each validation error as the label of its field and the rule it broke (never the value typed)."""
    found: list[Problem] = []
    for error in exc.errors():
        problem = (_label([str(p) for p in error["loc"]], t), _rule(error, t))
        if problem not in found:
            found.append(problem)
    return found


def _label(loc: list[str], t: Callable[..., str]) -> str:
    if not loc:  # a rule across fields: the only one is H3 without a note
        return t("field.handling_note")
    if loc[0] == "subjects" and len(loc) >= 3:
        kind = next(k for k, v in LISTS.items() if v == loc[1])
        row = f"{t(f'subjects.{loc[1]}')} {int(loc[2]) + 1}"
        return f"{row}: {t(f'{kind}.{loc[3]}')}" if len(loc) >= 4 else row
    if loc[0] == "attachments":
        return t("field.attachments")
    if loc[0] == "evaluation":
        return t(f"field.evaluation_{loc[-1]}") if len(loc) > 1 else t("field.evaluation")
    if loc[0] == "recipients":
        return t("compose.recipients")
    return t(f"field.{loc[0]}")


def _rule(error: Any, t: Callable[..., str]) -> str:
    loc = [str(p) for p in error["loc"]]
    kind = error["type"]
    last = loc[-1] if loc else ""
    if not loc:
        return t("problem.h3_note")
    if last == "imo":
        return t("problem.imo")
    if loc[:2] == ["subjects", "phones"] and last == "number":
        return t("problem.phone")
    if last in COUNTRY_FIELDS:
        return t("problem.country")
    if loc[0] == "recipients":
        return t("problem.recipients")
    if loc[0] == "attachments":
        return t("problem.file_name")
    if kind in ("missing", "string_too_short") or (kind == "list_too_short"):
        return t("problem.required")
    if kind in ("string_too_long", "too_long"):
        return t("problem.too_long")
    if kind.startswith("date"):
        return t("problem.date")
    return t("problem.invalid")
