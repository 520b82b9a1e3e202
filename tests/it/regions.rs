//! A region is data: a third region added with files alone (a region file, its policy, a
//! paragraph in an FAQ answer) gets FAQ region parts, checklists, estimates, dialog choices and
//! its own 转人工 reply, from the real `yidi` executable with no Rust change.

use serde_json::Value;

use crate::helpers::{json_lines, knowledge_copy, repo, stderr, yidi};

const REGION: &str = r#"
# A test region: not real data.
id = "kunshan"
name = "昆山市"
label = "昆山"
order = 3
aliases = ["昆山参保", "昆山医保", "昆山"]
policy = "kunshan"
filing_channels = ["kunshan-wechat"]
temporary_reduced_ratio = true

[replies]
human = "（测试）昆山参保的人工咨询，请联系昆山市医保经办机构。"

[channels.kunshan-wechat]
text = "（测试）昆山医保公众号"
source = "001 异地就医备案渠道·线上渠道"
"#;

/// A knowledge folder with the third region.
fn with_kunshan() -> tempfile::TempDir {
    let dir = knowledge_copy();
    let k = dir.path();
    std::fs::write(k.join("regions/kunshan.toml"), REGION).unwrap();
    let policy = std::fs::read_to_string(k.join("policies/suzhou.toml"))
        .unwrap()
        .replace("id = \"suzhou\"", "id = \"kunshan\"")
        .replace("name = \"苏州市\"", "name = \"昆山市（测试）\"");
    std::fs::write(k.join("policies/kunshan.toml"), policy).unwrap();
    // a paragraph for the region in an answer that differs by region
    let contacts = std::fs::read_to_string(k.join("faq/contacts.toml"))
        .unwrap()
        .replacen(
            "其他省市参保人员请联系各自参保地医保经办机构。\n\"\"\"",
            "其他省市参保人员请联系各自参保地医保经办机构。\n\n昆山参保人员：（测试）请咨询昆山市医保经办机构。\n\"\"\"",
            1,
        );
    assert!(contacts.contains("昆山参保人员"), "the test edit applies");
    std::fs::write(k.join("faq/contacts.toml"), contacts).unwrap();
    dir
}

fn run(dir: &tempfile::TempDir, args: &[&str], input: &str) -> Vec<Value> {
    let knowledge = dir.path().to_str().unwrap().to_string();
    let dialogs = repo().join("dialogs");
    let mut all = vec![
        "--knowledge",
        knowledge.as_str(),
        "--dialogs",
        dialogs.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = yidi(&all, input);
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(&out)
}

#[test]
fn a_third_region_from_files_alone() {
    let dir = with_kunshan();
    let check = {
        let knowledge = dir.path().to_str().unwrap().to_string();
        let dialogs = repo().join("dialogs");
        yidi(
            &[
                "--knowledge",
                &knowledge,
                "--dialogs",
                dialogs.to_str().unwrap(),
                "check",
            ],
            "",
        )
    };
    assert!(check.status.success(), "{}", stderr(&check));

    // dialog choices: the region is a button of the insured-region question
    let replies = run(&dir, &["chat", "--json"], "/filing\n");
    let labels: Vec<&str> = replies[0]["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["苏州", "张家港", "昆山"], "{}", replies[0]);

    // free text names it; its paragraph of an FAQ answer comes first; 转人工 is its own
    let replies = run(
        &dir,
        &["chat", "--json"],
        "我是昆山参保的\n医保咨询电话多少\n转人工\n",
    );
    assert_eq!(replies[0]["slots"]["insured_region"], "kunshan");
    assert_eq!(replies[1]["faq"]["id"], "contacts", "{}", replies[1]);
    // the lead first, then the region's own paragraph, and no other region's
    let text = replies[1]["text"].as_str().unwrap();
    assert!(
        text.split("\n\n")
            .nth(1)
            .is_some_and(|p| p.starts_with("昆山参保人员")),
        "{text}"
    );
    assert!(!text.contains("张家港参保人员"), "{text}");
    assert!(
        replies[2]["text"]
            .as_str()
            .unwrap()
            .contains("昆山市医保经办机构"),
        "{}",
        replies[2]
    );

    // checklists: its own channel, and the 80% rule its file says applies
    let lines = run(
        &dir,
        &["checklist", "--json"],
        r#"{"insured_region":"kunshan","care_location":"in_province","filing_type":"temporary","filed":false,"stage":"before_care","visit":"inpatient","by_proxy":false}"#,
    );
    assert_eq!(
        lines[0]["channels"],
        serde_json::json!(["counter", "jiangsu-app", "kunshan-wechat"]),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[0]["warnings"],
        serde_json::json!(["temporary-reduced-ratio"])
    );

    // estimates: with its policy, by region id as in the dialogs
    let lines = run(
        &dir,
        &["estimate", "--json"],
        r#"{"insured_region":"kunshan","visit":"inpatient","hospital_level":3,"filing_type":"temporary","filed":true,"total":"50000","scheme":"employee","employment":"working"}"#,
    );
    assert_eq!(lines[0]["policy"], "kunshan", "{}", lines[0]);
    assert_eq!(lines[0]["fund_pays"], "35824.00");

    // the whole estimate dialog for the region
    let replies = run(
        &dir,
        &["chat", "--json"],
        "我是昆山在职职工，异地长期居住，已经备案了，在三级医院住院花了5万，能报多少\n没有\n不清楚\n",
    );
    let last = replies.last().unwrap();
    assert_eq!(last["estimate"]["policy"], "kunshan", "{last}");
    assert_eq!(last["estimate"]["fund_pays"], "44780.00");
}

#[test]
fn a_broken_region_file_stops_the_load_naming_file_and_field() {
    let dir = with_kunshan();
    std::fs::write(
        dir.path().join("regions/kunshan.toml"),
        REGION.replace("policy = \"kunshan\"", "policy = \"nowhere\""),
    )
    .unwrap();
    let knowledge = dir.path().to_str().unwrap().to_string();
    let out = yidi(&["--knowledge", &knowledge, "check"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("regions/kunshan.toml: field policy: no policy file policies/nowhere.toml"),
        "{}",
        stderr(&out)
    );
}
