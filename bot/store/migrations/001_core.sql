-- Core: every chat the bot knows (private chats are people, groups are community groups),
-- staff rights granted from the CLI, and the log of questions asked.
-- Times are unix epoch seconds (REAL, UTC).

CREATE TABLE chats (
    id            INTEGER PRIMARY KEY,
    channel       TEXT    NOT NULL,                 -- telegram | zalo | console
    chat_id       TEXT    NOT NULL,                 -- the platform's id, as text
    kind          TEXT    NOT NULL CHECK (kind IN ('private', 'group')),
    display_name  TEXT,                             -- person's name or group title
    locality      TEXT,                             -- code from content/localities.yaml
    consent       INTEGER NOT NULL DEFAULT 0,       -- 1: agreed to receive news
    consent_at    REAL,
    active        INTEGER NOT NULL DEFAULT 1,       -- 0: blocked us, kicked us, left
    first_seen    REAL    NOT NULL,
    last_seen     REAL    NOT NULL,
    UNIQUE (channel, chat_id)
);

CREATE INDEX chats_audience ON chats (kind, active, consent, locality);

CREATE TABLE staff (
    channel   TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    added_at  REAL NOT NULL,
    PRIMARY KEY (channel, user_id)
);

CREATE TABLE question_log (
    id         INTEGER PRIMARY KEY,
    chat       INTEGER REFERENCES chats (id) ON DELETE SET NULL,
    channel    TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    folded     TEXT    NOT NULL,
    entry_id   TEXT,                                -- best match, null when none
    score      REAL,
    outcome    TEXT    NOT NULL CHECK (outcome IN ('answered', 'choices', 'declined')),
    asked_at   REAL    NOT NULL
);

CREATE INDEX question_log_outcome ON question_log (outcome, asked_at);
