"""Backup, restore and re-sync, the schema guard, the audit trail and retention, on real nodes and real files.

The backup and the restore run as the operator runs them (``python -m node.cli`` in its own process), the
backup while the node takes writes; the restored node is a real server in a fresh folder that re-syncs from
its real peer over the signed federation API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from node.config import NodeConfig, Retention, write_config
from node.officer_api import OFFICERS
from node.retention import purge
from node.server import NodeServer
from node.storage.database import Database, _migrations
from protocol.envelope import Envelope
from protocol.errors import SchemaTooNew
from tests.node.support import Federation, Node, TestClock, wait_for
from tests.node.support import run_cli as ncpx

ENQUIRY = {
    "recipients": ["MY"],
    "area": "people_smuggling",
    "urgency": "urgent_indirect",
    "subject": "Vessel suspected of carrying migrants",
    "text": "Please confirm the last port of call.",
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def toml(config: NodeConfig, path: Path) -> Path:
    write_config(path, config)
    return path


async def send(node: Node, to: str, text: str) -> str:
    created = await node.call("POST", "/v1/enquiries", body=ENQUIRY | {"recipients": [to], "text": text})
    return str(created["messages"][0]["id"])


def history(node: Node) -> set[tuple[str, str, str, str]]:
    return {
        (r["folder"], r["sender"], r["id"], r["state"])
        for r in node.rows("SELECT folder, sender, id, state FROM messages")
    }


# -- schema guard and the copy before a migration --


async def test_a_database_newer_than_the_code_is_refused_with_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    db = await Database.open(path)
    await db.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (9999)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNew) as refused:
        await Database.open(path)
    assert "schema version 9999" in refused.value.detail
    assert "run the release that wrote it" in refused.value.detail


async def test_a_copy_is_taken_beside_the_database_before_migrating(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in _migrations():
        if number >= 15:
            break
        conn.executescript(script)
        conn.execute("INSERT INTO schema_version VALUES (?)", (number,))
    conn.execute(
        "INSERT INTO audit (at, actor, action, outcome) VALUES ('2015-10-01T00:00:00.000Z', 'a', 'b', 'ok')"
    )
    conn.commit()
    before = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    conn.close()

    db = await Database.open(path)
    assert await db.schema_version() > before
    await db.close()
    copy = sqlite3.connect(tmp_path / "node.db.before-0015")
    try:
        assert copy.execute("SELECT max(version) FROM schema_version").fetchone()[0] == before
        assert copy.execute("SELECT count(*) FROM audit").fetchone()[0] == 1
    finally:
        copy.close()
    assert oct((tmp_path / "node.db.before-0015").stat().st_mode & 0o777) == "0o600"
    # A new file needs no copy, and an up-to-date one is not copied again.
    db = await Database.open(tmp_path / "fresh.db")
    await db.close()
    db = await Database.open(tmp_path / "fresh.db")
    await db.close()
    assert not [n for n in os.listdir(tmp_path) if n.startswith("fresh.db.before-")]


# -- backup under load, restore, re-sync --


async def test_backup_under_load_restore_and_resync_from_the_peer(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    config = toml(th.config, tmp_path / "th.toml")
    passphrase = {"NCPX_BACKUP_PASSPHRASE": "correct horse battery staple"}

    # Both sides write while the backup runs in the operator's own process.
    sending = [asyncio.create_task(send(th, "MY", f"before {i}")) for i in range(10)]
    sending += [asyncio.create_task(send(my, "TH", f"before {i}")) for i in range(10)]
    backup = tmp_path / "backup"
    code, out, err = await ncpx(
        "backup", "--config", str(config), "--out", str(backup), "--with-keys", "--json", env=passphrase
    )
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["node"] == "TH"
    assert manifest["keys"] == "keys.sealed"
    assert manifest["schema_version"] == max(n for n, _ in _migrations())
    await asyncio.gather(*sending)
    assert b"identity" not in (backup / "keys.sealed").read_bytes()  # sealed, not a copy of the key file

    # After the backup: more traffic both ways, a reply, reads on both sides.
    ours = [await send(th, "MY", f"after {i}") for i in range(3)]
    theirs = [await send(my, "TH", f"after {i}") for i in range(3)]
    for message_id in ours:
        await wait_for(lambda m=message_id: my.state_is(m, "inbox", "received"), what="delivered to MY")
    await my.call("POST", f"/v1/messages/{ours[0]}/read")
    reply = await my.call("POST", f"/v1/messages/{ours[1]}/replies", body={"text": "Belawan."})
    for message_id in theirs:
        await wait_for(lambda m=message_id: th.state_is(m, "inbox", "received"), what="delivered to TH")
    await th.call("POST", f"/v1/messages/{theirs[0]}/read")
    await wait_for(lambda: th.state_is(ours[1], "sent", "answered"), what="reply at TH")
    await wait_for(lambda: th.state_is(ours[0], "sent", "read"), what="read notice at TH")
    await wait_for(lambda: my.state_is(theirs[0], "sent", "read"), what="read notice at MY")
    await wait_for(lambda: not th.count("outbox") and not my.count("outbox"), what="both outboxes empty")
    before = history(th)
    at_my = history(my)
    await th.stop()

    # Restore into a fresh folder: database and keys from the backup, nothing else.
    fresh = tmp_path / "restored"
    fresh.mkdir()
    (fresh / "roster.json").write_bytes((fed.root / "TH" / "roster.json").read_bytes())
    restored = th.config.model_copy(update={"data_dir": fresh, "roster_file": fresh / "roster.json"})
    fresh_toml = toml(restored, fresh / "node.toml")
    code, out, err = await ncpx("restore", "--config", str(fresh_toml), "--from", str(backup), env=passphrase)
    assert code == 0, err
    assert (fresh / "keys" / "identity.key").stat().st_mode & 0o077 == 0
    again, _, err = await ncpx("restore", "--config", str(fresh_toml), "--from", str(backup), env=passphrase)
    assert again == 5
    assert "restore_refused" in err

    server = NodeServer(restored, TestClock(), access_log=False)
    await server.start()
    th = Node("TH", restored, server, fed.session, TestClock(), th.token)
    fed.nodes["TH"] = th
    await wait_for(
        lambda: [r["part"] for r in th.rows("SELECT part FROM resync")] == ["done"], what="re-sync done"
    )
    await wait_for(lambda: not th.count("outbox"), what="TH's outbox settled")
    assert history(th) == before  # nothing missing, nothing twice, every state as it was
    assert history(my) == at_my  # the peer stored nothing again

    # What came back: their messages readable; ours without the body we alone had sealed for ourselves.
    opened = await th.call("GET", f"/v1/messages/{theirs[1]}")
    assert opened["message"]["text"] == "after 1"
    (await th.request("GET", f"/v1/messages/{ours[2]}")).problem("cannot_open")
    [recovered] = th.rows("SELECT receipt, local_sealed FROM messages WHERE id = ?", (ours[2],))
    assert recovered["receipt"] is not None
    assert recovered["local_sealed"] is None
    assert await th.state_is(reply["messages"][0]["id"], "inbox", "received")
    trail = await th.call("GET", "/v1/audit", params={"action": "restore"})
    assert len(trail["entries"]) == 1

    # And it keeps exchanging.
    new = await send(th, "MY", "after the restore")
    await wait_for(lambda: my.state_is(new, "inbox", "received"), what="new message at MY")
    back = await send(my, "TH", "welcome back")
    await wait_for(lambda: th.state_is(back, "inbox", "received"), what="new message at TH")


async def test_resync_only_hands_a_peer_its_own_messages(federation: Callable[..., Federation]) -> None:
    fed = federation(["TH", "MY", "ID"])
    th, my, id_ = await fed.start("TH"), await fed.start("MY"), await fed.start("ID")
    to_id = await send(th, "ID", "for ID only")
    to_my = await send(th, "MY", "for MY")
    await wait_for(lambda: id_.state_is(to_id, "inbox", "received"), what="at ID")
    # TH keeps a message for a re-sync once it holds the receipt, which it stores after MY has the message.
    await wait_for(lambda: th.state_is(to_my, "sent", "delivered"), what="MY's receipt at TH")
    answered = await my.worker.post(
        "TH", "/federation/v1/resync", {"part": "sent_to_us", "since": "2000-01-01T00:00:00Z", "after": None}
    )
    ids = [Envelope.model_validate_json(i["envelope"]).header.id for i in answered[1]["items"]]
    assert answered[0] == 200
    assert ids == [to_my]
    refused = await my.worker.post(
        "TH", "/federation/v1/resync", {"part": "everything", "since": "2000-01-01T00:00:00Z"}
    )
    assert refused[0] == 400
    assert refused[1]["code"] == "malformed"


async def test_restore_refuses_another_nodes_backup_and_a_damaged_one(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    backup = tmp_path / "backup"
    code, _, err = await ncpx(
        "backup", "--config", str(toml(th.config, tmp_path / "th.toml")), "--out", str(backup)
    )
    assert code == 0, err
    assert not (backup / "keys.sealed").exists()
    code, _, err = await ncpx(
        "restore", "--config", str(toml(my.config, tmp_path / "my.toml")), "--from", str(backup)
    )
    assert code == 5
    assert "restore_refused" in err
    assert "not of MY" in err
    with sqlite3.connect(backup / "node.db") as conn:
        conn.execute("DELETE FROM officers")
    code, _, err = await ncpx(
        "restore", "--config", str(tmp_path / "th.toml"), "--from", str(backup), "--force"
    )
    assert code == 5
    assert "backup_unusable" in err


# -- audit --


async def test_audit_filters_by_officer_action_and_time(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    message_id = await send(my, "TH", "audit me")
    await wait_for(lambda: th.state_is(message_id, "inbox", "received"), what="delivered")
    await th.call("GET", f"/v1/messages/{message_id}")
    await th.request("GET", "/v1/messages", token="wrong")  # a refused sign-in is audited too

    opened = await th.call("GET", "/v1/audit", params={"action": "open_message"})
    assert [(e["actor"], e["target"]) for e in opened["entries"]] == [("officer-th", message_id)]
    refused = await th.call("GET", "/v1/audit", params={"action": "sign_in"})
    assert refused["entries"][0]["outcome"] == "refused"
    assert refused["entries"][0]["actor"].startswith("address")
    by_officer = await th.call("GET", "/v1/audit", params={"officer": "officer-th"})
    assert {e["actor"] for e in by_officer["entries"]} == {"officer-th"}
    later = await th.call("GET", "/v1/audit", params={"since": "2999-01-01T00:00:00Z"})
    assert later["entries"] == []
    earlier = await th.call("GET", "/v1/audit", params={"until": "2000-01-01T00:00:00Z"})
    assert earlier["entries"] == []
    paged = await th.call("GET", "/v1/audit", params={"limit": "1"})
    assert len(paged["entries"]) == 1
    assert paged["next"] is not None
    (await th.request("GET", "/v1/audit", token=None)).problem("unauthorized", 401)

    code, out, err = await ncpx(
        "audit",
        "--action",
        "open_message",
        "--since",
        "1d",
        "--json",
        env={"NCPX_NODE": th.api_url, "NCPX_TOKEN": th.token},
    )
    assert code == 0, err
    assert [e["target"] for e in json.loads(out)] == [message_id]
    assert (await th.call("GET", "/v1/audit", params={"action": "read_audit"}))["entries"]


# -- retention --


async def test_purge_removes_bodies_from_the_file_and_keeps_the_metadata(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    th, my = await fed.start("TH"), await fed.start("MY")
    # With an attachment the body spans overflow pages, which must not stay behind freed (secure_delete, the
    # checkpoint that truncates the log).
    attachment = {
        "name": "scan.bin",
        "media_type": "application/octet-stream",
        "data": b64(os.urandom(20_000)),
    }
    created = await my.call(
        "POST", "/v1/enquiries", body=ENQUIRY | {"recipients": ["TH"], "attachments": [attachment]}
    )
    old = created["messages"][0]["id"]
    await wait_for(lambda: th.state_is(old, "inbox", "received"), what="delivered")
    await th.call("POST", f"/v1/messages/{old}/read")
    [stored] = th.rows("SELECT envelope, envelope_digest, receipt FROM messages WHERE id = ?", (old,))
    sealed = Envelope.model_validate_json(stored["envelope"]).sealed
    needle = base64.urlsafe_b64encode(sealed[9000:9060]).rstrip(b"=")[:48]
    assert needle in stored["envelope"]

    policy = Retention(messages_days=30)
    db = th.service.mailbox.db
    assert (await purge(db, policy, th.clock(), "operator", dry_run=True)).messages == 0
    later = th.clock() + timedelta(days=31)
    counted = await purge(db, policy, later, "operator", dry_run=True)
    assert counted.messages == 1
    assert th.rows("SELECT purged_at FROM messages WHERE id = ?", (old,))[0]["purged_at"] is None
    done = await purge(db, policy, later, "operator")
    assert done.messages == 1

    for name in ("node.db", "node.db-wal"):
        path = th.db_path.with_name(name)
        if path.exists():
            assert needle not in path.read_bytes(), name
    [row] = th.rows("SELECT * FROM messages WHERE id = ?", (old,))
    assert (row["kind"], row["sender"], row["area"], row["urgency"], row["state"]) == (
        "enquiry",
        "MY",
        "people_smuggling",
        "urgent_indirect",
        "read",
    )
    assert row["envelope_digest"] == stored["envelope_digest"]
    assert row["receipt"] == stored["receipt"]
    assert row["purged_at"] is not None
    assert row["due_at"] is not None
    (await th.request("GET", f"/v1/messages/{old}")).problem("purged", 410)
    listed = await th.summary(old, "inbox")
    assert listed is not None
    assert listed["purged_at"] == row["purged_at"]
    [entry] = (await th.call("GET", "/v1/audit", params={"action": "purge_bodies"}))["entries"]
    assert entry["actor"] == "operator"
    assert entry["outcome"].startswith("ok: 1 message(s)")
    assert (await purge(db, policy, later, "operator")).messages == 0  # nothing twice


async def test_the_node_purges_on_its_own_and_ncpx_purge_dry_run_counts(
    federation: Callable[..., Federation], tmp_path: Path
) -> None:
    fed = federation(["TH", "MY"])
    my = await fed.start("MY")
    clock = TestClock()
    config = fed.config("TH").model_copy(update={"retention": Retention(messages_days=2, interval_s=1)})
    server = NodeServer(config, clock, access_log=False)
    await server.start()
    th = Node("TH", config, server, fed.session, clock)
    fed.nodes["TH"] = th
    th.token = await th.app[OFFICERS].add("officer-th", clock())
    message_id = await send(my, "TH", "kept two days")
    await wait_for(lambda: th.state_is(message_id, "inbox", "received"), what="delivered")

    code, out, err = await ncpx(
        "purge", "--config", str(toml(config, tmp_path / "th.toml")), "--dry-run", "--json"
    )
    assert code == 0, err
    assert json.loads(out) == {"dry_run": True, "messages": 0, "bytes": 0}
    clock.offset = timedelta(days=3)
    await wait_for(
        lambda: th.rows("SELECT purged_at FROM messages WHERE id = ?", (message_id,))[0]["purged_at"],
        what="the periodic purge",
    )
    [entry] = (await th.call("GET", "/v1/audit", params={"action": "purge_bodies"}))["entries"]
    assert entry["actor"] == "retention"
