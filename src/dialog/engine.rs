//! The dialog runtime: a pure state machine over [`SessionState`]. The caller (the
//! assistant) decides when to start a dialog and renders the [`Turn`]s; nothing here does IO.
//!
//! Session state is stable data (dialog id, step id, slots, history, version), stored as
//! JSON, so a new release never strands a stored conversation: a state that names a dialog
//! or step that no longer exists is dropped with a note instead of failing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Dialog, Dialogs, Outcome, Parsed, SlotKind};

/// Version of the stored state's shape.
pub const STATE_VERSION: u32 = 1;

/// How many times a question is asked again before the hotline is offered.
pub const MAX_REASKS: u32 = 2;

/// Everything a conversation remembers between turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub version: u32,
    /// What the conversation knows of the user's situation, from dialogs and from facts
    /// stated in any turn; a dialog never asks for a known slot. 重新开始 and /reset clear it.
    pub slots: BTreeMap<String, String>,
    /// The dialog in progress, if any.
    pub active: Option<Active>,
    /// The FAQ entry answered last: the topic that follow-ups ("那要多久") continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The FAQ ids offered by the last clarifying question (or "did you mean" suggestions),
    /// best first; a reply may pick one by number or words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// Words of the area the last clarifying question was about ("报销").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// Facts kept beside the slots for reading later messages (the home place "老家" stands
    /// for, the city of care and the city filed for, by name): not situation slots.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, String>,
    /// What the last reply was, so that the same reply never goes out twice in a row and a
    /// follow-up can be answered for the changed situation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastReply>,
    /// The conversation has been about care away from home (an answer that only applies to
    /// it, or a situation away from home): later questions need no 异地 of their own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cross_region: bool,
}

/// The last reply of a conversation, as far as the next turn needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReply {
    /// A digest of its text (the text itself is in the transcript).
    pub digest: u64,
    /// The FAQ entry it answered with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faq: Option<String>,
    /// The slots the answer was given for (a follow-up says what changed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slots: BTreeMap<String, String>,
}

/// A dialog in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Active {
    pub dialog: String,
    pub step: String,
    /// Snapshots taken before each answer, for 返回/上一步.
    pub history: Vec<Snapshot>,
    /// Answers in a row that fitted nothing.
    pub retries: u32,
    /// Questions of the user's own in a row, answered while the dialog waited: a second one
    /// means the user has moved on, and the dialog ends.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub asides: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub step: String,
    pub slots: BTreeMap<String, String>,
}

impl SessionState {
    pub fn new() -> SessionState {
        SessionState {
            version: STATE_VERSION,
            ..Default::default()
        }
    }
}

/// What the dialog wants to happen next.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// Ask (or ask again) for a slot.
    Ask {
        dialog: String,
        step: String,
        slot: String,
        question: String,
        note: Option<String>,
    },
    /// The dialog is over, or (with `then`) over but for an optional question asked with
    /// it; produce this outcome from the session's slots.
    Done {
        dialog: String,
        outcome: Outcome,
        then: Option<Then>,
    },
    /// The answer fitted nothing (the caller may try it as an FAQ question first).
    NotUnderstood {
        dialog: String,
        step: String,
        slot: String,
        retries: u32,
    },
    /// Asked too often without a usable answer: the dialog ended, offer a human.
    GaveUp { dialog: String },
}

/// The optional question that follows an outcome (a step's `then`).
#[derive(Debug, Clone, PartialEq)]
pub struct Then {
    pub step: String,
    pub slot: String,
    pub question: String,
}

/// Starts `dialog_id`, filling slots from the message's `facts` first; only missing slots are
/// asked: what the conversation already knows of the user's situation is kept (a correction
/// such as "不对，是张家港的" has replaced a slot before; 重新开始 forgets them all).
pub fn start(
    dialogs: &Dialogs,
    state: &mut SessionState,
    dialog_id: &str,
    facts: &BTreeMap<String, String>,
) -> Option<Turn> {
    let dialog = dialogs.get(dialog_id)?;
    fill_from_facts(dialogs, state, dialog, facts);
    state.active = Some(Active {
        dialog: dialog.id.clone(),
        step: dialog.start.clone(),
        history: Vec::new(),
        retries: 0,
        asides: 0,
    });
    Some(advance(dialogs, state, None))
}

