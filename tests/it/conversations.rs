//! `yidi test`: the project's own conversation cases (tests/conversations/) must all pass,
//! the public examples (../shared/eval/conversations.jsonl) stay above a gate, and the
//! command reports failures and exits 1 below `--min`.

use crate::helpers::{repo, shared, stderr, stdout, yidi};

/// Every `*.jsonl` file of tests/conversations/.
fn own_cases() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("tests/conversations"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

#[test]
fn every_own_conversation_case_passes() {
    let files = own_cases();
    let mut args = vec!["test", "--min", "1"];
    args.extend(files.iter().map(String::as_str));
    let out = yidi(&args, "");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains(" 0 failed"), "{text}");
}

#[test]
fn the_public_conversations_stay_above_the_gate() {
    let file = shared().join("eval/conversations.jsonl");
    let out = yidi(
        &["test", "--json", "--min", "0.85", file.to_str().unwrap()],
        "",
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(out.status.success(), "{report:#}");
    assert!(report["turns"].as_u64().unwrap() >= 40, "{report}");
}

#[test]
fn failures_are_listed_and_below_min_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.jsonl");
    std::fs::write(
        &file,
        r#"{"name": "wrong on purpose", "turns": [{"say": "您好", "expect": {"kind": "faq"}}, {"say": "谢谢", "expect": {"kind": "smalltalk"}}]}"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = yidi(&["test", path], "");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL wrong on purpose · turn 1: 您好"),
        "{text}"
    );
    assert!(
        text.contains("kind: expected [\"faq\"], got smalltalk"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed"), "{text}");
    // the same file passes a gate of one half
    assert!(yidi(&["test", "--min", "0.5", path], "").status.success());
}

#[test]
fn a_bad_case_file_is_a_usage_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"name\": \"x\", \"turns\": [{\"say\": \"a\", \"expect\": {\"kidn\": \"faq\"}}]}\n",
    )
    .unwrap();
    let out = yidi(&["test", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1") && stderr(&out).contains("kidn"),
        "{}",
        stderr(&out)
    );
    let out = yidi(&["test", "--min", "2", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn chat_json_has_kind_options_and_slots() {
    let out = yidi(&["chat", "--json"], "你好\n报销的事\n1\n我是张家港参保的\n");
    let replies: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), 4);
    let kinds: Vec<&str> = replies
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    // the fact told after an answer is noted and the same question is answered again for
    // that situation: an FAQ reply naming the same entry
    assert_eq!(kinds, ["smalltalk", "clarify", "faq", "faq"]);
    let options = replies[1]["options"].as_array().unwrap();
    assert!((2..=3).contains(&options.len()), "{}", replies[1]);
    assert_eq!(replies[2]["faq"]["id"], options[0]["id"]);
    assert_eq!(replies[3]["faq"]["id"], replies[2]["faq"]["id"]);
    let retold = replies[3]["text"].as_str().unwrap();
    assert!(retold.starts_with("好的，记下了"), "{retold}");
    assert!(retold.contains("张家港参保人员"), "{retold}");
    assert_eq!(replies[3]["slots"]["insured_region"], "zhangjiagang");
    for r in &replies {
        for field in [
            "kind",
            "text",
            "asking",
            "choices",
            "faq",
            "options",
            "slots",
            "checklist",
            "estimate",
            "dialog",
        ] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
    }
}
