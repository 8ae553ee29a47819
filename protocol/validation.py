"""Schema failures told to people: which field, in words, and which rule it broke, in one sentence each.

pydantic reports a failure as a path (``subjects.vessels.0.imo``) and a message written for programmers
(``String should match pattern ...``); an officer needs "The IMO number of vessel 1: the check digit does not
match". Every place that refuses a request of officers for its shape goes through :func:`explain`, so that the
CLI, the API and the console all say the same. Like every refusal, the sentences never quote the refused input:
an unknown field is called "a field ncpx does not know", never by the name it was given.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_ITEMS = {
    "persons": "person",
    "phones": "phone",
    "vessels": "vessel",
    "bank_accounts": "bank account",
    "addresses": "address",
    "travel_documents": "travel document",
    "attachments": "attachment",
    "recipients": "recipient",
    "aliases": "alias",
    "lines": "address line",
}
"""Lists an officer fills, by what one item of each is called (a position is counted from 1)."""

_FIELDS = {
    "imo": "IMO number",
    "tlp": "TLP marking",
    "media_type": "media type",
    "source": "source reliability",
    "information": "information accuracy",
}
"""Field names that read badly once their underscores are spaces."""

_PATTERNS = {
    "number": "is not an E.164 phone number: write a plus sign, the country code and the number, with no spaces "
    "or dashes, e.g. +66812345678",
    "media_type": "is not a media type such as image/jpeg",
}
"""What a field's pattern means, by field name (other patterns are only "not in the expected form")."""

_SHOWN = 5
"""Most failures told at once; the rest are counted (fixing the first ones often fixes those too)."""


def explain(error: ValidationError) -> str:
    """One sentence per failure of ``error`` (at most a few), joined; never quotes the refused input."""
    sentences = [_sentence(item) for item in error.errors()]
    unique = list(dict.fromkeys(sentences))
    text = " ".join(unique[:_SHOWN])
    if len(unique) > _SHOWN:
        text += f" ({len(unique) - _SHOWN} more problems of the same request not shown.)"
    return text


def _sentence(item: Any) -> str:
    loc = [part for part in item["loc"] if not isinstance(part, str) or not part.startswith("function-")]
    kind: str = item["type"]
    if kind == "extra_forbidden":
        place = _place(loc[:-1])
        return f"{_capital(place or 'the request')} has a field ncpx does not know: remove it."
    place = _place(loc)
    rule = _rule(kind, item, str(loc[-1]) if loc else "")
    if not place:
        return _capital(rule) + "."
    return f"{_capital(place)}{':' if kind in ('value_error', 'assertion_error') else ''} {rule}."


def _place(loc: list[Any]) -> str:
    """``['subjects', 'vessels', 0, 'imo']`` as "the IMO number of vessel 1"."""
    words: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            continue
        following = loc[index + 1] if index + 1 < len(loc) else None
        if part in _ITEMS and isinstance(following, int):
            words.append(f"{_ITEMS[part]} {following + 1}")
        elif part != "subjects" or following is None:
            words.append("the " + _FIELDS.get(part, part.replace("_", " ")))
    return " of ".join(reversed(words))


def _rule(kind: str, item: Any, field: str) -> str:
    context = item.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        return str(context.get("error", item["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(field, "is not in the expected form")
    if kind == "enum" or kind == "literal_error":
        return f"must be one of {context.get('expected', 'the listed values')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is longer than {context.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {_items(context.get('min_length'))}"
    if kind == "too_long":
        return f"must have at most {_items(context.get('max_length'))}"
    if kind.startswith("date"):
        return "is not a date: write it as YYYY-MM-DD, e.g. 1990-03-31"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind == "list_type":
        return "must be a list"
    if kind == "string_type":
        return "must be text"
    return "is not valid: " + str(item["msg"]).lower()


def _items(count: Any) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
