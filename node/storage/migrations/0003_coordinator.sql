-- Coordinator tables (empty on a country node). Only header fields and digests: there is no column a
-- message body could go into.

-- Every signed record as received, once per (reporter, message, event).
CREATE TABLE records (
    record_id   TEXT PRIMARY KEY,
    reporter    TEXT NOT NULL,
    event       TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    at          TEXT NOT NULL,
    received_at TEXT NOT NULL,
    raw         BLOB NOT NULL,
    UNIQUE (reporter, message_id, event)
);

-- One row per message, both sides' records folded in: what the tallies are computed from.
CREATE TABLE exchanges (
    message_id       TEXT PRIMARY KEY,
    thread           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    sender           TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    area             TEXT NOT NULL,
    urgency          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_day      TEXT NOT NULL,
    due_at           TEXT,
    in_reply_to      TEXT,
    sent_at          TEXT,
    sent_digest      TEXT,
    sent_receipt     TEXT,
    received_at      TEXT,
    received_digest  TEXT,
    received_receipt TEXT,
    read_at          TEXT,
    answered_at      TEXT,
    answer_s         REAL,
    header_mismatch  INTEGER NOT NULL DEFAULT 0,
    first_record_at  TEXT NOT NULL
);
CREATE INDEX exchanges_kind_created ON exchanges (kind, created_at, sender, recipient, area, urgency);
CREATE INDEX exchanges_pair ON exchanges (kind, sender, recipient, created_at);
CREATE INDEX exchanges_day ON exchanges (kind, created_day, created_at);
CREATE INDEX exchanges_recipient_answer ON exchanges (kind, recipient, answer_s) WHERE answer_s IS NOT NULL;
CREATE INDEX exchanges_open ON exchanges (kind, due_at) WHERE answered_at IS NULL;
CREATE INDEX exchanges_unpaired ON exchanges (first_record_at) WHERE sent_at IS NULL OR received_at IS NULL;
CREATE INDEX exchanges_reply_to ON exchanges (in_reply_to) WHERE in_reply_to IS NOT NULL;

-- What each node last told us about itself: how far behind its record queue is.
CREATE TABLE node_status (
    participant      TEXT PRIMARY KEY,
    last_seen_at     TEXT NOT NULL,
    last_record_at   TEXT,
    backlog          INTEGER NOT NULL DEFAULT 0,
    oldest_queued_at TEXT
);

-- Signed outcome returns; a later return for the same period replaces the earlier one.
CREATE TABLE outcomes (
    period       TEXT NOT NULL,
    participant  TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    raw          BLOB NOT NULL,
    PRIMARY KEY (period, participant)
);

-- Dashboard sessions (the cookie holds the id; only its digest is stored).
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    officer    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
