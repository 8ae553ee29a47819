-- Retention: a message whose body was purged keeps its metadata (what the period report counts) and says when
-- its body went. Its envelope column then holds only the clear header, so that what the node proves about it
-- (the digest, the receipt) stays and nothing sealed is left.
ALTER TABLE messages ADD COLUMN purged_at TEXT;
CREATE INDEX messages_purgeable ON messages (created_at) WHERE purged_at IS NULL;

-- After a restore: per peer, what the node still has to ask it for (everything it holds for us since `since`).
-- `after` is where the last page ended, so that an interrupted re-sync resumes instead of starting over.
CREATE TABLE resync (
    peer     TEXT PRIMARY KEY,
    since    TEXT NOT NULL,
    part     TEXT NOT NULL DEFAULT 'sent_by_us' CHECK (part IN ('sent_by_us', 'sent_to_us', 'done')),
    after    TEXT,
    done_at  TEXT
);
