-- Broadcasts (issue 3): where the staff member who confirmed a broadcast is told how it goes, and
-- when a scheduled broadcast's recipients were resolved.
--
-- notify_*: the chat of the confirmation, and the message to edit into a progress line (Telegram);
-- channels that cannot edit get one summary at the end instead. notified_at: the summary was given.
-- resolved_at: when the outbox rows were written. A broadcast scheduled for later is queued without
-- rows; the delivery worker resolves its audience when it becomes due (later subscribers get it).

ALTER TABLE broadcasts ADD COLUMN notify_channel TEXT;
ALTER TABLE broadcasts ADD COLUMN notify_chat_id TEXT;
ALTER TABLE broadcasts ADD COLUMN notify_message_id TEXT;
ALTER TABLE broadcasts ADD COLUMN notified_at REAL;
ALTER TABLE broadcasts ADD COLUMN resolved_at REAL;

UPDATE broadcasts SET resolved_at = COALESCE(confirmed_at, created_at) WHERE status != 'draft';
