//! One call as the console shows it (`POST /v1/agent/call`): from the caller's situation
//! (the form's slots), what the agent still has to ask (every missing field at once, in the
//! agent's words), the FAQ entry that answers the situation, the checklist and the estimate,
//! each with one sentence to read to the caller and a text message of at most
//! [`SMS_MAX_CHARS`] characters that names the right hotline.
//!
//! Pure: a function of the loaded assistant and the slots, like the engines it calls
//! ([`checklist::checklist`], [`estimate::estimate`]); nothing here decides a rule of its
//! own. What it adds is the agent's view:
//! - **Missing fields, all at once.** The engines name one missing slot at a time; the call
//!   asks them again with a stand-in value for each slot found missing until they answer, so
//!   every slot the current path needs is listed together (a stand-in never reaches the
//!   agent: the list or estimate is shown only when nothing is missing).
//! - **Cases side by side.** Not filed: the estimate as it stands and after filing (补备案
//!   after discharge, which is still reimbursed by hand; filing before discharge, which then
//!   settles directly), so the agent sees what the advice is worth.
//! - **A short basis.** At most [`BASIS_LINES`] lines: the parameter set and deductible, the
//!   cross-region rule, the catalogue, the policy's own caveat, and the sources by title
//!   (research notes and web addresses only in the full rules, which fold out).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::answers::{self, AgentEntry};
use crate::assistant::Assistant;
use crate::guidance::FieldError;
use crate::guidance::checklist::{self, Checklist, Situation};
use crate::guidance::estimate::{self, Estimate, EstimateInput, Route};

/// The longest text message (characters).
pub const SMS_MAX_CHARS: usize = 140;
/// The most lines of an estimate's short basis.
pub const BASIS_LINES: usize = 5;
/// How an SMS starts.
const SMS_HEAD: &str = "【异地就医】";

/// The slots the checklist reads (checklist.md).
const CHECKLIST_SLOTS: [&str; 10] = [
    "insured_region",
    "scheme",
    "employment",
    "care_location",
    "filing_type",
    "filed",
    "stage",
    "visit",
    "by_proxy",
    "mentions_chronic",
];

/// The slots the estimate reads besides `policy` (estimate.md), under the same names.
const ESTIMATE_SLOTS: [&str; 12] = [
    "scheme",
    "employment",
    "category",
    "care_location",
    "filing_type",
    "filed",
    "emergency",
    "hospital_level",
    "total",
    "self_pay",
    "class_b",
    "admissions_before",
];

/// What the console shows for a call.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallView {
    /// The situation in a line ("张家港参保 · 职工医保 · 退休 · 上海 · 住院 …").
    pub summary: String,
    /// What the agent still has to ask, all at once (empty when nothing is missing).
    pub missing: Vec<Missing>,
    /// Values the engines refuse (e.g. an amount above the total), in Chinese.
    pub problems: Vec<Problem>,
    /// The FAQ entry that answers this situation, for the caller's region.
    #[schema(required = true)]
    pub answer: Option<AgentEntry>,
    /// The checklist once nothing it needs is missing; before, what it holds whatever the
    /// missing answers are (`pending` names them), when anything is certain already.
    #[schema(required = true)]
    pub checklist: Option<CallChecklist>,
    /// The estimate, once nothing it needs is missing.
    #[schema(required = true)]
    pub estimate: Option<CallEstimate>,
    /// Why there is no estimate although nothing is missing (a policy that does not cover
    /// the case), in Chinese.
    #[schema(required = true)]
    pub estimate_note: Option<String>,
}

/// A field the agent still has to ask for.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Missing {
    /// The slot (the form field's name).
    pub slot: String,
    /// Its title ("医院等级").
    pub title: String,
    /// What to ask the caller.
    pub ask: String,
    /// What needs it: 材料清单, 报销估算.
    pub needed_for: Vec<String>,
    /// One-click answers: value and label (empty for amounts).
    pub choices: Vec<ChoiceLabel>,
}

/// A value of a choice slot with its label.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChoiceLabel {
    /// The value (as the form's field takes it).
    pub value: String,
    /// What the agent reads on the button.
    pub label: String,
}

/// A value that the engines refuse.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// The slot concerned.
    pub slot: String,
    /// What is wrong, in Chinese.
    pub message: String,
}

/// One row of a list: its text and where it comes from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Row {
    /// The item's, warning's or channel's id (checklist.md).
    pub id: String,
    /// What the caller is told.
    pub text: String,
    /// The source by title ("《江苏省异地就医经办规程》第十九条").
    pub source: String,
}

/// A titled part of the checklist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Section {
    /// filing, manual, warnings or channels.
    pub kind: String,
    /// The heading the agent reads ("零星报销要带").
    pub title: String,
    /// Its items, in order.
    pub rows: Vec<Row>,
}

/// The checklist as the agent reads it out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallChecklist {
    /// One sentence to read to the caller.
    pub say: String,
    /// A text message of at most 140 characters with the essentials and the hotline.
    pub sms: String,
    /// The materials, channels and warnings, each part titled.
    pub sections: Vec<Section>,
    /// Assumptions the list makes (a proxy's ID card "如由他人代办").
    pub assumed: Vec<String>,
    /// The titles of the fields still to ask: when not empty, the list holds only what is
    /// needed whatever the answers (the rest follows once they are known).
    pub pending: Vec<String>,
    /// The engine's answer as it is.
    pub list: Checklist,
}

