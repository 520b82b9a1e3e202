//! The facts a message states about the person's situation, with roles: who the patient is,
//! where they are insured (参保地), where they are treated (就医地) and where they live, and the
//! rest of the situation's slots (scheme, filing, stage, visit, amounts…).
//!
//! A place is not a slot by itself: "张家港" is the insured place in "我妈是张家港的医保", the
//! place of care in "在张家港住院", the place of work in "在张家港厂里干活" and the home of an
//! agency in "回张家港报". The cues around each place (`knowledge/places.toml`, `[roles]`) give
//! it its role; the direction of the case follows from the roles ([`Direction`]).
//!
//! Within one message a later mention replaces an earlier one when a correction or a change
//! of time stands between them ("苏州医保……不对，是张家港的", "原说没备案，核实后已备案"); the
//! stage always follows the latest tense ("住院了，现在出院了" is discharged).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::places::{Area, Mention, Places};
use crate::dialog::SlotKind;
use crate::dialog::money;
use crate::dialog::slots::SlotDefs;

/// Words that make a later statement replace an earlier one in the same message.
/// Words right before a place that deny it.
const DENIED_BEFORE: [&str; 5] = ["不是", "不是在", "而不是", "并不是", "不在"];

/// Words that set the person's own statement against what they were shown or told, for
/// choice slots only (places keep to [`SHIFTS`]).
const CONTRASTS: [&str; 6] = ["可是", "可我", "但是", "但我", "不过", "明明"];

const SHIFTS: [&str; 16] = [
    "不对",
    "不是不是",
    "哦不",
    "说错",
    "搞错",
    "弄错",
    "记错",
    "更正",
    "纠正",
    "其实是",
    "应该是",
    "核实后",
    "后来",
    "现在",
    "改成",
    "改为",
];

/// Words that mark a message as correcting what was said before.
const CORRECTIONS: [&str; 11] = [
    "不对",
    "哦不",
    "说错",
    "搞错",
    "弄错",
    "记错",
    "更正",
    "纠正",
    "应该是",
    "其实是",
    "刚才说的",
];

/// Names of the agencies of a place ("张家港医保局"): the place is where the agency is.
const AGENCIES: [&str; 8] = [
    "医保局",
    "医保中心",
    "医保办",
    "医保经办",
    "社保局",
    "社保中心",
    "医疗保障局",
    "人社局",
];

/// Links between a place and the cue after it ("上海|那边|住院", "张家港|的|医保").
const LINKS: [&str; 12] = [
    "那边", "这边", "那里", "这里", "那儿", "这儿", "当地", "本地", "市区", "市", "的", "区",
];

/// Amounts in a clause with one of these words are not medical costs ("交五万押金").
const NOT_COSTS: [&str; 8] = [
    "押金",
    "工资",
    "养老金",
    "退休金",
    "年薪",
    "月薪",
    "保费",
    "岁",
];

/// Words around an amount that make it approximate ("三万多", "大概两千").
const APPROXIMATE: [&str; 9] = [
    "多",
    "左右",
    "大概",
    "大约",
    "差不多",
    "将近",
    "出头",
    "来块",
    "上下",
];

/// Who the patient is, and the words that name them.
const PATIENTS: [(&str, &[&str]); 4] = [
    (
        "parent",
        &[
            "妈妈",
            "爸爸",
            "老妈",
            "老爸",
            "我妈",
            "我爸",
            "俺妈",
            "俺爸",
            "俺娘",
            "俺爹",
            "我娘",
            "老爹",
            "母亲",
            "父亲",
            "爸妈",
            "父母",
            "公公",
            "婆婆",
            "岳母",
            "岳父",
            "丈母娘",
            "老丈人",
            "姆妈",
            "老人家",
            "老太太",
            "老爷子",
            "老母亲",
            "老父亲",
        ],
    ),
    (
        "spouse",
        &[
            "老公", "老婆", "媳妇", "爱人", "老伴", "丈夫", "妻子", "对象",
        ],
    ),
    (
        "child",
        &[
            "儿子", "女儿", "闺女", "孩子", "小孩", "娃", "宝宝", "孙子", "孙女", "外孙",
        ],
    ),
    ("self", &["我自己", "我本人", "本人", "俺自己"]),
];

