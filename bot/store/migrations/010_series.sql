-- Recurring broadcasts (issue 15): a series is a broadcast that repeats on a schedule; each firing
-- writes its own broadcast(s) through bot/broadcasts/outbox.py.
--
-- repeat: the schedule as typed ("0 8 * * 1", "@weekly", "@quarterly", "@first-workday-quarter 08:00"),
-- in the service's TIMEZONE. kind: 'broadcast' (text, maybe with placeholders), 'summary' (the
-- quarterly summary to every group and the staff chat), 'digest' (knowledge gaps and open tickets to
-- the staff chat). key: the id in content/schedules.yaml (null for one made from the CLI or a chat).
-- last_run_at: the scheduled time of the last firing; next_run_at: the next one (null once cancelled).
-- A firing is claimed by its row in series_firings, UNIQUE (series, run_at), written in the same
-- transaction as its broadcasts: a run is fired once, even across a crash in the middle of it.

CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    key         TEXT UNIQUE,
    kind        TEXT    NOT NULL DEFAULT 'broadcast' CHECK (kind IN ('broadcast', 'summary', 'digest')),
    text        TEXT    NOT NULL DEFAULT '',
    title       TEXT,
    audience    TEXT    NOT NULL DEFAULT 'groups' CHECK (audience IN ('groups', 'residents', 'all', 'staff')),
    locality    TEXT,
    channel     TEXT,
    repeat      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    cancelled_at REAL,
    last_run_at REAL,
    next_run_at REAL
);

CREATE INDEX series_due ON series (cancelled_at, next_run_at);

CREATE TABLE series_firings (
    id          INTEGER PRIMARY KEY,
    series      INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    run_at      REAL    NOT NULL,                  -- the scheduled time this firing stands for
    fired_at    REAL    NOT NULL,
    missed      INTEGER NOT NULL DEFAULT 0,        -- runs coalesced into this one (the service was down)
    broadcasts  TEXT    NOT NULL DEFAULT '[]',     -- JSON array of the broadcasts it queued
    recipients  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (series, run_at)
);
