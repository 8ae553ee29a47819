-- Counts per UTC day, pair, crime area and urgency, kept by triggers as exchanges arrive and are answered, so
-- that a period's tallies read a few thousand cells for its whole days and scan rows only for the partial days
-- at its two ends.
CREATE TABLE tally_cells (
    kind      TEXT NOT NULL,
    day       TEXT NOT NULL,
    sender    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    area      TEXT NOT NULL,
    urgency   TEXT NOT NULL,
    n         INTEGER NOT NULL DEFAULT 0,
    answered  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, day, sender, recipient, area, urgency)
);

INSERT INTO tally_cells (kind, day, sender, recipient, area, urgency, n, answered)
    SELECT kind, created_day, sender, recipient, area, urgency, count(*), count(answered_at)
    FROM exchanges GROUP BY kind, created_day, sender, recipient, area, urgency;

CREATE TRIGGER tally_cells_count AFTER INSERT ON exchanges
BEGIN
    INSERT INTO tally_cells (kind, day, sender, recipient, area, urgency, n, answered)
        VALUES (NEW.kind, NEW.created_day, NEW.sender, NEW.recipient, NEW.area, NEW.urgency, 1,
                NEW.answered_at IS NOT NULL)
        ON CONFLICT (kind, day, sender, recipient, area, urgency) DO UPDATE SET n = n + 1,
            answered = answered + (NEW.answered_at IS NOT NULL);
END;

CREATE TRIGGER tally_cells_answered AFTER UPDATE OF answered_at ON exchanges
    WHEN OLD.answered_at IS NULL AND NEW.answered_at IS NOT NULL
BEGIN
    UPDATE tally_cells SET answered = answered + 1
        WHERE kind = NEW.kind AND day = NEW.created_day AND sender = NEW.sender AND recipient = NEW.recipient
          AND area = NEW.area AND urgency = NEW.urgency;
END;