/// The words before a relative that make them someone the patient lives with or looks after,
/// not the patient ("跟儿子住", "帮我带孩子").
const NOT_PATIENT_BEFORE: [&str; 11] = [
    "跟", "随", "带", "和", "投靠", "去", "到", "来", "是他", "是她", "是伊",
];
/// …and after ("女儿家", "儿子那").
const NOT_PATIENT_AFTER: [&str; 5] = ["家", "那", "这", "所在", "单位"];
/// A relative whose own clause says where they work or live, with no illness in it, is the
/// one the user goes to ("我儿子在深圳上班，我过去帮他带孩子，腿摔了"), not the patient.
const HOST_CLAUSE: [&str; 9] = [
    "上班",
    "工作",
    "打工",
    "上学",
    "读书",
    "成家",
    "定居",
    "安家",
    "做生意",
];
const ILL_WORDS: [&str; 12] = [
    "住院",
    "看病",
    "生病",
    "病了",
    "摔",
    "手术",
    "骨折",
    "发烧",
    "急诊",
    "开刀",
    "生孩子",
    "不舒服",
];
/// The user going to that relative: then the user is the one the story is about.
const USER_GOES: [&str; 6] = ["我过去", "我去", "我来", "俺过去", "俺去", "我也过去"];

/// Where the case goes, from the roles of the places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Insured in 苏州大市, treated (or living) outside it.
    Outbound,
    /// Insured elsewhere, treated (or living) in 苏州/张家港.
    Inbound,
    /// Insured in one part of 苏州大市, treated in another.
    Within,
    /// Insured and treated in the same region of ours: not cross-region.
    Local,
    /// Insured elsewhere and treated elsewhere: none of our regions is involved.
    Elsewhere,
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
            Direction::Within => "within",
            Direction::Local => "local",
            Direction::Elsewhere => "elsewhere",
            Direction::Unknown => "unknown",
        }
    }

    /// The direction of a situation (slots as stored).
    pub fn of(slots: &BTreeMap<String, String>) -> Direction {
        let insured = slots.get("insured_region").map(String::as_str);
        let outside_care = slots.contains_key("care_location");
        let inside_care = slots.get("care_place").map(String::as_str);
        match (insured, outside_care, inside_care) {
            (Some("other"), _, Some(_)) => Direction::Inbound,
            (Some("other"), true, None) => Direction::Elsewhere,
            (Some("other"), false, None) => Direction::Unknown,
            (Some(_), true, _) => Direction::Outbound,
            (Some(r), false, Some(c)) if r == c => Direction::Local,
            (Some(_), false, Some(_)) => Direction::Within,
            (None, true, _) => Direction::Outbound,
            _ => Direction::Unknown,
        }
    }
}

/// The role a place plays in its sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Insured there ("张家港的医保", "医保在老家交的"); `weak`: only because nothing else fits.
    Insured { weak: bool },
    /// Its agency is meant ("回张家港报", "在张家港窗口办"): the insured region's.
    Agency,
    /// Treated there ("在南京住院", "去上海看病", a hospital's city).
    Care { weak: bool },
    /// Lives or works there ("跟我们在杭州住", "在张家港厂里干活").
    Residence,
    /// Comes from there ("俺是河南周口的", "我安徽六安人").
    Origin,
}

/// A place with its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub mention: Mention,
    pub role: Role,
}

/// What a message states about the situation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Slot values, after roles, corrections and tense (checklist.md and estimate.md slots,
    /// and yidi's `patient`, `insured_place`, `care_place`).
    pub slots: BTreeMap<String, String>,
    /// Facts kept beside the slots, for reading later messages: `origin` (a home place),
    /// `care_city` (the city of care, by name), `filed_city` (the city a filing names).
    pub notes: BTreeMap<String, String>,
    /// Money slots read from an approximate figure ("三万多"), with the words as written.
    pub approximate: BTreeMap<String, String>,
    /// The message corrects something said before.
    pub corrects: bool,
    /// The places named, with their roles.
    pub places: Vec<Placed>,
}

impl Facts {
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What the conversation already knows that the reading of places needs: the stored slots
/// and notes (the home place for "老家").
pub struct Known<'a> {
    pub slots: &'a BTreeMap<String, String>,
    pub notes: &'a BTreeMap<String, String>,
}

/// The slots the reader sets itself (from places) rather than from slot aliases.
const PLACE_SLOTS: [&str; 5] = [
    "insured_region",
    "care_location",
    "care_place",
    "insured_place",
    "patient",
];

