//! Integration tests: one binary, shared helpers, the real `yidi` executable and real
//! databases (SQLite in temp dirs, PostgreSQL on 127.0.0.1:5432 in fresh schemas).

mod chat;
mod cli;
mod console;
mod conversations;
mod db;
mod dialogs;
mod fake_telegram;
mod fake_wechat;
mod guidance;
mod hardening;
mod helpers;
mod http;
mod masking;
mod regions;
mod serve;
mod site;
mod slow_clients;
mod store;
mod telegram;
mod wechat;
