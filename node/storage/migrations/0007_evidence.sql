-- Evidence for the coordinator (protocol v2). An exchange counts as made only once a `sent` record has brought
-- the receiver's signed receipt; deadlines and response times run from that receipt's time; an enquiry counts
-- as answered only when the reply the recipient names has its own receipt from the enquirer. Records stored
-- before this carried no receipt: their exchanges stay on file as unproven and are counted in no figure.
ALTER TABLE exchanges ADD COLUMN receipt_at TEXT;       -- the receiver's signed receipt time
ALTER TABLE exchanges ADD COLUMN deadline_at TEXT;      -- enquiries: when the answer is due, from receipt_at
ALTER TABLE exchanges ADD COLUMN reply_id TEXT;         -- enquiries: the reply the recipient's record names
ALTER TABLE exchanges ADD COLUMN reply_digest TEXT;     -- and that reply's envelope digest
ALTER TABLE exchanges ADD COLUMN thread_first INTEGER NOT NULL DEFAULT 0;  -- first proven enquiry of its thread
ALTER TABLE node_status ADD COLUMN backlog_implausible INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tally_cells ADD COLUMN threads INTEGER NOT NULL DEFAULT 0;

UPDATE exchanges SET answered_at = NULL, answer_s = NULL;
DELETE FROM tally_cells;

DROP INDEX IF EXISTS exchanges_tally;
DROP INDEX IF EXISTS exchanges_open;
CREATE INDEX exchanges_tally ON exchanges (
    kind, created_at, sender, recipient, created_day, area, urgency, receipt_at, answered_at, deadline_at
);
CREATE INDEX exchanges_open ON exchanges (kind, deadline_at) WHERE answered_at IS NULL AND deadline_at IS NOT NULL;
CREATE INDEX exchanges_unproven ON exchanges (kind, created_at, sender, recipient) WHERE receipt_at IS NULL;
CREATE INDEX exchanges_thread_first ON exchanges (sender, thread) WHERE thread_first = 1;

-- Cells count proven exchanges only: a row enters them when its receipt arrives, not when any record does.
DROP TRIGGER IF EXISTS tally_cells_count;
DROP TRIGGER IF EXISTS tally_cells_answered;

CREATE TRIGGER tally_cells_proven AFTER UPDATE OF receipt_at ON exchanges
    WHEN OLD.receipt_at IS NULL AND NEW.receipt_at IS NOT NULL
BEGIN
    INSERT INTO tally_cells (kind, day, sender, recipient, area, urgency, n, answered, threads)
        VALUES (NEW.kind, NEW.created_day, NEW.sender, NEW.recipient, NEW.area, NEW.urgency, 1,
                NEW.answered_at IS NOT NULL, NEW.thread_first)
        ON CONFLICT (kind, day, sender, recipient, area, urgency) DO UPDATE SET n = n + 1,
            answered = answered + (NEW.answered_at IS NOT NULL), threads = threads + NEW.thread_first;
END;

CREATE TRIGGER tally_cells_answered AFTER UPDATE OF answered_at ON exchanges
    WHEN OLD.answered_at IS NULL AND NEW.answered_at IS NOT NULL AND NEW.receipt_at IS NOT NULL
BEGIN
    UPDATE tally_cells SET answered = answered + 1
        WHERE kind = NEW.kind AND day = NEW.created_day AND sender = NEW.sender AND recipient = NEW.recipient
          AND area = NEW.area AND urgency = NEW.urgency;
END;

CREATE TRIGGER tally_cells_thread AFTER UPDATE OF thread_first ON exchanges
    WHEN OLD.thread_first = 0 AND NEW.thread_first = 1 AND NEW.receipt_at IS NOT NULL
BEGIN
    UPDATE tally_cells SET threads = threads + 1
        WHERE kind = NEW.kind AND day = NEW.created_day AND sender = NEW.sender AND recipient = NEW.recipient
          AND area = NEW.area AND urgency = NEW.urgency;
END;
