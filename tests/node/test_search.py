"""Search over what the node can open: the officer API, the console and the CLI find messages by any word the
sender wrote, within the listing's filters, a bounded number opened per request, and never by attachment bytes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.node.support import Federation, Node, wait_for
from tests.node.test_cli import ncpx
from tests.node.test_console import get, sign_in

ENQUIRIES = [
    {
        "subject": "Crew of the Sea-Star",
        "text": "Skipper Nguyễn Văn An was seen in Belawan.",
        "subjects": {"vessels": [{"name": "Sea Star", "imo": "9074729"}]},
    },
    {
        "subject": "Recruiter in Songkhla",
        "text": "Phone used to recruit fishermen.",
        "handling": "H3",
        "handling_note": "Do not share with immigration",
        "subjects": {"phones": [{"number": "+66812345678"}]},
        "attachments": [
            {
                "name": "ledger.txt",
                "media_type": "text/plain",
                "data": base64.urlsafe_b64encode(b"belawan").decode().rstrip("="),
            }
        ],
    },
    {"subject": "Second sighting of the Sea Star", "text": "Anchored off Langkawi."},
]


async def exchanged(federation: Callable[..., Federation]) -> tuple[Node, Node, list[str]]:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    ids = []
    for fields in ENQUIRIES:
        body: dict[str, Any] = {"recipients": ["MY"], "area": "people_smuggling", **fields}
        ids.append((await th.call("POST", "/v1/enquiries", body=body))["messages"][0]["id"])
    for message_id in ids:
        await wait_for(lambda i=message_id: my.summary(i, "inbox"), what="delivery to MY")
    return th, my, ids


async def found(node: Node, **query: str) -> tuple[list[str], dict[str, Any]]:
    page = await node.call("GET", "/v1/messages", params=query)
    return [item["id"] for item in page["items"]], page


async def test_the_officer_api_finds_messages_by_any_word_the_sender_wrote(
    federation: Callable[..., Federation],
) -> None:
    th, my, ids = await exchanged(federation)
    first, second, third = ids
    assert (await found(my, q="sea star"))[0] == [third, first]  # newest first
    assert (await found(my, q="nguyen belawan"))[0] == [first]  # accents and case set aside
    assert (await found(my, q="+66 81"))[0] == [second]  # a structured subject, written another way
    assert (await found(my, q="immigration"))[0] == [second]  # the handling note
    assert (await found(my, q="ledger"))[0] == [second]  # an attachment's name, never its bytes
    assert (await found(my, q="belawan"))[0] == [first]
    assert (await found(my, q="langkawi", state="read"))[0] == []  # within the other filters
    ids_found, page = await found(my, q="zanzibar")
    assert ids_found == []
    assert (page["searched"], page.get("next")) == (3, None)
    # The sender searches its own copies the same way.
    assert (await found(th, folder="sent", q="songkhla"))[0] == [second]
    # A page of one match says where to go on, and going on finds the next.
    one, page = await found(my, q="sea", limit="1")
    assert one == [third]
    assert page["next"]
    assert (await found(my, q="sea", limit="1", cursor=page["next"]))[0] == [first]
    # Searching never marks anything read.
    assert all(item["state"] == "received" for item in (await my.call("GET", "/v1/messages"))["items"])


async def test_a_query_without_a_word_is_refused_in_a_sentence(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH"])
    th = await fed.start("TH")
    answer = await th.request("GET", "/v1/messages", params={"q": " -- "})
    assert answer.status == 400
    problem = answer.json()
    assert problem["code"] == "malformed"
    assert "type a word the message contains" in problem["detail"]


async def test_the_console_and_the_cli_search_the_same_way(federation: Callable[..., Federation]) -> None:
    _, my, ids = await exchanged(federation)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        await sign_in(browser, my)
        status, page, _ = await get(browser, my.api_url + "/inbox?q=sea+star")
    assert status == 200
    assert "Crew of the Sea-Star" in page
    assert "Second sighting" in page
    assert "Recruiter in Songkhla" not in page
    assert 'value="sea star"' in page  # the search box keeps what was typed
    assert "Searched 3 messages" in page
    run = await ncpx(my, "inbox", "--search", "songkhla", "--wide")
    assert run.code == 0, run.err
    assert ids[1] in run.out
    assert ids[0] not in run.out
    assert "searched the 3 newest messages" in run.out
