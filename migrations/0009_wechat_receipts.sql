-- Portable SQL (SQLite and PostgreSQL), like 0001.
-- What the WeChat channel has already received, shared by every replica: the MsgId (or the
-- sender, time and event of an event) of each message, so that WeChat's retries of a POST
-- never produce a second turn, and each request's timestamp and nonce, so that a replayed
-- request is refused. `value` is the message key a nonce came with (empty for a message
-- key). Both are stored as keyed hashes (`Store::caller_session_id`), never an
-- OpenID. Rows older than an hour are deleted (retries come within seconds; a request older
-- than five minutes is refused anyway). Times are Unix ms.

CREATE TABLE wechat_receipts (
    id TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX wechat_receipts_created ON wechat_receipts (created_at);