/// Reads the facts of one message. `norm` is the normalised message (punctuation are spaces),
/// `raw` the message as written (amounts keep their separators there).
pub fn read(places: &Places, defs: &SlotDefs, raw: &str, norm: &str, known: &Known<'_>) -> Facts {
    let mut facts = Facts {
        corrects: CORRECTIONS.iter().any(|c| norm.contains(c)),
        ..Facts::default()
    };
    read_places(places, norm, known, &mut facts);
    read_choices(defs, norm, &mut facts);
    read_amounts(defs, raw, &mut facts);
    // someone posted away by their employer is working
    if facts
        .slots
        .get("filing_type")
        .is_some_and(|t| t == "posted_worker")
    {
        facts
            .slots
            .entry("employment".into())
            .or_insert_with(|| "working".into());
    }
    // students are insured in the residents' scheme
    if facts.slots.get("category").is_some_and(|c| c == "student") {
        facts
            .slots
            .entry("scheme".into())
            .or_insert_with(|| "resident".into());
    }
    if let Some(p) = patient(norm) {
        facts.slots.insert("patient".into(), p.into());
    }
    facts
}

/// The clause of `norm` around byte range `start..end`: from the space before to the space
/// after (punctuation became spaces in normalising).
fn clause(norm: &str, start: usize, end: usize) -> (usize, usize) {
    let from = norm[..start].rfind(' ').map_or(0, |i| i + 1);
    let to = norm[end..].find(' ').map_or(norm.len(), |i| end + i);
    (from, to)
}

fn ends_with_any<'a>(s: &str, cues: &'a [String]) -> Option<&'a str> {
    cues.iter()
        .find(|c| s.ends_with(c.as_str()))
        .map(String::as_str)
}

/// Where the longest insured cue right after a place (at `at`) ends, links skipped
/// ("昆山|的居民医保"); `at` when there is none.
fn insured_cue_end(places: &Places, norm: &str, at: usize) -> usize {
    let after = &norm[at..];
    let linked = strip_links(after);
    let skipped = after.len() - linked.len();
    let longest = |s: &str| {
        places
            .roles
            .insured
            .after
            .iter()
            .filter(|c| s.starts_with(c.as_str()))
            .map(String::len)
            .max()
    };
    [
        longest(after).map(|l| at + l),
        longest(linked).map(|l| at + skipped + l),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(at)
}

fn starts_with_any<'a>(s: &str, cues: &'a [String]) -> Option<&'a str> {
    cues.iter()
        .find(|c| s.starts_with(c.as_str()))
        .map(String::as_str)
}

fn contains_any(s: &str, cues: &[String]) -> bool {
    cues.iter().any(|c| s.contains(c.as_str()))
}

/// `after` without the linking words at its start ("那边住院" → "住院").
fn strip_links(mut after: &str) -> &str {
    loop {
        match LINKS.iter().find(|l| after.starts_with(*l)) {
            Some(l) => after = &after[l.len()..],
            None => return after,
        }
    }
}

/// Consecutive names of one place ("河南周口", "浙江嘉兴", "南京鼓楼医院") become one mention:
/// the later, more specific name's area, the names joined.
fn merge(mentions: Vec<Mention>, norm: &str) -> Vec<Mention> {
    let mut out: Vec<Mention> = Vec::new();
    for m in mentions {
        if let Some(last) = out.last_mut() {
            let gap = &norm[last.end..m.start];
            let joinable = matches!(gap, "" | "省" | "市")
                && !matches!(m.area, Area::Here)
                && !matches!(last.area, Area::Here | Area::Away);
            if joinable {
                if matches!(m.area, Area::Home) {
                    // "安徽老家": the home is that place
                    last.end = m.end;
                    last.hospital = false;
                    continue;
                }
                last.name = norm[last.start..m.end].to_string();
                last.hospital |= m.hospital;
                if !matches!(last.area, Area::Home) || matches!(m.area, Area::Outside(_)) {
                    last.area = m.area.clone();
                }
                last.place = if m.hospital {
                    m.place.clone()
                } else {
                    norm[last.start..m.end].to_string()
                };
                last.end = m.end;
                continue;
            }
        }
        out.push(m);
    }
    out
}

