-- A person behind the bot: tickets (questions forwarded to staff, residents' petitions), what was
-- said on them, and which staff-chat messages stand for which ticket (so a reply finds it).
-- Personal fields (chat, user_id, display_name, photo) are nulled by /xoadulieu and by the
-- retention purge; the rest stays as anonymous counts. Times are unix epoch seconds (REAL, UTC).

CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY,                  -- shown as #<id> everywhere
    kind          TEXT    NOT NULL CHECK (kind IN ('question', 'petition')),
    chat          INTEGER REFERENCES chats (id) ON DELETE SET NULL,  -- the author's chat; null once erased
    channel       TEXT    NOT NULL,                     -- the author's channel (telegram | zalo | console)
    user_id       TEXT,                                 -- the author's platform id (personal)
    display_name  TEXT,                                 -- the author's name as shown (personal)
    locality      TEXT,                                 -- code from content/localities.yaml
    topic         TEXT,                                 -- petition topic id (content/petition_topics.yaml)
    text          TEXT    NOT NULL,
    photo         TEXT,                                 -- the platform's file id of an attached photo
    status        TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed')),
    answer        TEXT,
    answered_by   TEXT,                                 -- "telegram:123 (Name)"
    answered_at   REAL,
    closed_by     TEXT,
    closed_at     REAL,
    consent_at    REAL,                                 -- petitions: when the consent sentence was accepted
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL,
    reminded_at   REAL,                                 -- last re-announcement to the staff chat
    erased_at     REAL                                  -- personal fields removed (erasure or retention)
);

CREATE INDEX tickets_status ON tickets (status, created_at);
CREATE INDEX tickets_chat ON tickets (chat, status);

CREATE TABLE ticket_messages (
    id        INTEGER PRIMARY KEY,
    ticket    INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    direction TEXT    NOT NULL CHECK (direction IN ('resident', 'staff')),
    text      TEXT    NOT NULL,
    photo     TEXT,
    author    TEXT,                                     -- staff: "telegram:123 (Name)"; resident: null
    at        REAL    NOT NULL
);

CREATE INDEX ticket_messages_ticket ON ticket_messages (ticket, id);

CREATE TABLE ticket_posts (
    channel     TEXT    NOT NULL,
    chat_id     TEXT    NOT NULL,                       -- the staff chat
    message_id  TEXT    NOT NULL,
    ticket      INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    posted_at   REAL    NOT NULL,
    PRIMARY KEY (channel, chat_id, message_id)
);

CREATE INDEX ticket_posts_ticket ON ticket_posts (ticket);
