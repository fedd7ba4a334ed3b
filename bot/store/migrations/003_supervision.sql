-- Supervision (giám sát, phản biện): plans with a deadline, the reminders before it, the
-- escalations after it, extension requests and the nudges to localities behind their quota.
-- Reminders, escalations and nudges are delivered as `broadcasts` rows with their own outbox
-- rows (source 'sv:…'), so the one delivery worker paces and retries them like any broadcast.
-- Times are unix epoch seconds (REAL, UTC).

-- Buttons a broadcast carries on its last piece instead of "Đã nhận": JSON [[label, data], …].
ALTER TABLE broadcasts ADD COLUMN options TEXT;

CREATE TABLE supervision_plans (
    id          INTEGER PRIMARY KEY,
    key         TEXT UNIQUE,                       -- id in content/supervision/*.yaml or an import row
    locality    TEXT    NOT NULL,                  -- a code from content/localities.yaml
    title       TEXT    NOT NULL,
    subject     TEXT,                              -- what is supervised
    kind        TEXT    NOT NULL DEFAULT 'giam_sat' CHECK (kind IN ('giam_sat', 'phan_bien')),
    period      TEXT    NOT NULL,                  -- "2026-Q4" or "2026"
    due_at      REAL    NOT NULL,
    remind      TEXT    NOT NULL,                  -- offsets before due_at: "14d,7d,1d,0d"
    chats       TEXT,                              -- JSON ["telegram:-100…"]; null: the locality's groups
    status      TEXT    NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'done', 'cancelled')),
    done_at     REAL,
    result      TEXT,                              -- one line, from the group or staff
    done_by     TEXT,                              -- "telegram:12345" or "cli"
    source      TEXT,                              -- "cli", "import:FILE", "content:FILE"
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL
);

CREATE INDEX supervision_plans_period ON supervision_plans (period, locality, status);
CREATE INDEX supervision_plans_due ON supervision_plans (status, due_at);

CREATE TABLE supervision_reminders (
    plan        INTEGER NOT NULL REFERENCES supervision_plans (id) ON DELETE CASCADE,
    offset_label TEXT   NOT NULL,                  -- "7d", "2h", "0m"
    fire_at     REAL    NOT NULL,
    -- pending: not yet due; sent: queued to the outbox (once, ever, for this due date);
    -- skipped: superseded (plan done, a later reminder went instead, extension moved it past);
    -- folded: its time passed while the service was down and so did the deadline: escalation covers it
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'skipped', 'folded')),
    broadcast   INTEGER REFERENCES broadcasts (id) ON DELETE SET NULL,
    handled_at  REAL,
    UNIQUE (plan, offset_label)
);

CREATE INDEX supervision_reminders_due ON supervision_reminders (state, fire_at);

CREATE TABLE supervision_escalations (
    plan        INTEGER NOT NULL REFERENCES supervision_plans (id) ON DELETE CASCADE,
    due_at      REAL    NOT NULL,                  -- the deadline it was about (an extension restarts the count)
    round       INTEGER NOT NULL,                  -- 0: the day it fell due; k: k × N days later
    at          REAL    NOT NULL,
    broadcast   INTEGER REFERENCES broadcasts (id) ON DELETE SET NULL,
    UNIQUE (plan, due_at, round)
);

CREATE TABLE supervision_extensions (
    id          INTEGER PRIMARY KEY,
    plan        INTEGER NOT NULL REFERENCES supervision_plans (id) ON DELETE CASCADE,
    channel     TEXT    NOT NULL,
    chat_id     TEXT    NOT NULL,                  -- the group that asked
    user_id     TEXT    NOT NULL,
    display_name TEXT,
    reason      TEXT    NOT NULL,
    old_due     REAL    NOT NULL,
    new_due     REAL    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
    decided_by  TEXT,
    created_at  REAL    NOT NULL,
    decided_at  REAL
);

CREATE INDEX supervision_extensions_plan ON supervision_extensions (plan, status);

CREATE TABLE supervision_nudges (
    locality    TEXT    NOT NULL,                  -- '*' marks the round as done
    period      TEXT    NOT NULL,
    weeks_left  INTEGER NOT NULL,
    at          REAL    NOT NULL,
    broadcast   INTEGER REFERENCES broadcasts (id) ON DELETE SET NULL,
    UNIQUE (locality, period, weeks_left)
);