/// The role of one place from the cues around it in its clause.
fn role_of(
    places: &Places,
    m: &Mention,
    before: &str,
    after: &str,
    // the insured cue right before this place starts where an earlier place ends
    after_place: bool,
) -> Option<Role> {
    let r = &places.roles;
    let linked = strip_links(after);
    // "张家港医保局", "苏州医保中心": the agency there, not the insurance of the person
    if AGENCIES.iter().any(|a| linked.starts_with(a)) {
        return Some(Role::Agency);
    }
    // "医保在上海": insured there — unless the cue continues a place of its own ("苏州医保在上
    // 海看门诊": 苏州's insurance, treated in 上海)
    let insured = (!after_place && ends_with_any(before, &r.insured.before).is_some())
        || starts_with_any(after, &r.insured.after).is_some()
        || starts_with_any(linked, &r.insured.after).is_some()
        || (before.ends_with('在') && starts_with_any(linked, &r.insured.paid_after).is_some());
    if insured {
        return Some(Role::Insured { weak: false });
    }
    // a hospital, or the place followed by a hospital or a kind of care
    if m.hospital || starts_with_any(linked, &r.care.after).is_some() {
        return Some(Role::Care { weak: false });
    }
    let origin = ends_with_any(before, &r.origin.before).is_some()
        || r.origin.after.iter().any(|c| after == c.as_str())
        || (after.starts_with('人') && !after.starts_with("人民"));
    if origin {
        return Some(Role::Origin);
    }
    // going back to a place of ours is going home: its agency ("不想跑回张家港", "回苏州报")
    if matches!(m.area, Area::Inside(_)) && before.ends_with('回') {
        return Some(Role::Agency);
    }
    let moved = ["在", "去", "到", "来", "回"]
        .iter()
        .any(|v| before.ends_with(v))
        || ends_with_any(before, &r.care.before).is_some();
    let care_near = contains_any(after, &r.care.near);
    if ends_with_any(before, &r.agency.before).is_some()
        && contains_any(after, &r.agency.near)
        && !care_near
    {
        return Some(Role::Agency);
    }
    let residence = ends_with_any(before, &r.residence.before).is_some()
        || starts_with_any(linked, &r.residence.after).is_some()
        || (moved && contains_any(after, &r.residence.near));
    if moved && care_near {
        return Some(Role::Care { weak: false });
    }
    if residence {
        return Some(Role::Residence);
    }
    if moved {
        return Some(Role::Care { weak: true });
    }
    None
}

/// A candidate value of a place slot, where it stands and how sure it is.
struct Candidate {
    at: usize,
    weak: bool,
    value: String,
    place: String,
}

/// The candidate that wins: the last after a shift word (a correction, a later time), else
/// the first strong one, else the first.
fn winner<'a>(norm: &str, cands: &'a [Candidate]) -> Option<&'a Candidate> {
    let first_strong = cands.iter().find(|c| !c.weak).or(cands.first())?;
    let last = cands.last()?;
    if last.at > first_strong.at
        && SHIFTS
            .iter()
            .any(|s| norm[first_strong.at..last.at].contains(s))
    {
        return Some(last);
    }
    Some(first_strong)
}

