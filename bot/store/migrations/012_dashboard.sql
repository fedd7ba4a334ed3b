-- The staff web dashboard (issue 13): one-time sign-in links, browser sessions, dashboard roles,
-- the audit log of staff actions, four-eyes approvals of large broadcasts and API tokens.
-- Secrets (link tokens, session tokens, API tokens) are stored as SHA-256 hex digests only.
-- Times are unix epoch seconds (REAL, UTC).

CREATE TABLE web_links (
    token_hash  TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,                     -- the staff member's channel (telegram | zalo)
    user_id     TEXT NOT NULL,
    created_by  TEXT NOT NULL,                     -- "cli" or "telegram:123" (/dangnhap)
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    used_at     REAL                               -- set once: a link signs in one time only
);

CREATE TABLE web_sessions (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    channel     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    csrf        TEXT NOT NULL,                     -- the token every form of this session carries
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    ended_at    REAL                               -- logout
);

CREATE INDEX web_sessions_user ON web_sessions (channel, user_id);

CREATE TABLE web_roles (
    channel  TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    role     TEXT NOT NULL CHECK (role IN ('viewer', 'sender', 'editor', 'admin')),
    set_by   TEXT NOT NULL,
    set_at   REAL NOT NULL,
    PRIMARY KEY (channel, user_id)
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,                         -- "telegram:123" (the staff member), "cli", "api:NAME"
    via     TEXT NOT NULL,                         -- web | telegram | zalo | cli | api
    action  TEXT NOT NULL,                         -- "login", "broadcast.send", "ticket.answer"…
    target  TEXT,                                  -- "broadcast:12", "ticket:7"
    detail  TEXT
);

CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE broadcast_approvals (
    broadcast     INTEGER PRIMARY KEY REFERENCES broadcasts (id) ON DELETE CASCADE,
    requested_by  TEXT NOT NULL,
    requested_at  REAL NOT NULL,
    recipients    INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    REAL,
    decision      TEXT CHECK (decision IN ('approved', 'rejected'))
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'sender', 'editor', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    last_used   REAL,
    revoked_at  REAL
);
