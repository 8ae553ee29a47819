-- Watch-list entries (target deconfliction): the subject as the officer gave it, and whose it is.
CREATE TABLE watch_entries (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('person', 'document', 'phone', 'vessel', 'account', 'address')),
    subject         TEXT NOT NULL,  -- JSON of the kind's own fields (names, date of birth, number, IMO, lines...)
    case_reference  TEXT NOT NULL,
    contact         TEXT NOT NULL,
    handling        TEXT NOT NULL CHECK (handling IN ('H0', 'H1', 'H2', 'H3')),
    handling_note   TEXT,
    expires_on      TEXT NOT NULL,  -- last day (UTC) the entry is matched, YYYY-MM-DD
    officer         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    removed_at      TEXT
);
CREATE INDEX watch_entries_active ON watch_entries (expires_on) WHERE removed_at IS NULL;

-- The normalised matching tokens of each entry (protocol/normalise.py): what private matching compares.
CREATE TABLE watch_tokens (
    entry  TEXT NOT NULL REFERENCES watch_entries (id),
    token  TEXT NOT NULL,
    PRIMARY KEY (entry, token)
) WITHOUT ROWID;
CREATE INDEX watch_tokens_token ON watch_tokens (token);

-- Planned operations (event deconfliction): a point and radius or an address, a window, whose.
CREATE TABLE operations (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('raid', 'arrest', 'surveillance', 'undercover', 'boarding')),
    latitude        REAL,
    longitude       REAL,
    radius_m        REAL,
    address         TEXT,           -- JSON {lines, city, country} when the place is an address
    starts_at       TEXT NOT NULL,  -- UTC, RFC 3339
    ends_at         TEXT NOT NULL,
    zone            TEXT NOT NULL,  -- the IANA zone its officers gave, for display in local time
    case_reference  TEXT NOT NULL,
    contact         TEXT NOT NULL,
    handling        TEXT NOT NULL CHECK (handling IN ('H0', 'H1', 'H2', 'H3')),
    handling_note   TEXT,
    status          TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
    officer         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    cancelled_at    TEXT,
    CHECK ((address IS NULL) = (latitude IS NOT NULL AND longitude IS NOT NULL AND radius_m IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX operations_active ON operations (ends_at) WHERE status = 'active';

-- Grid (cell, hour) tokens of a point operation (protocol/grid.py), or the address token of an address one.
CREATE TABLE operation_tokens (
    operation  TEXT NOT NULL REFERENCES operations (id),
    token      TEXT NOT NULL,
    PRIMARY KEY (operation, token)
) WITHOUT ROWID;
CREATE INDEX operation_tokens_token ON operation_tokens (token);
