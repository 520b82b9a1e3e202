//! Conversation test cases (`yidi test FILE`): multi-turn conversations with expectations on
//! each reply, in the JSON-lines format of `../shared/eval/conversations.jsonl`:
//!
//! ```json
//! {"name": "…", "turns": [{"say": "…", "expect": {"kind": "faq", "answer": "manual-where"}}]}
//! ```
//!
//! Expectations (all optional; a turn passes when every one given holds):
//! - `kind`: a reply kind, or a list of acceptable kinds; `not_kind`: kinds it must not be;
//! - `answer`: the FAQ id that answers (`faq.id`);
//! - `dialog`, `asking`: the dialog id and the slot asked for (`null` for none);
//! - `slots`: slot values the conversation must know (others may be known too);
//! - `has`: reply fields that must be present and non-empty (`checklist`, `estimate`,
//!   `faq`, `options`, `choices`, `asking`, `dialog`);
//! - `text_has`: at least one of these strings occurs in the text (alternatives, e.g. either
//!   hotline); `text_lacks`: none of them occurs.
//!
//! Each case runs in a fresh conversation through [`Assistant::handle`], with no store.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::assistant::{Assistant, Reply, ReplyKind};
use crate::dialog::engine::SessionState;

/// One conversation to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub turns: Vec<TurnCase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnCase {
    pub say: String,
    #[serde(default)]
    pub expect: Expect,
}

/// One kind or several acceptable kinds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub kind: Option<OneOrMany>,
    #[serde(default)]
    pub not_kind: Vec<String>,
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub dialog: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub asking: Option<Option<String>>,
    #[serde(default)]
    pub slots: BTreeMap<String, String>,
    #[serde(default)]
    pub has: Vec<String>,
    #[serde(default)]
    pub text_has: Vec<String>,
    #[serde(default)]
    pub text_lacks: Vec<String>,
}

/// `"x"` → `Some(Some("x"))`, `null` → `Some(None)`, absent → `None` (via `default`).
fn some_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

/// Fields that `has` may name.
const HAS_FIELDS: [&str; 7] = [
    "checklist",
    "estimate",
    "faq",
    "options",
    "choices",
    "asking",
    "dialog",
];

/// Reads a JSON-lines file of cases; blank lines are skipped. An error names the line and
/// what is wrong with it (unknown expectation keys and kinds included).
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        for (t, turn) in case.turns.iter().enumerate() {
            let e = &turn.expect;
            let kinds = e.kind.iter().flat_map(OneOrMany::list);
            for k in kinds.chain(e.not_kind.iter().map(String::as_str)) {
                if ReplyKind::parse(k).is_none() {
                    return Err(format!(
                        "line {}: turn {}: unknown kind `{k}` (one of faq, dialog, clarify, smalltalk, out_of_scope, unanswered)",
                        n + 1,
                        t + 1
                    ));
                }
            }
            if let Some(h) = e.has.iter().find(|h| !HAS_FIELDS.contains(&h.as_str())) {
                return Err(format!(
                    "line {}: turn {}: `has` names unknown field `{h}` (one of {})",
                    n + 1,
                    t + 1,
                    HAS_FIELDS.join(", ")
                ));
            }
        }
        if case.turns.is_empty() {
            return Err(format!("line {}: case `{}` has no turns", n + 1, case.name));
        }
        cases.push(case);
    }
    Ok(cases)
}

/// A caller's description for the situation reader (`../shared/eval/situations-dev.jsonl`):
/// `{"text", "want": {slot: value}, "not": {slot: [values it must not have]}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SituationCase {
    pub text: String,
    #[serde(default)]
    pub want: BTreeMap<String, String>,
    #[serde(default)]
    pub not: Option<BTreeMap<String, Vec<String>>>,
}

/// Whether a JSON-lines file holds situation cases (lines with `text`) rather than
/// conversations (lines with `turns`): by its first non-blank line.
pub fn is_situation_file(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .is_some_and(|v| v.get("text").is_some() && v.get("turns").is_none())
}

/// Reads a JSON-lines file of situation cases; an error names the line.
pub fn parse_situations(text: &str) -> Result<Vec<SituationCase>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// A description read wrong.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SituationFailure {
    pub text: String,
    pub problems: Vec<String>,
    pub slots: BTreeMap<String, String>,
}

/// The outcome of reading situation cases.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SituationReport {
    pub descriptions: usize,
    pub read_right: usize,
    pub failures: Vec<SituationFailure>,
}

/// Reads every description with the console's situation reader and checks `want` and `not`.
pub fn run_situations(assistant: &Assistant, cases: &[SituationCase]) -> SituationReport {
    let mut report = SituationReport {
        descriptions: cases.len(),
        ..SituationReport::default()
    };
    for case in cases {
        let slots = assistant.understand(&case.text);
        let mut problems = Vec::new();
        for (slot, value) in &case.want {
            let got = slots.get(slot);
            if got != Some(value) {
                problems.push(format!("{slot}: expected {value}, got {got:?}"));
            }
        }
        for (slot, values) in case.not.iter().flatten() {
            if let Some(got) = slots.get(slot)
                && values.contains(got)
            {
                problems.push(format!("{slot}: must not be {got}"));
            }
        }
        if problems.is_empty() {
            report.read_right += 1;
        } else {
            report.failures.push(SituationFailure {
                text: case.text.clone(),
                problems,
                slots,
            });
        }
    }
    report
}

