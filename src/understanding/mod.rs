//! Reading a message once, in the conversation's context, into a typed [`Reading`]: what the
//! message does (its dialog act, learnt from `knowledge/acts.toml`), the facts it states with
//! their roles (`situation`), the FAQ entries it may be about, on its own and in context
//! (search), and whether it is in scope. The router (`assistant.rs`) decides from the
//! `Reading` and the session state only: nothing after this normalises or searches the raw
//! message again.
//!
//! ```text
//! message ─► normalize ─► facts (places with roles, slots, amounts, patient)
//!                      ─► act (classifier: question │ howto │ problem │ keywords │ followup
//!                              │ statement │ correction │ answer │ closing │ ack │ greeting
//!                              │ meta │ abuse │ vague) with its probability
//!                      ─► topics (search: own words; with the conversation's context; with
//!                              the dialog's subject), scope, small-talk intent, control word,
//!                              dialog trigger, the pending question's answer, an option picked
//! ```

pub mod acts;
pub mod places;
pub mod situation;

use std::collections::BTreeMap;
use std::path::Path;

pub use acts::{Act, ActModel};
pub use places::Places;
pub use situation::{Direction, Facts};

use crate::dialog::Dialogs;
use crate::dialog::engine::SessionState;
use crate::dialog::slots::{Parsed, SlotDefs};
use crate::knowledge::Knowledge;
use crate::search::{SearchContext, SearchEngine, SearchResult};
use crate::talk::Talk;
use crate::text::normalize;

/// A short message whose out-of-scope topic scores this much (100 × probability) is that topic.
const PLAIN_TOPIC: f32 = 60.0;
/// A message with this many content characters that search finds out of scope stays so.
const OUT_OF_SCOPE_CHARS: usize = 8;
/// From this probability a social act (thanks, an acknowledgement…) stands even when the
/// message has the form of a question ("好的，知道了吗" is not a question).
const SURE_ACT: f32 = 0.8;
/// Below this probability a `question` without any form of asking that states facts is read
/// as a statement.
const UNSURE_QUESTION: f32 = 0.75;

/// What the assistant knows, as the reader needs it.
pub struct Parts<'a> {
    pub knowledge: &'a Knowledge,
    pub search: &'a SearchEngine,
    pub talk: &'a Talk,
    pub dialogs: &'a Dialogs,
}

/// The words that act on a dialog in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Restart,
    Exit,
    Back,
}

/// Whether a message is about cross-region care at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// About cross-region care, or nothing says otherwise.
    InScope,
    /// A topic outside cross-region care (`knowledge/out_of_scope.toml`).
    OutOfScope(String),
    /// Care at home, at the place of insurance ("杭州本地人看门诊报多少").
    Local,
    /// Someone insured elsewhere, treated elsewhere: their own region's matter.
    Elsewhere,
    /// Care abroad or in Hong Kong, Macao, Taiwan: not what these rules cover.
    Abroad,
}

/// What the message may be about, by search.
#[derive(Debug, Clone)]
pub struct Topics {
    /// On the message's own words (with the conversation's cross-region sense).
    pub own: SearchResult,
    /// With the conversation's context words (topic, situation), when there is a context.
    pub in_context: Option<SearchResult>,
    /// With the subject of the dialog in progress ("交了以后要等多久" in the filing dialog).
    pub in_dialog: Option<SearchResult>,
}

/// One message, read.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The message as written, trimmed.
    pub message: String,
    /// Normalised (see `text::normalize`).
    pub norm: String,
    /// Letters, digits and ideographs in the message.
    pub content_chars: usize,
    pub control: Option<Control>,
    /// "详细依据": every rule of the last estimate.
    pub basis: bool,
    /// "详细": the full text of the last answer.
    pub more: bool,
    pub act: Act,
    pub confidence: f32,
    pub facts: Facts,
    /// The small-talk intent the message's words name, if any (`knowledge/smalltalk.toml`).
    pub smalltalk: Option<String>,
    /// The vague area it names ("报销的事"), if that is all it says.
    pub vague: Option<String>,
    /// The option of the last clarifying question it picks.
    pub pick: Option<String>,
    /// The dialog a trigger phrase starts ("能报多少", "刷不了").
    pub trigger: Option<String>,
    /// Read as a continuation of the current topic ("那要多久", "需要带什么", or short).
    pub continues: bool,
    /// Words that mark a follow-up ("那…", "要是…", "…呢"), whatever the length.
    pub followup_cue: bool,
    /// The message asks by its form (a question mark, an asking word, a trailing 呢/吗).
    pub asks_form: bool,
    /// Its answer to the question of the dialog in progress.
    pub dialog_answer: Option<Parsed>,
    pub topics: Topics,
    pub scope: Scope,
}

