//! The machine interface of cli.md, through the real binary.

use crate::helpers::*;

#[test]
fn search_json_answers_one_query_with_ranked_hits() {
    let out = yidi(&["search", "--json", "社保卡在外地医院刷不了怎么办"], "");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    assert_eq!(r["query"], "社保卡在外地医院刷不了怎么办");
    assert_eq!(r["answered"], true);
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3, "default limit is 3");
    assert_eq!(hits[0]["id"], "card-failure");
    assert!(hits[0]["score"].as_f64().unwrap() >= hits[1]["score"].as_f64().unwrap());
    assert!(hits[0]["question"].as_str().unwrap().contains("刷卡"));
}

#[test]
fn search_reads_queries_from_stdin_and_survives_bad_input() {
    let long = "备案".repeat(50_000);
    let input = [
        "",
        "   ",
        long.as_str(),
        "😀😀😀",
        "社保卡\u{7}\u{1b}[31m丢了",
        "醫保卡在外地刷不了",
        "yibao card 刷不了",
        "起付线是什么",
    ]
    .join("\n");
    let lines = json_lines(&yidi(&["search", "--json", "--limit", "5"], &input));
    assert_eq!(lines.len(), 8, "one answer per input line");
    assert_eq!(lines[0]["answered"], false);
    assert_eq!(lines[0]["hits"].as_array().unwrap().len(), 0);
    assert_eq!(lines[1]["answered"], false);
    assert_eq!(lines[3]["answered"], false, "emoji only: nothing to answer");
    assert_eq!(
        lines[5]["hits"][0]["id"], "card-failure",
        "traditional characters: {}",
        lines[5]
    );
    assert_eq!(
        lines[6]["hits"][0]["id"], "card-failure",
        "mixed English: {}",
        lines[6]
    );
    assert_eq!(lines[7]["hits"][0]["id"], "deductible");
    assert!(lines[7]["hits"].as_array().unwrap().len() <= 5);
}

#[test]
fn out_of_scope_questions_are_not_answered() {
    let input = "公积金贷款怎么办理\n孩子咳嗽吃什么药\n重疾险怎么理赔";
    for r in json_lines(&yidi(&["search", "--json"], input)) {
        assert_eq!(r["answered"], false, "{r}");
    }
}

#[test]
fn eval_on_the_public_dev_set_meets_the_quality_bar() {
    let dev = shared().join("eval/dev.jsonl");
    let lines = json_lines(&yidi(&["eval", "--json", dev.to_str().unwrap()], ""));
    let m = &lines[0];
    assert_eq!(m["n"], 88);
    assert_eq!(m["in_scope"], 82);
    let get = |k: &str| m[k].as_f64().unwrap();
    assert!(get("recall_at_1") >= 0.95, "{m}");
    assert!(get("recall_at_3") >= 1.0, "{m}");
    assert!(get("abstain_accuracy") >= 0.9, "{m}");
    assert!(get("mrr") >= get("recall_at_1") - 1e-9, "{m}");
}

