"""The retention policy at work: every ``retention.interval_s``, bodies past ``retention.messages_days`` go.

The operator's ``ncpx purge`` runs the same purge at once (or, ``--dry-run``, only counts it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from node.config import Retention as Policy
from node.storage.database import Database
from node.storage.retention import Purgeable, Retention

log = logging.getLogger("ncpx.retention")


async def purge(db: Database, policy: Policy, now: datetime, actor: str, dry_run: bool = False) -> Purgeable:
    """Purge (or count, ``dry_run``) the bodies the policy no longer keeps; nothing without a policy."""
    if policy.messages_days is None:
        return Purgeable(0, 0)
    cutoff = now - timedelta(days=policy.messages_days)
    store = Retention(db)
    if dry_run:
        return await store.purgeable(cutoff)
    return await store.purge(cutoff, now, actor, policy.messages_days)


async def run(db: Database, policy: Policy, clock: Callable[[], datetime]) -> None:
    """Purge now and then every ``interval_s`` for as long as the node runs; a failed round is retried later."""
    while True:
        try:
            done = await purge(db, policy, clock(), "retention")
            if done.messages:
                log.info("retention: bodies of %d message(s) purged", done.messages)
        except Exception:
            log.exception("retention purge failed; it is tried again at the next interval")
        await asyncio.sleep(policy.interval_s)