impl Reading {
    /// The message asks something, by the act or, when the act is unsure, by its form.
    pub fn asks(&self) -> bool {
        // a story read as a question without any form of asking, and the classifier unsure:
        // facts told, not asked ("我在苏州参保，要去北京看病")
        let answers_itself = self.topics.own.answered
            && self
                .topics
                .own
                .hits
                .first()
                .is_some_and(|h| h.score >= 60.0);
        let told = self.act == Act::Question
            && !self.asks_form
            && self.confidence < UNSURE_QUESTION
            && self.facts.slots.len() >= 2
            && !answers_itself;
        (self.act.asks() && !told)
            || (self.asks_form && !(self.act.is_social() && self.confidence >= SURE_ACT))
    }
}

/// The reader: the place gazetteer and the act classifier, built at load.
#[derive(Debug)]
pub struct Reader {
    pub places: Places,
    pub acts: ActModel,
    /// The dialogs' trigger phrases, normalised: `(dialog id, phrase)`.
    triggers: Vec<(String, String)>,
}

impl Reader {
    /// Loads `places.toml` and `acts.toml` and trains the act classifier (each example with
    /// the signals the situation reader gives it). `regions` are the insured regions' ids.
    pub fn load(
        root: &Path,
        regions: &[(String, Vec<String>)],
        dialogs: &Dialogs,
    ) -> Result<Reader, Vec<String>> {
        let defs = &dialogs.slots;
        let places = Places::load(root, regions);
        let examples = acts::load_examples(root);
        let (places, examples) = match (places, examples) {
            (Ok(p), Ok(e)) => (p, e),
            (p, e) => {
                return Err(p
                    .err()
                    .into_iter()
                    .flatten()
                    .chain(e.err().into_iter().flatten())
                    .collect());
            }
        };
        let examples = with_signals(&places, defs, examples);
        Ok(Reader {
            places,
            acts: ActModel::train(examples),
            triggers: triggers(dialogs),
        })
    }

    /// The act examples with their signals, as the classifier is trained on them.
    /// The dialog whose trigger phrase occurs in the (normalised) message, if any: the
    /// longest phrase found.
    fn trigger(&self, norm: &str) -> Option<String> {
        let command = norm.trim_start_matches('/');
        self.triggers
            .iter()
            .filter(|(_, t)| norm.contains(t.as_str()) || command == t)
            .max_by_key(|(_, t)| t.chars().count())
            .map(|(d, _)| d.clone())
    }

    pub fn training_examples(&self, defs: &SlotDefs) -> Vec<(Act, String, acts::Signals)> {
        with_signals(&self.places, defs, self.acts.examples().to_vec())
    }

    /// The facts `message` states, given what the conversation knows.
    pub fn facts(
        &self,
        defs: &SlotDefs,
        message: &str,
        slots: &BTreeMap<String, String>,
        notes: &BTreeMap<String, String>,
    ) -> Facts {
        let message = self.places.correct(message);
        let norm = normalize(&message);
        situation::read(
            &self.places,
            defs,
            &message,
            &norm,
            &situation::Known { slots, notes },
        )
    }

