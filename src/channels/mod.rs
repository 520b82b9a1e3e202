//! Channels: thin adapters that turn a channel's input into `(session id, message)` for the
//! core ([`crate::conversation::Conversations`]) and render its [`crate::Reply`] in their own
//! idiom. The terminal channel lives in `src/main.rs`; `http` is the JSON API behind
//! `yidi serve`; `console` is the hotline agents' page and its agent-only endpoints, served
//! by the same router (with `reload`, the agent-only data reload), like `docs` (the API document in a browser) and `site` (the residents' FAQ pages: `/`, `/faq`, the tools);
//! `document` finishes the OpenAPI document with what the loaded data says; `telegram` is the Telegram bot (long polling or webhook); `wechat` is
//! the WeChat Official Account endpoint, merged into the same server; `server` is the HTTP/1.1
//! server under all of them (connection cap, header and body deadlines). `api` is what `http`
//! and `console` share (state, errors, bodies, tokens), below both. The core's types that
//! the API sends or takes as they are derive their own OpenAPI schemas.

pub mod api;
pub mod console;
pub mod docs;
pub mod document;
pub mod http;
pub mod reload;
pub mod server;
pub mod site;
pub mod telegram;
pub mod wechat;
