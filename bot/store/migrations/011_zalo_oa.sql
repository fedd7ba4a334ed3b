-- Zalo Official Account channel (bot/channels/zalo_oa/store.py holds this SQL).
-- Times are unix epoch seconds (REAL, UTC).

-- The OA's OAuth tokens: one row. Refresh tokens work once, so each rotated one is written here in
-- the transaction that obtains it, before it is used. `seeded_from` is the SHA-256 of the
-- ZALO_OA_REFRESH_TOKEN this chain started from: that token is never presented again.
CREATE TABLE zalo_oa_tokens (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    refresh_token  TEXT    NOT NULL,
    access_token   TEXT,
    expires_at     REAL    NOT NULL DEFAULT 0,      -- the access token's end
    seeded_from    TEXT,
    rotated_at     REAL    NOT NULL,
    failed_at      REAL,                            -- the refresh token was refused for good
    failure        TEXT
);

-- A consent link waiting for its callback (`zalo-oa auth-url`): the PKCE verifier by state.
CREATE TABLE zalo_oa_consents (
    state          TEXT PRIMARY KEY,
    code_verifier  TEXT NOT NULL,
    created_at     REAL NOT NULL
);

-- Followers as the OA sees them: following is consent; the last interaction opens the 48 h / 7 day
-- window for consultation messages.
CREATE TABLE zalo_oa_followers (
    user_id           TEXT PRIMARY KEY,
    following         INTEGER NOT NULL DEFAULT 1,
    last_interaction  REAL,
    changed_at        REAL NOT NULL
);

-- Webhook events already taken (Zalo repeats them): by msg_id, or event:user:timestamp.
CREATE TABLE zalo_oa_events (
    key          TEXT PRIMARY KEY,
    received_at  REAL NOT NULL
);

CREATE INDEX zalo_oa_events_age ON zalo_oa_events (received_at);

-- Messages sent and refused on quota, by local day and message type (cs, promotion, transaction).
CREATE TABLE zalo_oa_quota (
    day      TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    sent     INTEGER NOT NULL DEFAULT 0,
    refused  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, kind)
);