    /// Reads one message in the conversation `state` is in.
    pub fn read(&self, parts: &Parts<'_>, state: &SessionState, message: &str) -> Reading {
        let message = self.places.correct(message.trim());
        let norm = normalize(&message);
        let content_chars = message.chars().filter(|c| c.is_alphanumeric()).count();
        let command = norm.trim_start_matches('/');
        let control = control(command);
        let bare = command.trim_matches(|c: char| !c.is_alphanumeric());
        let basis = matches!(
            bare,
            "详细依据" | "依据" | "查看依据" | "全部依据" | "详细规则"
        );
        let more = matches!(
            bare,
            "详细"
                | "详细点"
                | "详细一点"
                | "详细说说"
                | "展开"
                | "全文"
                | "看全文"
                | "完整"
                | "更多"
        );
        let facts = situation::read(
            &self.places,
            &parts.dialogs.slots,
            &message,
            &norm,
            &situation::Known {
                slots: &state.slots,
                notes: &state.notes,
            },
        );
        let active = state.active.as_ref();
        let signals = acts::Signals {
            facts: facts.slots.len(),
            places: facts.places.len(),
            amount: ["total", "self_pay", "class_b"]
                .iter()
                .any(|s| facts.slots.contains_key(*s)),
            pending: active.is_some(),
        };
        let (act, confidence, _) = self.acts.classify(&message, &signals);
        let talk = parts.talk.read(&message, &norm);
        let smalltalk = talk.smalltalk.map(|i| i.id.clone());
        let vague = talk.vague.map(|v| v.id.clone());
        let continues = talk.continues;
        let followup_cue = talk.followup_cue
            || message
                .trim_end_matches(['?', '？', '。', '!', '！', ' '])
                .ends_with('呢');
        let asks_form = asks_form(&message);
        // the question of the dialog in progress
        let step = active.and_then(|a| {
            let d = parts.dialogs.get(&a.dialog)?;
            Some((d, d.step(&a.step)?))
        });
        let dialog_answer = step.and_then(|(_, step)| {
            let slot = step.slot.as_deref()?;
            Some(
                parts
                    .dialogs
                    .slots
                    .parse_answer(slot, &message, step.accept.as_deref()),
            )
        });
        // search: on its own words; in the dialog's subject; in the conversation's context
        // who is insured where decides which entries may answer: someone of ours going away
        // does not get the entry for people coming to us, and the other way round
        let merged = with_facts(&state.slots, &facts.slots);
        let direction = Direction::of(&merged);
        let cross = matches!(
            direction,
            Direction::Outbound | Direction::Inbound | Direction::Within
        );
        let ctx = if active.is_some() {
            SearchContext {
                cross_region: true,
                region: merged.get("insured_region").map(String::as_str),
            }
        } else {
            let mut c = search_context(parts, state);
            // the message's own story places someone away from home
            c.cross_region |= cross;
            // the region the message itself names as the user's comes first
            c.region = merged
                .get("insured_region")
                .map(String::as_str)
                .or(c.region);
            c
        };
        // insured in one of our regions with no place of care said yet ("张家港 门特 异地"):
        // the entries for people from elsewhere do not fit them
        let ours = merged.get("insured_region").is_some_and(|r| r != "other");
        let leaning = if direction == Direction::Unknown && ours {
            Direction::Outbound
        } else {
            direction
        };
        let fit = |r: SearchResult| {
            for_situation(
                parts.knowledge,
                for_direction(
                    parts.knowledge,
                    with_required_words(parts.knowledge, r, &norm),
                    leaning,
                ),
                &merged,
            )
        };
        let own = fit(parts.search.search_with(&message, 8, &ctx));
        let in_dialog = step.map(|(d, _)| {
            fit(parts
                .search
                .search_with(&format!("{message} {}", d.title), 3, &ctx))
        });
        // read in the conversation's context only when the router may use it: a message that
        // continues, follows up or answers options, or one its own words do not answer
        let may_continue = continues
            || followup_cue
            || act == Act::FollowUp
            || !state.pending.is_empty()
            || !own.answered;
        let context = if may_continue && active.is_none() {
            context_words(parts, state)
        } else {
            String::new()
        };
        let in_context = (!context.is_empty()).then(|| {
            fit(parts
                .search
                .search_with(&format!("{message} {context}"), 8, &ctx))
        });
        // a dialog whose `not_when` this message's own facts meet is not started by its
        // phrases ("出院自费结算了，卡刷不了" is past diagnosing); an earlier episode's stage does
        // not block a new question about the card
        let trigger = self.trigger(&norm).filter(|d| {
            parts.dialogs.get(d).is_none_or(|d| {
                !d.not_when
                    .iter()
                    .any(|(k, vs)| facts.slots.get(k).is_some_and(|v| vs.contains(v)))
            })
        });
        let pick = pick(parts.knowledge, &state.pending, &message);
        let mut reading = Reading {
            message,
            norm,
            content_chars,
            control,
            basis,
            more,
            act,
            confidence,
            facts,
            smalltalk,
            vague,
            pick,
            trigger,
            continues,
            followup_cue,
            asks_form,
            dialog_answer,
            topics: Topics {
                own,
                in_context,
                in_dialog,
            },
            scope: Scope::InScope,
        };
        reading.scope = scope(parts, state, &reading);
        reading
    }
}

