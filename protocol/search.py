"""Search over what an officer can read: every word a sender wrote in a message, folded as names are.

Bodies are sealed at rest, so there is no index: a search opens each candidate message and asks :func:`matches`
of the words :func:`searchable` finds in it. A query matches when each of its words begins a word of the message,
or when its words run together begin one, whatever the case, the Latin accents or the punctuation: "sea star"
finds "Sea-Star", "9074729" finds "IMO 9074729", "+66 81" finds "+66812345678", "nguyen" finds "Nguyễn".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from protocol.models import SealedBody
from protocol.normalise import words

MAX_QUERY = 200
"""Longest query accepted, in characters: a search is for a few words, not a document."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def searchable(body: SealedBody) -> str:
    """The folded words of every field the sender wrote (attachments by name only), one space apart, with each
    field's words also run together so that numbers written with separators are found whole."""
    data = body.model_dump(mode="json", exclude={"attachments": {"__all__": {"data"}}})
    parts: list[str] = []
    for text in _strings(data):
        found = words(text)
        parts.extend(found)
        if len(found) > 1:
            parts.append("".join(found))
    return " " + " ".join(parts)


def query_words(query: str) -> list[str]:
    """The words a query asks for (none when it holds no letter or digit)."""
    return words(query[:MAX_QUERY])


def matches(wanted: list[str], text: str) -> bool:
    """Whether each wanted word, or all of them run together, begins a word of ``text`` (as :func:`searchable`
    made it). No word wanted matches nothing."""
    if not wanted:
        return False
    return all(" " + word in text for word in wanted) or " " + "".join(wanted) in text
