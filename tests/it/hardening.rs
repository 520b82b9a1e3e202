//! Issue 10 (hardening): bad input and data errors.

use crate::helpers::*;

/// `yidi check` on a knowledge copy: the exit code and the error lines (after the headers).
fn check(dir: &std::path::Path) -> (Option<i32>, Vec<String>) {
    let out = yidi(&["--knowledge", dir.to_str().unwrap(), "check"], "");
    let err = stderr(&out);
    let lines = err
        .lines()
        .filter(|l| !l.starts_with("invalid "))
        .map(str::to_string)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn a_wrong_type_names_its_field_and_causes_no_follow_on_errors() {
    let dir = knowledge_copy();
    let path = dir.path().join("faq/contacts.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("variants = [", "variants = \"x\"\nx = [", 1),
    )
    .unwrap();
    let (code, lines) = check(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("faq/contacts.toml: entry `contacts`: field `variants`: line "),
        "{lines:#?}"
    );
    assert!(lines[0].contains("expected a sequence"), "{lines:#?}");
}

#[test]
fn an_unreadable_sources_file_is_one_error_not_one_per_citation() {
    let dir = knowledge_copy();
    std::fs::write(dir.path().join("sources.toml"), b"\xff\xfe not UTF-8").unwrap();
    let (code, lines) = check(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("sources.toml: cannot read"),
        "{lines:#?}"
    );
}

#[test]
fn data_errors_name_paths_relative_to_the_knowledge_folder() {
    let dir = knowledge_copy();
    let path = dir.path().join("policies/suzhou.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\ngarbage = [\n");
    std::fs::write(&path, text).unwrap();
    let (code, lines) = check(dir.path());
    assert_eq!(code, Some(1));
    let root = dir.path().to_str().unwrap();
    assert!(
        lines.iter().all(|l| !l.contains(root)),
        "no absolute path: {lines:#?}"
    );
    assert!(
        lines[0].starts_with("policies/suzhou.toml: line "),
        "{lines:#?}"
    );

    let dir = knowledge_copy();
    std::fs::write(dir.path().join("checklist.toml"), b"\xff").unwrap();
    let (_, lines) = check(dir.path());
    let root = dir.path().to_str().unwrap();
    assert!(lines.iter().all(|l| !l.contains(root)), "{lines:#?}");
    assert!(
        lines[0].starts_with("checklist.toml: cannot read"),
        "{lines:#?}"
    );
}