#[test]
fn eval_rejects_a_malformed_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"q\": \"备案\", \"id\": \"filing-who\"}\nnot json\n",
    )
    .unwrap();
    let out = yidi(&["eval", "--json", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn faq_json_lists_every_entry_with_the_contract_fields() {
    let lines = json_lines(&yidi(&["faq", "--json"], ""));
    assert!(lines.len() >= 41);
    for e in &lines {
        for field in [
            "id",
            "question",
            "variants",
            "answer",
            "sources",
            "tags",
            "as_of",
            "tier",
            "provenance",
        ] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
        assert!(!e["sources"].as_array().unwrap().is_empty());
    }
    assert!(lines.iter().any(|e| e["id"] == "contacts"));
}

#[test]
fn check_accepts_the_shipped_knowledge() {
    let out = yidi(&["check"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("OK: "), "{}", stdout(&out));
}

#[test]
fn check_reports_stale_entries_and_those_resting_on_secondary_sources() {
    let out = yidi(&["check"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // impersonation rests on the 2019 Jiangsu rules alone; deductible on articles alone
    assert!(
        text.contains("entries whose newest source is older than 3 years (today "),
        "{text}"
    );
    assert!(
        text.contains("  impersonation (faq/card.toml): newest source 004 of 2019; checked "),
        "{text}"
    );
    assert!(
        text.contains("  deductible (faq/policy.toml): 003, 001\n"),
        "{text}"
    );
    // entries on 2026 documents are not stale
    assert!(!text.contains("  third-party-injury ("), "{text}");

    // the age is configurable, by flag or environment
    let out = yidi(&["check", "--stale-after-years", "100"], "");
    assert!(
        stdout(&out).contains("stale: 0 entries whose newest source is older than 100 years"),
        "{}",
        stdout(&out)
    );
    let dir = knowledge_copy();
    let sources = dir.path().join("sources.toml");
    let text = std::fs::read_to_string(&sources).unwrap();
    // an undated Jiangsu regulation: its entries have no dated source left
    std::fs::write(
        &sources,
        text.replacen(
            "date = \"2019\"\ntier = \"official\"\nnote = \"Full text",
            "tier = \"official\"\nnote = \"Full text",
            1,
        ),
    )
    .unwrap();
    let out = yidi(
        &[
            "--knowledge",
            dir.path().to_str().unwrap(),
            "check",
            "--stale-after-years",
            "100",
        ],
        "",
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("  impersonation (faq/card.toml): no dated source; checked "),
        "{text}"
    );
}

#[test]
fn check_on_a_broken_copy_names_file_entry_and_field_and_exits_1() {
    let dir = knowledge_copy();
    let path = dir.path().join("faq/card.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen("region = \"", "region = \"mars", 1);
    std::fs::write(&path, broken).unwrap();
    let out = yidi(&["--knowledge", dir.path().to_str().unwrap(), "check"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("faq/card.toml: entry `card-failure`: field `region`"),
        "{err}"
    );

    // a syntax error names the line
    std::fs::write(&path, "[[faq]]\nid = \"card-failure\nquestion = 1\n").unwrap();
    let out = yidi(
        &[
            "--knowledge",
            dir.path().to_str().unwrap(),
            "search",
            "--json",
            "备案",
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "every command refuses broken knowledge"
    );
    assert!(stderr(&out).contains("faq/card.toml"), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn chat_json_answers_with_sources_or_says_it_does_not_know() {
    let lines = json_lines(&yidi(
        &["chat", "--json"],
        "已经出院自费结算了，还能补备案吗\n今天股票会涨吗\n\n",
    ));
    assert_eq!(lines.len(), 3);
    let answered = &lines[0];
    assert_eq!(answered["faq"]["id"], "backfill-after-discharge");
    assert!(
        answered["text"].as_str().unwrap().contains("来源"),
        "{answered}"
    );
    for key in ["asking", "checklist", "estimate", "dialog"] {
        assert!(answered[key].is_null(), "{key} in {answered}");
    }
    assert_eq!(answered["choices"], serde_json::json!([]));

    let unknown = &lines[1];
    assert!(unknown["faq"].is_null());
    assert!(
        unknown["text"].as_str().unwrap().contains("0512-12333"),
        "{unknown}"
    );

    assert!(
        lines[2]["text"].as_str().unwrap().contains("请输入"),
        "empty line: {}",
        lines[2]
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(
        yidi(&["search", "--limit", "many"], "").status.code(),
        Some(2)
    );
    assert_eq!(yidi(&["frobnicate"], "").status.code(), Some(2));
}

/// `yidi search` answers each query as soon as no further one is waiting: a caller that
/// writes one line and waits for its answer (a coprocess) is never left hanging, while a batch
/// on standard input is answered in large writes.
#[test]
fn search_answers_a_waiting_caller_line_by_line() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_yidi"))
        .args(["search", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    for (q, answered) in [
        ("社保卡在外地医院刷不了怎么办", true),
        ("养老金什么时候涨", false),
    ] {
        writeln!(stdin, "{q}").unwrap();
        stdin.flush().unwrap();
        // the pipe stays open: only a flush after each answer lets this arrive
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no answer to {q} while the input stays open"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["query"], q);
        assert_eq!(v["answered"], answered, "{line}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Issue 23 (first contact, item 4): several words are one question; the data folders may be
/// given before or after the command; a command that reads no data lists only its own
/// options.
#[test]
fn search_joins_its_words_and_help_lists_only_a_commands_own_options() {
    let out = yidi(&["search", "--json", "备案", "撤销"], "");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "one question");
    assert_eq!(lines[0]["query"], "备案 撤销", "{}", lines[0]);

    let knowledge = repo().join("knowledge");
    let k = knowledge.to_str().unwrap();
    for args in [
        vec!["--knowledge", k, "search", "--json", "起付线"],
        vec!["search", "--knowledge", k, "--json", "起付线"],
    ] {
        assert_eq!(json_lines(&yidi(&args, "")).len(), 1, "{args:?}");
    }

    let out = yidi(&["agent-token", "--help"], "");
    assert!(out.status.success());
    let help = stdout(&out);
    assert!(
        !help.contains("--knowledge") && !help.contains("--dialogs"),
        "{help}"
    );
    assert!(help.contains("restart"), "{help}");
    let out = yidi(&["search", "--help"], "");
    assert!(stdout(&out).contains("--knowledge"));
}