fn read_places(places: &Places, norm: &str, known: &Known<'_>, facts: &mut Facts) {
    let mentions = merge(places.find(norm), norm);
    // the home place: named in this message ("俺是河南周口的"), or earlier
    let mut origin: Option<(String, Area)> = None;
    let mut placed = Vec::new();
    let mut prev_end: Option<usize> = None;
    for m in mentions {
        let (from, to) = clause(norm, m.start, m.end);
        let before = &norm[from..m.start];
        // a place denied ("是杭州，不是南京"; "不是在上海看的") is none of the person's places
        if DENIED_BEFORE.iter().any(|d| before.ends_with(d)) {
            continue;
        }
        // a place whose insured cue starts where an earlier place ends, or inside that place's
        // own insured cue ("苏州|医保在|上海", "昆山|的居民医保在|南京"): the cue is the earlier
        // place's
        let after_place = prev_end.is_some_and(|e| {
            let cue_end = insured_cue_end(places, norm, e).max(e + 1);
            e >= from
                && ends_with_any(before, &places.roles.insured.before).is_some_and(|cue| {
                    let start = m.start - cue.len();
                    start >= e && start < cue_end
                })
        });
        let role = role_of(places, &m, before, &norm[m.end..to], after_place);
        prev_end = Some(m.end);
        if role == Some(Role::Origin) && !matches!(m.area, Area::Home | Area::Away | Area::Here) {
            origin = Some((m.place.clone(), m.area.clone()));
        }
        placed.push((m, role));
    }
    let stored_origin = known.notes.get("origin").and_then(|o| {
        let area = places.area_of(o)?.clone();
        Some((o.clone(), area))
    });
    let home = origin.clone().or(stored_origin);
    if let Some((o, _)) = &origin {
        facts.notes.insert("origin".into(), o.clone());
    }
    let mut insured: Vec<Candidate> = Vec::new();
    let mut care: Vec<Candidate> = Vec::new();
    let mut inside_care: Vec<Candidate> = Vec::new();
    let mut residence: Vec<Candidate> = Vec::new();
    let mut inside_residence: Vec<Candidate> = Vec::new();
    let mut away = false;
    let known_insured_place = known.slots.get("insured_place").filter(|p| {
        known
            .slots
            .get("insured_region")
            .is_some_and(|r| r == "other")
            // a message that says outright where it is insured elsewhere speaks of another
            // person or a new situation ("那我自己是苏州医保，去成都出差")
            && !placed.iter().any(|(m, role)| {
                matches!(role, Some(Role::Insured { weak: false }))
                    && !p.contains(m.place.as_str())
                    && !m.place.contains(p.as_str())
            })
    });
    for (m, role) in &placed {
        // the place the person is known to be insured in is that, whatever else is said
        // of it ("在上海那边办备案"), unless a cue says it is where they are treated
        let role = &match (known_insured_place, role) {
            (Some(p), None | Some(Role::Care { weak: true } | Role::Agency | Role::Origin))
                if p.contains(m.place.as_str()) || m.place.contains(p.as_str()) =>
            {
                Some(Role::Insured { weak: true })
            }
            _ => *role,
        };
        // "老家": the home place, if known
        let (place, area) = match &m.area {
            Area::Home => match &home {
                Some((p, a)) => (p.clone(), a.clone()),
                None => (m.name.clone(), Area::Away),
            },
            a => (m.place.clone(), a.clone()),
        };
        let cand = |weak: bool, value: &str| Candidate {
            at: m.start,
            weak,
            value: value.to_string(),
            place: place.clone(),
        };
        match (&area, role) {
            (Area::Here | Area::WholeCity | Area::NotPlace, _) => {}
            (Area::Abroad, _) => {
                facts.notes.insert("abroad".into(), place.clone());
            }
            (Area::Inside(r), Some(Role::Insured { weak })) => insured.push(cand(*weak, r)),
            (Area::Inside(r), Some(Role::Origin)) => insured.push(cand(true, r)),
            (Area::Inside(r), Some(Role::Agency)) => insured.push(cand(true, r)),
            (Area::Inside(r), None) => {
                // "张家港办备案要什么": a place of ours without a cue is the insured one
                if !matches!(m.area, Area::Home) {
                    insured.push(cand(true, r))
                }
            }
            // "张家港一院给开了转院证明": referred away by a hospital of ours, insured there
            (Area::Inside(r), Some(Role::Care { .. }))
                if m.hospital && ["转院", "转诊", "转外"].iter().any(|w| norm.contains(w)) =>
            {
                insured.push(cand(true, r))
            }
            (Area::Inside(r), Some(Role::Care { .. })) => {
                facts.notes.insert("care_city".into(), place.clone());
                inside_care.push(cand(false, r))
            }
            (Area::Inside(r), Some(Role::Residence)) => inside_residence.push(cand(false, r)),
            (Area::Outside(_) | Area::Away, Some(Role::Insured { weak })) => {
                insured.push(cand(*weak, "other"))
            }
            (Area::Outside(_), Some(Role::Origin)) => {}
            (Area::Outside(v), Some(Role::Residence)) => residence.push(cand(false, v)),
            (Area::Outside(v), Some(Role::Care { weak })) => {
                facts.notes.insert("care_city".into(), place.clone());
                care.push(cand(*weak, v))
            }
            // the agency of a place away: the insured place when the person is insured there
            // ("得先在上海那边办备案吧" from someone insured in 上海)
            (Area::Outside(v), Some(Role::Agency)) => {
                if known
                    .slots
                    .get("insured_region")
                    .is_some_and(|r| r == "other")
                {
                    insured.push(cand(true, "other"))
                } else {
                    care.push(cand(true, v))
                }
            }
            (Area::Outside(v), None) => care.push(cand(true, v)),
            (Area::Away, _) => away = true,
            (Area::Home, _) => {}
        }
    }
    let _ = away;
    let insured_win = winner(norm, &insured);
    // a place that is the insured one is not also the place of care
    let not_insured =
        |c: &&Candidate| insured_win.is_none_or(|w| w.value != "other" || w.place != c.place);
    let care_win = {
        let cands: Vec<&Candidate> = care.iter().filter(not_insured).collect();
        // where the person is now: the latest place of care ("后来转到上海"); a weak mention
        // counts when a correction or a later time stands before it ("不对，是在南通")
        let last_strong = cands.iter().rev().find(|c| !c.weak).copied();
        match (last_strong, cands.last().copied()) {
            (Some(s), Some(l))
                if l.at > s.at && SHIFTS.iter().any(|w| norm[s.at..l.at].contains(w)) =>
            {
                Some(l)
            }
            (Some(s), _) => Some(s),
            (None, l) => l,
        }
    };
    // a place of ours named after a correction replaces a place away ("一开始说在上海住院，
    // 后来说其实是在苏州市里的医院")
    let care_win = care_win.filter(|c| {
        !inside_care
            .iter()
            .any(|i| i.at > c.at && SHIFTS.iter().any(|w| norm[c.at..i.at].contains(w)))
    });
    if let Some(w) = insured_win {
        // a weak guess never replaces what the conversation knows
        let keep_known = w.weak && known.slots.contains_key("insured_region") && !facts.corrects;
        if !keep_known {
            facts.slots.insert("insured_region".into(), w.value.clone());
            if w.value == "other" {
                facts.slots.insert("insured_place".into(), w.place.clone());
            }
        }
    }
    let insured_now = facts
        .slots
        .get("insured_region")
        .or(known.slots.get("insured_region"))
        .cloned();
    match care_win {
        Some(c) => {
            facts.slots.insert("care_location".into(), c.value.clone());
        }
        None => {
            if let Some(r) = residence.iter().rev().find(not_insured) {
                // someone of ours living outside is treated where they live
                if insured_now.as_deref() != Some("other") {
                    facts.slots.insert("care_location".into(), r.value.clone());
                }
            }
        }
    }
    let inside = inside_care.last().or(inside_residence.last());
    if let Some(c) = inside {
        let same_as_insured = insured_now.as_deref() == Some(c.value.as_str());
        // living in the place one is insured in says nothing about care
        if !(same_as_insured && inside_care.is_empty()) {
            facts.slots.insert("care_place".into(), c.value.clone());
        }
    }
    // "老家江西的…过年回去": going back home is care at the home place
    if !facts.slots.contains_key("care_location")
        && ["回去", "回家", "回老家"].iter().any(|w| norm.contains(w))
        && let Some((_, Area::Outside(v))) = &home
        && insured_now.as_deref() != Some("other")
    {
        facts.slots.insert("care_location".into(), v.clone());
    }
    if let Some(filed) = filed_city(norm, &placed) {
        facts.notes.insert("filed_city".into(), filed);
    }
    facts.places = placed
        .into_iter()
        .filter_map(|(mention, role)| role.map(|role| Placed { mention, role }))
        .collect();
}

