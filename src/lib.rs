//! yidi: a guidance assistant for 异地就医 (cross-region medical care and its insurance
//! settlement), for people insured in Suzhou and Zhangjiagang.
//!
//! The crate is the channel-agnostic core; `src/main.rs` is a thin CLI over it. See
//! `ARCHITECTURE.md` for the codemap.

pub mod assistant;
pub mod channels;
pub mod config;
pub mod conversation;
pub mod dialog;
pub mod guidance;
pub mod knowledge;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod render;
pub mod reply;
pub mod scenario;
pub mod search;
pub mod store;
pub mod talk;
pub mod text;
pub mod throttle;
pub mod turns;
pub mod understanding;

pub use assistant::{Assistant, Reply};
pub use knowledge::Knowledge;
pub use search::SearchEngine;

use std::path::PathBuf;

/// The knowledge folder to use when none is given: `./knowledge` if it exists, else the one
/// shipped with the source tree.
pub fn default_knowledge_dir() -> PathBuf {
    let local = PathBuf::from("knowledge");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("knowledge")
    }
}

/// The dialogs folder to use when none is given: `./dialogs` if it exists, else the one
/// shipped with the source tree.
pub fn default_dialogs_dir() -> PathBuf {
    let local = PathBuf::from("dialogs");
    if local.is_dir() {
        local
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialogs")
    }
}
