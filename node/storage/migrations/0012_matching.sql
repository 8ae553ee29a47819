-- Private matching sessions (both sides) and the hits they found; a session's secrets are never stored.
CREATE TABLE match_sessions (
    peer TEXT NOT NULL,
    id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ({match_roles})),
    state TEXT NOT NULL CHECK (state IN ({match_states})),
    size INTEGER NOT NULL CHECK (size > 0),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    matched INTEGER,
    PRIMARY KEY (peer, id, role)
);
-- A peer's budget: the items it asked about in the last day.
CREATE INDEX match_sessions_asked ON match_sessions (peer, role, created_at);

CREATE TABLE hits (
    seq INTEGER PRIMARY KEY,
    peer TEXT NOT NULL,
    token TEXT NOT NULL,
    found_at TEXT NOT NULL,
    found_by TEXT NOT NULL CHECK (found_by IN ('asked', 'claimed')),
    peer_case TEXT NOT NULL DEFAULT '',
    peer_contact TEXT NOT NULL DEFAULT '',
    UNIQUE (peer, token)
);
