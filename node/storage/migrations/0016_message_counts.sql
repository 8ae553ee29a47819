-- Metrics count messages by folder, kind and state at every scrape: a covering index answers that from the index
-- alone instead of reading every message row (and its sealed body's pages).
CREATE INDEX messages_counts ON messages (folder, kind, state);