/// One case of the estimate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EstimateCase {
    /// "现在（未备案）", "补办备案后" …
    pub label: String,
    /// How it is settled, in a few words.
    pub route: String,
    /// The engine's estimate for this case.
    pub estimate: Estimate,
}

/// The estimate as the agent reads it out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CallEstimate {
    /// One sentence to read to the caller.
    pub say: String,
    /// A text message of at most 140 characters.
    pub sms: String,
    /// The cases that matter, side by side (the first is the situation as it stands).
    pub cases: Vec<EstimateCase>,
    /// The basis in at most five lines, sources by title.
    pub basis: Vec<String>,
    /// Every rule of the first case (the full basis).
    pub rules: Vec<String>,
    /// The sentence every estimate carries (an estimate, not a decision).
    pub disclaimer: String,
    /// A note on the amount, e.g. that the total was read from "三万多".
    #[schema(required = true)]
    pub note: Option<String>,
}

/// The call view of the situation `slots` (slot → value as the form holds them).
pub fn view(a: &Assistant, slots: &BTreeMap<String, String>) -> CallView {
    let slots = clean(slots);
    let mut missing: Vec<Missing> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let (list, assumed) = run_checklist(a, &slots, &mut missing, &mut problems);
    let (estimate, estimate_note) = run_estimate(a, &slots, &mut missing, &mut problems);
    let answer = a
        .situation_entry(&slots)
        .map(|entry| answers::agent_entry(a, entry, &slots));
    // in the order a caller tells their story: the form's order
    missing.sort_by_key(|m| {
        super::MAIN_FIELDS
            .iter()
            .chain(super::MORE_FIELDS)
            .position(|s| *s == m.slot)
            .unwrap_or(usize::MAX)
    });
    let pending = missing
        .iter()
        .filter(|m| m.needed_for.iter().any(|f| f == FOR_CHECKLIST))
        .map(|m| m.title.clone())
        .collect();
    CallView {
        summary: summary(a, &slots),
        checklist: list.map(|l| call_checklist(a, &slots, l, assumed, pending)),
        missing,
        problems,
        answer,
        estimate,
        estimate_note,
    }
}

/// The slots with empty values left out.
fn clean(slots: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    slots
        .iter()
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect()
}

/// The situation in a line, in the order a person tells it.
pub fn summary(a: &Assistant, slots: &BTreeMap<String, String>) -> String {
    let defs = &a.dialogs.slots;
    let mut parts: Vec<String> = Vec::new();
    let label = |slot: &str| slots.get(slot).map(|v| defs.label(slot, v));
    if let Some(r) = label("insured_region") {
        parts.push(format!("{r}参保"));
    }
    for slot in ["scheme", "employment", "category"] {
        parts.extend(label(slot));
    }
    if let Some(l) = label("care_location") {
        parts.push(format!("在{l}"));
    }
    for slot in ["visit", "hospital_level", "stage", "filed", "filing_type"] {
        parts.extend(label(slot));
    }
    if let Some(t) = slots.get("total") {
        parts.push(format!("总费用{}元", money_words(t)));
    }
    if let Some(t) = slots.get("self_pay") {
        parts.push(format!("目录外自费{}元", money_words(t)));
    }
    parts.join(" · ")
}

fn money_words(text: &str) -> String {
    amount(text).map_or_else(|| text.to_string(), yuan)
}

/// An amount as the form holds it: plain digits, or words the chat reads ("3万2").
fn amount(text: &str) -> Option<Decimal> {
    text.trim()
        .parse::<Decimal>()
        .ok()
        .or_else(|| crate::dialog::money::parse_amount(text).ok())
}

/// "22344" for 22344.00, "22344.5" for 22344.50.
pub fn yuan(d: Decimal) -> String {
    d.round_dp(2).normalize().to_string()
}

/// The question to ask about `slot`, in the agent's words: the console's own for the slots
/// a call usually lacks, else the dialogs' question.
fn ask(a: &Assistant, slot: &str) -> String {
    let own = match slot {
        "insured_region" => Some("在哪里参加的医保（苏州还是张家港）？"),
        "scheme" => Some("是职工医保还是城乡居民医保？"),
        "employment" => Some("在职还是退休？"),
        "care_location" => Some("在哪个城市看病？"),
        "filing_type" => {
            Some("是长期住在外地（随子女住、异地安置、派驻工作），是转诊，还是临时去外地看病？")
        }
        "filed" => Some("异地就医备案办好了吗？"),
        "stage" => Some("现在是还没去看病、正在住院，还是已经出院自费结算了？"),
        "visit" => Some("是住院、门诊、急诊还是生育？"),
        "hospital_level" => Some("看病的医院是几级医院（三甲、二级、社区）？"),
        "total" => Some("医疗总费用大概多少？"),
        "category" => Some("参保人是学生（少儿）还是其他居民？"),
        _ => None,
    };
    if let Some(q) = own {
        return q.to_string();
    }
    a.dialogs
        .dialogs
        .iter()
        .flat_map(|d| &d.steps)
        .find(|s| s.slot.as_deref() == Some(slot))
        .map_or_else(|| format!("{}？", title(a, slot)), |s| s.ask.clone())
}

fn title(a: &Assistant, slot: &str) -> String {
    a.dialogs
        .slots
        .get(slot)
        .map_or_else(|| slot.to_string(), |d| d.title.clone())
}