/// A turn whose reply did not meet its expectations.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub case: String,
    /// 1-based.
    pub turn: usize,
    pub say: String,
    /// One line per unmet expectation.
    pub problems: Vec<String>,
    pub reply_kind: String,
    pub reply_text: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub cases: usize,
    pub cases_passed: usize,
    pub turns: usize,
    pub turns_passed: usize,
    /// turns_passed / turns (1 when there are no turns).
    pub pass_rate: f64,
    pub failures: Vec<Failure>,
}

/// Runs every case in a fresh conversation.
pub fn run(assistant: &Assistant, cases: &[Case]) -> Report {
    let mut report = Report {
        cases: cases.len(),
        ..Report::default()
    };
    for case in cases {
        let mut state = SessionState::new();
        let mut ok = true;
        for (i, turn) in case.turns.iter().enumerate() {
            let reply = assistant.handle(&mut state, &turn.say);
            report.turns += 1;
            let problems = check(&turn.expect, &reply);
            if problems.is_empty() {
                report.turns_passed += 1;
            } else {
                ok = false;
                report.failures.push(Failure {
                    case: case.name.clone(),
                    turn: i + 1,
                    say: turn.say.clone(),
                    problems,
                    reply_kind: reply.kind.as_str().to_string(),
                    reply_text: reply.text.clone(),
                });
            }
        }
        if ok {
            report.cases_passed += 1;
        }
    }
    report.pass_rate = if report.turns == 0 {
        1.0
    } else {
        report.turns_passed as f64 / report.turns as f64
    };
    report
}

/// Every expectation that `reply` does not meet, as a line.
pub fn check(e: &Expect, reply: &Reply) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = reply.kind.as_str();
    if let Some(k) = &e.kind
        && !k.list().contains(&kind)
    {
        problems.push(format!("kind: expected {:?}, got {kind}", k.list()));
    }
    if e.not_kind.iter().any(|k| k == kind) {
        problems.push(format!("kind: must not be {kind}"));
    }
    let faq = reply.faq.as_ref().map(|f| f.id.as_str());
    if let Some(a) = &e.answer
        && faq != Some(a.as_str())
    {
        problems.push(format!("answer: expected {a}, got {faq:?}"));
    }
    if let Some(d) = &e.dialog
        && reply.dialog != *d
    {
        problems.push(format!("dialog: expected {d:?}, got {:?}", reply.dialog));
    }
    if let Some(a) = &e.asking
        && reply.asking != *a
    {
        problems.push(format!("asking: expected {a:?}, got {:?}", reply.asking));
    }
    for (slot, value) in &e.slots {
        let got = reply.slots.get(slot);
        if got != Some(value) {
            problems.push(format!("slots.{slot}: expected {value}, got {got:?}"));
        }
    }
    let json = serde_json::to_value(reply).unwrap_or(Value::Null);
    for field in &e.has {
        let present = match json.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if !present {
            problems.push(format!("has: no {field}"));
        }
    }
    if !e.text_has.is_empty() && !e.text_has.iter().any(|t| reply.text.contains(t.as_str())) {
        problems.push(format!("text_has: none of {:?} in the text", e.text_has));
    }
    for t in &e.text_lacks {
        if reply.text.contains(t.as_str()) {
            problems.push(format!("text_lacks: {t:?} is in the text"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::shipped;

    #[test]
    fn a_failing_expectation_is_reported_and_a_met_one_is_not() {
        let cases = parse_cases(
            r#"{"name": "c", "turns": [{"say": "您好", "expect": {"kind": "smalltalk", "text_lacks": ["抱歉"]}}, {"say": "您好", "expect": {"kind": ["faq", "clarify"], "answer": "contacts", "has": ["checklist"], "slots": {"insured_region": "suzhou"}, "dialog": "filing", "text_has": ["zzz"]}}]}"#,
        )
        .unwrap();
        let report = run(&shipped(), &cases);
        assert_eq!((report.turns, report.turns_passed), (2, 1));
        assert_eq!((report.cases, report.cases_passed), (1, 0));
        assert_eq!(report.pass_rate, 0.5);
        let f = &report.failures[0];
        assert_eq!(f.turn, 2);
        let all = f.problems.join("\n");
        for needle in [
            "kind:",
            "answer:",
            "has: no checklist",
            "slots.insured_region",
            "dialog:",
            "text_has:",
        ] {
            assert!(all.contains(needle), "{needle} missing in {all}");
        }
    }

    #[test]
    fn bad_case_files_name_the_line_and_the_problem() {
        let e = parse_cases(
            "\n{\"name\": \"x\", \"turns\": [{\"say\": \"a\", \"expect\": {\"kinds\": \"faq\"}}]}",
        )
        .unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("kinds"), "{e}");
        let e =
            parse_cases(r#"{"name": "x", "turns": [{"say": "a", "expect": {"kind": "chat"}}]}"#)
                .unwrap_err();
        assert!(e.contains("unknown kind `chat`"), "{e}");
        let e =
            parse_cases(r#"{"name": "x", "turns": [{"say": "a", "expect": {"has": ["text"]}}]}"#)
                .unwrap_err();
        assert!(e.contains("unknown field `text`"), "{e}");
        let e = parse_cases(r#"{"name": "x", "turns": []}"#).unwrap_err();
        assert!(e.contains("no turns"), "{e}");
    }

    #[test]
    fn null_dialog_and_asking_mean_none() {
        let cases = parse_cases(
            r#"{"name": "c", "turns": [{"say": "您好", "expect": {"dialog": null, "asking": null}}]}"#,
        )
        .unwrap();
        assert_eq!(run(&shipped(), &cases).turns_passed, 1);
    }
}
