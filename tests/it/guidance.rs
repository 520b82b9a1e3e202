//! `yidi checklist --json` and `yidi estimate --json` through the real binary.

use crate::helpers::*;

#[test]
fn checklist_json_answers_each_situation_line() {
    let input = [
        r#"{"insured_region":"suzhou","care_location":"other_province","filing_type":"long_term_resident","filed":false,"stage":"before_care","visit":"inpatient","by_proxy":true}"#,
        r#"{"insured_region":"suzhou","filing_type":"temporary","stage":"discharged_self_paid","visit":"outpatient"}"#,
        r#"{"insured_region":"suzhou","filing_type":"temporary","stage":"before_care"}"#,
        r#"{"insured_region":"suzhou","stage":"warp_speed"}"#,
        "not json",
    ]
    .join("\n");
    let lines = json_lines(&yidi(&["checklist", "--json"], &input));
    assert_eq!(lines.len(), 5);

    let first = &lines[0];
    let ids = |k: &str, v: &serde_json::Value| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids("filing", first),
        [
            "identity",
            "filing-form",
            "residence-proof",
            "proxy-identity"
        ]
    );
    assert!(ids("channels", first).contains(&"national-miniprogram".to_string()));
    assert!(ids("channels", first).contains(&"wechat-suzhou".to_string()));
    for item in first["items"].as_array().unwrap() {
        assert!(
            !item["text"].as_str().unwrap().is_empty()
                && !item["source"].as_str().unwrap().is_empty()
        );
    }

    let discharged = &lines[1];
    assert!(
        ids("filing", discharged).is_empty(),
        "no backfill for temporary: {discharged}"
    );
    assert_eq!(
        ids("manual", discharged),
        [
            "social-security-card",
            "invoice",
            "outpatient-cost-list",
            "prescription-or-record"
        ]
    );
    for w in [
        "backfill-no-promise",
        "keep-thermal-copies",
        "manual-deadline",
        "temporary-reduced-ratio",
    ] {
        assert!(
            ids("warnings", discharged).contains(&w.to_string()),
            "{w} missing: {discharged}"
        );
    }

    assert_eq!(
        lines[2]["error"]["field"], "visit",
        "a missing slot is named: {}",
        lines[2]
    );
    assert_eq!(lines[3]["error"]["field"], "stage", "{}", lines[3]);
    assert!(
        lines[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON"),
        "{}",
        lines[4]
    );
}

