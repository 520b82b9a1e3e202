//! The channel-agnostic core: `handle(state, message) -> Reply`. No IO happens here:
//! channels (terminal, HTTP, Telegram, WeChat) load and save the [`SessionState`] through the
//! store and render the [`Reply`] in their own idiom.
//!
//! A message is read once ([`crate::understanding`]) into a [`Reading`]; this module is the
//! router that decides from the reading and the session state only:
//! 1. control words (重新开始, 退出, 返回/上一步) act on the dialog in progress;
//! 2. in a dialog, the message answers the current question (also in free words that imply
//!    an option), or asks a question of its own (answered, then the dialog resumes), or
//!    turns to something new (the dialog ends cleanly);
//! 3. outside a dialog: an option picked from the last clarifying question; the facts the
//!    message states are remembered (with roles: who is insured where, treated where); small
//!    talk; a vague area (clarify); out of scope; a dialog's trigger; a statement of facts
//!    (acknowledged, tailored to the situation); a "what do I do" question with the situation
//!    known (a personal plan); a follow-up that changes one detail (answered for the changed
//!    situation); otherwise the FAQ answers, or the assistant says honestly that it does not
//!    know.
//!
//! Every FAQ answer leads with one or two sentences for this person (`answer`), then the
//! details for their region, one phone screen long; the same reply never goes out twice in
//! a row.

mod answer;
mod plan;

use std::collections::BTreeMap;
use std::path::Path;

use crate::dialog::engine::{self, LastReply, SessionState, Turn};
use crate::dialog::{Dialogs, Outcome, Parsed, SlotKind};
use crate::guidance::checklist::{self, ChecklistTexts, Situation};
use crate::guidance::estimate::{self, EstimateInput};
use crate::guidance::policy::Policies;
use crate::knowledge::Knowledge;
use crate::search::{SearchEngine, SearchResult};
use crate::talk::Talk;
use crate::understanding::{Act, Control, Direction, Parts, Reader, Reading, Scope};

pub use crate::reply::{Choice, FaqOption, FaqRef, Reply, ReplyKind};

/// Hits below this score are not even offered as "did you mean" suggestions.
const SUGGESTION_MIN_SCORE: f32 = 15.0;
/// A question with this many content characters may stand on its own in a conversation.
const SELF_CONTAINED_CHARS: usize = 12;
/// …when its own best reading leads the next one by this factor.
const CLEAR_LEAD: f32 = 2.0;

/// From this score (100 × probability) an out-of-scope topic keeps a dialog's trigger
/// phrase from starting it ("养老金能报多少").
const STRONG_OUT_OF_SCOPE: f32 = 50.0;
/// Below this score an out-of-scope topic does not keep a follow-up from the current topic.
const WEAK_OUT_OF_SCOPE: f32 = 30.0;

/// A follow-up this short ("那转诊的呢", "要是备了案呢") is only the detail it changes.
const FOLLOW_UP_CHARS: usize = 8;

/// The out-of-scope topic of care at home (`knowledge/out_of_scope.toml`).
const LOCAL_TOPIC: &str = "local-benefits";