/// Each example with the signals the situation reader finds in it (the act classifier
/// learns from them as from the words).
fn with_signals(
    places: &Places,
    defs: &SlotDefs,
    examples: Vec<(Act, String)>,
) -> Vec<(Act, String, acts::Signals)> {
    let empty = BTreeMap::new();
    examples
        .into_iter()
        .map(|(act, text)| {
            let text = places.correct(&text);
            let norm = normalize(&text);
            let facts = situation::read(
                places,
                defs,
                &text,
                &norm,
                &situation::Known {
                    slots: &empty,
                    notes: &empty,
                },
            );
            let signals = acts::Signals {
                facts: facts.slots.len(),
                places: facts.places.len(),
                amount: ["total", "self_pay", "class_b"]
                    .iter()
                    .any(|s| facts.slots.contains_key(*s)),
                // answers are what a pending question gets
                pending: act == Act::Answer,
            };
            (act, text, signals)
        })
        .collect()
}

/// The hits without the entries written for the other direction (an `inbound` entry for
/// someone of ours going away, an `outbound` one for someone from elsewhere), as long as
/// another hit remains; the result stays answered when it was.
fn for_direction(knowledge: &Knowledge, mut r: SearchResult, direction: Direction) -> SearchResult {
    let unfit = match direction {
        Direction::Outbound | Direction::Within => "inbound",
        Direction::Inbound => "outbound",
        _ => return r,
    };
    let fits = |id: &str| {
        knowledge
            .faq(id)
            .is_none_or(|e| e.direction.as_deref() != Some(unfit))
    };
    if r.hits.iter().any(|h| fits(&h.id)) && r.hits.first().is_some_and(|h| !fits(&h.id)) {
        r.hits.retain(|h| fits(&h.id));
    }
    r
}

/// The hits without the entries whose required words the message lacks ("能直接刷医保卡吗"
/// is not about using someone else's card); the result no longer answers when its best hit
/// was one of them and nothing else is left.
fn with_required_words(knowledge: &Knowledge, mut r: SearchResult, norm: &str) -> SearchResult {
    let lacks = |id: &str| {
        knowledge.faq(id).is_some_and(|e| {
            !e.requires.is_empty() && !e.requires.iter().any(|w| norm.contains(w.as_str()))
        })
    };
    if r.hits.first().is_some_and(|h| lacks(&h.id)) {
        r.hits.retain(|h| !lacks(&h.id));
        // the next reading answers only when it was close: otherwise say what is known
        if r.hits.is_empty() {
            r.answered = false;
        }
    } else {
        r.hits.retain(|h| !lacks(&h.id));
    }
    r
}