/// The city a filing names ("备案到宁波", "备案的时候选的就医地是南京", "备案在南京").
fn filed_city(norm: &str, placed: &[(Mention, Option<Role>)]) -> Option<String> {
    placed.iter().find_map(|(m, _)| {
        let (from, _) = clause(norm, m.start, m.end);
        let before = &norm[from..m.start];
        let filed = before.contains("备案")
            && ["到", "在", "是", "选", "的"]
                .iter()
                .any(|w| before.ends_with(w));
        filed.then(|| m.place.clone())
    })
}

/// The choice slots the message states, by their aliases (`dialogs/slots.toml`), except the
/// places, which the roles decide.
fn read_choices(defs: &SlotDefs, norm: &str, facts: &mut Facts) {
    for name in defs.mentioned(norm) {
        let Some(def) = defs.get(name) else {
            continue;
        };
        if def.kind != SlotKind::Choice || PLACE_SLOTS.contains(&name) {
            continue;
        }
        let spans = defs.spans(name, norm);
        let Some(first) = spans.first() else {
            continue;
        };
        let last = spans.last().unwrap_or(first);
        let value = if name == "stage" {
            // the latest tense: "住院了，现在出院了"
            spans.iter().max_by_key(|s| s.1).unwrap_or(last)
        } else if last.0 > first.1
            && SHIFTS
                .iter()
                .chain(CONTRASTS.iter())
                .any(|s| norm[first.1..last.0].contains(s))
        {
            // a correction, or a contrast with what was shown or said ("提示未备案，可我明明
            // 备了的"): the later statement is the person's own
            last
        } else {
            first
        };
        if defs.cancelled(name, &value.2, norm) {
            continue;
        }
        facts.slots.insert(name.to_string(), value.2.clone());
    }
}

