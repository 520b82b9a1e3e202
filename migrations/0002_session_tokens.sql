-- Portable SQL (SQLite and PostgreSQL), like 0001.
-- The bearer tokens of sessions created over HTTP. Only a SHA-256 hash of each token is
-- stored (lower-case hex); the token itself is shown once, to the client that created it.

CREATE TABLE session_tokens (
    session_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