/// The situation known with a message's facts over it: the latest place of care replaces
/// the other kind ("对了，我在苏州本地看门诊" after a question about 上海 is care here).
fn with_facts(
    known: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = known.clone();
    drop_replaced_care(&mut merged, new);
    merged.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

/// Removes from `known` the place of care of the other kind than the one `new` names: a
/// place here (`care_place`) replaces one away (`care_location`), and the other way round.
pub fn drop_replaced_care(known: &mut BTreeMap<String, String>, new: &BTreeMap<String, String>) {
    if new.contains_key("care_place") && !new.contains_key("care_location") {
        known.remove("care_location");
    }
    if new.contains_key("care_location") && !new.contains_key("care_place") {
        known.remove("care_place");
    }
}

/// Share of the best score a hit needs to take the lead when it fits the situation and the
/// best does not.
const FITS_SHARE: f32 = 0.5;

/// The hits with the best moved aside when the person's situation contradicts what it is
/// written for (an entry whose `fits` says `stage = "before_care"` for someone already in
/// hospital) and a close hit fits: "没备案，现在住着院" gets the backfill before discharge.
fn for_situation(
    knowledge: &Knowledge,
    mut r: SearchResult,
    slots: &BTreeMap<String, String>,
) -> SearchResult {
    // -1: contradicted; 0: nothing said; n > 0: n conditions met
    let fit = |id: &str| -> i32 {
        let Some(e) = knowledge.faq(id) else {
            return 0;
        };
        let mut met = 0;
        for (k, vs) in &e.fits {
            match slots.get(k) {
                Some(v) if vs.contains(v) => met += 1,
                Some(_) => return -1,
                None => {}
            }
        }
        met
    };
    let Some(top) = r.hits.first() else {
        return r;
    };
    if fit(&top.id) >= 0 {
        return r;
    }
    let floor = FITS_SHARE * top.score;
    // among the few best: a far-down hit does not overturn what the words ask
    if let Some(i) = r
        .hits
        .iter()
        .take(3)
        .position(|h| h.score >= floor && fit(&h.id) > 0)
    {
        // the two change places, scores included, so that the ranking stays in order
        let top_score = r.hits[0].score;
        r.hits[0].score = r.hits[i].score;
        r.hits[i].score = top_score;
        r.hits.swap(0, i);
    }
    r
}

/// 重新开始 / 退出 / 返回.
fn control(command: &str) -> Option<Control> {
    match command {
        "重新开始" | "重来" | "从头开始" | "reset" | "restart" => Some(Control::Restart),
        "退出" | "取消" | "结束" | "不问了" | "exit" | "quit" | "cancel" => {
            Some(Control::Exit)
        }
        "返回" | "上一步" | "上一个" | "back" => Some(Control::Back),
        _ => None,
    }
}

/// Every dialog's trigger phrases, normalised once: `(dialog id, phrase)`.
fn triggers(dialogs: &Dialogs) -> Vec<(String, String)> {
    dialogs
        .dialogs
        .iter()
        .flat_map(|d| {
            d.triggers
                .iter()
                .map(|t| (d.id.clone(), normalize(t.trim_start_matches('/'))))
        })
        .filter(|(_, t)| !t.is_empty())
        .collect()
}

/// What the conversation already says about cross-region care: a topic that is about it,
/// or a known place away from home.
fn search_context<'a>(parts: &Parts<'_>, state: &'a SessionState) -> SearchContext<'a> {
    let topic_cross = state
        .topic
        .as_deref()
        .and_then(|t| parts.knowledge.faq(t))
        .is_some_and(|e| !e.general);
    SearchContext {
        cross_region: topic_cross
            || state.cross_region
            || state.slots.contains_key("care_location")
            || state.slots.contains_key("care_place")
            || state
                .slots
                .get("insured_region")
                .is_some_and(|r| r == "other"),
        region: state.slots.get("insured_region").map(String::as_str),
    }
}

/// The words that stand for the conversation so far: the current topic's first tag, the
/// area of the last clarifying question, and the user's region and place of care.
pub fn context_words(parts: &Parts<'_>, state: &SessionState) -> String {
    let mut words: Vec<String> = Vec::new();
    if let Some(entry) = state.topic.as_deref().and_then(|t| parts.knowledge.faq(t)) {
        words.extend(entry.tags.first().cloned());
    }
    words.extend(state.context.iter().cloned());
    if state
        .slots
        .get("insured_region")
        .is_some_and(|r| r == "other")
    {
        // someone insured elsewhere: the words of care coming to us
        words.push("外地参保 异地".to_string());
        if let Some(p) = state.slots.get("care_place") {
            words.push(parts.dialogs.slots.label("insured_region", p));
        }
    } else if state.topic.is_none() {
        // without a topic the situation is the context; with one, the topic leads alone
        // ("在哪儿办" after the filing materials is where to file, whatever the region)
        if let Some(v) = state.slots.get("insured_region") {
            words.push(parts.dialogs.slots.search_words("insured_region", v));
        }
        if let Some(v) = state.slots.get("care_location") {
            words.push(parts.dialogs.slots.search_words("care_location", v));
        }
    }
    words.join(" ")
}

/// Whether the message is plainly about care at the place of insurance ("在苏州本地社区医院
/// 看门诊报多少", "杭州本地人看门诊报多少"): a word of local care and no word of cross-region care,
/// and no place away from an insured region of ours in the conversation.
fn local_care(parts: &Parts<'_>, state: &SessionState, norm: &str, facts: &Facts) -> bool {
    let local = ["本地", "本市", "在参保地看", "当地人"]
        .iter()
        .any(|w| norm.contains(w));
    let ours_away = !matches!(
        facts
            .slots
            .get("insured_region")
            .or(state.slots.get("insured_region"))
            .map(String::as_str),
        Some("other")
    ) && (facts.slots.contains_key("care_location")
        && facts.slots.contains_key("insured_region")
        // a place away told earlier, unless this message names a place of care here
        || with_facts(&state.slots, &facts.slots).contains_key("care_location"));
    local && !ours_away && !parts.search.has_cross_region_word(norm)
}

/// Whether the message is about cross-region care for us at all.
fn scope(parts: &Parts<'_>, state: &SessionState, r: &Reading) -> Scope {
    let facts = &r.facts;
    if facts.notes.contains_key("abroad") {
        return Scope::Abroad;
    }
    // a story that places someone of ours away from home (or someone from elsewhere with
    // us) and asks nothing is about cross-region care, whatever else it mentions
    let cross = matches!(
        Direction::of(&facts.slots),
        Direction::Outbound | Direction::Inbound | Direction::Within
    );
    // a short message whose words are plainly another topic ("商业保险") is out of scope too
    let says_enough =
        r.content_chars >= OUT_OF_SCOPE_CHARS || r.topics.own.out_of_scope_score >= PLAIN_TOPIC;
    if let Some(topic) = &r.topics.own.out_of_scope
        && says_enough
        && (!cross || r.asks())
    {
        return Scope::OutOfScope(topic.clone());
    }
    if local_care(parts, state, &r.norm, facts) {
        return Scope::Local;
    }
    // insured elsewhere, and nothing of ours in the case: their own region's matter
    if facts
        .slots
        .get("insured_region")
        .is_some_and(|r| r == "other")
    {
        let merged = with_facts(&state.slots, &facts.slots);
        if !merged.contains_key("care_place") {
            return Scope::Elsewhere;
        }
    }
    Scope::InScope
}

/// Whether a message asks by its form: a question mark, an asking word, A-not-A, a trailing
/// particle that asks (吗, 呢, 不, 没, 伐).
pub fn asks_form(message: &str) -> bool {
    let m = message.trim_end_matches(['。', '.', '!', '！', ' ', '~', '～']);
    let asks_with_ba = m.ends_with('吧')
        && [
            "能",
            "可以",
            "会",
            "要",
            "是不是",
            "还",
            "是吧",
            "对吧",
            "得",
        ]
        .iter()
        .any(|w| m.contains(w));
    // "那去上海呢 我是苏州的": a 呢 that ends a clause asks
    let ne_clause = m.contains("呢 ") || m.contains("呢，") || m.contains("呢,");
    // a clause that ends with a question particle ("现在补备案还能报吗 我们是张家港的")
    let clause_asks = m
        .split([' ', '，', ',', '。', '！', '!', '；', ';'])
        .any(|c| c.ends_with(['吗', '伐', '么']));
    // A-not-A: "成没成", "刷不刷", "能不能"
    let chars: Vec<char> = m.chars().collect();
    let a_not_a = chars
        .windows(3)
        .any(|w| w[0] == w[2] && matches!(w[1], '不' | '没') && crate::text::is_cjk(w[0]));
    asks_with_ba
        || ne_clause
        || clause_asks
        || a_not_a
        || m.contains(['？', '?'])
        || m.ends_with(['吗', '呢', '不', '没', '伐', '么'])
        || [
            "怎么",
            "什么",
            "哪",
            "几",
            "多少",
            "多久",
            "能不能",
            "可不可以",
            "是不是",
            "要不要",
            "如何",
            "为什么",
            "为啥",
            "咋",
            "啥",
            "行不行",
            "好不好",
            "有没有",
            "能否",
            "多长时间",
            "几天",
            "几个",
            "中不中",
            "成不成",
            "会不会",
            "管不管",
            "可否",
            "怎样",
            "想办",
            "要办",
            "想了解",
            "想知道",
            "想咨询",
            "咨询一下",
        ]
        .iter()
        .any(|w| m.contains(w))
}

/// Lead-ins that say nothing about which option is meant.
const QUESTION_LEADS: [&str; 8] = [
    "我想知道",
    "想知道",
    "我想了解",
    "想了解",
    "我想问",
    "想问",
    "请问",
    "我问的是",
];

/// The option of the last clarifying question that the message picks: its number
/// ("2", "第二个"), or clearly more of its words than any other option's.
fn pick(knowledge: &Knowledge, pending: &[String], message: &str) -> Option<String> {
    if pending.is_empty() {
        return None;
    }
    let m = normalize(message);
    let m = m.trim_matches(|c: char| !c.is_alphanumeric());
    let ordinal = [
        ["1", "一", "第一个", "第1个"],
        ["2", "二", "第二个", "第2个"],
        ["3", "三", "第三个", "第3个"],
    ]
    .iter()
    .position(|words| words.contains(&m));
    if let Some(n) = ordinal {
        return pending.get(n).cloned();
    }
    let m = QUESTION_LEADS
        .iter()
        .fold(m.to_string(), |m, lead| m.replacen(lead, "", 1));
    let mut scored: Vec<(f32, &String)> = pending
        .iter()
        .filter_map(|id| {
            let e = knowledge.faq(id)?;
            let best = std::iter::once(&e.question)
                .chain(&e.variants)
                .map(|p| overlap(&m, &normalize(p)))
                .fold(0.0f32, f32::max);
            Some((best, id))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let clear = match scored.as_slice() {
        [(best, _), (second, _), ..] => *best >= 0.5 && *best >= second + 0.2,
        [(best, _)] => *best >= 0.5,
        [] => false,
    };
    clear.then(|| scored[0].1.clone())
}

/// The share of `a`'s character bigrams that occur in `b` (0 when `a` has none).
fn overlap(a: &str, b: &str) -> f32 {
    let grams = |t: &str| -> Vec<(char, char)> {
        let cs: Vec<char> = t.chars().filter(|c| c.is_alphanumeric()).collect();
        cs.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let ga = grams(a);
    if ga.is_empty() {
        return 0.0;
    }
    let gb = grams(b);
    ga.iter().filter(|g| gb.contains(g)).count() as f32 / ga.len() as f32
}

/// A reading made by hand, for the router's table tests: a message with nothing found in it;
/// a test sets what the case needs.
#[cfg(test)]
pub(crate) fn blank_reading(message: &str) -> Reading {
    let nothing = || SearchResult {
        query: message.to_string(),
        answered: false,
        hits: Vec::new(),
        out_of_scope_score: 0.0,
        out_of_scope: None,
        also: None,
    };
    Reading {
        message: message.to_string(),
        norm: normalize(message),
        content_chars: message.chars().filter(|c| c.is_alphanumeric()).count(),
        control: None,
        basis: false,
        more: false,
        act: Act::Question,
        confidence: 1.0,
        facts: Facts::default(),
        smalltalk: None,
        vague: None,
        pick: None,
        trigger: None,
        continues: false,
        followup_cue: false,
        asks_form: false,
        dialog_answer: None,
        topics: Topics {
            own: nothing(),
            in_context: None,
            in_dialog: None,
        },
        scope: Scope::InScope,
    }
}

/// A search result that answers with `ids` (best first, scores falling from `top`).
#[cfg(test)]
pub(crate) fn answered(message: &str, ids: &[&str], top: f32) -> SearchResult {
    SearchResult {
        query: message.to_string(),
        answered: !ids.is_empty(),
        hits: ids
            .iter()
            .enumerate()
            .map(|(i, id)| crate::search::Hit {
                id: (*id).to_string(),
                score: top / (i as f32 + 1.0),
                question: String::new(),
            })
            .collect(),
        out_of_scope_score: 0.0,
        out_of_scope: None,
        also: None,
    }
}
