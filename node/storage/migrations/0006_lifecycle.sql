-- Messages keyed by (sender, id): an id is unique only per sender, so a member that learns another's id can
-- never claim it first. Folder and state are checked against the lifecycle's own enums (protocol.lifecycle),
-- which the migration runner writes in for {folders} and {states}.
CREATE TABLE messages_v6 (
    id              TEXT NOT NULL,
    thread          TEXT NOT NULL,
    folder          TEXT NOT NULL CHECK (folder IN ({folders})),
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
    state           TEXT NOT NULL CHECK (state IN ({states})),
    receipt         BLOB,
    officer         TEXT,
    queued_at       TEXT NOT NULL,
    sent_at         TEXT,
    delivered_at    TEXT,
    read_at         TEXT,
    answered_at     TEXT,
    last_error      TEXT,
    PRIMARY KEY (sender, id)
);
INSERT INTO messages_v6 (id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, due_at,
        in_reply_to, envelope, envelope_digest, local_sealed, signer_key, state, receipt, officer, queued_at,
        sent_at, delivered_at, read_at, answered_at, last_error)
    SELECT id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, due_at,
        in_reply_to, envelope, envelope_digest, local_sealed, signer_key, state, receipt, officer, queued_at,
        sent_at, delivered_at, read_at, answered_at, last_error
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v6 RENAME TO messages;
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_folder ON messages (folder, created_at, id);
CREATE INDEX messages_thread ON messages (thread, created_at);
CREATE INDEX messages_due ON messages (due_at) WHERE kind = 'enquiry' AND answered_at IS NULL;

-- An item the peer refused for now waits on its own (the peer's other items keep going).
ALTER TABLE outbox ADD COLUMN not_before REAL;
