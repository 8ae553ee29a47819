"""Searching a folder for words: candidates chosen by the listing's filters, newest first, each opened and
matched on a worker thread.

Bodies are sealed at rest and stay so: there is no index of their words on disk, which a copied database would
give away. A search reads at most :data:`SCAN` messages per request and says where it stopped, so a folder of
any size answers in bounded time and the officer can search further from there.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from node.service import NodeService
from node.storage.mailbox import MessageView
from protocol.errors import Malformed, NcpxError
from protocol.search import matches, query_words, searchable

SCAN = 2_000
"""Messages opened per search request at most (about a second of work on this hardware)."""
PAGE = 200


@dataclass(frozen=True)
class Found:
    """What one search request found, newest first, and where the next one continues (None: nothing left)."""

    views: list[MessageView]
    last: MessageView | None
    scanned: int


def _matching(service: NodeService, views: list[MessageView], wanted: list[str]) -> list[bool]:
    """Which of ``views`` (full rows) hold every wanted word; one this node can no longer open holds none."""
    found = []
    for view in views:
        try:
            found.append(matches(wanted, searchable(service.open_message(view))))
        except NcpxError:
            found.append(False)
    return found


async def search(service: NodeService, folder: str, query: str, limit: int, filters: dict[str, Any]) -> Found:
    """Up to ``limit`` messages of ``folder`` that ``filters`` select (the listing's keywords, ``after``
    included) and whose words match ``query``."""
    wanted = query_words(query)
    if not wanted:
        raise Malformed("a search needs at least one letter or digit: type a word the message contains")
    chosen = {"peer": None, "state": None, "area": None, "overdue": False, "after": None, **filters}
    found: list[MessageView] = []
    scanned = 0
    last: MessageView | None = None
    while scanned < SCAN:
        now = service.clock()
        page = await service.mailbox.listing(folder, **chosen, limit=min(PAGE, SCAN - scanned), now=now)
        if not page:
            return Found(found, None, scanned)
        full = [await service.mailbox.get(v.id, now, v.sender) for v in page]
        for view, hit in zip(page, await asyncio.to_thread(_matching, service, full, wanted), strict=True):
            scanned += 1
            last = view
            if hit:
                found.append(view)
                if len(found) == limit:
                    return Found(found, view, scanned)
        chosen["after"] = (page[-1].created_at, page[-1].id)
    return Found(found, last, scanned)
