-- Broadcasts: what staff send, the outbox (one row per recipient, written in one transaction
-- when a broadcast is confirmed) and the "Đã nhận" acknowledgements of group broadcasts.
-- Times are unix epoch seconds (REAL, UTC).

CREATE TABLE broadcasts (
    id          INTEGER PRIMARY KEY,
    text        TEXT    NOT NULL,
    title       TEXT,
    audience    TEXT    NOT NULL CHECK (audience IN ('groups', 'residents', 'all')),
    locality    TEXT,                              -- a code; its whole subtree; null: everyone
    channel     TEXT,                              -- null: every channel
    send_at     REAL    NOT NULL,
    -- draft: composed, not confirmed (no outbox rows yet); queued: outbox written;
    -- sending: the worker started; done: nothing pending; cancelled: pending rows dropped
    status      TEXT    NOT NULL DEFAULT 'queued'
                CHECK (status IN ('draft', 'queued', 'sending', 'done', 'cancelled')),
    total       INTEGER NOT NULL DEFAULT 0,        -- outbox rows written at confirmation
    source      TEXT,                              -- announcement id or file, when sent from one
    created_by  TEXT    NOT NULL,                  -- "cli" or "telegram:12345"
    created_at  REAL    NOT NULL,
    confirmed_at REAL,
    finished_at REAL
);

CREATE INDEX broadcasts_status ON broadcasts (status, send_at);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    broadcast        INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    chat             INTEGER NOT NULL REFERENCES chats (id),
    channel          TEXT    NOT NULL,
    chat_id          TEXT    NOT NULL,             -- copied from chats; updated on migration
    kind             TEXT    NOT NULL CHECK (kind IN ('private', 'group')),
    locality         TEXT,                         -- the recipient's, for reports
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,   -- failed attempts (rate limits not counted)
    next_attempt_at  REAL    NOT NULL,
    pieces_sent      INTEGER NOT NULL DEFAULT 0,   -- a long text goes in pieces; resume after the last
    reason           TEXT,                         -- why it failed (or the last transient error)
    sent_at          REAL,
    message_ids      TEXT,                         -- JSON array of the platform's message ids
    UNIQUE (broadcast, chat)
);

CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_chat ON outbox (chat, status);
CREATE INDEX outbox_broadcast ON outbox (broadcast, status);

CREATE TABLE acknowledgements (
    broadcast     INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    chat          INTEGER NOT NULL REFERENCES chats (id),
    user_id       TEXT    NOT NULL,
    display_name  TEXT,
    at            REAL    NOT NULL,
    UNIQUE (broadcast, chat)
);
