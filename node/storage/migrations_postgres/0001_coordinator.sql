-- The coordinator's tables on PostgreSQL: the schema SQLite reaches after its migrations 0003-0013 (only the
-- coordinator's tables; keys, roster and officers stay in the node's own file). Times are RFC 3339 texts as on
-- SQLite, and every text column compares bytewise (COLLATE "C"), so that ranges and orders of times and ids are
-- the same as on SQLite whatever the database's locale. Only header fields and digests: there is no column a
-- message body could go into.

-- Every signed record as received, once per (reporter, message, event).
CREATE TABLE records (
    record_id   text COLLATE "C" PRIMARY KEY,
    reporter    text COLLATE "C" NOT NULL,
    event       text COLLATE "C" NOT NULL,
    message_id  text COLLATE "C" NOT NULL,
    at          text COLLATE "C" NOT NULL,
    received_at text COLLATE "C" NOT NULL,
    raw         bytea NOT NULL,
    UNIQUE (reporter, message_id, event)
);

-- One row per message, both sides' records folded in: what the tallies are computed from.
CREATE TABLE exchanges (
    message_id       text COLLATE "C" PRIMARY KEY,
    thread           text COLLATE "C" NOT NULL,
    kind             text COLLATE "C" NOT NULL,
    sender           text COLLATE "C" NOT NULL,
    recipient        text COLLATE "C" NOT NULL,
    area             text COLLATE "C" NOT NULL,
    urgency          text COLLATE "C" NOT NULL,
    created_at       text COLLATE "C" NOT NULL,
    created_day      text COLLATE "C" NOT NULL,
    due_at           text COLLATE "C",
    in_reply_to      text COLLATE "C",
    sent_at          text COLLATE "C",
    sent_digest      text COLLATE "C",
    sent_receipt     text COLLATE "C",
    received_at      text COLLATE "C",
    received_digest  text COLLATE "C",
    received_receipt text COLLATE "C",
    read_at          text COLLATE "C",
    answered_at      text COLLATE "C",
    answer_s         double precision,
    header_mismatch  integer NOT NULL DEFAULT 0,
    first_record_at  text COLLATE "C" NOT NULL,
    receipt_at       text COLLATE "C",  -- the receiver's signed receipt time
    deadline_at      text COLLATE "C",  -- enquiries: when the answer is due, from receipt_at
    reply_id         text COLLATE "C",  -- enquiries: the reply the recipient's record names
    reply_digest     text COLLATE "C",  -- and that reply's envelope digest
    thread_first     integer NOT NULL DEFAULT 0  -- first proven enquiry of its thread
);
CREATE INDEX exchanges_tally ON exchanges (
    kind, created_at, sender, recipient, created_day, area, urgency, receipt_at, answered_at, deadline_at
);
CREATE INDEX exchanges_answer_by_recipient ON exchanges (kind, recipient, answer_s, created_at, sender)
    WHERE answer_s IS NOT NULL;
CREATE INDEX exchanges_answer_by_pair ON exchanges (kind, sender, recipient, answer_s, created_at)
    WHERE answer_s IS NOT NULL;
CREATE INDEX exchanges_open ON exchanges (kind, deadline_at) WHERE answered_at IS NULL AND deadline_at IS NOT NULL;
CREATE INDEX exchanges_unproven ON exchanges (kind, created_at, sender, recipient) WHERE receipt_at IS NULL;
CREATE INDEX exchanges_thread_first ON exchanges (sender, thread) WHERE thread_first = 1;
CREATE INDEX exchanges_unpaired ON exchanges (first_record_at) WHERE sent_at IS NULL OR received_at IS NULL;
CREATE INDEX exchanges_reply_to ON exchanges (in_reply_to) WHERE in_reply_to IS NOT NULL;

-- What each node last told us about itself: how far behind its record queue is.
CREATE TABLE node_status (
    participant         text COLLATE "C" PRIMARY KEY,
    last_seen_at        text COLLATE "C" NOT NULL,
    last_record_at      text COLLATE "C",
    backlog             integer NOT NULL DEFAULT 0,
    oldest_queued_at    text COLLATE "C",
    backlog_implausible integer NOT NULL DEFAULT 0
);

