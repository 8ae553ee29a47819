-- Deconfliction notices. A notice's recipient acknowledges it: messages gain the `acknowledged` state, so the table
-- is rebuilt for its CHECK to name the lifecycle's enums as they are now (the runner writes in {folders} and
-- {states}, as in 0006), and the time of the acknowledgement.
CREATE TABLE messages_v11 (
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
    acknowledged_at TEXT,
    last_error      TEXT,
    PRIMARY KEY (sender, id)
);
INSERT INTO messages_v11 (id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, due_at,
        in_reply_to, envelope, envelope_digest, local_sealed, signer_key, state, receipt, officer, queued_at,
        sent_at, delivered_at, read_at, answered_at, last_error)
    SELECT id, thread, folder, kind, sender, recipient, peer, area, urgency, created_at, due_at,
        in_reply_to, envelope, envelope_digest, local_sealed, signer_key, state, receipt, officer, queued_at,
        sent_at, delivered_at, read_at, answered_at, last_error
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v11 RENAME TO messages;
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_folder ON messages (folder, created_at, id);
CREATE INDEX messages_thread ON messages (thread, created_at);
CREATE INDEX messages_due ON messages (due_at) WHERE kind = 'enquiry' AND answered_at IS NULL;
CREATE INDEX messages_unopened ON messages (sender) WHERE folder = 'inbox' AND state = 'received';
CREATE INDEX messages_kind ON messages (kind, folder, created_at, id);

-- Draft notices (one made from a hit, say): local only, never queued, until an officer sends one. The body is
-- sealed to this node's own key like every stored body; `sent_as` names the message it became.
CREATE TABLE drafts (
    id         TEXT PRIMARY KEY,
    recipient  TEXT NOT NULL,
    area       TEXT NOT NULL,
    urgency    TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    origin     TEXT,
    created_at TEXT NOT NULL,
    sent_as    TEXT,
    sent_by    TEXT,
    sent_at    TEXT
);
CREATE INDEX drafts_unsent ON drafts (created_at) WHERE sent_as IS NULL;
