"""A peer that lies about delivery: each falsified answer leaves the message ``sent`` and its outbox row in
place, so it is delivered once a truthful answer comes. Each case fails if its check is taken out of the code
(the receipt's signature and digest, the refusal's signature, no redirects, the cap on an answer's size).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.node.support import HOSTILE_MODES, Federation, HostilePeer, wait_for


@pytest.mark.parametrize("mode", HOSTILE_MODES)
async def test_a_false_answer_never_settles_a_message(
    federation: Callable[..., Federation], mode: str
) -> None:
    fed = federation(["TH", "MY", "ID"])
    th = await fed.start("TH")
    hostile = await HostilePeer(fed, "MY", mode).start()
    try:
        created = await th.call(
            "POST", "/v1/enquiries", body={"recipients": ["MY"], "area": "other", "subject": "s", "text": "t"}
        )
        message_id = created["messages"][0]["id"]
        # Two answers read and weighed: the first did not settle the message, so it was tried again.
        await wait_for(lambda: hostile.hits >= 2, what="a second attempt after the false answer")
        summary = await th.summary(message_id, "sent")
        assert summary is not None
        assert summary["state"] == "sent"
        assert summary.get("delivered_at") is None
        assert th.count("outbox") == 1
        assert hostile.sink_hits == 0  # a redirect is never followed
    finally:
        await hostile.stop()
