-- Reminders about a missing outcome return. On the coordinator: each one its staff sent, and whether the
-- country's node took it. On a country node: each one its coordinator sent, for the officers.
CREATE TABLE reminders_sent (
    seq         INTEGER PRIMARY KEY,
    period      TEXT NOT NULL,
    participant TEXT NOT NULL,
    officer     TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    delivered   INTEGER NOT NULL
);
CREATE INDEX reminders_sent_period ON reminders_sent (period, participant, sent_at);

CREATE TABLE reminders (
    seq         INTEGER PRIMARY KEY,
    period      TEXT NOT NULL,
    coordinator TEXT NOT NULL,
    about       TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    received_at TEXT NOT NULL
);
