-- The numbered choices last shown in a chat by a channel without buttons (Zalo): what "2" means
-- there survives a restart (issue 11 point 3). One row per chat, replaced at each new menu.
CREATE TABLE choices (
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    options TEXT NOT NULL,            -- JSON [[label, data], ...]
    shown_at REAL NOT NULL,
    PRIMARY KEY (channel, chat_id)
);
