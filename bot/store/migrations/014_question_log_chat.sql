-- A person's own questions are looked up by chat on the answering path (what they asked last,
-- what was declined) and at erasure; without this each was a scan of the whole log.
CREATE INDEX question_log_chat ON question_log (chat, asked_at);
