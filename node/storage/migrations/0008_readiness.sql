-- One row rewritten by the readiness probe while the disk has been full, to find out whether writes work again.
CREATE TABLE readiness (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  TEXT NOT NULL
);