fn note_missing(a: &Assistant, missing: &mut Vec<Missing>, slot: &str, for_what: &str) {
    if let Some(m) = missing.iter_mut().find(|m| m.slot == slot) {
        if !m.needed_for.iter().any(|f| f == for_what) {
            m.needed_for.push(for_what.to_string());
        }
        return;
    }
    let choices = a
        .dialogs
        .slots
        .get(slot)
        .map(|d| {
            d.values
                .iter()
                .filter(|v| !(slot == "filing_type" && v.value == "none"))
                .map(|v| ChoiceLabel {
                    value: v.value.clone(),
                    label: v.label.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    missing.push(Missing {
        slot: slot.to_string(),
        title: title(a, slot),
        ask: ask(a, slot),
        needed_for: vec![for_what.to_string()],
        choices,
    });
}

fn note_problem(problems: &mut Vec<Problem>, e: FieldError) {
    if !problems.iter().any(|p| p.slot == e.field) {
        problems.push(Problem {
            slot: e.field,
            message: e.message,
        });
    }
}

/// A value that lets an engine go on past a missing slot, to find the next one.
fn stand_in(slot: &str) -> Option<Value> {
    Some(Value::String(
        match slot {
            "insured_region" => "suzhou",
            "scheme" => "employee",
            "employment" => "working",
            "category" => "adult",
            "care_location" => "other_province",
            "filing_type" => "long_term_resident",
            "filed" => "false",
            "stage" => "before_care",
            "visit" => "inpatient",
            "hospital_level" => "3",
            "total" => "10000",
            "by_proxy" => "false",
            _ => return None,
        }
        .to_string(),
    ))
}

const FOR_CHECKLIST: &str = "材料清单";
const FOR_ESTIMATE: &str = "报销估算";

/// The checklist for `slots`, noting every slot it needs and lacks. Who files is assumed to
/// be a family member when unknown (the proxy's ID card is then listed "如由他人代办").
fn run_checklist(
    a: &Assistant,
    slots: &BTreeMap<String, String>,
    missing: &mut Vec<Missing>,
    problems: &mut Vec<Problem>,
) -> (Option<Checklist>, Vec<String>) {
    let mut input = Map::new();
    for slot in CHECKLIST_SLOTS {
        if let Some(v) = slots.get(slot) {
            input.insert(slot.to_string(), Value::String(v.clone()));
        }
    }
    if input.is_empty() {
        return (None, Vec::new());
    }
    let mut assumed = Vec::new();
    let mut stood_in: Vec<String> = Vec::new();
    let known = input.clone();
    for _ in 0..CHECKLIST_SLOTS.len() + 1 {
        let outcome = Situation::from_json(&Value::Object(input.clone()))
            .and_then(|s| checklist::checklist(&s, &a.checklist_texts));
        match outcome {
            Ok(_) if !stood_in.is_empty() => {
                let mut known = known;
                if assumed.iter().any(|x| x == "proxy-identity") {
                    known.insert("by_proxy".into(), Value::String("true".into()));
                }
                return (common_checklist(a, &known, &stood_in), assumed);
            }
            Ok(list) => return (Some(list), assumed),
            Err(e) if e.field == "by_proxy" && !input.contains_key("by_proxy") => {
                input.insert("by_proxy".into(), Value::String("true".into()));
                assumed.push("proxy-identity".to_string());
            }
            Err(e) if !input.contains_key(&e.field) && stand_in(&e.field).is_some() => {
                note_missing(a, missing, &e.field, FOR_CHECKLIST);
                stood_in.push(e.field.clone());
                let v = stand_in(&e.field).unwrap_or(Value::Null);
                input.insert(e.field, v);
            }
            // a refusal that a stand-in may have caused is no problem of the agent's values
            Err(_) if !stood_in.is_empty() => return (None, assumed),
            Err(e) => {
                note_problem(problems, e);
                return (None, assumed);
            }
        }
    }
    (None, assumed)
}

/// Most situations tried for a checklist with open slots.
const MAX_VARIANTS: usize = 40;

/// What the checklist holds whatever the caller answers to the `open` slots: the items,
/// warnings and channels common to every value they may take (as a partial checklist, or
/// `None` when nothing is certain yet).
fn common_checklist(
    a: &Assistant,
    known: &Map<String, Value>,
    open: &[String],
) -> Option<Checklist> {
    let mut variants: Vec<Map<String, Value>> = vec![known.clone()];
    for slot in open {
        let values = checklist::slot_values(slot)?;
        variants = variants
            .into_iter()
            .flat_map(|v| {
                values.iter().map(move |value| {
                    let mut v = v.clone();
                    v.insert(slot.clone(), Value::String((*value).to_string()));
                    v
                })
            })
            .collect();
        if variants.len() > MAX_VARIANTS {
            return None;
        }
    }
    let lists: Vec<Checklist> = variants
        .into_iter()
        .filter_map(|v| {
            Situation::from_json(&Value::Object(v))
                .and_then(|s| checklist::checklist(&s, &a.checklist_texts))
                .ok()
        })
        .collect();
    let (first, rest) = lists.split_first()?;
    let common = |pick: fn(&Checklist) -> &Vec<String>| -> Vec<String> {
        pick(first)
            .iter()
            .filter(|id| rest.iter().all(|l| pick(l).contains(id)))
            .cloned()
            .collect()
    };
    let list = Checklist {
        filing: common(|l| &l.filing),
        manual: common(|l| &l.manual),
        warnings: common(|l| &l.warnings),
        channels: common(|l| &l.channels),
        items: first
            .items
            .iter()
            .filter(|i| rest.iter().all(|l| l.items.contains(i)))
            .cloned()
            .collect(),
    };
    (!list.filing.is_empty() || !list.manual.is_empty()).then_some(list)
}

/// The estimate's input for `slots`, or why there can be none.
fn estimate_input(
    a: &Assistant,
    slots: &BTreeMap<String, String>,
) -> Result<Map<String, Value>, String> {
    let mut input = Map::new();
    if let Some(region) = slots.get("insured_region") {
        match a.checklist_texts.regions.get(region) {
            Some(r) => {
                input.insert("policy".into(), Value::String(r.policy.clone()));
            }
            None => {
                return Err("外地参保的，报销按参保地政策执行，这里无法估算。".to_string());
            }
        }
    }
    match slots.get("visit").map(String::as_str) {
        Some("inpatient" | "outpatient") | None => {}
        Some("emergency") => {
            return Err(
                "急诊抢救的费用请在“就医类型”里选住院或门诊，并把“是否急诊抢救”选为是，再估算。"
                    .to_string(),
            );
        }
        Some(_) => {
            return Err("生育（含产前检查）的费用按生育保险规定报销，这里不作估算。".to_string());
        }
    }
    for slot in ESTIMATE_SLOTS.iter().chain(&["visit"]) {
        let Some(v) = slots.get(*slot) else { continue };
        let v = match *slot {
            "total" | "self_pay" | "class_b" => amount(v).map_or_else(|| v.clone(), yuan),
            _ => v.clone(),
        };
        input.insert(slot.to_string(), Value::String(v));
    }
    // not filed and no type: the type of "no filing"
    if slots.get("filed").map(String::as_str) == Some("false") && !slots.contains_key("filing_type")
    {
        input.insert("filing_type".into(), Value::String("none".into()));
    }
    // 职工医保 has 在职/退休; the resident scheme does not
    if slots.get("scheme").map(String::as_str) == Some("resident") {
        input.remove("employment");
    }
    Ok(input)
}

/// The estimate with its cases, noting every slot it needs and lacks; or a note why a
/// complete situation has none.
fn run_estimate(
    a: &Assistant,
    slots: &BTreeMap<String, String>,
    missing: &mut Vec<Missing>,
    problems: &mut Vec<Problem>,
) -> (Option<CallEstimate>, Option<String>) {
    if !slots.contains_key("total") && !slots.contains_key("visit") {
        // no cost named yet: nothing to estimate, nothing to ask for it
        return (None, None);
    }
    let mut input = match estimate_input(a, slots) {
        Ok(input) => input,
        Err(note) => return (None, Some(note)),
    };
    if !input.contains_key("policy") {
        note_missing(a, missing, "insured_region", FOR_ESTIMATE);
        input.insert("policy".into(), Value::String("suzhou".into()));
    }
    let mut stood_in = !slots.contains_key("insured_region");
    for _ in 0..ESTIMATE_SLOTS.len() + 2 {
        let outcome = EstimateInput::from_json(&Value::Object(input.clone()))
            .and_then(|i| estimate::estimate(&a.policies, &i).map(|e| (i, e)));
        match outcome {
            Ok(_) if stood_in => return (None, None),
            Ok((first, e)) => return (Some(call_estimate(a, slots, &first, e)), None),
            Err(e) if !input.contains_key(&e.field) && stand_in(&e.field).is_some() => {
                note_missing(a, missing, &e.field, FOR_ESTIMATE);
                input.insert(e.field.clone(), stand_in(&e.field).unwrap_or(Value::Null));
                stood_in = true;
            }
            // a refusal that a stand-in may have caused is no problem of the agent's values
            Err(_) if stood_in => return (None, None),
            // a policy without a rule for this case: said as such, not as a wrong value
            Err(e) if e.field == "filed" || e.message.contains("无法估算") => {
                return (None, Some(e.message));
            }
            Err(e) => {
                note_problem(problems, e);
                return (None, None);
            }
        }
    }
    (None, None)
}

/// The label of a filing type ("异地长期居住").
fn type_label(a: &Assistant, t: &str) -> String {
    a.dialogs.slots.label("filing_type", t)
}

/// The estimate's cases for the situation, its say, SMS and short basis.
fn call_estimate(
    a: &Assistant,
    slots: &BTreeMap<String, String>,
    first: &EstimateInput,
    e: Estimate,
) -> CallEstimate {
    let get = |k: &str| slots.get(k).map(String::as_str);
    let stage = get("stage");
    let typed = get("filing_type").filter(|t| *t != "none");
    let mut cases = Vec::new();
    let route_of = |e: &Estimate| match e.route {
        Route::Direct => "联网医院直接结算".to_string(),
        Route::Manual => "垫付后回参保地零星报销".to_string(),
    };
    if first.filed || first.emergency {
        let label = match typed {
            Some(t) if first.filed => format!("已备案（{}）", type_label(a, t)),
            _ if first.emergency => "急诊抢救".to_string(),
            _ => "已备案".to_string(),
        };
        cases.push(EstimateCase {
            label,
            route: route_of(&e),
            estimate: e.clone(),
        });
    } else {
        cases.push(EstimateCase {
            label: "现在（未备案）".to_string(),
            route: route_of(&e),
            estimate: e.clone(),
        });
        // the same care once filed: which type, and how it is then settled
        let discharged = stage == Some("discharged_self_paid");
        let backfill_type = match typed {
            Some("temporary") if discharged => None,
            Some(t) => Some(t),
            None => Some("long_term_resident"),
        };
        if let Some(t) = backfill_type {
            let who = if typed.is_some() {
                type_label(a, t)
            } else {
                "长期居住等".to_string()
            };
            let (label, route) = match stage {
                Some("discharged_self_paid") => (
                    format!("补办{who}备案后"),
                    "补备案后回参保地零星报销".to_string(),
                ),
                Some("in_hospital") => (
                    format!("出院前补办{who}备案"),
                    "出院时联网医院直接结算".to_string(),
                ),
                _ => (format!("先办{who}备案"), "联网医院直接结算".to_string()),
            };
            let mut filed = first.clone();
            filed.filed = true;
            filed.filing_type = checklist::FilingType::parse(t).unwrap_or(filed.filing_type);
            if let Ok(after) = estimate::estimate(&a.policies, &filed)
                && after.fund_pays != e.fund_pays
            {
                cases.push(EstimateCase {
                    label,
                    route,
                    estimate: after,
                });
            }
        }
    }
    let total = yuan(first.total);
    let say = match cases.as_slice() {
        [one] => format!(
            "按总费用{total}元估算，医保大约能报{}元，自己负担约{}元，以经办机构结算为准。",
            yuan(one.estimate.fund_pays),
            yuan(one.estimate.patient_pays)
        ),
        [now, after, ..] => format!(
            "按总费用{total}元估算：现在没备案，医保大约能报{}元、自己负担约{}元；{}，大约能报{}元。以经办机构结算为准。",
            yuan(now.estimate.fund_pays),
            yuan(now.estimate.patient_pays),
            after.label,
            yuan(after.estimate.fund_pays)
        ),
        [] => String::new(),
    };
    let mut sentences = vec![format!("费用{total}元粗略估算：")];
    match cases.as_slice() {
        [one] => sentences.push(format!(
            "医保约付{}元，个人约付{}元。",
            yuan(one.estimate.fund_pays),
            yuan(one.estimate.patient_pays)
        )),
        [now, after, ..] => {
            sentences.push(format!(
                "现未备案，医保约付{}元；",
                yuan(now.estimate.fund_pays)
            ));
            sentences.push(format!(
                "{}约付{}元。",
                after.label,
                yuan(after.estimate.fund_pays)
            ));
        }
        [] => {}
    }
    sentences.push("仅供参考，以经办机构结算为准。".to_string());
    let note = slots.get("total").and_then(|t| {
        (t.trim().parse::<Decimal>().is_err()).then(|| format!("总费用“{t}”按{total}元计算。"))
    });
    CallEstimate {
        say,
        sms: sms(&sentences, &contact(a, get("insured_region"))),
        basis: basis(a, &e),
        rules: e.rules.iter().map(|r| cite_ids(a, r)).collect(),
        disclaimer: e.disclaimer.clone(),
        cases,
        note,
    }
}

/// Where a caller of `region` asks: "咨询电话0512-12333" from the region's file, or its
/// agency when the file gives no number. Never a number the knowledge does not have.
pub fn contact(a: &Assistant, region: Option<&str>) -> String {
    match region.and_then(|r| a.checklist_texts.regions.get(r)) {
        Some(r) => match &r.hotline {
            Some(h) => format!("咨询电话{h}"),
            None => format!("详询{}医保经办机构", r.label),
        },
        None => "详询参保地医保经办机构".to_string(),
    }
}

/// A text message: [`SMS_HEAD`], as many of `sentences` as fit (the last one that does not
/// cut at a comma), then `contact`; at most [`SMS_MAX_CHARS`] characters.
pub fn sms(sentences: &[String], contact: &str) -> String {
    let len = |s: &str| s.chars().count();
    // a number the sentences give already is not repeated
    let number: String = contact
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    let said = number.len() > 4 && sentences.iter().any(|s| s.contains(&number));
    let tail = if said {
        String::new()
    } else {
        format!("{contact}。")
    };
    let budget = SMS_MAX_CHARS.saturating_sub(len(SMS_HEAD) + len(&tail));
    let mut body = String::new();
    for s in sentences {
        if len(&body) + len(s) <= budget {
            body.push_str(s);
            continue;
        }
        // the part of `s` up to its last clause end that fits
        let room = budget - len(&body);
        let cut: String = s.chars().take(room.saturating_sub(1)).collect();
        if let Some(i) = cut.rfind(['，', '；', '、']) {
            body.push_str(&cut[..i]);
            body.push('。');
        }
        break;
    }
    if body.is_empty() {
        return format!("{SMS_HEAD}{tail}");
    }
    format!("{SMS_HEAD}{body}{tail}")
}

/// "004 第十一条" → "《江苏省异地就医经办规程》第十一条" wherever a seed id starts a citation.
pub(super) fn cite_ids(a: &Assistant, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if starts
            && i + 4 <= chars.len()
            && chars[i..i + 3].iter().all(char::is_ascii_digit)
            && chars[i + 3] == ' '
            && (i + 4 == chars.len() || !chars[i + 4].is_ascii_digit())
        {
            let id: String = chars[i..i + 3].iter().collect();
            if let Some(s) = a.knowledge.sources.iter().find(|s| s.id == id) {
                out.push_str(&format!("《{}》", s.short));
                i += 4;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `text` without web addresses and research-note references (they stay in the full rules).
fn without_addresses(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let end = after
            .find(|c: char| c.is_whitespace() || !c.is_ascii() || c == '）' || c == ')')
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    // "研究资料 policy-zhangjiagang.md §3 3.1–3.3" → "研究资料"
    while let Some(at) = out.find("研究资料 ") {
        let after = &out[at + "研究资料 ".len()..];
        let end = after.find(['；', '，', '）', '：']).unwrap_or(after.len());
        let cut = at + "研究资料".len();
        out = format!("{}{}", &out[..cut], &after[end..]);
    }
    out.replace("，）", "）").replace("（）", "")
}

/// The basis of an estimate in at most [`BASIS_LINES`] lines, sources by title.
pub fn basis(a: &Assistant, e: &Estimate) -> Vec<String> {
    let mut person = Vec::new();
    let mut cross = Vec::new();
    let mut catalogue = None;
    let mut caveat = None;
    let mut seeds: Vec<String> = Vec::new();
    let mut secondary = false;
    for (i, r) in e.rules.iter().enumerate() {
        if let Some(s) = r.strip_prefix("参数来源：") {
            match s.split_once(' ') {
                Some((id, _)) if a.knowledge.sources.iter().any(|x| x.id == id) => {
                    let (short, _) = a.knowledge.cite_short(s);
                    let t = format!("《{short}》");
                    if !seeds.contains(&t) {
                        seeds.push(t);
                    }
                }
                _ => secondary = true,
            }
        } else if r.starts_with("参数组：") || r.starts_with("起付标准：") {
            person.push(r.clone());
        } else if r.starts_with("未备案")
            || r.starts_with("其他临时外出就医")
            || r.starts_with("已办理")
            || r.starts_with("急诊抢救")
            || r.starts_with("本年度第")
        {
            cross.push(without_addresses(&cite_ids(a, r)));
        } else if r.contains("目录、参保地政策") && catalogue.is_none() {
            catalogue = Some(cite_ids(a, r));
        } else if i == 1 && !r.starts_with("政策：") {
            // the policy's own caveat follows its name (see estimate::estimate)
            caveat = Some(without_addresses(r));
        } else if r.starts_with("以下参数来自公开二手资料") {
            secondary = true;
        }
    }
    let mut lines = Vec::new();
    if !person.is_empty() {
        lines.push(person.join("；"));
    }
    if !cross.is_empty() {
        lines.push(cross.join("；"));
    }
    lines.extend(catalogue);
    lines.extend(caveat);
    let mut sources = if seeds.is_empty() {
        String::new()
    } else {
        format!("来源：{}", seeds.join(""))
    };
    if secondary {
        if !sources.is_empty() {
            sources.push('；');
        }
        sources.push_str("部分参数来自公开二手资料，尚未与官方文件核对");
    }
    if !sources.is_empty() {
        lines.push(sources);
    }
    lines.truncate(BASIS_LINES);
    lines
}

/// The first words of a checklist text: up to its first bracket or colon ("社会保障卡（…）"
/// → "社会保障卡").
fn short_text(text: &str) -> &str {
    let end = text.find(['（', '：', '(']).unwrap_or(text.len());
    text[..end].trim_end_matches(['，', '。'])
}

/// The checklist in sections with sources by title, and what to say about it.
fn call_checklist(
    a: &Assistant,
    slots: &BTreeMap<String, String>,
    list: Checklist,
    assumed: Vec<String>,
    pending: Vec<String>,
) -> CallChecklist {
    let texts = &a.checklist_texts;
    let cite = |source: &str| cite_ids(a, &a.knowledge.cite(source));
    let proxy_note = |id: &str, text: &str| {
        if id == "proxy-identity" && assumed.iter().any(|x| x == id) {
            format!("{text}（如由家人代办）")
        } else {
            text.to_string()
        }
    };
    let item_rows = |ids: &[String]| -> Vec<Row> {
        ids.iter()
            .filter_map(|id| list.items.iter().find(|i| &i.id == id))
            .map(|i| Row {
                id: i.id.clone(),
                text: proxy_note(&i.id, &i.text),
                source: cite(&i.source),
            })
            .collect()
    };
    let text_rows = |ids: &[String], warning: bool| -> Vec<Row> {
        ids.iter()
            .filter_map(|id| {
                let t = if warning {
                    texts.warning(id)
                } else {
                    texts.channel(id)
                }?;
                Some(Row {
                    id: id.clone(),
                    text: t.text.clone(),
                    source: cite(&t.source),
                })
            })
            .collect()
    };
    let mut sections = Vec::new();
    if !list.filing.is_empty() {
        sections.push(Section {
            kind: "filing".into(),
            title: "备案要准备".into(),
            rows: item_rows(&list.filing),
        });
    }
    if !list.manual.is_empty() {
        sections.push(Section {
            kind: "manual".into(),
            title: "零星报销要带".into(),
            rows: item_rows(&list.manual),
        });
    }
    if !list.channels.is_empty() {
        sections.push(Section {
            kind: "channels".into(),
            title: if list.filing.is_empty() {
                "在哪办".into()
            } else {
                "备案在哪办".into()
            },
            rows: text_rows(&list.channels, false),
        });
    }
    if !list.warnings.is_empty() {
        sections.push(Section {
            kind: "warnings".into(),
            title: "提醒来电者".into(),
            rows: text_rows(&list.warnings, true),
        });
    }
    let region = slots
        .get("insured_region")
        .and_then(|r| texts.regions.get(r));
    let shorts = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .filter_map(|id| list.items.iter().find(|i| &i.id == id))
            .map(|i| {
                let s = short_text(&i.text).to_string();
                if i.id == "proxy-identity" && assumed.iter().any(|x| x == &i.id) {
                    format!("{s}（家人代办时）")
                } else {
                    s
                }
            })
            .collect()
    };
    let channel_names: Vec<String> = list
        .channels
        .iter()
        .filter_map(|c| texts.channel(c))
        .map(|t| short_text(&t.text).to_string())
        .take(3)
        .collect();
    let agency = region.map_or_else(
        || "参保地医保经办机构".to_string(),
        |r| format!("{}医保经办机构", r.label),
    );
    let mut say = Vec::new();
    let mut sms_parts = Vec::new();
    if !list.filing.is_empty() {
        let items = shorts(&list.filing).join("、");
        let backfill = slots.get("stage").map(String::as_str) == Some("discharged_self_paid");
        say.push(format!(
            "{}请准备{items}，可以通过{}办理。",
            if backfill {
                "补办备案"
            } else {
                "办备案"
            },
            channel_names
                .iter()
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join("或")
        ));
        sms_parts.push(format!("备案带：{items}。"));
        if let Some(c) = channel_names.first() {
            sms_parts.push(format!("可在{c}办理。"));
        }
    }
    if !list.manual.is_empty() {
        let items = shorts(&list.manual).join("、");
        say.push(format!("报销请带{items}，到{agency}申请零星报销。"));
        let place = region
            .and_then(|r| r.counters.as_deref())
            .map_or_else(|| agency.clone(), |c| short_text(c).to_string());
        sms_parts.push(format!("零星报销带：{items}，到{place}办理。"));
    }
    if say.is_empty() {
        say.push(
            "按目前情况不用另外准备材料，看病时出示社保卡或医保电子凭证，在联网医院直接结算。"
                .to_string(),
        );
        sms_parts.push("看病时出示社保卡或医保电子凭证，在联网医院直接结算。".to_string());
    }
    let sms = sms(
        &sms_parts,
        &contact(a, slots.get("insured_region").map(String::as_str)),
    );
    let mut say = say.join("");
    if !pending.is_empty() {
        say = format!("不管{}是哪种，{say}", pending.join("、"));
    }
    CallChecklist {
        say,
        sms,
        sections,
        assumed,
        pending,
        list,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn assistant() -> &'static Assistant {
        static A: OnceLock<Assistant> = OnceLock::new();
        A.get_or_init(|| {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            Assistant::load(&root.join("knowledge"), &root.join("dialogs")).unwrap()
        })
    }

    fn slots(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The call: "我爸张家港退休的，在上海住院了，没备案，现在出院了自己垫了三万多".
    fn the_call() -> BTreeMap<String, String> {
        slots(&[
            ("insured_region", "zhangjiagang"),
            ("scheme", "employee"),
            ("employment", "retired"),
            ("care_location", "shanghai"),
            ("filed", "false"),
            ("stage", "discharged_self_paid"),
            ("visit", "inpatient"),
            ("total", "30000"),
        ])
    }

    #[test]
    fn every_missing_field_is_named_at_once_in_the_agents_words() {
        let a = assistant();
        let v = view(a, &the_call());
        let names: Vec<&str> = v.missing.iter().map(|m| m.slot.as_str()).collect();
        assert_eq!(names, ["filing_type", "hospital_level"], "{:?}", v.missing);
        let level = &v.missing[1];
        assert_eq!(level.title, "医院等级");
        assert_eq!(level.needed_for, [FOR_ESTIMATE]);
        assert!(level.choices.iter().any(|c| c.label == "三级医院"));
        // no API names, no JSON values in what the agent reads
        for m in &v.missing {
            assert!(!m.ask.contains('_') && !m.ask.contains('"'), "{}", m.ask);
        }
        assert!(v.estimate.is_none());
        // what is certain already: reimbursement by hand, whatever the filing type
        let partial = v.checklist.expect("the common part of the checklist");
        assert_eq!(partial.pending, ["备案类型"]);
        assert!(
            partial.say.starts_with("不管备案类型是哪种"),
            "{}",
            partial.say
        );
        assert_eq!(
            partial.list.manual,
            [
                "social-security-card",
                "invoice",
                "inpatient-cost-list",
                "diagnosis-or-discharge-summary"
            ]
        );
        assert!(partial.list.filing.is_empty());
        assert!(
            !partial
                .list
                .warnings
                .contains(&"temporary-reduced-ratio".to_string())
        );
        // the answer is there already: the entry for an unfiled stay, paid and discharged
        let answer = v.answer.expect("an answer for the situation");
        assert_eq!(answer.id, "backfill-after-discharge");
        assert!(answer.say.contains("不能再直接结算"), "{}", answer.say);

        // nothing known yet: nothing asked
        let empty = view(a, &BTreeMap::new());
        assert!(empty.missing.is_empty() && empty.answer.is_none());
    }

    #[test]
    fn the_estimate_shows_the_case_as_it_stands_and_after_backfilling() {
        let a = assistant();
        let mut s = the_call();
        s.insert("hospital_level".into(), "3".into());
        s.insert("filing_type".into(), "long_term_resident".into());
        let v = view(a, &s);
        assert!(v.missing.is_empty(), "{:?}", v.missing);
        let e = v.estimate.expect("an estimate");
        assert_eq!(e.cases.len(), 2, "{:?}", e.cases);
        assert_eq!(e.cases[0].label, "现在（未备案）");
        assert!(e.cases[1].label.contains("补办异地长期居住备案后"));
        assert_eq!(e.cases[1].route, "补备案后回参保地零星报销");
        assert!(e.cases[1].estimate.fund_pays > e.cases[0].estimate.fund_pays);
        assert!(
            e.say.contains("30000") && e.say.contains("补办"),
            "{}",
            e.say
        );
        assert!(
            e.basis.len() <= BASIS_LINES && e.basis.len() >= 3,
            "{:?}",
            e.basis
        );
        for line in &e.basis {
            assert!(!line.contains("http") && !line.contains(".md"), "{line}");
            assert!(!line.contains("zhangjiagang"), "raw id: {line}");
        }
        assert!(e.basis.iter().any(|l| l.contains('《')), "{:?}", e.basis);
        assert!(e.rules.len() > e.basis.len());
        assert!(e.sms.chars().count() <= SMS_MAX_CHARS, "{}", e.sms);
        assert!(e.sms.contains("0512-12333"), "{}", e.sms);
        assert!(e.sms.contains("27930"), "{}", e.sms);

        // the checklist too: reimbursement by hand, in the caller's region
        let c = v.checklist.expect("a checklist");
        assert!(c.say.contains("张家港医保经办机构"), "{}", c.say);
        assert!(c.sms.chars().count() <= SMS_MAX_CHARS, "{}", c.sms);
        assert!(c.sms.contains("0512-12333"), "{}", c.sms);
        assert!(c.sections.iter().any(|s| s.kind == "manual"));

        // a temporary trip cannot be backfilled after discharge: one case
        s.insert("filing_type".into(), "temporary".into());
        let e = view(a, &s).estimate.unwrap();
        assert_eq!(e.cases.len(), 1, "{:?}", e.cases);
        // filed before care: one case, settled directly
        let filed = slots(&[
            ("insured_region", "suzhou"),
            ("scheme", "employee"),
            ("employment", "working"),
            ("care_location", "other_province"),
            ("filing_type", "long_term_resident"),
            ("filed", "true"),
            ("visit", "inpatient"),
            ("hospital_level", "2"),
            ("total", "5万"),
        ]);
        let e = view(a, &filed).estimate.unwrap();
        assert_eq!(e.cases.len(), 1);
        assert_eq!(e.cases[0].route, "联网医院直接结算");
        assert_eq!(e.note.as_deref(), Some("总费用“5万”按50000元计算。"));
        // 苏州 has no hotline in the knowledge: the agency, never an invented number
        assert!(e.sms.contains("详询苏州医保经办机构"), "{}", e.sms);
    }

    #[test]
    fn a_stand_in_never_makes_a_problem() {
        let a = assistant();
        // no total yet, a self-paid part above any stand-in total
        let mut s = the_call();
        s.remove("total");
        s.insert("self_pay".into(), "32000".into());
        s.insert("hospital_level".into(), "3".into());
        s.insert("filing_type".into(), "temporary".into());
        let v = view(a, &s);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.missing.len(), 1, "{:?}", v.missing);
        assert_eq!(v.missing[0].slot, "total");
    }

    #[test]
    fn values_the_engines_refuse_are_problems_not_missing_fields() {
        let a = assistant();
        let mut s = the_call();
        s.insert("hospital_level".into(), "3".into());
        s.insert("filing_type".into(), "temporary".into());
        s.insert("self_pay".into(), "40000".into());
        let v = view(a, &s);
        assert!(v.missing.is_empty());
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert_eq!(v.problems[0].slot, "self_pay");
        // maternity is not estimated, and says so
        let mut s = the_call();
        s.insert("visit".into(), "maternity".into());
        let v = view(a, &s);
        assert!(v.estimate_note.unwrap().contains("生育"));
    }

    #[test]
    fn text_messages_fit_and_cut_at_a_clause() {
        let long = vec!["一二三四五六七八九十，".repeat(20)];
        let t = sms(&long, "咨询电话0512-12333");
        assert!(t.chars().count() <= SMS_MAX_CHARS, "{t}");
        assert!(t.starts_with(SMS_HEAD) && t.ends_with("咨询电话0512-12333。"));
        assert!(t.contains("十。"), "cut at a comma: {t}");
        assert_eq!(yuan(Decimal::new(2234400, 2)), "22344");
        assert_eq!(yuan(Decimal::new(2234450, 2)), "22344.5");
    }

    #[test]
    fn addresses_and_research_notes_leave_the_short_basis() {
        assert_eq!(
            without_addresses("按80%结付（二手资料，引《办法》https://m.x.com/a/1.html）"),
            "按80%结付（二手资料，引《办法》）"
        );
        assert_eq!(
            without_addresses(
                "按80%结付（苏州市规定，研究资料 policy-zhangjiagang.md §3 3.1–3.3；未经证实）"
            ),
            "按80%结付（苏州市规定，研究资料；未经证实）"
        );
        let a = assistant();
        assert_eq!(
            cite_ids(a, "（004 第十一条、001 结算标准）"),
            "（《江苏省异地就医经办规程》第十一条、《苏州医保异地就医备案指南》结算标准）"
        );
    }
}
