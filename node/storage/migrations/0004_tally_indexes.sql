-- Covering indexes for the coordinator's tallies: every count is a range scan of one index by period, with no
-- lookup into the table, and response-time percentiles read answer times already in order.
DROP INDEX IF EXISTS exchanges_kind_created;
DROP INDEX IF EXISTS exchanges_pair;
DROP INDEX IF EXISTS exchanges_day;
DROP INDEX IF EXISTS exchanges_recipient_answer;
CREATE INDEX exchanges_tally ON exchanges (
    kind, created_at, sender, recipient, created_day, area, urgency, answered_at, due_at
);
CREATE INDEX exchanges_answer_by_recipient ON exchanges (kind, recipient, answer_s, created_at, sender)
    WHERE answer_s IS NOT NULL;
CREATE INDEX exchanges_answer_by_pair ON exchanges (kind, sender, recipient, answer_s, created_at)
    WHERE answer_s IS NOT NULL;
