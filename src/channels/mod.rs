//! Channels: thin adapters that turn a channel's input into `(session id, message)` for the
//! core ([`crate::conversation::Conversations`]) and render its [`crate::Reply`] in their own
//! idiom. The terminal channel lives in `src/main.rs`; `http` is the JSON API behind
//! `yidi serve`; `console` is the hotline agents' page and its agent-only endpoints, served
//! by the same router; `telegram` is the Telegram bot (long polling or webhook); `wechat` is
//! the WeChat Official Account endpoint, merged into the same server. `api` is what `http`
//! and `console` share (state, errors, bodies, tokens), below both; `schemas` describes the
//! core's JSON forms for the generated OpenAPI document.

pub mod api;
pub mod console;
pub mod http;
mod schemas;
pub mod telegram;
pub mod wechat;