/// The current question again (e.g. after an FAQ answer in the middle of a dialog).
pub fn current(dialogs: &Dialogs, state: &mut SessionState) -> Option<Turn> {
    state.active.as_ref()?;
    Some(advance(dialogs, state, None))
}

/// Takes `parsed` (the message read as the answer to the current question, see
/// [`crate::dialog::slots::SlotDefs::parse_answer`]) and the message's other `facts`.
pub fn answer(
    dialogs: &Dialogs,
    state: &mut SessionState,
    parsed: Parsed,
    facts: &BTreeMap<String, String>,
) -> Option<Turn> {
    let active = state.active.clone()?;
    let Some((dialog, step)) = dialogs
        .get(&active.dialog)
        .and_then(|d| Some((d, d.step(&active.step)?)))
    else {
        state.active = None;
        return None;
    };
    let slot = step.slot.clone()?;
    match parsed {
        Parsed::Value(v) => {
            let snapshot = Snapshot {
                step: step.id.clone(),
                slots: state.slots.clone(),
            };
            // other slots the answer also states ("退休了，在上海")
            fill_from_facts(dialogs, state, dialog, facts);
            state.slots.insert(slot, v);
            if let Some(a) = state.active.as_mut() {
                a.history.push(snapshot);
                a.retries = 0;
                a.asides = 0;
            }
            Some(advance(dialogs, state, None))
        }
        Parsed::Invalid(note) => Some(advance(dialogs, state, Some(note))),
        Parsed::Nothing if fills_something(dialogs, state, dialog, facts) => {
            // not this question's answer, but facts for later ones ("我帮他办，以后看门诊"):
            // keep them and go on; the question is asked again if still needed
            let snapshot = Snapshot {
                step: step.id.clone(),
                slots: state.slots.clone(),
            };
            fill_from_facts(dialogs, state, dialog, facts);
            if let Some(a) = state.active.as_mut() {
                a.history.push(snapshot);
                a.retries = 0;
            }
            Some(advance(
                dialogs,
                state,
                Some("好的，这个情况记下了。".into()),
            ))
        }
        Parsed::Nothing => {
            let retries = active.retries + 1;
            if retries > MAX_REASKS {
                state.active = None;
                return Some(Turn::GaveUp {
                    dialog: dialog.id.clone(),
                });
            }
            if let Some(a) = state.active.as_mut() {
                a.retries = retries;
            }
            Some(Turn::NotUnderstood {
                dialog: dialog.id.clone(),
                step: step.id.clone(),
                slot,
                retries,
            })
        }
    }
}

/// 返回/上一步: undo the last answer and ask that question again.
pub fn back(dialogs: &Dialogs, state: &mut SessionState) -> Option<Turn> {
    let active = state.active.as_mut()?;
    if let Some(snap) = active.history.pop() {
        active.step = snap.step;
        active.retries = 0;
        state.slots = snap.slots;
        // the restored step's slot may have been known before it was asked; forget it so it is asked
        let slot = dialogs
            .get(&active.dialog)
            .and_then(|d| d.step(&active.step))
            .and_then(|s| s.slot.clone());
        if let Some(slot) = slot {
            state.slots.remove(&slot);
        }
        Some(advance(dialogs, state, None))
    } else {
        Some(advance(dialogs, state, Some("已经是第一个问题了。".into())))
    }
}

/// 重新开始: forget every slot and start the current dialog again.
pub fn restart(dialogs: &Dialogs, state: &mut SessionState) -> Option<Turn> {
    let dialog = state.active.as_ref()?.dialog.clone();
    state.slots.clear();
    state.notes.clear();
    start(dialogs, state, &dialog, &BTreeMap::new())
}

/// Whether the stored state still fits the definitions; if not, it is reset.
/// Returns false when the state had to be reset.
pub fn repair(dialogs: &Dialogs, state: &mut SessionState) -> bool {
    let fits = state.version == STATE_VERSION
        && state.active.as_ref().is_none_or(|a| {
            dialogs
                .get(&a.dialog)
                .is_some_and(|d| d.step(&a.step).is_some())
        });
    if !fits {
        *state = SessionState::new();
    }
    fits
}

/// Whether `facts` state a slot of `dialog` that is not known yet.
fn fills_something(
    dialogs: &Dialogs,
    state: &SessionState,
    dialog: &Dialog,
    facts: &BTreeMap<String, String>,
) -> bool {
    let mut probe = state.clone();
    fill_from_facts(dialogs, &mut probe, dialog, facts);
    probe.slots.len() > state.slots.len()
}

