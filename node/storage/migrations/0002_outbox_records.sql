-- The outbox also carries metadata records for the coordinator (its own peer, its own backoff).
CREATE TABLE outbox_v2 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    peer        TEXT NOT NULL,
    item        TEXT NOT NULL CHECK (item IN ('envelope', 'status', 'record', 'outcome')),
    ref         TEXT NOT NULL,
    payload     BLOB NOT NULL,
    queued_at   REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO outbox_v2 (seq, peer, item, ref, payload, queued_at, attempts)
    SELECT seq, peer, item, ref, payload, queued_at, attempts FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
CREATE INDEX outbox_peer ON outbox (peer, seq);
