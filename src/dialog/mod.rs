//! Guided dialogs: data-driven state machines (`dialogs/*.toml`) that collect slots and end
//! in an outcome (the checklist, the estimate, or a message).
//!
//! Definitions are parsed raw, then validated: unknown slots or values, dangling `goto`s,
//! unreachable steps and steps from which no outcome can be reached are errors naming the
//! file and the step. The runtime is in [`engine`]; slot extraction in [`slots`].

pub mod engine;
pub mod money;
pub mod slots;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

pub use slots::{Parsed, SlotDefs, SlotKind};

/// What a dialog produces at its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Checklist,
    Estimate,
    Message { say: String, sources: Vec<String> },
}

/// A conditional transition: when every named slot has one of the listed values, set
/// `set` and go to `goto`.
#[derive(Debug, Clone)]
pub struct Transition {
    pub when: BTreeMap<String, Vec<String>>,
    pub set: BTreeMap<String, String>,
    pub goto: String,
}

/// One step: either it asks for a slot, or it is an outcome.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub slot: Option<String>,
    pub ask: String,
    /// Restricts the choice values this step accepts (default: all of the slot's values).
    pub accept: Option<Vec<String>>,
    pub transitions: Vec<Transition>,
    /// The step that follows when no transition applies (default: the next step in the file).
    pub next: Option<String>,
    pub outcome: Option<Outcome>,
    /// On an outcome step: an optional question asked together with the outcome (when its
    /// slot is still unknown), whose answer refines it ("今年之前住过几次院"). A reply that does
    /// not answer it ends the dialog and is read as a new message.
    pub then: Option<String>,
}

/// A validated dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: String,
    pub title: String,
    pub intro: String,
    pub triggers: Vec<String>,
    pub start: String,
    pub steps: Vec<Step>,
    pub file: String,
}

impl Dialog {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether `step` is the optional question that follows an outcome (`then`).
    pub fn is_refinement(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s.then.as_deref() == Some(step))
    }

    /// The steps a step can lead to.
    fn successors(&self, step: &Step) -> Vec<String> {
        if step.outcome.is_some() {
            return step.then.iter().cloned().collect();
        }
        let mut out: Vec<String> = step.transitions.iter().map(|t| t.goto.clone()).collect();
        if let Some(n) = self.default_next(step) {
            out.push(n);
        }
        out
    }

    /// `next`, or the following step in file order.
    pub fn default_next(&self, step: &Step) -> Option<String> {
        step.next.clone().or_else(|| {
            let i = self.steps.iter().position(|s| s.id == step.id)?;
            self.steps.get(i + 1).map(|s| s.id.clone())
        })
    }
}

/// All dialogs and the slot vocabulary.
#[derive(Debug, Clone, Default)]
pub struct Dialogs {
    pub slots: SlotDefs,
    pub dialogs: Vec<Dialog>,
}

/// The `values_from` of a slot whose values are the regions (`knowledge/regions/`).
pub const VALUES_FROM_REGIONS: &str = "regions";

impl Dialogs {
    pub fn get(&self, id: &str) -> Option<&Dialog> {
        self.dialogs.iter().find(|d| d.id == id)
    }

    /// Gives the slots whose `values_from` is `from` these values (after any written in
    /// `slots.toml`); returns the names of the slots filled.
    pub fn fill_values(&mut self, from: &str, values: &[slots::SlotValue]) -> Vec<String> {
        let mut filled = Vec::new();
        for (name, def) in &mut self.slots.defs {
            if def.values_from.as_deref() == Some(from) {
                def.values
                    .retain(|v| !values.iter().any(|n| n.value == v.value));
                def.values.extend(values.iter().cloned());
                def.values_changed();
                filled.push(name.clone());
            }
        }
        if !filled.is_empty() {
            self.slots.values_changed();
        }
        filled
    }