-- Signed outcome returns; a later return for the same period replaces the earlier one.
CREATE TABLE outcomes (
    period       text COLLATE "C" NOT NULL,
    participant  text COLLATE "C" NOT NULL,
    submitted_at text COLLATE "C" NOT NULL,
    raw          bytea NOT NULL,
    PRIMARY KEY (period, participant)
);

-- Dashboard sessions (the cookie holds the id; only its digest is stored).
CREATE TABLE sessions (
    id_hash    text COLLATE "C" PRIMARY KEY,
    officer    text COLLATE "C" NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    expires_at text COLLATE "C" NOT NULL
);

-- Reminders about a missing outcome return: each one the coordinator's staff sent, and whether the node took it.
CREATE TABLE reminders_sent (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period      text COLLATE "C" NOT NULL,
    participant text COLLATE "C" NOT NULL,
    officer     text COLLATE "C" NOT NULL,
    sent_at     text COLLATE "C" NOT NULL,
    delivered   integer NOT NULL
);
CREATE INDEX reminders_sent_period ON reminders_sent (period, participant, sent_at);

-- Proven exchanges per UTC day, pair, crime area and urgency, kept by triggers as exchanges are proven, answered
-- and found first of their thread, so that a period's tallies read a few thousand cells for its whole days and
-- scan rows only for the partial days at its two ends.
CREATE TABLE tally_cells (
    kind      text COLLATE "C" NOT NULL,
    day       text COLLATE "C" NOT NULL,
    sender    text COLLATE "C" NOT NULL,
    recipient text COLLATE "C" NOT NULL,
    area      text COLLATE "C" NOT NULL,
    urgency   text COLLATE "C" NOT NULL,
    n         integer NOT NULL DEFAULT 0,
    answered  integer NOT NULL DEFAULT 0,
    threads   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, day, sender, recipient, area, urgency)
);

CREATE FUNCTION tally_cells_proven() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tally_cells AS c (kind, day, sender, recipient, area, urgency, n, answered, threads)
        VALUES (NEW.kind, NEW.created_day, NEW.sender, NEW.recipient, NEW.area, NEW.urgency, 1,
                (NEW.answered_at IS NOT NULL)::integer, NEW.thread_first)
        ON CONFLICT (kind, day, sender, recipient, area, urgency) DO UPDATE SET n = c.n + 1,
            answered = c.answered + (NEW.answered_at IS NOT NULL)::integer,
            threads = c.threads + NEW.thread_first;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tally_cells_proven AFTER UPDATE OF receipt_at ON exchanges FOR EACH ROW
    WHEN (OLD.receipt_at IS NULL AND NEW.receipt_at IS NOT NULL)
    EXECUTE FUNCTION tally_cells_proven();

CREATE FUNCTION tally_cells_answered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tally_cells SET answered = answered + 1
        WHERE kind = NEW.kind AND day = NEW.created_day AND sender = NEW.sender AND recipient = NEW.recipient
          AND area = NEW.area AND urgency = NEW.urgency;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tally_cells_answered AFTER UPDATE OF answered_at ON exchanges FOR EACH ROW
    WHEN (OLD.answered_at IS NULL AND NEW.answered_at IS NOT NULL AND NEW.receipt_at IS NOT NULL)
    EXECUTE FUNCTION tally_cells_answered();

CREATE FUNCTION tally_cells_thread() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tally_cells SET threads = threads + 1
        WHERE kind = NEW.kind AND day = NEW.created_day AND sender = NEW.sender AND recipient = NEW.recipient
          AND area = NEW.area AND urgency = NEW.urgency;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tally_cells_thread AFTER UPDATE OF thread_first ON exchanges FOR EACH ROW
    WHEN (OLD.thread_first = 0 AND NEW.thread_first = 1 AND NEW.receipt_at IS NOT NULL)
    EXECUTE FUNCTION tally_cells_thread();
