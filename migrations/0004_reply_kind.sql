-- Portable SQL (SQLite and PostgreSQL), like 0001.
-- The kind of each assistant reply (faq, dialog, clarify, smalltalk, out_of_scope,
-- unanswered; ../shared/spec/cli.md). NULL for user lines and for turns stored before 0004.

ALTER TABLE transcripts ADD COLUMN kind TEXT;
