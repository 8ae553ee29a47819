-- Private matching is reported to the coordinator as counts: the outbox learns a fifth kind of item (`match`, a
-- signed matching record), so it is rebuilt for its CHECK; the coordinator keeps each side's record of a session.
CREATE TABLE outbox_v14 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    peer        TEXT NOT NULL,
    item        TEXT NOT NULL CHECK (item IN ('envelope', 'status', 'record', 'outcome', 'match')),
    ref         TEXT NOT NULL,
    payload     BLOB NOT NULL,
    queued_at   REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  REAL
);
INSERT INTO outbox_v14 (seq, peer, item, ref, payload, queued_at, attempts, not_before)
    SELECT seq, peer, item, ref, payload, queued_at, attempts, not_before FROM outbox;
-- Sequence numbers keep counting from where the old table was, so a number is never used twice.
DELETE FROM sqlite_sequence WHERE name = 'outbox_v14';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_v14', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_v14 RENAME TO outbox;
CREATE INDEX outbox_peer ON outbox (peer, seq);

-- One row per session and reporting side; figures come from the asker's row, the answerer's confirms it.
CREATE TABLE match_reports (
    session     TEXT NOT NULL,
    reporter    TEXT NOT NULL,
    asker       TEXT NOT NULL,
    answerer    TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    day         TEXT NOT NULL,
    items       INTEGER NOT NULL,
    matched     INTEGER NOT NULL,
    new_hits    INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),
    code        TEXT,
    received_at TEXT NOT NULL,
    raw         BLOB NOT NULL,
    PRIMARY KEY (session, reporter)
);
CREATE INDEX match_reports_opened ON match_reports (opened_at);
