//! The assistant a running server uses, replaceable while it runs: `yidi serve` reloads the
//! knowledge, dialogs and regions folders on SIGHUP and on `POST /v1/agent/reload`.
//!
//! A reload loads and validates everything into a new [`Assistant`] first (the same
//! [`Assistant::load`] as at start, search index included) and only then swaps it in. When
//! the data is invalid nothing changes: the server keeps answering from the data it had, and
//! the caller gets every problem (file, entry, field) to log or show. Each turn takes the
//! assistant once ([`LiveAssistant::current`]) and keeps that `Arc` to its end, so a turn in
//! flight finishes on the data it started with; conversations continue because their state
//! lives in the store as stable data (dialog and step ids, slots), not in the assistant.
//! One reload runs at a time; a second caller waits for the first and then loads again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::assistant::{Assistant, LoadError};

/// The assistant in force, and the folders it was loaded from.
pub struct LiveAssistant {
    current: RwLock<Arc<Assistant>>,
    folders: Option<Folders>,
    /// Held while a reload loads: one at a time.
    reloading: Mutex<()>,
    /// How many reloads succeeded.
    generation: AtomicU64,
}

struct Folders {
    knowledge: PathBuf,
    dialogs: PathBuf,
}

/// A reload that took effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reloaded {
    /// How many reloads have succeeded since the start (this one included).
    pub generation: u64,
    pub entries: usize,
    pub dialogs: usize,
    /// How long loading and validating took.
    pub millis: u64,
}

/// Why a reload did not take effect; the previous data stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this assistant was not loaded from folders, so there is nothing to reload")]
    NoFolders,
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl ReloadError {
    /// The problems, one per line (file, entry, field and what is wrong).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ReloadError::NoFolders => vec![self.to_string()],
            ReloadError::Invalid(p) => p.clone(),
        }
    }
}

impl LiveAssistant {
    /// An assistant that cannot be reloaded (tests, `yidi chat`).
    pub fn fixed(assistant: Arc<Assistant>) -> LiveAssistant {
        LiveAssistant {
            current: RwLock::new(assistant),
            folders: None,
            reloading: Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    /// An assistant loaded from these folders, reloaded from them on request.
    pub fn from_folders(
        assistant: Arc<Assistant>,
        knowledge: PathBuf,
        dialogs: PathBuf,
    ) -> LiveAssistant {
        LiveAssistant {
            folders: Some(Folders { knowledge, dialogs }),
            ..LiveAssistant::fixed(assistant)
        }
    }

    /// The assistant in force now; a turn keeps it to its end.
    pub fn current(&self) -> Arc<Assistant> {
        // a poisoned lock still holds a whole `Arc` (the swap is one assignment)
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many reloads have taken effect.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Loads and validates the folders again and puts the new assistant in force, or leaves
    /// the current one and returns every problem. Blocking (it builds the search index): call
    /// it off the async workers.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let Some(folders) = &self.folders else {
            return Err(ReloadError::NoFolders);
        };
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let assistant = Assistant::load(&folders.knowledge, &folders.dialogs)
            .map_err(|e| ReloadError::Invalid(problems(&e)))?;
        let reloaded = Reloaded {
            generation: 0,
            entries: assistant.knowledge.faqs.len(),
            dialogs: assistant.dialogs.dialogs.len(),
            millis: started.elapsed().as_millis() as u64,
        };
        let assistant = Arc::new(assistant);
        warm_in_background(&assistant);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = assistant;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Reloaded {
            generation,
            ..reloaded
        })
    }
}

/// A load error as lines: the heading ("invalid knowledge:") folded into each problem, so
/// every line says which part of the data it is about.
fn problems(e: &LoadError) -> Vec<String> {
    let text = e.to_string();
    let mut lines = text.lines();
    let heading = lines.next().unwrap_or_default().trim_end_matches(':');
    let rest: Vec<String> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{heading}: {l}"))
        .collect();
    if rest.is_empty() {
        vec![heading.to_string()]
    } else {
        rest
    }
}

/// Builds the search shards that are not built yet on a thread of their own, so that the
/// server is ready after the main shard and no region's first question waits for its shard
/// (issue 24). Nothing to do for knowledge without shards.
pub fn warm_in_background(assistant: &Arc<Assistant>) {
    if assistant.search.shard_count() <= 1 {
        return;
    }
    let assistant = Arc::clone(assistant);
    let spawned = std::thread::Builder::new()
        .name("search-warm".into())
        .spawn(move || {
            let started = Instant::now();
            assistant.search.warm();
            tracing::info!(
                shards = assistant.search.shard_count(),
                ms = started.elapsed().as_millis() as u64,
                "search shards built"
            );
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the search-warm thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }

    #[test]
    fn a_reload_takes_valid_data_and_refuses_invalid_data_keeping_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (k, d) = (dir.path().join("knowledge"), dir.path().join("dialogs"));
        copy_dir(&crate::default_knowledge_dir(), &k);
        copy_dir(&crate::default_dialogs_dir(), &d);
        let live = LiveAssistant::from_folders(crate::assistant::shipped(), k.clone(), d);
        let before = live.current();
        let n = before.knowledge.faqs.len();

        // an answer edited on disk is in force after the reload; the old Arc is untouched
        let file = k.join("faq/contacts.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("华昌路3号", "华昌路3号（测试）")).unwrap();
        let r = live.reload().unwrap();
        assert_eq!((r.generation, r.entries), (1, n));
        assert!(
            live.current()
                .knowledge
                .faq("contacts")
                .unwrap()
                .answer
                .contains("（测试）")
        );
        assert!(
            !before
                .knowledge
                .faq("contacts")
                .unwrap()
                .answer
                .contains("（测试）")
        );

        // a broken entry: every problem named, the data of generation 1 stays
        std::fs::write(&file, text.replace("as_of = \"", "as_of = \"20xx")).unwrap();
        let e = live.reload().unwrap_err();
        let problems = e.problems();
        assert!(
            problems.iter().any(|p| p.starts_with(
                "invalid knowledge: faq/contacts.toml: entry `contacts`: field `as_of`:"
            )),
            "{problems:#?}"
        );
        assert_eq!(live.generation(), 1);
        assert!(
            live.current()
                .knowledge
                .faq("contacts")
                .unwrap()
                .answer
                .contains("（测试）")
        );
    }

    #[test]
    fn an_assistant_without_folders_is_not_reloaded() {
        let live = LiveAssistant::fixed(crate::assistant::shipped());
        assert!(matches!(live.reload(), Err(ReloadError::NoFolders)));
        assert_eq!(live.generation(), 0);
    }
}
