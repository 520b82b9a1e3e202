-- Portable SQL (SQLite and PostgreSQL), like 0001.
-- Replies to messages sent with an `Idempotency-Key` header (HTTP), and the Telegram updates
-- already handled, so that a retried request or a redelivered update is answered from here
-- and stored only once. Keys are stored as SHA-256 hashes (lower-case hex); `reply` is the
-- response body as first sent. Deleted with their conversation (retention).

CREATE TABLE request_keys (
    session_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    reply TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, key_hash)
);

CREATE INDEX request_keys_created ON request_keys (created_at);