/// Longest message the assistant reads (characters); longer ones get a friendly reply.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// Why the assistant could not be built from its data.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid knowledge:\n{0}")]
    Knowledge(#[from] crate::knowledge::KnowledgeErrors),
    #[error("invalid dialogs:\n{0}")]
    Dialogs(#[from] crate::dialog::DialogErrors),
    #[error("invalid policies:\n{0}")]
    Policies(String),
    #[error("invalid checklist texts:\n{0}")]
    Checklist(String),
    #[error("invalid conversation data:\n{0}")]
    Talk(String),
    #[error("invalid reading data (places, acts):\n{0}")]
    Reader(String),
    #[error("cannot build the search index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// The assistant: knowledge, its search index, dialogs, guidance data and the reader.
pub struct Assistant {
    pub knowledge: Knowledge,
    pub search: SearchEngine,
    pub dialogs: Dialogs,
    pub policies: Policies,
    pub checklist_texts: ChecklistTexts,
    pub talk: Talk,
    pub reader: Reader,
}

/// The situation slots, in the order a person would tell them (who, where, what happened):
/// acknowledgements list what they understood in this order.
const SLOT_ORDER: [&str; 16] = [
    "patient",
    "insured_region",
    "insured_place",
    "scheme",
    "employment",
    "category",
    "care_location",
    "care_place",
    "filing_type",
    "filed",
    "stage",
    "visit",
    "hospital_level",
    "by_proxy",
    "total",
    "self_pay",
];

/// The slots a message's facts fill in any turn.
const SITUATION_SLOTS: [&str; 21] = [
    "patient",
    "insured_region",
    "insured_place",
    "scheme",
    "employment",
    "category",
    "care_location",
    "care_place",
    "filing_type",
    "filed",
    "stage",
    "visit",
    "hospital_level",
    "by_proxy",
    "emergency",
    "total",
    "self_pay",
    "class_b",
    "admissions_before",
    "mentions_chronic",
    "cumulative_eligible_before",
];

/// Slots that describe one person's case: a new patient starts them afresh.
const CASE_SLOTS: [&str; 18] = [
    "insured_region",
    "insured_place",
    "scheme",
    "employment",
    "category",
    "care_location",
    "care_place",
    "filing_type",
    "filed",
    "stage",
    "visit",
    "hospital_level",
    "by_proxy",
    "total",
    "self_pay",
    "class_b",
    "admissions_before",
    "mentions_chronic",
];

impl Assistant {
    /// Loads everything from the knowledge and dialogs folders, validating all of it.
    pub fn load(knowledge_dir: &Path, dialogs_dir: &Path) -> Result<Assistant, LoadError> {
        let knowledge = Knowledge::load(knowledge_dir)?;
        let dialogs = Dialogs::load(dialogs_dir)?;
        let policies = Policies::load_dir(&knowledge_dir.join("policies")).map_err(|es| {
            LoadError::Policies(
                es.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
        let checklist_texts =
            checklist::load(knowledge_dir).map_err(|es| LoadError::Checklist(es.join("\n")))?;
        let mut talk =
            Talk::load(knowledge_dir, &knowledge).map_err(|es| LoadError::Talk(es.join("\n")))?;
        let mut dialogs = dialogs;
        apply_regions(&checklist_texts, &mut dialogs, &mut talk, &policies)?;
        let regions: Vec<String> = checklist_texts.regions.ids().map(String::from).collect();
        check_cases(&knowledge, &regions)?;
        let names: Vec<(String, Vec<String>)> = checklist_texts
            .regions
            .iter()
            .map(|r| {
                let mut n = vec![r.label.clone(), r.name.clone()];
                n.extend(r.aliases.iter().cloned());
                (r.id.clone(), n)
            })
            .collect();
        let reader = Reader::load(knowledge_dir, &names, &dialogs)
            .map_err(|es| LoadError::Reader(es.join("\n")))?;
        let search = SearchEngine::build(&knowledge)?;
        Ok(Assistant {
            knowledge,
            search,
            dialogs,
            policies,
            checklist_texts,
            talk,
            reader,
        })
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            knowledge: &self.knowledge,
            search: &self.search,
            talk: &self.talk,
            dialogs: &self.dialogs,
        }
    }

    /// Reads one message in the conversation `state` is in (what `handle` routes on).
    pub fn read(&self, state: &SessionState, message: &str) -> Reading {
        self.reader.read(&self.parts(), state, message)
    }

    /// The first thing a new user sees.
    pub fn welcome(&self) -> Reply {
        Reply::text(
            "您好，我是异地就医小助手。我可以：\n\
             · 回答异地就医备案、直接结算、零星（手工）报销等问题，例如“社保卡在外地刷不了怎么办”；\n\
             · 按您的情况列出备案材料清单（输入“备案材料清单”）；\n\
             · 估算住院、门诊费用医保大概能报多少（输入“帮我算能报多少”）。\n\
             对话中随时可以输入“返回”“重新开始”或“退出”。",
        )
    }

    /// Starts dialog `dialog_id` at its first question, as a channel's menu command does
    /// (Telegram's /filing): a dialog in progress is left and a new situation begins, with
    /// no slot filled. A name that is no dialog gets a short note and leaves `state` as it was.
    pub fn start_dialog(&self, state: &mut SessionState, dialog_id: &str) -> Reply {
        let mut reply = self.start_named(state, dialog_id);
        reply.slots = state.slots.clone();
        reply
    }

    fn start_named(&self, state: &mut SessionState, dialog_id: &str) -> Reply {
        let Some(intro) = self.dialogs.get(dialog_id).map(|d| d.intro.clone()) else {
            return Reply::text("抱歉，没有这项问答。请直接输入您的问题。");
        };
        // a stored state that no longer fits the definitions is replaced anyway by the start
        engine::repair(&self.dialogs, state);
        state.pending.clear();
        match engine::start(&self.dialogs, state, dialog_id, &BTreeMap::new()) {
            Some(turn) => self.render(state, turn, Some(intro)),
            None => Reply::text("抱歉，没有这项问答。请直接输入您的问题。"),
        }
    }

    /// Forgets the conversation: no dialog in progress, no collected slots (a channel's
    /// /reset). Unlike 重新开始, which restarts the dialog in progress, nothing is kept.
    pub fn reset(&self, state: &mut SessionState) -> Reply {
        *state = SessionState::new();
        let mut reply = self.welcome();
        reply.text = format!("好的，之前的对话进度已清除，我们重新开始。\n{}", reply.text);
        reply
    }

    /// A button press: `value` answers the question about `slot` in `dialog`, provided that
    /// is still the question being asked and `value` is one of its choices. `None` otherwise
    /// (the conversation has moved on, or the press is not one of ours): `state` is left
    /// unchanged.
    pub fn choose(
        &self,
        state: &mut SessionState,
        dialog: &str,
        slot: &str,
        value: &str,
    ) -> Option<Reply> {
        if state.version != engine::STATE_VERSION {
            return None;
        }
        let active = state.active.as_ref()?;
        if active.dialog != dialog {
            return None;
        }
        let step = self.dialogs.get(dialog)?.step(&active.step)?;
        if step.slot.as_deref() != Some(slot)
            || !engine::choices(&self.dialogs, dialog, &step.id)
                .iter()
                .any(|(v, _)| v == value)
        {
            return None;
        }
        let turn = engine::answer(
            &self.dialogs,
            state,
            Parsed::Value(value.to_string()),
            &BTreeMap::new(),
        )?;
        let mut reply = self.render(state, turn, None);
        reply.slots = state.slots.clone();
        remember(state, &reply);
        Some(reply)
    }

    /// The situation slots that `text` states, read as a conversation reads a message (the
    /// agent console fills its form from what the agent types about the caller).
    pub fn understand(&self, text: &str) -> BTreeMap<String, String> {
        self.understand_after(&BTreeMap::new(), text)
    }

    /// The situation after `text` is read on top of what was known (`known`): only the
    /// fields the text states change, a correction in the text replaces a field, and a new
    /// person ("不是我妈，是我爸") starts the case afresh.
    pub fn understand_after(
        &self,
        known: &BTreeMap<String, String>,
        text: &str,
    ) -> BTreeMap<String, String> {
        let mut state = SessionState::new();
        state.slots = known.clone();
        let facts = self
            .reader
            .facts(&self.dialogs.slots, text, &state.slots, &state.notes);
        self.apply_facts(&mut state, &facts, false);
        state.slots
    }

    /// The FAQ entry that leads a personal plan for the situation `slots` (the agent
    /// console's answer to a caller's story), when the situation says enough for a plan.
    pub fn situation_entry(
        &self,
        slots: &BTreeMap<String, String>,
    ) -> Option<&crate::knowledge::FaqEntry> {
        if !self.plan_ready(slots) {
            return None;
        }
        self.knowledge
            .faq(&plan::leading_entry(slots, Direction::of(slots)))
    }

    /// The lead of `entry` for the situation `slots`, as a conversation leads with it (the
    /// first of its cases that applies, else its brief), and whether a case applied.
    pub fn entry_lead<'a>(
        &self,
        entry: &'a crate::knowledge::FaqEntry,
        slots: &BTreeMap<String, String>,
    ) -> (&'a str, bool) {
        answer::lead(entry, slots)
    }

    /// The paragraphs of `entry`'s answer for a person insured in `region` (a region id):
    /// those they read (their region's first, then the general ones) and the other regions'.
    /// Every paragraph is theirs when the region is unknown.
    pub fn entry_paragraphs<'a>(
        &self,
        entry: &'a crate::knowledge::FaqEntry,
        region: Option<&str>,
    ) -> (Vec<&'a str>, Vec<&'a str>) {
        let label = region
            .and_then(|r| self.checklist_texts.regions.get(r))
            .map(|r| r.label.as_str());
        let mine = answer::paragraphs_for(&entry.answer, label, &self.region_labels());
        let others = entry
            .answer
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty() && !mine.contains(p))
            .collect();
        (mine, others)
    }

    /// Answers one user message, updating the conversation state. The reply carries
    /// everything the conversation knows of the user's situation (`slots`).
    pub fn handle(&self, state: &mut SessionState, message: &str) -> Reply {
        let mut reply = self.handle_message(state, message);
        reply.slots = state.slots.clone();
        self.no_repeat(state, &mut reply);
        remember(state, &reply);
        reply
    }

    fn handle_message(&self, state: &mut SessionState, message: &str) -> Reply {
        let message = message.trim();
        if message.chars().count() > MAX_MESSAGE_CHARS {
            return Reply::text(format!(
                "您的消息太长了（超过{MAX_MESSAGE_CHARS}字），我读不过来。请用一两句话说明您的问题，例如“已经出院了还能补备案吗”。"
            ));
        }
        if !engine::repair(&self.dialogs, state) {
            let mut reply = self.handle_message(state, message);
            reply.text = format!("（之前的对话进度已失效，我们重新开始。）\n{}", reply.text);
            return reply;
        }
        let reading = self.read(state, message);
        self.route(state, &reading)
    }

    /// The router: decides from the reading and the state.
    fn route(&self, state: &mut SessionState, r: &Reading) -> Reply {
        if let Some(c) = r.control {
            return self.control(state, c);
        }
        if state.active.is_some() && !(r.message.starts_with('/') && r.trigger.is_some()) {
            state.pending.clear();
            return self.in_dialog(state, r);
        }
        if r.basis {
            return self.basis(state);
        }
        if r.more
            && let Some(reply) = self.more(state)
        {
            return reply;
        }
        // a pick among the options of the last clarifying question
        if let Some(id) = &r.pick {
            state.pending.clear();
            return self.entry_reply(state, id, None);
        }
        // a channel's command ("/filing") starts its dialog whatever it looks like
        if r.message.starts_with('/')
            && let Some(dialog) = &r.trigger
        {
            let intro = self.dialogs.get(dialog).map(|d| d.intro.clone());
            state.pending.clear();
            if let Some(turn) = engine::start(&self.dialogs, state, dialog, &BTreeMap::new()) {
                return self.render(state, turn, intro);
            }
        }
        let topic_before = state.topic.clone();
        let learned = self.learn(state, r);
        let asks = r.asks();
        if learned.is_empty()
            && let Some(reply) = self.social(state, r)
        {
            return reply;
        }
        if learned.is_empty()
            && let Some(vague) = r.vague.as_ref().and_then(|v| self.talk.vague_by_id(v))
        {
            let options = vague.options.clone();
            let ask = vague.ask.clone();
            state.pending.clear();
            state.context = vague.words.first().cloned().into_iter().collect();
            return self.clarify(state, &ask, &options);
        }
        // a dialog's trigger ("帮我算能报多少", "刷不上") starts it, unless the message is about
        // care at home, elsewhere, abroad, or clearly about another matter
        let strong_elsewhere = r.topics.own.out_of_scope_score >= STRONG_OUT_OF_SCOPE;
        let weak_out_of_scope =
            matches!(&r.scope, Scope::OutOfScope(t) if t != LOCAL_TOPIC && !strong_elsewhere);
        if let Some(dialog) = &r.trigger
            && (matches!(r.scope, Scope::InScope) || weak_out_of_scope)
        {
            let intro = self.dialogs.get(dialog).map(|d| d.intro.clone());
            state.pending.clear();
            let facts = self.facts_for(dialog, r);
            if let Some(turn) = engine::start(&self.dialogs, state, dialog, &facts) {
                return self.render(state, turn, intro);
            }
        }
        // a follow-up that the conversation answers is read in context first
        let in_context_follow_up = state.topic.is_some()
            && ((r.followup_cue && r.content_chars <= 10) || r.act == Act::FollowUp)
            && !strong_elsewhere
            && r.topics.in_context.as_ref().is_some_and(|c| c.answered);
        if learned.iter().all(|(s, _)| s == "patient")
            && matches!(r.scope, Scope::OutOfScope(_) | Scope::InScope)
            && r.topics.own.out_of_scope_score < WEAK_OUT_OF_SCOPE
            && let Some(reply) = self.changed_detail(state, r, &learned, topic_before.as_deref())
        {
            return reply;
        }
        // a statement mid-conversation that restates what is known ("他户口还在常熟 没迁过去")
        // is taken as the detail it is, not referred elsewhere for its words
        if !asks
            && learned.is_empty()
            && state.topic.is_some()
            && !strong_elsewhere
            && matches!(r.scope, Scope::OutOfScope(_))
        {
            let restated: Vec<(String, String)> = r
                .facts
                .slots
                .iter()
                .filter(|(k, v)| state.slots.get(*k) == Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !restated.is_empty() {
                return self.acknowledge(state, &restated, topic_before.as_deref(), r);
            }
        }
        if asks || learned.is_empty() {
            match &r.scope {
                Scope::OutOfScope(_) if in_context_follow_up => {}
                Scope::OutOfScope(topic) => return self.referral(topic),
                Scope::Local => return self.referral(LOCAL_TOPIC),
                Scope::Elsewhere => return self.elsewhere(state),
                Scope::Abroad => return self.abroad(state),
                Scope::InScope => {}
            }
        }
        if !asks && !learned.is_empty() {
            return self.acknowledge(state, &learned, topic_before.as_deref(), r);
        }
        // "咋整" with the situation known: the plan, unless the words name an entry clearly
        let own_clear =
            r.topics.own.answered && r.topics.own.hits.first().is_some_and(|h| h.score >= 40.0);
        if ((r.act == Act::HowTo && r.confidence >= 0.6 && !own_clear) || self.asks_what_to_do(r))
            && let Some(plan) = self.plan(&state.slots)
        {
            state.topic = plan.faq.as_ref().map(|f| f.id.clone());
            state.pending.clear();
            state.context.clear();
            return plan;
        }
        if let Some(reply) = self.changed_detail(state, r, &learned, topic_before.as_deref()) {
            return reply;
        }
        self.question(state, r, &learned)
    }

    /// A "what do we do" question in general words, with no topic of its own: the personal
    /// plan answers it when the situation is known.
    fn asks_what_to_do(&self, r: &Reading) -> bool {
        r.act == Act::Question
            && !r.continues
            && !r.topics.own.answered
            && r.topics.in_context.as_ref().is_none_or(|c| !c.answered)
            && r.content_chars <= 24
    }

    /// Small talk: a greeting, thanks, an acknowledgement in any words ("晓得啦 谢谢侬"),
    /// a request for a human, abuse, or an answer with nothing to answer.
    fn social(&self, state: &SessionState, r: &Reading) -> Option<Reply> {
        // a message made of small-talk words ("谢谢，再见", "在吗", emoji, stray letters) is small
        // talk, unless it is a question an entry answers
        if let Some(intent) = r.smalltalk.as_deref().and_then(|i| self.talk.intent(i))
            && (!r.topics.own.answered || r.act.is_social())
        {
            return Some(self.smalltalk(state, intent));
        }
        if r.asks() || r.confidence < 0.5 {
            return None;
        }
        let intent = match r.act {
            Act::Closing if r.norm.contains("再见") || r.norm.contains('拜') => "goodbye",
            Act::Closing => "thanks",
            Act::Ack | Act::Answer => "ack",
            Act::Greeting => "greeting",
            Act::Meta if r.norm.contains("人工") || r.norm.contains("真人") => "human",
            Act::Meta => "identity",
            Act::Abuse => "abuse",
            _ => return None,
        };
        let intent = self.talk.intent(intent)?;
        Some(self.smalltalk(state, intent))
    }

    /// A message while a dialog is in progress: an answer to its question, a question of its
    /// own (answered, then the dialog's question is asked again), or something new that ends
    /// the dialog.
    fn in_dialog(&self, state: &mut SessionState, r: &Reading) -> Reply {
        let message = r.message.as_str();
        // the optional question after an outcome: anything that does not answer it ends the
        // dialog and is read as a new message
        let refining = state.active.as_ref().is_some_and(|a| {
            self.dialogs
                .get(&a.dialog)
                .is_some_and(|d| d.is_refinement(&a.step))
        });
        if refining {
            let answers = !message.is_empty()
                && !r.asks()
                && matches!(r.dialog_answer, Some(Parsed::Value(_)));
            if !answers {
                state.active = None;
                let reading = self.read(state, message);
                return self.route(state, &reading);
            }
        }
        if message.is_empty() {
            return match engine::current(&self.dialogs, state) {
                Some(turn) => self.render(state, turn, None),
                // `empty` is a required intent (checked at load)
                None => self
                    .talk
                    .intent("empty")
                    .map_or_else(|| Reply::text(""), |i| self.smalltalk(state, i)),
            };
        }
        // free words that imply the answer: the city of care against the city filed for
        self.derive_in_dialog(state, r);
        // words that answer the question (or state facts the dialog asks for) are an answer
        // unless they are asked as a question ("退休了也要备案吗")
        let fills = state.active.as_ref().is_some_and(|a| {
            self.dialogs.get(&a.dialog).is_some_and(|d| {
                d.steps
                    .iter()
                    .filter_map(|s| s.slot.as_deref())
                    .any(|slot| r.facts.slots.contains_key(slot) && !state.slots.contains_key(slot))
            })
        });
        let answers = matches!(r.dialog_answer, Some(Parsed::Value(_))) || fills;
        let is_question = if answers {
            r.asks_form
        } else {
            r.asks() && !(matches!(r.act, Act::Answer | Act::Statement) && r.confidence >= 0.6)
        };
        // small talk asked as a question ("能转人工吗", "你是机器人吗") is small talk, not a
        // search; "好的"/"是的" stay answers to the dialog's question
        if is_question
            && let Some(intent) = r
                .smalltalk
                .as_deref()
                .filter(|i| *i != "ack")
                .and_then(|i| self.talk.intent(i))
        {
            let said = self.smalltalk(state, intent);
            return self.then_resume(state, said);
        }
        // out of scope in the middle of a dialog: said, and the dialog goes on
        if is_question && let Scope::OutOfScope(topic) = &r.scope {
            let said = self.referral(topic);
            return self.then_resume(state, said);
        }
        let asked = is_question.then(|| self.dialog_search(r));
        if let Some(result) = asked.as_ref().filter(|res| res.answered) {
            // a new question of its own after the last one was also a question: the user
            // has moved on, the dialog ends cleanly
            return self.faq_then_resume(state, result);
        }
        let before = state.clone();
        let parsed = r.dialog_answer.clone().unwrap_or(Parsed::Nothing);
        let dialog = state
            .active
            .as_ref()
            .map(|a| a.dialog.clone())
            .unwrap_or_default();
        let facts = self.facts_for(&dialog, r);
        let Some(turn) = engine::answer(&self.dialogs, state, parsed, &facts) else {
            let result = self.dialog_search(r);
            return self.faq_reply(state, &result);
        };
        if let Turn::NotUnderstood { .. } = turn {
            // thanks or goodbye in the middle of a dialog: the user is done with it
            // small talk ("你是谁", "好的知道了"): answered, then the question is asked again
            let closing = if r.norm.contains("再见") || r.norm.contains('拜') {
                "goodbye"
            } else {
                "thanks"
            };
            let social = r.smalltalk.as_deref().or(match r.act {
                Act::Closing if r.confidence >= 0.6 => Some(closing),
                Act::Ack if r.confidence >= 0.6 => Some("ack"),
                Act::Greeting if r.confidence >= 0.6 => Some("greeting"),
                Act::Abuse if r.confidence >= 0.6 => Some("abuse"),
                _ => None,
            });
            if let Some(intent) = social.and_then(|i| self.talk.intent(i)) {
                *state = before;
                let said = self.smalltalk(state, intent);
                return self.then_resume(state, said);
            }
            // maybe a question in the middle of the dialog: answer it, then ask again
            let result = self.dialog_search(r);
            if result.answered {
                *state = before;
                return self.faq_then_resume(state, &result);
            }
            // a new topic ("算了，我问别的") ends the dialog
            if r.norm.starts_with("算了") || r.norm.starts_with("不用了") {
                *state = before;
                state.active = None;
                return Reply::text(
                    "好的，先不做这个了。您可以接着问别的问题；需要时输入“备案材料清单”或“帮我算能报多少”。",
                );
            }
        }
        self.render(state, turn, None)
    }

    /// The facts of a message a dialog takes: the situation, and the dialog's own questions'
    /// slots ("不清楚" is an answer to the card-failure dialog's question, not a fact for the
    /// estimate).
    fn facts_for(&self, dialog: &str, r: &Reading) -> BTreeMap<String, String> {
        let own: Vec<&str> = self
            .dialogs
            .get(dialog)
            .map(|d| d.steps.iter().filter_map(|s| s.slot.as_deref()).collect())
            .unwrap_or_default();
        r.facts
            .slots
            .iter()
            .filter(|(k, _)| SITUATION_SLOTS.contains(&k.as_str()) || own.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Slots a dialog's question asks that free words imply: whether the city of care is the
    /// city filed for (card failure: "备案选的是南京" … "住的是南京鼓楼医院").
    fn derive_in_dialog(&self, state: &mut SessionState, r: &Reading) {
        let mut notes = state.notes.clone();
        notes.extend(r.facts.notes.clone());
        let asks_area = state.active.as_ref().is_some_and(|a| {
            self.dialogs
                .get(&a.dialog)
                .and_then(|d| d.step(&a.step))
                .and_then(|s| s.slot.as_deref())
                == Some("area_match")
        });
        if asks_area
            && let (Some(filed), Some(care)) = (notes.get("filed_city"), notes.get("care_city"))
        {
            let same = filed.contains(care.as_str()) || care.contains(filed.as_str());
            state.slots.insert("area_match".into(), same.to_string());
        }
        state.notes = notes;
    }

    /// A question asked in the middle of a dialog: on its own words, or, when that answers
    /// nothing, together with the dialog's subject ("要带什么材料" in the filing dialog).
    fn dialog_search(&self, r: &Reading) -> SearchResult {
        let direct = &r.topics.own;
        if direct.out_of_scope.is_some() {
            return direct.clone();
        }
        let Some(within) = &r.topics.in_dialog else {
            return direct.clone();
        };
        // the user's words must point there themselves ("蓝色的" gets nothing from the title)
        let plausible = |id: &str| {
            direct
                .hits
                .iter()
                .any(|h| h.id == id && h.score >= 0.5 * SUGGESTION_MIN_SCORE)
        };
        match within.hits.first() {
            Some(top) if within.answered && plausible(&top.id) => within.clone(),
            _ => direct.clone(),
        }
    }

    /// An FAQ answer in the middle of a dialog, followed by the dialog's current question.
    fn faq_then_resume(&self, state: &mut SessionState, result: &SearchResult) -> Reply {
        let asides = state.active.as_ref().map_or(0, |a| a.asides);
        let mut faq = self.faq_reply(state, result);
        if asides >= 1 {
            // a second question of the user's own in a row: they have moved on, the dialog
            // ends cleanly (and can be started again)
            let title = state
                .active
                .take()
                .and_then(|a| self.dialogs.get(&a.dialog).map(|d| d.title.clone()))
                .unwrap_or_default();
            faq.text.push_str(&format!(
                "\n\n（刚才的“{title}”先放一放，需要时再跟我说。）"
            ));
            return faq;
        }
        if let Some(a) = state.active.as_mut() {
            a.asides += 1;
        }
        self.then_resume(state, faq)
    }

    /// `said` (an FAQ answer or small talk inside a dialog), then the dialog's current
    /// question. The reply keeps what was said first as its kind (`faq` with its entry,
    /// `smalltalk`, `out_of_scope`…) and the dialog's `asking` and choices, so a channel shows
    /// both and the next message still answers the dialog.
    fn then_resume(&self, state: &mut SessionState, said: Reply) -> Reply {
        match engine::current(&self.dialogs, state).map(|t| self.render(state, t, None)) {
            Some(mut ask) => {
                ask.text = format!("{}\n\n——\n我们接着刚才的问题：{}", said.text, ask.text);
                ask.faq = said.faq;
                ask.kind = said.kind;
                ask.unanswered = said.unanswered;
                ask
            }
            None => said,
        }
    }

    /// A small-talk reply, for the user's region when it is known.
    fn smalltalk(&self, state: &SessionState, intent: &crate::talk::Intent) -> Reply {
        let region = state.slots.get("insured_region").map(String::as_str);
        Reply::text(intent.reply(region, self.knowledge.hotline()))
    }

    /// Remembers what the message states (see [`Assistant::apply_facts`]); the changed slots.
    fn learn(&self, state: &mut SessionState, r: &Reading) -> Vec<(String, String)> {
        let corrects = r.facts.corrects || r.act == Act::Correction;
        self.apply_facts(state, &r.facts, corrects && !r.continues)
    }

    /// Applies a message's facts to the session: a new person ("那我自己是苏州医保", after the
    /// story of a parent) starts the case afresh; every stated slot replaces what was known
    /// ("不对，是张家港的"); a person insured elsewhere has no place of care of ours' away from
    /// home and vice versa. When `forget_topic` and a slot changed, follow-ups are read
    /// against the new situation, not the old topic. Returns the slots that changed.
    fn apply_facts(
        &self,
        state: &mut SessionState,
        facts: &crate::understanding::Facts,
        forget_topic: bool,
    ) -> Vec<(String, String)> {
        let new = &facts.slots;
        let new_person = match (new.get("patient"), state.slots.get("patient")) {
            (Some(p), Some(q)) => p != q,
            _ => false,
        };
        let tells_case = new
            .keys()
            .any(|k| CASE_SLOTS.contains(&k.as_str()) && k != "total");
        if new_person && tells_case {
            for s in CASE_SLOTS {
                state.slots.remove(s);
            }
            state.notes.clear();
            state.topic = None;
        }
        let mut changed = Vec::new();
        // the situation, not a dialog's own diagnostic slots (the card_failure questions):
        // those are taken only by their dialog
        for (slot, value) in new
            .iter()
            .filter(|(s, _)| SITUATION_SLOTS.contains(&s.as_str()))
        {
            if state.slots.get(slot) != Some(value) {
                if state.slots.insert(slot.clone(), value.clone()).is_some() && forget_topic {
                    state.topic = None;
                }
                changed.push((slot.clone(), value.clone()));
            }
        }
        // who is insured where decides which place-of-care slot applies
        match new.get("insured_region").map(String::as_str) {
            Some("other")
                if new.contains_key("care_place") || state.slots.contains_key("care_place") =>
            {
                state.slots.remove("care_location");
            }
            Some("other") | None => {}
            Some(_) => {
                state.slots.remove("insured_place");
            }
        }
        // the latest place of care is where the person is treated ("对了，我在苏州本地社区医院
        // 看门诊" after a question about 上海)
        crate::understanding::drop_replaced_care(&mut state.slots, new);
        for (k, v) in &facts.notes {
            state.notes.insert(k.clone(), v.clone());
        }
        state.cross_region |= matches!(
            Direction::of(&state.slots),
            Direction::Outbound | Direction::Inbound | Direction::Within
        );
        for (slot, words) in &facts.approximate {
            state.notes.insert(
                format!("approx.{slot}"),
                crate::text::mask_personal_numbers(words),
            );
        }
        // the order a person would tell it in: who, where, what happened
        let rank = |slot: &str| {
            SLOT_ORDER
                .iter()
                .position(|s| *s == slot)
                .unwrap_or(SLOT_ORDER.len())
        };
        changed.sort_by_key(|(slot, _)| rank(slot));
        changed
    }

    /// A question outside a dialog: an FAQ answer (read against the current topic when it
    /// continues it), a clarifying question, an out-of-scope referral, an acknowledgement of
    /// the facts the message gave, or an honest "I don't know".
    fn question(
        &self,
        state: &mut SessionState,
        r: &Reading,
        learned: &[(String, String)],
    ) -> Reply {
        let pending = std::mem::take(&mut state.pending);
        let direct = &r.topics.own;
        let has_context = r.topics.in_context.is_some();
        // a keyword query that answers itself is not read in context ("出院了 补备案")
        let keywords_answer = r.act == Act::Keywords && direct.answered;
        let continues = has_context
            && !keywords_answer
            && (r.continues || r.act == Act::FollowUp || !pending.is_empty());
        // an unanswered question with some domain words may still make sense in context;
        // one without any ("今天股票会涨吗") is never bent toward the topic
        let unknown = !direct.answered
            && direct.out_of_scope.is_none()
            && direct
                .hits
                .first()
                .is_some_and(|h| h.score >= SUGGESTION_MIN_SCORE);
        // a clear out-of-scope question in the middle of a conversation ("顺便问下，他养老金
        // 怎么少了两百多") stays out of scope: the topic does not bend it
        let says_enough = matches!(r.scope, Scope::OutOfScope(_));
        if let Some(within) = r.topics.in_context.as_ref()
            && !says_enough
            && (continues || (unknown && learned.is_empty()))
        {
            // read against the conversation: the user's own words win when their answer is
            // also plausible in context; otherwise the reading in context does, preferring
            // the options just offered, then the topic's family
            let near_top = within.hits.first().map_or(0.0, |h| 0.75 * h.score);
            if let Some(id) = within
                .hits
                .iter()
                .filter(|h| h.score >= near_top)
                .map(|h| &h.id)
                .find(|id| pending.contains(id))
                && (!direct.answered || continues)
            {
                return self.entry_reply(state, &id.clone(), None);
            }
            // the message's own best reading, also when only the want of a cross-region word
            // kept it from answering (the conversation supplies that)
            let own = direct.hits.first().filter(|h| {
                direct.answered
                    || (direct.out_of_scope.is_none() && h.score >= SUGGESTION_MIN_SCORE)
            });
            // a full question whose own reading is unmistakable and has nothing to do with
            // what the context points at is a new question; short ones are read in context
            if let Some(own) = own
                && r.content_chars >= SELF_CONTAINED_CHARS
                && direct
                    .hits
                    .get(1)
                    .is_none_or(|second| own.score >= CLEAR_LEAD * second.score)
                && within
                    .hits
                    .first()
                    .is_some_and(|top| !direct.hits.iter().any(|h| h.id == top.id))
            {
                return self.entry_reply(state, &own.id.clone(), None);
            }
            // a short follow-up ("在哪儿办" after the materials for filing) stays with the
            // topic's family when the conversation reads it there at least as well
            if r.content_chars <= FOLLOW_UP_CHARS
                && within.answered
                && let Some(h) = {
                    let family = self.family(state);
                    let top = within.hits[0].score;
                    within
                        .hits
                        .iter()
                        .take(3)
                        .find(|h| family.contains(&h.id) && h.score >= top)
                        .cloned()
                }
            {
                return self.entry_reply(state, &h.id, None);
            }
            if let Some(own) = own
                && within
                    .hits
                    .iter()
                    .any(|h| h.id == own.id && h.score >= 0.5 * within.hits[0].score)
            {
                return self.entry_reply(state, &own.id.clone(), None);
            }
            // "锦丰镇的呢" after the contacts: the topic itself, when the context still
            // points there
            if let Some(topic) = state.topic.clone()
                && (r.act == Act::FollowUp || r.followup_cue)
                && within
                    .hits
                    .iter()
                    .any(|h| h.id == topic && h.score >= 0.6 * within.hits[0].score)
            {
                return self.entry_reply(state, &topic, None);
            }
            if within.answered {
                let family = self.family(state);
                let top = within.hits[0].score;
                let id = within
                    .hits
                    .iter()
                    .take(3)
                    .find(|h| family.contains(&h.id) && h.score >= 0.85 * top)
                    .unwrap_or(&within.hits[0])
                    .id
                    .clone();
                return self.entry_reply(state, &id, None);
            }
        }
        if direct.answered {
            let hits = &direct.hits;
            // too close to call on a short message: ask instead of guessing
            if hits.len() > 1
                && r.message.chars().count() <= 10
                && hits[1].score >= 0.95 * hits[0].score
            {
                let options: Vec<String> = hits
                    .iter()
                    .take(crate::talk::MAX_OPTIONS)
                    .filter(|h| h.score >= 0.8 * hits[0].score)
                    .map(|h| h.id.clone())
                    .collect();
                // a follow-up ("那要多久") is read together with the unclear message
                state.context = vec![crate::text::mask_personal_numbers(&r.message)];
                return self.clarify(state, "您想问的是哪一个？", &options);
            }
            let mut reply = self.entry_reply(state, &hits[0].id, None);
            // a second question in the same message, answered by another entry: offered
            if let Some(also) = direct.also.as_ref().filter(|h| h.id != hits[0].id)
                && let Some(entry) = self.knowledge.faq(&also.id)
            {
                reply.text.push_str(&format!(
                    "\n\n您还问到另一个问题，是不是想了解：{}（回复“1”查看）",
                    entry.question
                ));
                reply.options = vec![FaqOption {
                    id: entry.id.clone(),
                    question: entry.question.clone(),
                }];
                state.pending = vec![entry.id.clone()];
            }
            return reply;
        }
        // a "what now" question without a topic of its own, the situation known
        if r.asks()
            && let Some(plan) = self.plan(&state.slots)
        {
            state.topic = plan.faq.as_ref().map(|f| f.id.clone());
            return plan;
        }
        if !learned.is_empty() && !continues && !r.asks() {
            return self.acknowledge(state, learned, None, r);
        }
        self.faq_reply(state, direct)
    }

    /// A follow-up that changes one detail of the situation ("要是已经备了案呢", "那转诊的
    /// 呢", "那北京呢"): the current topic, answered for the changed situation; when the
    /// answer does not change, it says so.
    fn changed_detail(
        &self,
        state: &mut SessionState,
        r: &Reading,
        learned: &[(String, String)],
        topic: Option<&str>,
    ) -> Option<Reply> {
        let topic = topic?;
        let sure_follow_up = r.act == Act::FollowUp && r.confidence >= 0.5;
        let follows = sure_follow_up || (r.followup_cue && r.content_chars <= 10);
        // a follow-up with nothing new ("那给我婆婆用呢" after "能拿我老公的卡配药吗") whose
        // own words answer nothing: the topic's answer holds for it too
        let bare = learned.is_empty()
            && sure_follow_up
            && !r.topics.own.answered
            && r.topics.own.out_of_scope_score < WEAK_OUT_OF_SCOPE;
        if !follows || (learned.is_empty() && !bare) {
            return None;
        }
        // the message's own reading names another entry: not this topic's follow-up, unless
        // the message is only the changed detail ("那转诊的呢": the ratio for a referral, not
        // what a referral is)
        let only_the_detail = r.content_chars <= FOLLOW_UP_CHARS && !learned.is_empty();
        if !only_the_detail
            && r.topics
                .own
                .hits
                .first()
                .is_some_and(|h| h.id != topic && (r.topics.own.answered || h.score >= 30.0))
        {
            return None;
        }
        let entry = self.knowledge.faq(topic)?;
        let before = state
            .last
            .as_ref()
            .map(|l| l.slots.clone())
            .unwrap_or_default();
        let (old_lead, _) = answer::lead(entry, &before);
        let (new_lead, _) = answer::lead(entry, &state.slots);
        let changed = self.understood(learned).join("；");
        let said = if changed.is_empty() {
            String::new()
        } else {
            format!("按您说的（{changed}），")
        };
        if old_lead != new_lead {
            // the topic's own answer changes with the detail: that is the answer
            let mut reply = self.entry_reply(state, &entry.id.clone(), None);
            reply.text = format!("{said}{}", reply.text);
            return Some(reply);
        }
        // the changed detail makes another entry the one for the situation ("那要是来不及备，
        // 先住进去了呢" after the filing materials: the backfill before discharge)
        let fitting = r
            .topics
            .own
            .hits
            .iter()
            .chain(r.topics.in_context.iter().flat_map(|c| c.hits.iter()))
            .filter(|h| h.id != topic && h.score >= SUGGESTION_MIN_SCORE)
            .find(|h| {
                self.knowledge.faq(&h.id).is_some_and(|e| {
                    !e.fits.is_empty()
                        && e.fits
                            .iter()
                            .all(|(k, vs)| state.slots.get(k).is_some_and(|v| vs.contains(v)))
                        && learned.iter().any(|(s, _)| e.fits.contains_key(s))
                })
            })
            .map(|h| h.id.clone());
        if let Some(id) = fitting {
            let mut reply = self.entry_reply(state, &id, None);
            reply.text = format!("{said}{}", reply.text);
            return Some(reply);
        }
        let mut reply = self.entry_reply(state, &entry.id.clone(), None);
        reply.text = format!(
            "{said}这一点和刚才一样：{new_lead}\n\n来源：{}",
            self.cite_brief(&entry.sources)
        );
        Some(reply)
    }

    /// The current topic and its related entries.
    fn family(&self, state: &SessionState) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        if let Some(entry) = state.topic.as_deref().and_then(|t| self.knowledge.faq(t)) {
            ids.push(entry.id.clone());
            ids.extend(entry.related.iter().cloned());
        }
        ids
    }

    /// A clarifying question: which of `options` (FAQ ids, best first) is meant.
    fn clarify(&self, state: &mut SessionState, ask: &str, options: &[String]) -> Reply {
        let options: Vec<FaqOption> = options
            .iter()
            .take(crate::talk::MAX_OPTIONS)
            .filter_map(|id| self.knowledge.faq(id))
            .map(|e| FaqOption {
                id: e.id.clone(),
                question: e.question.clone(),
            })
            .collect();
        state.pending = options.iter().map(|o| o.id.clone()).collect();
        let mut reply = Reply::of(
            ReplyKind::Clarify,
            format!(
                "{ask}请回复序号，或者直接说出您的问题。都不是的话，可以换个说法再问，或输入“转人工”。"
            ),
        );
        reply.options = options;
        reply
    }

    /// "参保地：张家港", "就医地：上海"… for the slots understood; someone insured elsewhere
    /// as "参保地：外地（河南周口）".
    fn understood(&self, learned: &[(String, String)]) -> Vec<String> {
        let place = learned
            .iter()
            .find(|(s, _)| s == "insured_place")
            .map(|(_, v)| v.as_str());
        learned
            .iter()
            .filter(|(slot, _)| slot != "insured_place")
            .filter_map(|(slot, value)| {
                let def = self.dialogs.slots.get(slot)?;
                let label = match (slot.as_str(), value.as_str()) {
                    ("insured_region", "other") => match place {
                        Some(p) => format!("外地（{p}）"),
                        None => "外地（不在苏州、张家港）".to_string(),
                    },
                    (s, v) if def.kind == SlotKind::Money => {
                        format!("{}元", self.dialogs.slots.label(s, v))
                    }
                    (s, v) => self.dialogs.slots.label(s, v),
                };
                Some(format!("{}：{label}", def.title))
            })
            .collect()
    }

    /// What the assistant understood of a message that only gave facts, and what it means for
    /// the person: the current topic's answer for the new situation (after a correction or a
    /// change of region), or the next step the situation allows (a plan, an estimate).
    fn acknowledge(
        &self,
        state: &mut SessionState,
        learned: &[(String, String)],
        topic: Option<&str>,
        r: &Reading,
    ) -> Reply {
        let mut understood = self.understood(learned);
        for (slot, _) in learned {
            if let Some(words) = state.notes.get(&format!("approx.{slot}")) {
                understood.push(format!("（“{words}”按约数记）"));
            }
        }
        // a follow-up such as "那怎么办" is read together with what was just told (masked:
        // the session state is stored)
        state.context = vec![crate::text::mask_personal_numbers(&r.message)];
        let mut text = if understood.is_empty() {
            "好的，记下了。".to_string()
        } else {
            format!("好的，记下了（{}）。", understood.join("；"))
        };
        let situation_changed = learned.iter().any(|(s, _)| {
            matches!(
                s.as_str(),
                "insured_region"
                    | "care_location"
                    | "care_place"
                    | "filing_type"
                    | "filed"
                    | "stage"
            )
        });
        let topic = topic.or(state.topic.as_deref());
        let direction = Direction::of(&state.slots);
        // facts told after a question: the question's answer for the situation now known
        // ("我们是张家港的医保" after "在成都急诊能直接结算吗")
        // (after a correction only when the topic's own answer says something for the new
        // situation: "我说错了，我在上海住" may make another entry the one that answers)
        let corrects = r.facts.corrects || r.act == Act::Correction;
        if situation_changed && let Some(entry) = topic.and_then(|t| self.knowledge.faq(t)) {
            let (lead, personal) = answer::lead(entry, &state.slots);
            if corrects && personal {
                text.push_str(&format!(
                    "\n按您的情况，关于刚才的问题：{lead}\n\n来源：{}",
                    self.cite_brief(&entry.sources)
                ));
                let mut reply = Reply::of(ReplyKind::Faq, text);
                reply.faq = Some(FaqRef {
                    id: entry.id.clone(),
                });
                state.topic = Some(entry.id.clone());
                return reply;
            }
            if !corrects {
                let id = entry.id.clone();
                let prefix = format!("{text}\n按您的情况，关于刚才的问题：\n");
                return self.entry_reply(state, &id, Some(&prefix));
            }
        }
        if let Some(next) = self.next_step(&state.slots) {
            text.push('\n');
            text.push_str(&next);
            return Reply::text(text);
        }
        match direction {
            Direction::Inbound => text.push_str(
                "\n您是外地参保、在苏州或张家港看病：备案要向您的参保地医保经办机构办理。您可以接着问具体问题，比如“在这边住院能直接刷卡吗”。",
            ),
            _ if self.plan_ready(&state.slots) => text.push_str(
                "\n您可以接着问具体问题；想知道接下来要办什么，问我“怎么办”，我按您的情况一步步列出来。",
            ),
            _ => text.push_str(
                "\n您可以接着问具体问题；需要的话，输入“备案材料清单”我按您的情况列材料，输入“帮我算能报多少”估算报销金额。",
            ),
        }
        Reply::text(text)
    }

    /// The label of the user's insured region (苏州, 张家港) when it is one of ours.
    fn region_label(&self, state: &SessionState) -> Option<String> {
        state
            .slots
            .get("insured_region")
            .and_then(|r| self.checklist_texts.regions.get(r))
            .map(|r| r.label.clone())
    }

    fn region_labels(&self) -> Vec<String> {
        self.checklist_texts
            .regions
            .iter()
            .map(|r| r.label.clone())
            .collect()
    }

    /// Whom the user's region says to ask: its hotline and counters from its region file, or
    /// the insured region's agency in general.
    fn region_contact(&self, state: &SessionState) -> String {
        let region = state
            .slots
            .get("insured_region")
            .and_then(|r| self.checklist_texts.regions.get(r));
        match region {
            Some(r) if r.hotline.is_some() || r.counters.is_some() => {
                let mut parts = Vec::new();
                if let Some(h) = &r.hotline {
                    parts.push(format!("{}医保咨询电话 {h}", r.name));
                }
                if let Some(c) = &r.counters {
                    parts.push(format!("窗口：{c}"));
                }
                parts.join("；")
            }
            _ => "您的参保地医保经办机构".to_string(),
        }
    }

    /// The answer of entry `id` for this person: the lead for their situation, the details
    /// for their region cut to one screen, brief sources; the entry becomes the topic.
    /// `prefix` goes before the lead.
    fn entry_reply(&self, state: &mut SessionState, id: &str, prefix: Option<&str>) -> Reply {
        let (id, redirected) = self.for_direction(state, id);
        let note;
        let prefix = match (&redirected, prefix) {
            (Some(n), None) => {
                note = n.clone();
                Some(note.as_str())
            }
            (_, p) => p,
        };
        let Some(entry) = self.knowledge.faq(&id) else {
            // ids come from the index or the clarify data, both validated against the
            // knowledge; an unknown one gets the honest "I don't know"
            let nothing = self.search.search("", 1);
            return self.faq_reply(state, &nothing);
        };
        state.topic = Some(entry.id.clone());
        state.pending.clear();
        state.context.clear();
        state.cross_region |= !entry.general;
        let (lead, _) = answer::lead(entry, &state.slots);
        let region = self.region_label(state);
        let labels = self.region_labels();
        let paragraphs = answer::paragraphs_for(&entry.answer, region.as_deref(), &labels);
        let (body, cut) = answer::fit(lead, &paragraphs);
        let mut text = format!("{}{body}", prefix.unwrap_or_default());
        if cut {
            text.push('\n');
            text.push_str(answer::MORE_HINT);
        }
        let mut reply = Reply::of(
            ReplyKind::Faq,
            format!("{text}\n\n来源：{}", self.cite_brief(&entry.sources)),
        );
        reply.faq = Some(FaqRef {
            id: entry.id.clone(),
        });
        reply
    }

    /// The entry for the person's direction: someone insured elsewhere who is treated with us
    /// gets the entry for people coming to their place of care instead of one written for
    /// people of ours going away (and the other way round), with a line that says why.
    fn for_direction(&self, state: &SessionState, id: &str) -> (String, Option<String>) {
        let Some(entry) = self.knowledge.faq(id) else {
            return (id.to_string(), None);
        };
        let want = match Direction::of(&state.slots) {
            Direction::Inbound => "inbound",
            Direction::Outbound | Direction::Within => "outbound",
            _ => return (id.to_string(), None),
        };
        match entry.direction.as_deref() {
            Some(d) if d != want && want == "inbound" => {
                let place = state.slots.get("care_place").map(String::as_str);
                let inbound = self
                    .knowledge
                    .faqs
                    .iter()
                    .filter(|e| e.direction.as_deref() == Some("inbound"))
                    .find(|e| Some(e.region.as_str()) == place)
                    .or_else(|| {
                        self.knowledge
                            .faqs
                            .iter()
                            .find(|e| e.direction.as_deref() == Some("inbound"))
                    });
                match inbound {
                    Some(e) => {
                        let who = state
                            .slots
                            .get("insured_place")
                            .map_or("外地".to_string(), |p| p.clone());
                        (
                            e.id.clone(),
                            Some(format!(
                                "您是{who}参保：备案、材料和报销都按参保地的规定办，要向参保地医保经办机构办理。在我们这边看病：\n"
                            )),
                        )
                    }
                    None => (id.to_string(), None),
                }
            }
            _ => (id.to_string(), None),
        }
    }

    /// "详细": the whole answer of the current topic, the user's region first.
    fn more(&self, state: &SessionState) -> Option<Reply> {
        let entry = self.knowledge.faq(state.topic.as_deref()?)?;
        let region = self.region_label(state);
        let text = answer::full(&entry.answer, region.as_deref(), &self.region_labels());
        let mut sources = Vec::new();
        for s in &entry.sources {
            sources.push(self.knowledge.cite(s));
        }
        let mut reply = Reply::of(
            ReplyKind::Faq,
            format!(
                "{}（完整解答）\n{text}\n\n来源：{}",
                entry.question,
                sources.join("；")
            ),
        );
        reply.faq = Some(FaqRef {
            id: entry.id.clone(),
        });
        Some(reply)
    }

    /// "详细依据": every rule the last estimate used (chat shows a summary).
    fn basis(&self, state: &SessionState) -> Reply {
        match self.estimate_for(&state.slots) {
            Ok(est) => {
                let mut t = String::from("这次估算用到的全部依据：\n");
                for (n, rule) in est.rules.iter().enumerate() {
                    t.push_str(&format!("{}. {rule}\n", n + 1));
                }
                t.push_str(&est.disclaimer);
                let mut r = Reply::of(ReplyKind::Dialog, t);
                r.estimate = serde_json::to_value(&est).ok();
                r.dialog = Some("estimate".into());
                r
            }
            Err(_) => {
                Reply::text("现在还没有可以展示依据的估算。输入“帮我算能报多少”，我先帮您估算。")
            }
        }
    }

    /// 重新开始 / 退出 / 返回.
    fn control(&self, state: &mut SessionState, command: Control) -> Reply {
        match command {
            Control::Restart => match engine::restart(&self.dialogs, state) {
                Some(turn) => self.render(state, turn, Some("好的，我们从头开始。".into())),
                None => {
                    *state = SessionState::new();
                    self.welcome()
                }
            },
            Control::Exit => {
                let was = state.active.take();
                Reply::text(if was.is_some() {
                    "好的，已退出当前问答。您可以继续提问，或输入“备案材料清单”“帮我算能报多少”重新开始。"
                } else {
                    "好的。还有其他异地就医的问题，随时问我。"
                })
            }
            Control::Back => match engine::back(&self.dialogs, state) {
                Some(turn) => self.render(state, turn, None),
                None => {
                    Reply::text("现在没有进行中的问答，没有可以返回的上一步。请直接输入您的问题。")
                }
            },
        }
    }

    /// An out-of-scope topic's referral.
    fn referral(&self, topic: &str) -> Reply {
        let referral = self
            .knowledge
            .out_of_scope_topic(topic)
            .map_or("请咨询相关部门。", |t| t.referral.as_str());
        let mut reply = Reply::of(
            ReplyKind::OutOfScope,
            format!(
                "这个问题不属于异地就医（备案、直接结算、零星报销）的范围，我不想给您不准确的答复。\n{referral}"
            ),
        );
        reply.unanswered = true;
        reply
    }

    /// Care abroad (or in Hong Kong, Macao, Taiwan): not in what these rules cover.
    fn abroad(&self, state: &SessionState) -> Reply {
        let ask = if state
            .slots
            .get("insured_region")
            .is_some_and(|r| self.checklist_texts.regions.get(r).is_some())
        {
            self.region_contact(state)
        } else {
            format!(
                "张家港市医疗保障局咨询电话 {}；其他地区参保的，请咨询参保地医保经办机构",
                self.knowledge.hotline()
            )
        };
        let mut reply = Reply::of(
            ReplyKind::Unanswered,
            format!(
                "在境外（包括港澳台）看病不属于国内的异地就医备案和直接结算；回来能不能报、怎么报，我的资料里没有写，不想给您不准确的答复。请咨询：{ask}。"
            ),
        );
        reply.unanswered = true;
        reply
    }

    /// Someone insured elsewhere asking about care elsewhere: their own region's matter.
    fn elsewhere(&self, state: &SessionState) -> Reply {
        let place = state
            .slots
            .get("insured_place")
            .map_or("外地", String::as_str);
        let mut reply = Reply::of(
            ReplyKind::OutOfScope,
            format!(
                "这是{place}参保的待遇问题：报销比例、备案和结算都按参保地的规定办，我这里只有苏州、张家港参保人员和来苏州、张家港看病的资料，不想给您不准确的答复。请咨询{place}的医保经办机构（可拨打当地的12345政务服务热线或医保咨询电话问到）。"
            ),
        );
        reply.unanswered = true;
        reply
    }

    /// Renders a search result: the answer with its sources, an out-of-scope referral, or an
    /// honest "I don't know" with the hotline and suggestions.
    fn faq_reply(&self, state: &mut SessionState, result: &SearchResult) -> Reply {
        if result.answered
            && let Some(hit) = result.hits.first()
        {
            return self.entry_reply(state, &hit.id.clone(), None);
        }
        if let Some(topic) = result.out_of_scope.as_deref() {
            return self.referral(topic);
        }
        // whom to ask: the user's own region when it is known, else both possibilities
        let ask = if state
            .slots
            .get("insured_region")
            .is_some_and(|r| self.checklist_texts.regions.get(r).is_some())
        {
            format!("{}。", self.region_contact(state))
        } else {
            format!(
                "张家港市医疗保障局咨询电话 {}；其他地区参保的，请咨询参保地医保经办机构。",
                self.knowledge.hotline()
            )
        };
        let mut text =
            format!("抱歉，这个问题我还不知道准确答案，不想给您不准确的答复。建议咨询人工：{ask}");
        let suggestions: Vec<&crate::search::Hit> = result
            .hits
            .iter()
            .filter(|h| h.score >= SUGGESTION_MIN_SCORE)
            .take(crate::talk::MAX_OPTIONS)
            .collect();
        let mut reply = Reply::of(ReplyKind::Unanswered, String::new());
        if !suggestions.is_empty() && result.out_of_scope_score < result.hits[0].score {
            text.push_str("\n\n如果您想问的是下面的问题，回复序号即可：");
            for (n, h) in suggestions.iter().enumerate() {
                text.push_str(&format!("\n{}. {}", n + 1, h.question));
            }
            state.pending = suggestions.iter().map(|h| h.id.clone()).collect();
        }
        reply.text = text;
        reply.unanswered = true;
        reply
    }

    /// The same reply never goes out twice in a row: an FAQ answer that would repeat says so
    /// in a line and offers the entries next to it; other replies say that they repeat.
    fn no_repeat(&self, state: &mut SessionState, reply: &mut Reply) {
        let Some(last) = &state.last else {
            return;
        };
        if last.digest != digest(&reply.text) {
            return;
        }
        match reply.faq.as_ref().and_then(|f| self.knowledge.faq(&f.id)) {
            Some(entry) if reply.kind == ReplyKind::Faq => {
                let (lead, _) = answer::lead(entry, &state.slots);
                let related: Vec<&crate::knowledge::FaqEntry> = entry
                    .related
                    .iter()
                    .filter_map(|id| self.knowledge.faq(id))
                    .take(crate::talk::MAX_OPTIONS)
                    .collect();
                let mut text = format!("这一点和刚才说的一样：{lead}");
                if !related.is_empty() {
                    // the options are shown by the channel (numbered, or as buttons)
                    text.push_str("\n您是不是想问下面的问题？回复序号即可。");
                    state.pending = related.iter().map(|e| e.id.clone()).collect();
                    reply.options = related
                        .iter()
                        .map(|e| FaqOption {
                            id: e.id.clone(),
                            question: e.question.clone(),
                        })
                        .collect();
                }
                reply.text = text;
            }
            _ if reply.kind == ReplyKind::Smalltalk => {
                reply.text = format!("嗯，{}", reply.text);
            }
            _ if reply.kind == ReplyKind::Dialog => {
                reply.text = format!("还需要您回答这个问题。{}", reply.text);
            }
            _ => {
                reply.text = format!("（和上一条回复相同）{}", reply.text);
            }
        }
    }

    /// Brief citations for chat ("苏州医保指南；江苏省规程第八条"); the full titles are in
    /// the API's FAQ entry and the console.
    fn cite_brief(&self, sources: &[String]) -> String {
        // one document once, its numbered places joined: "江苏省异地就医经办规程第三条、第十八条"
        let mut docs: Vec<(String, Vec<String>)> = Vec::new();
        for s in sources {
            let (name, place) = self.knowledge.cite_short(s);
            let at = match docs.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    docs.push((name, Vec::new()));
                    docs.len() - 1
                }
            };
            if let Some(p) = place
                && !docs[at].1.contains(&p)
            {
                docs[at].1.push(p);
            }
        }
        docs.into_iter()
            .map(|(name, places)| format!("{name}{}", places.join("、")))
            .collect::<Vec<_>>()
            .join("；")
    }

    fn render(&self, state: &mut SessionState, turn: Turn, intro: Option<String>) -> Reply {
        let prefix = |text: String| match &intro {
            Some(i) => format!("{i}\n{text}"),
            None => text,
        };
        match turn {
            Turn::Ask {
                dialog,
                step,
                slot,
                question,
                note,
            } => {
                if let Some(reason) = self.cannot_estimate(&dialog, state) {
                    // no need to ask the remaining questions: say so now
                    state.active = None;
                    let text = if state
                        .slots
                        .get("insured_region")
                        .is_some_and(|r| r == "other")
                    {
                        reason
                    } else {
                        format!(
                            "抱歉，这种情况我暂时没法给出估算：{reason}\n具体报销金额请咨询您的参保地医保经办机构。"
                        )
                    };
                    let mut r = Reply::of(ReplyKind::Dialog, prefix(text));
                    r.dialog = Some(dialog);
                    r.unanswered = true;
                    return r;
                }
                let text = match note {
                    Some(n) => format!("{n}\n{question}"),
                    None => question,
                };
                self.ask(&dialog, &step, &slot, prefix(text))
            }
            Turn::NotUnderstood {
                dialog, step, slot, ..
            } => {
                let question = self
                    .dialogs
                    .get(&dialog)
                    .and_then(|d| d.step(&step))
                    .map(|s| s.ask.clone())
                    .unwrap_or_default();
                let kind = self.dialogs.slots.get(&slot).map(|d| d.kind);
                let hint = match kind {
                    Some(SlotKind::Money) => {
                        "没看懂这个金额。请直接输入数字，例如“50000”“5万”或“五万元”。"
                    }
                    _ => {
                        "抱歉，没能理解您的回答。请从下面的选项中选一个（也可以直接输入选项文字）。"
                    }
                };
                self.ask(&dialog, &step, &slot, format!("{hint}\n{question}"))
            }
            Turn::GaveUp { .. } => {
                let mut r = Reply::of(
                    ReplyKind::Unanswered,
                    format!(
                        "抱歉，我好像没能理解您的情况。建议直接咨询人工：张家港市医疗保障局咨询电话 {}；\
                     其他地区参保的，请咨询参保地医保经办机构。您也可以继续向我提问。",
                        self.knowledge.hotline()
                    ),
                );
                r.unanswered = true;
                r
            }
            Turn::Done {
                dialog,
                outcome,
                then,
            } => {
                let mut reply = self.outcome(state, &outcome);
                reply.kind = ReplyKind::Dialog;
                reply.text = prefix(reply.text);
                if let Some(then) = then {
                    // the optional question that can refine the outcome, asked with it
                    let ask = self.ask(&dialog, &then.step, &then.slot, String::new());
                    reply.text = format!("{}\n\n{}", reply.text, then.question);
                    reply.asking = ask.asking;
                    reply.choices = ask.choices;
                }
                reply.dialog = Some(dialog);
                reply
            }
        }
    }

    /// In a dialog that ends in an estimate: the reason no estimate can come out of the
    /// slots known so far (the region's policy has no parameters, or none for the visit),
    /// so that the user is not asked questions in vain.
    fn cannot_estimate(&self, dialog: &str, state: &SessionState) -> Option<String> {
        let d = self.dialogs.get(dialog)?;
        let ends_in = |o: Outcome| d.steps.iter().any(|s| s.outcome == Some(o.clone()));
        let region = state.slots.get("insured_region")?;
        // someone insured elsewhere: their region's rules, not ours
        if region == "other" && (ends_in(Outcome::Estimate) || ends_in(Outcome::Checklist)) {
            let place = state
                .slots
                .get("insured_place")
                .map_or("外地", String::as_str);
            return Some(format!(
                "您是{place}参保，备案材料、报销比例和起付线都按参保地的规定，我这里只有苏州、张家港参保人员的规则。请咨询您的参保地医保经办机构；在苏州、张家港看病时，先在参保地备案（就医地选苏州或张家港），再持卡到联网医院直接结算。"
            ));
        }
        if !ends_in(Outcome::Estimate) {
            return None;
        }
        let policy_id = self
            .checklist_texts
            .regions
            .get(region)
            .map_or(region.as_str(), |r| r.policy.as_str());
        let Some(policy) = self.policies.get(policy_id) else {
            return Some("还没有这个参保地的报销参数。".into());
        };
        let no_params = policy.inpatient.is_none() && policy.outpatient.is_none();
        let visit_missing = match state.slots.get("visit").map(String::as_str) {
            Some("inpatient") => policy.inpatient.is_none(),
            Some("outpatient") => policy.outpatient.is_none(),
            _ => false,
        };
        if no_params || visit_missing {
            let what = if no_params {
                "报销参数"
            } else {
                "这类费用的报销参数"
            };
            return Some(
                policy
                    .note
                    .clone()
                    .unwrap_or_else(|| format!("{}的{what}还没有可靠来源。", policy.name)),
            );
        }
        // a person the visit's parameters do not cover (residents' outpatient care), as soon
        // as the slots that choose the parameters are known
        let tree = match state.slots.get("visit").map(String::as_str) {
            Some("inpatient") => policy.inpatient.as_ref(),
            Some("outpatient") => policy.outpatient.as_ref(),
            _ => None,
        }?;
        let picked = tree.select(|slot| state.slots.get(slot.field()).map(String::as_str));
        if let Err(crate::guidance::policy::SelectError::NotCovered(slot, value)) = picked {
            let visit = self.dialogs.slots.label("visit", &state.slots["visit"]);
            let who = self.dialogs.slots.label(slot.field(), &value);
            return Some(format!(
                "{}暂未收录“{who}”的{visit}报销参数（没有找到可靠来源）。{}",
                policy.name,
                policy.note.as_deref().unwrap_or_default()
            ));
        }
        None
    }

    fn ask(&self, dialog: &str, step: &str, slot: &str, text: String) -> Reply {
        let mut reply = Reply::of(ReplyKind::Dialog, text);
        reply.asking = Some(slot.to_string());
        reply.dialog = Some(dialog.to_string());
        reply.choices = engine::choices(&self.dialogs, dialog, step)
            .into_iter()
            .map(|(value, label)| Choice { value, label })
            .collect();
        reply
    }

    fn outcome(&self, state: &SessionState, outcome: &Outcome) -> Reply {
        match outcome {
            Outcome::Message { say, sources } => Reply::of(
                ReplyKind::Dialog,
                format!("{say}\n\n来源：{}", self.cite_brief(sources)),
            ),
            Outcome::Checklist => self.checklist_reply(state),
            Outcome::Estimate => self.estimate_reply(state),
        }
    }

    /// The checklist of the filing dialog for `slots`, worded as the chat words it (the
    /// residents' form `/tools/checklist` shows the same text). Slots that are not part of a
    /// situation (estimate amounts…) are left out; an error names the slot a rule needs.
    pub fn checklist_for(
        &self,
        slots: &BTreeMap<String, String>,
    ) -> Result<(checklist::Checklist, String), crate::guidance::FieldError> {
        let mut situation = Situation::default();
        for (slot, value) in slots {
            // slots of other dialogs (estimate amounts…) are not part of the situation
            let _ = situation.set(slot, value);
        }
        let list = checklist::checklist(&situation, &self.checklist_texts)?;
        let text = crate::render::checklist_text(&list, &self.checklist_texts, |s| {
            self.cite_brief(&[s.to_string()])
        });
        Ok((list, text))
    }

    /// The estimate of the estimate dialog for `slots` (slot names and values of
    /// `dialogs/slots.toml`, amounts as decimal strings), from the same input the dialog
    /// builds; an error names the field. `/tools/estimate` shows it with
    /// [`crate::render::estimate_text`].
    pub fn estimate_for(
        &self,
        slots: &BTreeMap<String, String>,
    ) -> Result<estimate::Estimate, crate::guidance::FieldError> {
        let state = SessionState {
            slots: slots.clone(),
            ..SessionState::default()
        };
        let input = estimate_input_json(&state, &self.checklist_texts.regions);
        EstimateInput::from_json(&input).and_then(|i| estimate::estimate(&self.policies, &i))
    }

    /// Whom to ask about an estimate the engine refuses, as the chat says it: the region's
    /// hotline and counters, else its agency.
    pub fn contact_for(&self, slots: &BTreeMap<String, String>) -> String {
        let state = SessionState {
            slots: slots.clone(),
            ..SessionState::default()
        };
        self.region_contact(&state)
    }

    fn checklist_reply(&self, state: &SessionState) -> Reply {
        match self.checklist_for(&state.slots) {
            Ok((list, text)) => {
                let mut reply = Reply::of(ReplyKind::Dialog, text);
                reply.checklist = serde_json::to_value(&list).ok();
                reply
            }
            Err(e) => Reply::of(
                ReplyKind::Dialog,
                format!("抱歉，还缺少信息，没法列出清单：{}", e.message),
            ),
        }
    }

    fn estimate_reply(&self, state: &SessionState) -> Reply {
        match self.estimate_for(&state.slots) {
            Ok(est) => {
                let value = serde_json::to_value(&est).ok();
                let mut text = crate::render::estimate_brief_text(&est);
                // an amount read from an approximate figure ("三万多") says so
                for (slot, title) in [
                    ("total", "医疗总费用"),
                    ("self_pay", "自费金额"),
                    ("class_b", "乙类金额"),
                ] {
                    if let (Some(words), Some(v)) = (
                        state.notes.get(&format!("approx.{slot}")),
                        state.slots.get(slot),
                    ) {
                        text = text.replacen(
                            '\n',
                            &format!("\n{title}按您说的“{words}”以 {v} 元估算，实际以票据为准。\n"),
                            1,
                        );
                    }
                }
                if let Some(note) = earlier_care_note(state, &est) {
                    // right below the title line
                    text = text.replacen('\n', &format!("\n{note}\n"), 1);
                }
                let mut reply = Reply::of(ReplyKind::Dialog, text);
                reply.estimate = value;
                reply
            }
            Err(e) => {
                let mut r = Reply::of(
                    ReplyKind::Dialog,
                    format!(
                        "抱歉，这种情况我暂时没法给出估算：{}\n具体报销金额请咨询{}。",
                        e.message,
                        self.region_contact(state)
                    ),
                );
                r.unanswered = true;
                r
            }
        }
    }
}

/// Regions are data (`knowledge/regions/`): their ids, labels and aliases become the values
/// of the slots that take them (`values_from = "regions"`, the insured region), their replies
/// the small talk for their users; each names a policy that must be loaded.
fn apply_regions(
    texts: &ChecklistTexts,
    dialogs: &mut Dialogs,
    talk: &mut Talk,
    policies: &Policies,
) -> Result<(), LoadError> {
    let regions = &texts.regions;
    let mut values: Vec<crate::dialog::slots::SlotValue> = regions
        .iter()
        .map(|r| crate::dialog::slots::SlotValue {
            value: r.id.clone(),
            label: r.label.clone(),
            aliases: r.aliases.clone(),
            answers: vec![r.name.clone()],
            search: Vec::new(),
            unless: Vec::new(),
            hidden: false,
        })
        .collect();
    // insured elsewhere: recorded as such (never as one of ours), and named in `insured_place`
    values.push(crate::dialog::slots::SlotValue {
        value: "other".into(),
        label: "其他地区（外地参保）".into(),
        aliases: Vec::new(),
        answers: ["外地", "外地的", "其他地方", "别的地方", "都不是", "外省"]
            .map(String::from)
            .to_vec(),
        search: Vec::new(),
        unless: Vec::new(),
        hidden: true,
    });
    dialogs.fill_values(crate::dialog::VALUES_FROM_REGIONS, &values);
    // the slots' matchers are built now, not inside the first message that needs them
    dialogs.slots.prepare();
    let mut errors = Vec::new();
    for r in regions.iter() {
        let file = format!("regions/{}.toml", r.id);
        if let Err(es) = talk.add_region_replies(&file, &r.id, &r.replies) {
            errors.extend(es);
        }
        if policies.get(&r.policy).is_none() {
            errors.push(format!(
                "{file}: field policy: policy `{}` is not loaded",
                r.policy
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Talk(errors.join("\n")))
    }
}

/// The estimate input (estimate.md) from the session's slots; the policy is the one the
/// insured region's file names.
fn estimate_input_json(
    state: &SessionState,
    regions: &crate::guidance::region::Regions,
) -> serde_json::Value {
    let s = &state.slots;
    let mut input = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        input.insert(k.to_string(), v);
    };
    if let Some(r) = s.get("insured_region") {
        let policy = regions.get(r).map_or(r.as_str(), |r| r.policy.as_str());
        put("policy", policy.into());
    }
    for key in [
        "visit",
        "filing_type",
        "scheme",
        "employment",
        "category",
        "care_location",
    ] {
        if let Some(v) = s.get(key) {
            put(key, v.clone().into());
        }
    }
    if let Some(level) = s.get("hospital_level").and_then(|l| l.parse::<u8>().ok()) {
        put("hospital_level", level.into());
    }
    for key in ["filed", "emergency"] {
        if let Some(v) = s.get(key) {
            put(key, (v == "true").into());
        }
    }
    for key in ["total", "self_pay", "class_b"] {
        if let Some(v) = s.get(key) {
            put(key, v.clone().into());
        }
    }
    if let Some(n) = s
        .get("admissions_before")
        .and_then(|n| n.parse::<u32>().ok())
    {
        put("admissions_before", n.into());
    }
    // earlier eligible cost this year: of inpatient care (and 门诊特定项目) for an admission,
    // of outpatient care for a visit
    let before = match s.get("visit").map(String::as_str) {
        Some("outpatient") => s.get("outpatient_eligible_before"),
        _ if s
            .get("admissions_before")
            .is_some_and(|n| n != "0" && n != "unknown") =>
        {
            s.get("cumulative_eligible_before")
        }
        _ => None,
    };
    if let Some(v) = before {
        put("cumulative_eligible_before", v.clone().into());
    }
    serde_json::Value::Object(input)
}

/// How the user's answer about earlier care this year was used (estimate dialog): the
/// deductible of a later admission, where the cumulative bands start, the yearly outpatient
/// deductible; or that 不清楚 was estimated as none.
fn earlier_care_note(state: &SessionState, est: &estimate::Estimate) -> Option<String> {
    let s = &state.slots;
    let money = |v: &str| {
        v.parse::<rust_decimal::Decimal>()
            .map_or_else(|_| v.to_string(), |d| format!("{d:.2}"))
    };
    let start = est.bands.first().map(|b| b.lower);
    if s.get("visit").map(String::as_str) == Some("outpatient") {
        let before = s.get("outpatient_eligible_before")?;
        return Some(format!(
            "今年此前的门诊：政策范围内费用 {} 元已计入年度起付线，本次还需自付起付线 {:.2} 元。",
            money(before),
            est.deductible_applied
        ));
    }
    let admissions = s.get("admissions_before")?;
    let mut t = match admissions.as_str() {
        "unknown" => "今年此前住院次数：您说不清楚，按今年第一次住院、此前没有累计费用估算；如果之前住过院，起付线会更低，实际报销可能更多。".to_string(),
        "0" => "今年此前的住院：这是今年第一次住院，按首次住院起付线、此前累计费用0元估算。".to_string(),
        n => format!(
            "今年此前的住院：之前住过{}，本次按年内第{}住院计起付线 {:.2} 元",
            if n == "1" { "1次" } else { "2次及以上" },
            if n == "1" { "二次" } else { "三次及以后" },
            est.deductible_applied
        ),
    };
    if !matches!(admissions.as_str(), "0" | "unknown") {
        match s.get("cumulative_eligible_before").map(String::as_str) {
            Some("0") | None => t.push_str(
                "；此前累计政策范围内费用按0元计算（您不清楚或没有），如有累计，实际报销可能更多。",
            ),
            Some(c) => match start {
                Some(lower) if lower > est.deductible_applied => t.push_str(&format!(
                    "；此前累计政策范围内费用 {} 元，本次从全年累计 {lower:.2} 元处起按分段比例报销。",
                    money(c)
                )),
                _ => t.push_str(&format!(
                    "；此前累计政策范围内费用 {} 元（该政策分段按单次费用计算，不影响本次比例）。",
                    money(c)
                )),
            },
        }
    }
    Some(t)
}

/// Notes what the reply was, for the next turn (no repeats; follow-ups see what changed).
fn remember(state: &mut SessionState, reply: &Reply) {
    state.last = Some(LastReply {
        digest: digest(&reply.text),
        faq: reply.faq.as_ref().map(|f| f.id.clone()),
        slots: state.slots.clone(),
    });
}

/// A stable digest of a reply's text (FNV-1a: the same on every replica and release).
fn digest(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every case's `insured_region` names a loaded region or `other`.
fn check_cases(knowledge: &Knowledge, regions: &[String]) -> Result<(), LoadError> {
    let mut errors = Vec::new();
    for e in &knowledge.faqs {
        for (k, case) in e.cases.iter().enumerate() {
            for v in case.when.get("insured_region").into_iter().flatten() {
                if v != "other" && !regions.contains(v) {
                    errors.push(format!(
                        "{}: entry `{}`: field `case[{}].when.insured_region`: no region `{v}` in regions/ (or `other`)",
                        e.file,
                        e.id,
                        k + 1
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Reader(errors.join("\n")))
    }
}

/// The shipped assistant, loaded once for the unit tests of every module.
#[cfg(test)]
pub(crate) fn shipped() -> std::sync::Arc<Assistant> {
    static A: std::sync::OnceLock<std::sync::Arc<Assistant>> = std::sync::OnceLock::new();
    A.get_or_init(|| {
        std::sync::Arc::new(
            Assistant::load(
                &crate::default_knowledge_dir(),
                &crate::default_dialogs_dir(),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::shipped as assistant;
    use super::*;
    use crate::understanding::{answered, blank_reading};

    /// What a routed reply is: its kind and the FAQ entry or dialog it names.
    fn target(reply: &Reply) -> (ReplyKind, Option<String>) {
        let named = reply
            .faq
            .as_ref()
            .map(|f| f.id.clone())
            .or_else(|| reply.dialog.clone());
        (reply.kind, named)
    }

    fn slots(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    /// The router decides from the reading and the state alone: a table of readings made by
    /// hand (nothing is searched or read here), the state before, and the reply's kind and
    /// target.
    #[test]
    fn the_router_decides_from_the_reading_and_the_state() {
        let a = assistant();
        type Setup = fn(&mut Reading, &mut SessionState);
        let cases: Vec<(&str, Setup, ReplyKind, Option<&str>)> = vec![
            (
                "thanks in any words is small talk",
                |r, _| {
                    r.act = Act::Closing;
                },
                ReplyKind::Smalltalk,
                None,
            ),
            (
                "a question its own words answer gets that entry",
                |r, _| {
                    r.topics.own = answered(&r.message, &["filing-materials", "filing-who"], 90.0);
                },
                ReplyKind::Faq,
                Some("filing-materials"),
            ),
            (
                "facts without a question are acknowledged",
                |r, _| {
                    r.act = Act::Statement;
                    r.facts.slots = slots(&[("insured_region", "zhangjiagang")]);
                },
                ReplyKind::Smalltalk,
                None,
            ),
            (
                "an out-of-scope question gets its referral",
                |r, _| {
                    r.scope = Scope::OutOfScope("pension".into());
                    r.topics.own.out_of_scope_score = 90.0;
                },
                ReplyKind::OutOfScope,
                None,
            ),
            (
                "care at home never starts the estimate",
                |r, _| {
                    r.trigger = Some("estimate".into());
                    r.scope = Scope::Local;
                },
                ReplyKind::OutOfScope,
                None,
            ),
            (
                "a trigger in scope starts its dialog",
                |r, _| {
                    r.trigger = Some("estimate".into());
                },
                ReplyKind::Dialog,
                Some("estimate"),
            ),
            (
                "care abroad is an honest I-don't-know",
                |r, _| {
                    r.scope = Scope::Abroad;
                },
                ReplyKind::Unanswered,
                None,
            ),
            (
                "insured elsewhere and treated elsewhere is their region's matter",
                |r, _| {
                    r.scope = Scope::Elsewhere;
                },
                ReplyKind::OutOfScope,
                None,
            ),
            (
                "a vague area gets a clarifying question",
                |r, _| {
                    r.act = Act::Vague;
                    r.vague = Some("filing".into());
                },
                ReplyKind::Clarify,
                None,
            ),
            (
                "a pick among the options answers with that option",
                |r, s| {
                    s.pending = vec!["filing-who".into(), "manual-when".into()];
                    r.pick = Some("manual-when".into());
                },
                ReplyKind::Faq,
                Some("manual-when"),
            ),
            (
                "咋整 with the situation known is the personal plan",
                |r, s| {
                    s.slots = slots(&[
                        ("insured_region", "zhangjiagang"),
                        ("care_location", "shanghai"),
                        ("stage", "in_hospital"),
                        ("filed", "false"),
                    ]);
                    r.act = Act::HowTo;
                },
                ReplyKind::Faq,
                Some("backfill-in-hospital"),
            ),
            (
                "someone from elsewhere gets the entry for people coming to us",
                |r, s| {
                    s.slots = slots(&[
                        ("insured_region", "other"),
                        ("insured_place", "河南"),
                        ("care_place", "zhangjiagang"),
                    ]);
                    r.topics.own = answered(&r.message, &["filing-materials"], 90.0);
                },
                ReplyKind::Faq,
                Some("inbound-zhangjiagang"),
            ),
            (
                "a bare follow-up keeps the topic",
                |r, s| {
                    s.topic = Some("impersonation".into());
                    r.act = Act::FollowUp;
                    r.confidence = 0.9;
                },
                ReplyKind::Faq,
                Some("impersonation"),
            ),
            (
                "a control word in a dialog acts on it",
                |r, s| {
                    a_dialog(s);
                    r.control = Some(Control::Exit);
                },
                ReplyKind::Smalltalk,
                None,
            ),
            (
                "thanks inside a dialog is small talk, and the dialog goes on",
                |r, s| {
                    a_dialog(s);
                    r.act = Act::Closing;
                    r.dialog_answer = Some(Parsed::Nothing);
                },
                ReplyKind::Smalltalk,
                Some("filing"),
            ),
        ];
        for (what, setup, kind, named) in cases {
            let mut state = SessionState::new();
            let mut reading = blank_reading("测试消息");
            setup(&mut reading, &mut state);
            let reply = a.route(&mut state, &reading);
            assert_eq!(
                target(&reply),
                (kind, named.map(String::from)),
                "{what}: {}",
                reply.text
            );
        }
    }

    /// A filing dialog in progress at its first question.
    fn a_dialog(state: &mut SessionState) {
        assistant().start_dialog(state, "filing");
    }

    #[test]
    fn a_question_inside_a_dialog_resumes_it_and_a_second_one_in_a_row_ends_it() {
        let a = assistant();
        let mut state = SessionState::new();
        a.start_dialog(&mut state, "estimate");
        let first = a.handle(&mut state, "异地就医备案要带什么材料");
        assert_eq!(first.kind, ReplyKind::Faq);
        assert_eq!(
            first.asking.as_deref(),
            Some("insured_region"),
            "{}",
            first.text
        );
        assert!(state.active.is_some());
        let second = a.handle(&mut state, "已经出院自费结算了，还能补备案吗");
        assert_eq!(second.kind, ReplyKind::Faq);
        assert!(second.asking.is_none(), "{}", second.text);
        assert!(state.active.is_none());
        assert!(second.text.contains("先放一放"), "{}", second.text);
        // an answer in between keeps the dialog: the count starts again
        let mut state = SessionState::new();
        a.start_dialog(&mut state, "estimate");
        a.handle(&mut state, "异地就医备案要带什么材料");
        a.handle(&mut state, "苏州");
        let after = a.handle(&mut state, "已经出院自费结算了，还能补备案吗");
        assert!(after.asking.is_some(), "{}", after.text);
    }

    #[test]
    fn the_same_reply_never_goes_out_twice_in_a_row() {
        let a = assistant();
        let mut state = SessionState::new();
        let first = a.handle(&mut state, "异地就医备案要带什么材料");
        let second = a.handle(&mut state, "异地就医备案要带什么材料");
        assert_eq!(first.faq, second.faq);
        assert_ne!(first.text, second.text);
        assert!(
            second.text.starts_with("这一点和刚才说的一样"),
            "{}",
            second.text
        );
        let thanks = a.handle(&mut state, "谢谢");
        let again = a.handle(&mut state, "谢谢");
        assert_ne!(thanks.text, again.text);
    }

    #[test]
    fn start_dialog_asks_the_first_question_and_leaves_a_dialog_in_progress() {
        let a = assistant();
        let mut state = SessionState::new();
        let first = a.handle(&mut state, "帮我算能报多少");
        assert_eq!(first.dialog.as_deref(), Some("estimate"));
        let reply = a.start_dialog(&mut state, "filing");
        assert_eq!(reply.dialog.as_deref(), Some("filing"));
        assert_eq!(reply.asking.as_deref(), Some("insured_region"));
        assert!(
            reply
                .text
                .starts_with(&a.dialogs.get("filing").unwrap().intro)
        );
        assert!(reply.choices.iter().any(|c| c.value == "suzhou"));
        let active = state.active.as_ref().unwrap();
        assert_eq!(
            (active.dialog.as_str(), active.step.as_str()),
            ("filing", "region")
        );
        assert!(state.slots.is_empty());
    }

    #[test]
    fn start_dialog_with_an_unknown_name_changes_nothing() {
        let a = assistant();
        let mut state = SessionState::new();
        a.handle(&mut state, "帮我算能报多少");
        let before = state.clone();
        let reply = a.start_dialog(&mut state, "no_such_dialog");
        assert_eq!(state, before);
        assert!(reply.dialog.is_none() && reply.choices.is_empty());
    }

    #[test]
    fn reset_forgets_dialog_and_slots() {
        let a = assistant();
        let mut state = SessionState::new();
        a.start_dialog(&mut state, "filing");
        a.handle(&mut state, "苏州");
        assert!(!state.slots.is_empty());
        let reply = a.reset(&mut state);
        assert_eq!(state, SessionState::new());
        assert!(reply.text.contains("已清除"));
    }

    #[test]
    fn choose_answers_the_current_question_only() {
        let a = assistant();
        let mut state = SessionState::new();
        a.start_dialog(&mut state, "filing");
        // not one of the question's choices, another slot, another dialog: nothing changes
        let before = state.clone();
        for (dialog, slot, value) in [
            ("filing", "insured_region", "beijing"),
            ("filing", "care_location", "shanghai"),
            ("estimate", "insured_region", "suzhou"),
        ] {
            assert_eq!(a.choose(&mut state, dialog, slot, value), None);
            assert_eq!(state, before);
        }
        let reply = a
            .choose(&mut state, "filing", "insured_region", "suzhou")
            .unwrap();
        assert_eq!(
            state.slots.get("insured_region").map(String::as_str),
            Some("suzhou")
        );
        assert_eq!(reply.asking.as_deref(), Some("care_location"));
        // the same button again is stale now
        let before = state.clone();
        assert_eq!(
            a.choose(&mut state, "filing", "insured_region", "zhangjiagang"),
            None
        );
        assert_eq!(state, before);
    }

    #[test]
    fn estimates_survive_transcript_masking_unchanged() {
        // transcripts mask digit chains; an estimate's amounts and bands must stay readable
        let a = assistant();
        for (first, more) in [
            (
                "苏州职工医保在职，在上海三级医院住院花了42000元，已经办了异地长期居住备案，帮我算能报多少",
                vec!["没有", "1", "30000", "详细依据"],
            ),
            (
                "张家港职工医保退休，在南京二级医院住院花了123456.78元，临时去的，没备案，急诊抢救，帮我算能报多少",
                vec!["不清楚", "2", "不清楚"],
            ),
        ] {
            let mut state = SessionState::new();
            let mut texts = vec![a.handle(&mut state, first).text];
            for m in more {
                texts.push(a.handle(&mut state, m).text);
            }
            let estimates: Vec<&String> = texts
                .iter()
                .filter(|t| t.contains("医保基金支付") || t.contains("全部依据"))
                .collect();
            assert!(!estimates.is_empty(), "{texts:#?}");
            for t in estimates {
                assert_eq!(&crate::text::mask_personal_numbers(t), t);
            }
        }
    }

    #[test]
    fn buttons_whose_values_have_underscores_answer() {
        let a = assistant();
        let mut state = SessionState::new();
        a.start_dialog(&mut state, "filing");
        a.choose(&mut state, "filing", "insured_region", "suzhou")
            .unwrap();
        let reply = a
            .choose(&mut state, "filing", "care_location", "in_province")
            .unwrap();
        assert_eq!(state.slots["care_location"], "in_province");
        assert_ne!(reply.asking.as_deref(), Some("care_location"));
    }

    #[test]
    fn choose_without_a_dialog_in_progress_is_stale() {
        let a = assistant();
        let mut state = SessionState::new();
        assert_eq!(
            a.choose(&mut state, "filing", "insured_region", "suzhou"),
            None
        );
        assert_eq!(state, SessionState::new());
    }
}