/// Amounts: each named by the words before it ("自费部分2000", "乙类三千"), an unnamed one
/// as the total; approximate figures ("三万多") are marked.
fn read_amounts(defs: &SlotDefs, raw: &str, facts: &mut Facts) {
    let clauses: Vec<&str> = raw
        .split([
            '，', ',', '。', '；', ';', '、', '！', '!', '？', '?', '\n', ' ',
        ])
        .filter(|c| !c.trim().is_empty() && !NOT_COSTS.iter().any(|w| c.contains(w)))
        .collect();
    let text = clauses.join("，");
    let found = defs.extract_amounts(&text);
    for (slot, (value, words)) in found {
        if value <= Decimal::ZERO && slot == "total" {
            continue;
        }
        if APPROXIMATE.iter().any(|w| words.contains(w)) {
            facts.approximate.insert(slot.clone(), words);
        }
        facts.slots.insert(slot, value.to_string());
    }
    let _ = money::MAX_AMOUNT;
}

/// The patient: the first relative named as the subject of the story (not one the patient
/// lives with: "跟儿子住"), or the user themself ("我自己", "我是苏州医保").
fn patient(norm: &str) -> Option<&'static str> {
    // every word that names a patient, with its value: one automaton, built once
    static WORDS: std::sync::OnceLock<Option<(aho_corasick::AhoCorasick, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    let found = WORDS.get_or_init(|| {
        let (words, values): (Vec<&str>, Vec<&str>) = PATIENTS
            .iter()
            .flat_map(|(v, ws)| ws.iter().map(move |w| (*w, *v)))
            .unzip();
        crate::text::literals(words).map(|ac| (ac, values))
    });
    let mut host = false;
    if let Some((ac, values)) = found {
        for m in ac.find_overlapping_iter(norm) {
            let before = &norm[..m.start()];
            let after = &norm[m.end()..];
            if NOT_PATIENT_BEFORE.iter().any(|b| before.ends_with(b))
                || NOT_PATIENT_AFTER.iter().any(|a| after.starts_with(a))
            {
                continue;
            }
            let clause_end = after
                .find([' ', '，', ',', '。', '；', ';', '！', '？', '?'])
                .unwrap_or(after.len());
            let clause = &after[..clause_end];
            if HOST_CLAUSE.iter().any(|w| clause.contains(w))
                && !ILL_WORDS.iter().any(|w| clause.contains(w))
                && USER_GOES.iter().any(|w| after.contains(w))
            {
                host = true;
                continue;
            }
            // the first relative named is whom the story is about
            return Some(values[m.pattern().as_usize()]);
        }
    }
    // "我是苏州职工", "俺是河南的", "我医保在张家港": the user speaks of themself
    let me = [
        "我是",
        "俺是",
        "我医保",
        "我的医保",
        "我社保",
        "我在",
        "俺在",
        "我张家港",
        "我苏州",
    ];
    (host || me.iter().any(|m| norm.starts_with(m))).then_some("self")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::normalize;

    fn read_text(text: &str) -> Facts {
        let a = crate::assistant::shipped();
        let empty = BTreeMap::new();
        let known = Known {
            slots: &empty,
            notes: &empty,
        };
        read(
            &a.reader.places,
            &a.dialogs.slots,
            text,
            &normalize(text),
            &known,
        )
    }

    fn slot(f: &Facts, s: &str) -> Option<String> {
        f.slots.get(s).cloned()
    }

    #[test]
    fn places_take_their_role_from_the_words_around_them() {
        // insured in 张家港, living in 杭州: outbound, care where she lives
        let f = read_text("我公公医保在张家港，退休了，现在跟我们在杭州住，下个月要做手术");
        assert_eq!(slot(&f, "insured_region").as_deref(), Some("zhangjiagang"));
        assert_eq!(slot(&f, "care_location").as_deref(), Some("yangtze_delta"));
        assert_eq!(slot(&f, "patient").as_deref(), Some("parent"));
        // insured at home in 河南, working in 张家港: inbound, never 张家港-insured
        let f = read_text("俺是河南周口的，在张家港厂里干活，医保是在老家交的新农合");
        assert_eq!(slot(&f, "insured_region").as_deref(), Some("other"));
        assert_eq!(slot(&f, "insured_place").as_deref(), Some("河南周口"));
        assert_eq!(slot(&f, "care_location"), None);
        assert_eq!(slot(&f, "scheme").as_deref(), Some("resident"));
        // a card of 上海 is the insured place, 苏州 where she works and is treated
        let f = read_text("上海参保，人在苏州上班，问在苏州看门诊能不能刷上海的卡");
        assert_eq!(slot(&f, "insured_region").as_deref(), Some("other"));
        assert_eq!(slot(&f, "care_location"), None);
        assert_eq!(slot(&f, "care_place").as_deref(), Some("suzhou"));
        assert_eq!(Direction::of(&f.slots), Direction::Inbound);
    }

    #[test]
    fn an_insured_cue_after_a_place_belongs_to_that_place() {
        // "苏州医保在上海看门诊": 苏州's insurance, treated in 上海 — not insured in 上海
        let f = read_text("苏州医保在上海看门诊");
        assert_eq!(slot(&f, "insured_region").as_deref(), Some("suzhou"));
        assert_eq!(slot(&f, "care_location").as_deref(), Some("shanghai"));
        // without punctuation: 昆山's insurance, living in 南京
        let f = read_text("我妈是昆山的居民医保在南京儿子家住了两年了");
        assert_eq!(slot(&f, "insured_region").as_deref(), Some("suzhou"));
        assert_eq!(slot(&f, "care_location").as_deref(), Some("in_province"));
        // with nothing before it, "医保在上海" is still the insured place
        let f = read_text("我医保在上海，在苏州住院");
        assert_eq!(slot(&f, "insured_place").as_deref(), Some("上海"));
        assert_eq!(slot(&f, "care_place").as_deref(), Some("suzhou"));
    }

    #[test]
    fn a_denied_place_is_none_of_the_persons_places() {
        let f = read_text("说错了，是杭州，不是南京");
        assert_eq!(slot(&f, "care_location").as_deref(), Some("yangtze_delta"));
        let f = read_text("不是在上海看的，是在南京住院");
        assert_eq!(slot(&f, "care_location").as_deref(), Some("in_province"));
    }

    #[test]
    fn the_relative_the_user_goes_to_is_not_the_patient() {
        let f = read_text("我是张家港的 我儿子在深圳上班 我过去帮他带孩子 腿摔了要住院");
        assert_eq!(slot(&f, "patient").as_deref(), Some("self"));
        // the relative who falls ill where they work is the patient
        let f = read_text("我儿子在深圳上班，工地上摔了要住院");
        assert_eq!(slot(&f, "patient").as_deref(), Some("child"));
    }

    #[test]
    fn the_persons_own_statement_outweighs_what_they_were_shown() {
        let f = read_text("在无锡刷卡一直刷不了 提示异地未备案 可我明明备了的");
        assert_eq!(slot(&f, "filed").as_deref(), Some("true"));
        let f = read_text("提示未备案，我一查确实没备案");
        assert_eq!(slot(&f, "filed").as_deref(), Some("false"));
    }

    #[test]
    fn a_correction_or_a_later_tense_replaces_the_earlier_statement() {
        let f = read_text("苏州医保……不对，是张家港的，在无锡住院中，备案已办");
        assert_eq!(slot(&f, "insured_region").as_deref(), Some("zhangjiagang"));
        assert!(f.corrects);
        let f = read_text("苏州职工退休，在南京住院，哦不，是在合肥住院");
        assert_eq!(slot(&f, "care_location").as_deref(), Some("yangtze_delta"));
        let f = read_text("老人苏州居民医保，在上海住院，住院了，现在出院了，钱自己付的");
        assert_eq!(slot(&f, "stage").as_deref(), Some("discharged_self_paid"));
        let f = read_text("张家港职工在职，原说没备案，核实后已备案，正在南京住院");
        assert_eq!(slot(&f, "filed").as_deref(), Some("true"));
    }

    #[test]
    fn amounts_in_everyday_forms() {
        let f = read_text("张家港居民医保，在南通住院花了五万二，自费三千，乙类八千");
        assert_eq!(slot(&f, "total").as_deref(), Some("52000"));
        assert_eq!(slot(&f, "self_pay").as_deref(), Some("3000"));
        assert_eq!(slot(&f, "class_b").as_deref(), Some("8000"));
        let f = read_text("我爸在上海住院，自己垫了三万多");
        assert_eq!(slot(&f, "total").as_deref(), Some("30000"));
        assert!(f.approximate.contains_key("total"));
        let f = read_text("苏州职工退休，上海住院总费用3万2，自费两千五");
        assert_eq!(slot(&f, "total").as_deref(), Some("32000"));
        assert_eq!(slot(&f, "self_pay").as_deref(), Some("2500"));
        // "一块" is together, a deposit is not a cost
        let f = read_text("我妈跟我们一块住在上海，医院让先交五万押金");
        assert_eq!(slot(&f, "total"), None);
    }
}
