-- Private matching sessions as each side reported them (counts only); figures come from the asker's row.
CREATE TABLE match_reports (
    session     text COLLATE "C" NOT NULL,
    reporter    text COLLATE "C" NOT NULL,
    asker       text COLLATE "C" NOT NULL,
    answerer    text COLLATE "C" NOT NULL,
    opened_at   text COLLATE "C" NOT NULL,
    day         text COLLATE "C" NOT NULL,
    items       integer NOT NULL,
    matched     integer NOT NULL,
    new_hits    integer NOT NULL,
    outcome     text COLLATE "C" NOT NULL CHECK (outcome IN ('done', 'failed')),
    code        text COLLATE "C",
    received_at text COLLATE "C" NOT NULL,
    raw         bytea NOT NULL,
    PRIMARY KEY (session, reporter)
);
CREATE INDEX match_reports_opened ON match_reports (opened_at);