/// Records every slot of `facts` (what a message states) that the session does not know
/// yet: the dialog's own (so they are not asked) and others (a later dialog, or the
/// estimate's cross-region rule, can use them). Amounts are only taken by dialogs that ask
/// for them.
fn fill_from_facts(
    dialogs: &Dialogs,
    state: &mut SessionState,
    dialog: &Dialog,
    facts: &BTreeMap<String, String>,
) {
    let asked: Vec<&str> = dialog
        .steps
        .iter()
        .filter_map(|s| s.slot.as_deref())
        .collect();
    for (slot, value) in facts {
        let is_money = dialogs
            .slots
            .get(slot)
            .is_some_and(|d| d.kind != SlotKind::Choice);
        if (!is_money || asked.contains(&slot.as_str())) && !state.slots.contains_key(slot) {
            state.slots.insert(slot.clone(), value.clone());
        }
    }
}

/// Walks from the current step over every step whose slot is already known, applying
/// transitions, until a question must be asked or an outcome is reached.
fn advance(dialogs: &Dialogs, state: &mut SessionState, note: Option<String>) -> Turn {
    // callers only advance a dialog in progress
    let Some(active) = state.active.clone() else {
        return Turn::GaveUp {
            dialog: String::new(),
        };
    };
    let Some(dialog) = dialogs.get(&active.dialog) else {
        state.active = None;
        return Turn::GaveUp {
            dialog: active.dialog,
        };
    };
    let mut step_id = active.step.clone();
    // bounded: a validated dialog reaches an outcome in at most `steps` hops
    for _ in 0..=dialog.steps.len() * 2 {
        let Some(step) = dialog.step(&step_id) else {
            break;
        };
        if let Some(outcome) = &step.outcome {
            // an optional refinement question stays open while its slot is unknown
            let then = step
                .then
                .as_deref()
                .and_then(|t| dialog.step(t))
                .and_then(|t| Some((t, t.slot.as_deref()?)))
                .filter(|(_, slot)| !state.slots.contains_key(*slot))
                .map(|(t, slot)| Then {
                    step: t.id.clone(),
                    slot: slot.to_string(),
                    question: t.ask.clone(),
                });
            match (&then, state.active.as_mut()) {
                (Some(t), Some(a)) => a.step = t.step.clone(),
                _ => state.active = None,
            }
            return Turn::Done {
                dialog: dialog.id.clone(),
                outcome: outcome.clone(),
                then,
            };
        }
        let Some(slot) = step.slot.as_deref() else {
            break;
        };
        let known = state.slots.get(slot).filter(|v| {
            step.accept.as_ref().is_none_or(|a| a.contains(v))
                || dialogs
                    .slots
                    .get(slot)
                    .is_some_and(|d| d.kind != SlotKind::Choice)
        });
        if known.is_none() {
            if let Some(a) = state.active.as_mut() {
                a.step = step_id.clone();
            }
            return Turn::Ask {
                dialog: dialog.id.clone(),
                step: step_id,
                slot: slot.to_string(),
                question: step.ask.clone(),
                note,
            };
        }
        let next = step.transitions.iter().find(|t| {
            t.when
                .iter()
                .all(|(s, vs)| state.slots.get(s).is_some_and(|v| vs.contains(v)))
        });
        step_id = match next {
            Some(t) => {
                for (s, v) in &t.set {
                    state.slots.insert(s.clone(), v.clone());
                }
                t.goto.clone()
            }
            None => match dialog.default_next(step) {
                Some(n) => n,
                None => break,
            },
        };
    }
    // only reachable with an invalid definition; validation rejects those
    state.active = None;
    Turn::GaveUp {
        dialog: dialog.id.clone(),
    }
}

/// The choices (value, label) a step offers.
pub fn choices(dialogs: &Dialogs, dialog: &str, step: &str) -> Vec<(String, String)> {
    let Some(step) = dialogs.get(dialog).and_then(|d| d.step(step)) else {
        return Vec::new();
    };
    let Some(def) = step.slot.as_deref().and_then(|s| dialogs.slots.get(s)) else {
        return Vec::new();
    };
    def.values
        .iter()
        .filter(|v| !v.hidden && step.accept.as_ref().is_none_or(|a| a.contains(&v.value)))
        .map(|v| (v.value.clone(), v.label.clone()))
        .collect()
}