    /// Loads and validates `dir` (`slots.toml` and every other `*.toml`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Dialogs, DialogErrors> {
        let dir = dir.as_ref();
        let mut errors = Vec::new();
        // When slots.toml itself cannot be read, the dialog files are still read (their own
        // syntax errors are reported) but not checked against the slot vocabulary: every slot
        // would be "unknown" and drown the one real error.
        let (slots, slots_read) = match read::<slots::SlotsFile>(dir, "slots.toml") {
            Ok(f) => {
                validate_slots(&f, &mut errors);
                (SlotDefs::new(f.slots), true)
            }
            Err(e) => {
                errors.push(e);
                (SlotDefs::default(), false)
            }
        };
        let mut files: Vec<String> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".toml") && n != "slots.toml")
                .collect(),
            Err(e) => {
                errors.push(DialogError::new(
                    "dialogs/",
                    None,
                    format!("cannot read the folder: {e}"),
                ));
                Vec::new()
            }
        };
        files.sort();
        let mut dialogs = Vec::new();
        for file in files {
            match read::<RawDialog>(dir, &file) {
                Ok(_) if !slots_read => {}
                Ok(raw) => {
                    if let Some(d) = validate_dialog(&file, raw, &slots, &mut errors) {
                        if dialogs.iter().any(|o: &Dialog| o.id == d.id) {
                            errors.push(DialogError::new(
                                &file,
                                None,
                                format!("dialog id `{}` is used twice", d.id),
                            ));
                        }
                        dialogs.push(d);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Dialogs { slots, dialogs })
        } else {
            Err(DialogErrors(errors))
        }
    }
}

/// One problem in a dialog definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogError {
    pub file: String,
    pub step: Option<String>,
    pub message: String,
}

