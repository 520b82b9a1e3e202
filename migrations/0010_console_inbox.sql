-- Portable SQL (SQLite and PostgreSQL), like 0001. Issue 21, the agent console.
-- `unanswered`: the reply kind the question got (`unanswered` or `out_of_scope`; NULL for
-- questions stored before 0010, whose kind is read from their transcript line) and whether
-- an agent has handled it: when (Unix ms) and by whom (the first 12 hex digits of the
-- agent's configured token digest, which is not a secret; NULL while not handled).
-- `transcripts`: the channel a line came through (`http`, `telegram`, `wechat`,
-- `terminal`; NULL for lines stored before 0010).

ALTER TABLE unanswered ADD COLUMN kind TEXT;
ALTER TABLE unanswered ADD COLUMN handled_at BIGINT;
ALTER TABLE unanswered ADD COLUMN handled_by TEXT;
ALTER TABLE transcripts ADD COLUMN channel TEXT;
