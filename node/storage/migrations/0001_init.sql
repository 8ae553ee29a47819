-- Messages as stored: envelopes exactly as sent or received (sealed), never an opened body.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    thread          TEXT NOT NULL,
    folder          TEXT NOT NULL CHECK (folder IN ('inbox', 'sent')),
    kind            TEXT NOT NULL,
    sender          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    peer            TEXT NOT NULL,
    area            TEXT NOT NULL,
    urgency         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    due_at          TEXT,
    in_reply_to     TEXT,
    envelope        BLOB NOT NULL,
    envelope_digest TEXT NOT NULL,
    local_sealed    BLOB,
    signer_key      BLOB NOT NULL,
    state           TEXT NOT NULL,
    receipt         BLOB,
    officer         TEXT,
    queued_at       TEXT NOT NULL,
    sent_at         TEXT,
    delivered_at    TEXT,
    read_at         TEXT,
    answered_at     TEXT,
    last_error      TEXT
);
CREATE INDEX messages_folder ON messages (folder, created_at, id);
CREATE INDEX messages_thread ON messages (thread, created_at);
CREATE INDEX messages_due ON messages (due_at) WHERE kind = 'enquiry' AND answered_at IS NULL;

-- What still has to reach a peer: envelopes and status notices, durable until the peer acknowledges.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    peer        TEXT NOT NULL,
    item        TEXT NOT NULL CHECK (item IN ('envelope', 'status')),
    ref         TEXT NOT NULL,
    payload     BLOB NOT NULL,
    queued_at   REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_peer ON outbox (peer, seq);

CREATE TABLE officers (
    name        TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- Who did what, when; never what a message said.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    outcome   TEXT NOT NULL
);

CREATE TABLE idempotency (
    officer       TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    response      BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (officer, key)
);

-- Every roster version accepted, newest wins; kept so that a restart cannot roll back.
CREATE TABLE rosters (
    version     INTEGER PRIMARY KEY,
    roster      BLOB NOT NULL,
    accepted_at TEXT NOT NULL
);