impl DialogError {
    fn new(file: &str, step: Option<&str>, message: impl Into<String>) -> DialogError {
        DialogError {
            file: file.to_string(),
            step: step.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for DialogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dialogs/{}", self.file)?;
        if let Some(s) = &self.step {
            write!(f, ": step `{s}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem of one load.
#[derive(Debug, Clone, thiserror::Error)]
pub struct DialogErrors(pub Vec<DialogError>);

impl fmt::Display for DialogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDialog {
    id: String,
    title: String,
    #[serde(default)]
    intro: String,
    #[serde(default)]
    triggers: Vec<String>,
    start: String,
    #[serde(default, rename = "step")]
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    slot: Option<String>,
    #[serde(default)]
    ask: String,
    accept: Option<Vec<String>>,
    #[serde(default)]
    when: Vec<RawTransition>,
    next: Option<String>,
    outcome: Option<String>,
    then: Option<String>,
    say: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransition {
    #[serde(rename = "if")]
    when: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    goto: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn read<T: serde::de::DeserializeOwned>(dir: &Path, file: &str) -> Result<T, DialogError> {
    let text = std::fs::read_to_string(dir.join(file))
        .map_err(|e| DialogError::new(file, None, format!("cannot read: {e}")))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = match line {
            Some(l) => format!("line {l}: {}", e.message()),
            None => e.message().to_string(),
        };
        DialogError::new(file, None, msg)
    })
}

fn validate_slots(f: &slots::SlotsFile, errors: &mut Vec<DialogError>) {
    for (name, def) in &f.slots {
        let at = Some(name.as_str());
        match (&def.values_from, def.kind) {
            (Some(from), SlotKind::Choice) if from == VALUES_FROM_REGIONS => {}
            (Some(from), _) => errors.push(DialogError::new(
                "slots.toml",
                at,
                format!(
                    "`values_from = \"{from}\"`: only choice slots may take their values from \"{VALUES_FROM_REGIONS}\""
                ),
            )),
            (None, _) => {}
        }
        match def.kind {
            SlotKind::Choice if def.values.is_empty() && def.values_from.is_none() => {
                errors.push(DialogError::new(
                    "slots.toml",
                    at,
                    "a choice slot needs values",
                ));
            }
            SlotKind::Choice => {}
            _ if !def.values.is_empty() => {
                errors.push(DialogError::new(
                    "slots.toml",
                    at,
                    "only choice slots have values",
                ));
            }
            _ => {}
        }
        let mut seen = BTreeSet::new();
        for v in &def.values {
            if v.value.is_empty() || v.label.is_empty() || !seen.insert(v.value.clone()) {
                errors.push(DialogError::new(
                    "slots.toml",
                    at,
                    format!("value `{}` must be unique with a label", v.value),
                ));
            }
        }
    }
}

fn validate_dialog(
    file: &str,
    raw: RawDialog,
    slots: &SlotDefs,
    errors: &mut Vec<DialogError>,
) -> Option<Dialog> {
    let before = errors.len();
    let mut err = |step: Option<&str>, msg: String| errors.push(DialogError::new(file, step, msg));
    if raw.id.is_empty() || raw.title.is_empty() {
        err(None, "`id` and `title` must not be empty".into());
    }
    if raw.steps.is_empty() {
        err(None, "has no steps".into());
    }
    let ids: BTreeSet<String> = raw.steps.iter().map(|s| s.id.clone()).collect();
    if ids.len() != raw.steps.len() {
        err(None, "step ids must be unique".into());
    }
    if !ids.contains(&raw.start) {
        err(None, format!("`start` names unknown step `{}`", raw.start));
    }
    let check_value = |slot: &str, value: &str| -> Result<(), String> {
        let def = slots
            .get(slot)
            .ok_or_else(|| format!("unknown slot `{slot}`"))?;
        if def.kind == SlotKind::Choice && !def.values.iter().any(|v| v.value == value) {
            return Err(format!("`{value}` is not a value of slot `{slot}`"));
        }
        Ok(())
    };
    // each step's slot, for checking `then`
    let raw_slots: BTreeMap<String, Option<String>> = raw
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.slot.clone()))
        .collect();
    let mut steps = Vec::new();
    for s in raw.steps {
        let at = Some(s.id.as_str());
        let outcome = match (s.outcome.as_deref(), &s.say) {
            (None, None) => None,
            (Some("checklist"), None) => Some(Outcome::Checklist),
            (Some("estimate"), None) => Some(Outcome::Estimate),
            (Some("message"), Some(say)) if !say.trim().is_empty() => Some(Outcome::Message {
                say: say.clone(),
                sources: s.sources.clone(),
            }),
            (Some("message"), _) => {
                err(at, "a message outcome needs `say`".into());
                None
            }
            (Some(other), _) => {
                err(
                    at,
                    format!("unknown outcome `{other}` (checklist, estimate or message)"),
                );
                None
            }
            (None, Some(_)) => {
                err(at, "`say` belongs to `outcome = \"message\"`".into());
                None
            }
        };
        match (&s.slot, &outcome) {
            (None, None) => err(at, "a step must ask for a `slot` or be an `outcome`".into()),
            (Some(_), Some(_)) => err(at, "a step cannot both ask and end".into()),
            (Some(slot), None) => {
                if slots.get(slot).is_none() {
                    err(at, format!("unknown slot `{slot}`"));
                }
                if s.ask.trim().is_empty() {
                    err(at, "`ask` must not be empty".into());
                }
                for v in s.accept.iter().flatten() {
                    if let Err(m) = check_value(slot, v) {
                        err(at, format!("accept: {m}"));
                    }
                }
            }
            (None, Some(_)) => {}
        }
        let mut transitions = Vec::new();
        for t in s.when {
            if !ids.contains(&t.goto) {
                err(at, format!("transition goes to unknown step `{}`", t.goto));
            }
            let mut when = BTreeMap::new();
            for (slot, values) in t.when {
                let values = match values {
                    OneOrMany::One(v) => vec![v],
                    OneOrMany::Many(vs) => vs,
                };
                for v in &values {
                    if let Err(m) = check_value(&slot, v) {
                        err(at, format!("condition: {m}"));
                    }
                }
                when.insert(slot, values);
            }
            for (slot, v) in &t.set {
                if let Err(m) = check_value(slot, v) {
                    err(at, format!("set: {m}"));
                }
            }
            transitions.push(Transition {
                when,
                set: t.set,
                goto: t.goto,
            });
        }
        if let Some(n) = &s.next
            && !ids.contains(n)
        {
            err(at, format!("`next` names unknown step `{n}`"));
        }
        if let Some(t) = &s.then {
            if outcome.is_none() {
                err(at, "`then` belongs to an outcome step".into());
            }
            match raw_slots.get(t.as_str()) {
                None => err(at, format!("`then` names unknown step `{t}`")),
                Some(None) => err(at, format!("`then` step `{t}` must ask for a slot")),
                Some(Some(_)) => {}
            }
        }
        steps.push(Step {
            id: s.id,
            slot: s.slot,
            ask: s.ask,
            accept: s.accept,
            transitions,
            next: s.next,
            outcome,
            then: s.then,
        });
    }
    if errors.len() > before {
        return None;
    }
    let dialog = Dialog {
        id: raw.id,
        title: raw.title,
        intro: raw.intro,
        triggers: raw.triggers,
        start: raw.start,
        steps,
        file: file.to_string(),
    };
    check_graph(&dialog, errors);
    if errors.len() > before {
        None
    } else {
        Some(dialog)
    }
}

/// Every step reachable from `start`, and an outcome reachable from every reachable step.
fn check_graph(d: &Dialog, errors: &mut Vec<DialogError>) {
    let mut reachable = BTreeSet::new();
    let mut queue = VecDeque::from([d.start.clone()]);
    while let Some(id) = queue.pop_front() {
        if !reachable.insert(id.clone()) {
            continue;
        }
        if let Some(step) = d.step(&id) {
            queue.extend(d.successors(step));
        }
    }
    for s in &d.steps {
        if !reachable.contains(&s.id) {
            errors.push(DialogError::new(
                &d.file,
                Some(&s.id),
                "is unreachable from `start`",
            ));
        }
        if s.outcome.is_none() && d.successors(s).is_empty() {
            errors.push(DialogError::new(
                &d.file,
                Some(&s.id),
                "has no next step and is not an outcome (dangling)",
            ));
        }
    }
    // can finish: backwards from the outcomes
    let mut finishing: BTreeSet<String> = d
        .steps
        .iter()
        .filter(|s| s.outcome.is_some())
        .map(|s| s.id.clone())
        .collect();
    loop {
        let more: Vec<String> = d
            .steps
            .iter()
            .filter(|s| {
                !finishing.contains(&s.id) && d.successors(s).iter().any(|n| finishing.contains(n))
            })
            .map(|s| s.id.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        finishing.extend(more);
    }
    for s in &d.steps {
        if reachable.contains(&s.id) && !finishing.contains(&s.id) {
            errors.push(DialogError::new(
                &d.file,
                Some(&s.id),
                "can never reach an outcome: the dialog cannot finish",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOTS: &str = r#"
[slots.filed]
kind = "choice"
title = "是否已备案"
values = [ { value = "true", label = "已备案", answers = ["是"] }, { value = "false", label = "没备案", answers = ["否"] } ]

[slots.total]
kind = "money"
title = "总费用"
"#;

    fn load_with(dialog: &str) -> Result<Dialogs, DialogErrors> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slots.toml"), SLOTS).unwrap();
        std::fs::write(dir.path().join("d.toml"), dialog).unwrap();
        Dialogs::load(dir.path())
    }

    fn errors(dialog: &str) -> String {
        load_with(dialog)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    const GOOD: &str = r#"
id = "d"
title = "测试"
start = "a"
[[step]]
id = "a"
slot = "filed"
ask = "备案了吗？"
when = [ { if = { filed = "false" }, goto = "no" } ]
next = "yes"
[[step]]
id = "yes"
outcome = "checklist"
[[step]]
id = "no"
outcome = "message"
say = "请先备案"
sources = ["000 问5"]
"#;

    #[test]
    fn then_names_an_asking_step_and_belongs_to_outcomes() {
        let e = errors(&GOOD.replace(
            "outcome = \"checklist\"",
            "outcome = \"checklist\"\nthen = \"nowhere\"",
        ));
        assert!(
            e.contains("step `yes`: `then` names unknown step `nowhere`"),
            "{e}"
        );
        let e = errors(&GOOD.replace(
            "outcome = \"checklist\"",
            "outcome = \"checklist\"\nthen = \"no\"",
        ));
        assert!(
            e.contains("step `yes`: `then` step `no` must ask for a slot"),
            "{e}"
        );
        let e = errors(&GOOD.replace("next = \"yes\"", "next = \"yes\"\nthen = \"a\""));
        assert!(
            e.contains("step `a`: `then` belongs to an outcome step"),
            "{e}"
        );
        // a step reached only through `then` counts as reachable
        let d = load_with(&GOOD.replace(
            "outcome = \"checklist\"",
            "outcome = \"checklist\"\nthen = \"b\"\n[[step]]\nid = \"b\"\nslot = \"total\"\nask = \"多少钱？\"\nnext = \"no\"",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let dialog = d.get("d").unwrap();
        assert!(dialog.is_refinement("b") && !dialog.is_refinement("a"));
    }

    #[test]
    fn the_shipped_dialogs_are_valid() {
        let d = Dialogs::load(crate::default_dialogs_dir()).unwrap_or_else(|e| panic!("{e}"));
        for id in ["filing", "estimate", "card_failure"] {
            assert!(d.get(id).is_some(), "dialog {id} missing");
        }
    }

    #[test]
    fn a_broken_slots_file_is_the_only_error_not_one_per_slot_use() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("slots.toml"),
            SLOTS.replace("title", "titel"),
        )
        .unwrap();
        std::fs::write(dir.path().join("d.toml"), GOOD).unwrap();
        std::fs::write(dir.path().join("e.toml"), "id = ").unwrap();
        let e = Dialogs::load(dir.path()).unwrap_err();
        let lines: Vec<String> =
            e.0.iter()
                .map(|e| format!("{}: {}", e.file, e.message))
                .collect();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].starts_with("slots.toml") && lines[0].contains("titel"),
            "{lines:#?}"
        );
        // the other dialog files are still read: their own syntax errors are reported
        assert!(lines[1].starts_with("e.toml"), "{lines:#?}");
        assert!(
            !lines.iter().any(|l| l.contains("unknown slot")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_valid_dialog_loads() {
        let d = load_with(GOOD).unwrap();
        let dialog = d.get("d").unwrap();
        assert_eq!(dialog.steps.len(), 3);
        assert_eq!(
            dialog.step("no").unwrap().outcome,
            Some(Outcome::Message {
                say: "请先备案".into(),
                sources: vec!["000 问5".into()]
            })
        );
    }

    #[test]
    fn unknown_slots_and_values_name_file_and_step() {
        let e = errors(&GOOD.replace("slot = \"filed\"", "slot = \"mood\""));
        assert!(
            e.contains("dialogs/d.toml: step `a`: unknown slot `mood`"),
            "{e}"
        );
        let e = errors(&GOOD.replace("filed = \"false\"", "filed = \"maybe\""));
        assert!(
            e.contains(
                "dialogs/d.toml: step `a`: condition: `maybe` is not a value of slot `filed`"
            ),
            "{e}"
        );
    }

    #[test]
    fn dangling_transitions_are_errors() {
        let e = errors(&GOOD.replace("goto = \"no\"", "goto = \"nowhere\""));
        assert!(
            e.contains("step `a`: transition goes to unknown step `nowhere`"),
            "{e}"
        );
        let e = errors(&GOOD.replace("next = \"yes\"", "next = \"gone\""));
        assert!(
            e.contains("step `a`: `next` names unknown step `gone`"),
            "{e}"
        );
    }

    #[test]
    fn unreachable_steps_are_errors() {
        let extra = format!("{GOOD}\n[[step]]\nid = \"orphan\"\noutcome = \"estimate\"\n");
        let e = errors(&extra);
        assert!(
            e.contains("step `orphan`: is unreachable from `start`"),
            "{e}"
        );
    }

    #[test]
    fn dialogs_that_cannot_finish_are_errors() {
        let looping = r#"
id = "loop"
title = "循环"
start = "a"
[[step]]
id = "a"
slot = "filed"
ask = "备案了吗？"
next = "b"
[[step]]
id = "b"
slot = "total"
ask = "多少钱？"
next = "a"
"#;
        let e = errors(looping);
        assert!(e.contains("step `a`: can never reach an outcome"), "{e}");
    }

    #[test]
    fn malformed_steps_are_errors() {
        let e = errors(&GOOD.replace("outcome = \"checklist\"", "outcome = \"party\""));
        assert!(e.contains("step `yes`: unknown outcome `party`"), "{e}");
        let e = errors(&GOOD.replace("say = \"请先备案\"\n", ""));
        assert!(
            e.contains("step `no`: a message outcome needs `say`"),
            "{e}"
        );
        let e = errors(&GOOD.replace("ask = \"备案了吗？\"", "ask = \"\""));
        assert!(e.contains("step `a`: `ask` must not be empty"), "{e}");
        let e = errors(
            "id = \"x\"\ntitle = \"t\"\nstart = \"a\"\n[[step]]\nid = \"a\"\nslot = \"filed\"\nask = \"?\"\nbogus = 1\n",
        );
        assert!(e.contains("dialogs/d.toml: line"), "{e}");
    }
}