#[test]
fn estimate_json_reproduces_the_worked_examples_with_the_reference_policy() {
    let policy = repo().join("tests/data/reference-policy.toml");
    let base = r#""policy":"reference","visit":"inpatient","hospital_level":3,"filed":true,"total":"20000","self_pay":"1000","class_b":"5000""#;
    let input = [
        format!(r#"{{{base},"filing_type":"long_term_resident"}}"#),
        format!(r#"{{{base},"filing_type":"temporary"}}"#),
        format!(r#"{{{base},"filing_type":"long_term_resident","admissions_before":1}}"#),
        r#"{"policy":"reference","visit":"inpatient","hospital_level":3,"filing_type":"temporary","filed":true,"total":"-5"}"#.to_string(),
        r#"{"policy":"nowhere","visit":"inpatient","hospital_level":3,"filing_type":"temporary","filed":true,"total":"5"}"#.to_string(),
    ]
    .join("\n");
    let lines = json_lines(&yidi(
        &["estimate", "--json", "--policy", policy.to_str().unwrap()],
        &input,
    ));
    assert_eq!(lines.len(), 5);
    let e1 = &lines[0];
    assert_eq!(e1["class_b_copay"], "500.00");
    assert_eq!(e1["eligible"], "18500.00");
    assert_eq!(e1["deductible_applied"], "900.00");
    assert_eq!(e1["fund_pays"], "16323.00");
    assert_eq!(e1["patient_pays"], "3677.00");
    assert_eq!(e1["route"], "direct");
    assert_eq!(e1["bands"].as_array().unwrap().len(), 4);
    assert!(e1["disclaimer"].as_str().unwrap().contains("估算"));
    assert!(!e1["rules"].as_array().unwrap().is_empty());
    assert_eq!(lines[1]["fund_pays"], "13058.40");
    assert_eq!(lines[1]["patient_pays"], "6941.60");
    assert_eq!(lines[2]["deductible_applied"], "450.00");
    assert_eq!(lines[2]["fund_pays"], "16719.00");
    assert_eq!(lines[2]["patient_pays"], "3281.00");
    assert_eq!(lines[3]["error"]["field"], "total");
    assert_eq!(lines[4]["error"]["field"], "policy");
}

#[test]
fn the_shipped_policies_estimate_or_refuse_with_a_reason() {
    let input = [
        r#"{"policy":"suzhou","visit":"inpatient","hospital_level":3,"filing_type":"long_term_resident","filed":true,"total":"50000","scheme":"employee","employment":"retired"}"#,
        r#"{"policy":"zhangjiagang","visit":"inpatient","hospital_level":3,"filing_type":"long_term_resident","filed":true,"total":"50000","scheme":"employee","employment":"retired"}"#,
        r#"{"policy":"suzhou","visit":"inpatient","hospital_level":3,"filing_type":"long_term_resident","filed":true,"total":"50000"}"#,
    ]
    .join("\n");
    let lines = json_lines(&yidi(&["estimate", "--json"], &input));
    let sz = &lines[0];
    assert!(
        sz["fund_pays"]
            .as_str()
            .unwrap()
            .ends_with(|c: char| c.is_ascii_digit()),
        "{sz}"
    );
    assert!(
        sz["disclaimer"]
            .as_str()
            .unwrap()
            .contains("尚未与官方文件核对"),
        "unverified figures say so: {sz}"
    );
    // 张家港: the Suzhou table, every figure flagged, the assumption said plainly
    assert_eq!(lines[1]["fund_pays"], sz["fund_pays"], "{}", lines[1]);
    assert!(
        lines[1]["rules"][1]
            .as_str()
            .unwrap()
            .contains("按苏州大市统一的医保待遇表估算"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2]["error"]["field"], "scheme",
        "a per-person policy needs the scheme: {}",
        lines[2]
    );
}

#[test]
fn a_line_that_is_not_utf8_is_answered_with_an_error_and_the_rest_still_runs() {
    let policy = repo().join("tests/data/reference-policy.toml");
    let mut input = b"\xff\xfe\n".to_vec();
    input.extend_from_slice(br#"{"policy":"reference","visit":"inpatient","hospital_level":3,"filing_type":"long_term_resident","filed":true,"total":"20000","self_pay":"1000","class_b":"5000"}"#);
    let out = yidi_bytes(
        &["estimate", "--json", "--policy", policy.to_str().unwrap()],
        &input,
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["fund_pays"], "16323.00");
    assert_eq!(
        lines[1]["bands"][0]["factor"], "1.00",
        "decimals carry two places"
    );
}

#[test]
fn a_broken_policy_file_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "id = \"bad\"\nname = \"x\"\n[inpatient]\ndeductible = { 3 = \"abc\" }\n",
    )
    .unwrap();
    let out = yidi(
        &["estimate", "--json", "--policy", bad.to_str().unwrap()],
        "{}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));
}

#[test]
fn check_covers_dialogs_too() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("dialogs")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    let path = dir.path().join("estimate.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("goto = \"employment\"", "goto = \"nowhere\"");
    std::fs::write(&path, text).unwrap();
    let out = yidi(&["--dialogs", dir.path().to_str().unwrap(), "check"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "dialogs/estimate.toml: step `scheme`: transition goes to unknown step `nowhere`"
        ),
        "{}",
        stderr(&out)
    );
}
