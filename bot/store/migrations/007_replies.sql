-- Replies owed (issue 11): an interactive reply or staff post the platform refused for now (429,
-- a network error, the chat's own rate) waits here, in order per chat, until it is sent; after a
-- restart the service sends what is still owed. Rows are deleted once sent (or given up), so
-- the table holds only what a person is still owed.
CREATE TABLE replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    kind TEXT NOT NULL,               -- 'private' or 'group' (which per-chat limit applies)
    reply TEXT NOT NULL,              -- JSON: text, options, title, photo, edit_message_id, first_number
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    reason TEXT
);
CREATE INDEX replies_chat ON replies (channel, chat_id, id);
