-- Conversation state that survives a restart (issue 11): the step a person's next message goes
-- to and the drafts features keep for them (bot/conversation/flows.py owns `flows`), and the
-- per-person message rate-limit window (bot/conversation/ratelimit.py owns `rate_limits`).
-- Times are unix epoch seconds (REAL, UTC).

CREATE TABLE flows (
    channel     TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    state       TEXT NOT NULL,  -- JSON: {"step", "arg", "owner", "bound", "drafts": {owner: {"n", "data"}}, "touched"}
    updated_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,  -- updated_at + FLOW_EXPIRY_HOURS; kept a week longer to say "expired"
    PRIMARY KEY (channel, chat_id, user_id)
);

CREATE TABLE rate_limits (
    channel     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    stamps      TEXT NOT NULL,  -- JSON array of the epoch seconds of the messages inside the window
    warned      INTEGER NOT NULL DEFAULT 0,  -- the "vui lòng chờ" notice was given for this flood
    updated_at  REAL NOT NULL,
    PRIMARY KEY (channel, user_id)
);
