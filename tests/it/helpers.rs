//! Shared helpers: run the real binary, copy the knowledge folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared() -> PathBuf {
    repo().join("../shared")
}

/// Runs `yidi ARGS` with `stdin` and returns its output.
pub fn yidi(args: &[&str], stdin: &str) -> Output {
    yidi_bytes(args, stdin.as_bytes())
}

/// As [`yidi`], with raw bytes on standard input.
pub fn yidi_bytes(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yidi"))
        .args(args)
        .current_dir(repo())
        .env_remove("YIDI_KNOWLEDGE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the yidi binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every stdout line parsed as JSON.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "yidi failed: {}", stderr(o));
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A copy of the shipped knowledge folder in a temp dir, to break on purpose.
pub fn knowledge_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("knowledge"), dir.path());
    dir
}

/// Copies of the shipped knowledge and dialogs folders (`knowledge/`, `dialogs/` in a temp
/// dir), for a server to load and a test to edit.
pub fn data_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("knowledge"), &dir.path().join("knowledge"));
    copy_dir(&repo().join("dialogs"), &dir.path().join("dialogs"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The shipped assistant, loaded once for the whole test binary.
pub fn assistant() -> Arc<yidi::Assistant> {
    static A: OnceLock<Arc<yidi::Assistant>> = OnceLock::new();
    A.get_or_init(|| {
        Arc::new(
            yidi::Assistant::load(&repo().join("knowledge"), &repo().join("dialogs"))
                .expect("the shipped data loads"),
        )
    })
    .clone()
}
