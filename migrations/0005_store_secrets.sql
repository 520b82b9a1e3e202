-- Portable SQL (SQLite and PostgreSQL), like 0001.
-- Secrets of this database, made once by the first process that connects (random, 256 bits,
-- lower-case hex). `session_id_key` keys the hash under which session ids chosen by a caller
-- (`yidi chat --session ID`, a Telegram chat) are stored, so that the database never holds
-- such an id (which may be a phone number) as written.

CREATE TABLE store_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
