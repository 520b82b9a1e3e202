//! The channel-agnostic core: `handle(state, message) -> Reply`. No IO happens here:
//! channels (terminal, HTTP, Telegram) load and save the [`SessionState`] through the store
//! and render the [`Reply`] in their own idiom.
//!
//! Routing of one message:
//! 1. control words (重新开始, 退出, 返回/上一步) act on the dialog in progress;
//! 2. in a dialog, the message answers the current question; an answer that fits nothing is
//!    tried as an FAQ question (answered, then the question is asked again), else re-asked
//!    with the options, at most twice, then the hotline is offered;
//! 3. outside a dialog, a message that names a dialog's trigger ("能报多少", "刷不了"…) starts
//!    it, with every slot the message already states filled;
//! 4. otherwise the FAQ answers, or the assistant says honestly that it does not know.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dialog::engine::{self, SessionState, Turn};
use crate::dialog::{Dialogs, Outcome, SlotKind};
use crate::guidance::checklist::{self, ChecklistTexts, Situation};
use crate::guidance::estimate::{self, EstimateInput};
use crate::guidance::policy::Policies;
use crate::knowledge::Knowledge;
use crate::search::{SearchEngine, SearchResult};
use crate::talk::Talk;
use crate::text::normalize;

pub use crate::reply::{Choice, FaqOption, FaqRef, Reply, ReplyKind};

/// Hits below this score are not even offered as "did you mean" suggestions.
const SUGGESTION_MIN_SCORE: f32 = 15.0;
/// A question with this many content characters may stand on its own in a conversation.
const SELF_CONTAINED_CHARS: usize = 12;
/// …when its own best reading leads the next one by this factor.
const CLEAR_LEAD: f32 = 2.0;
/// A message with this many content characters that search finds out of scope stays so.
const OUT_OF_SCOPE_CHARS: usize = 8;

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
    #[error("cannot build the search index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// The assistant: knowledge, its search index, dialogs and guidance data.
pub struct Assistant {
    pub knowledge: Knowledge,
    pub search: SearchEngine,
    pub dialogs: Dialogs,
    pub policies: Policies,
    pub checklist_texts: ChecklistTexts,
    pub talk: Talk,
}

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
        let search = SearchEngine::build(&knowledge)?;
        Ok(Assistant {
            knowledge,
            search,
            dialogs,
            policies,
            checklist_texts,
            talk,
        })
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
        match engine::start(&self.dialogs, state, dialog_id, "") {
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
        let turn = engine::answer(&self.dialogs, state, value)?;
        let mut reply = self.render(state, turn, None);
        reply.slots = state.slots.clone();
        Some(reply)
    }

    /// The situation slots that `text` states, read as a conversation reads a message (the
    /// agent console fills its form from what the agent types about the caller).
    pub fn understand(&self, text: &str) -> BTreeMap<String, String> {
        let mut state = SessionState::new();
        self.learn(&mut state, text, false);
        state.slots
    }

    /// Answers one user message, updating the conversation state. The reply carries
    /// everything the conversation knows of the user's situation (`slots`).
    pub fn handle(&self, state: &mut SessionState, message: &str) -> Reply {
        let mut reply = self.handle_message(state, message);
        reply.slots = state.slots.clone();
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
        let command = normalize(message);
        if let Some(reply) = self.control(state, &command) {
            return reply;
        }
        if state.active.is_some() {
            state.pending.clear();
            return self.in_dialog(state, message);
        }
        if let Some(reply) = self.basis(state, &command) {
            return reply;
        }
        // a pick among the options of the last clarifying question
        if let Some(id) = self.pick(state, message) {
            return self.entry_reply(state, &id);
        }
        // facts about the user's situation, stated in any turn, are remembered
        let topic_before = state.topic.clone();
        let learned = self.learn(state, message, !self.talk.is_followup(message));
        // a statement of facts ("她是苏州退休职工", "不对，是张家港的") is acknowledged with
        // what was understood, not searched as if it were a question
        let trigger = self
            .trigger(&command)
            .filter(|_| command.starts_with('/') || !self.about_local_care(state, &command));
        if !learned.is_empty() && !self.asks(message) && trigger.is_none() {
            return self.acknowledge(state, &learned, topic_before.as_deref(), message);
        }
        if let Some(dialog) = trigger {
            let intro = self.dialogs.get(&dialog).map(|d| d.intro.clone());
            state.pending.clear();
            if let Some(turn) = engine::start(&self.dialogs, state, &dialog, message) {
                return self.render(state, turn, intro);
            }
        }
        if learned.is_empty()
            && let Some(intent) = self.talk.classify(message)
        {
            return self.smalltalk(state, intent);
        }
        self.question(state, message, &learned)
    }

    /// A message while a dialog is in progress: an answer to its question, or a question of
    /// its own (answered, then the dialog's question is asked again).
    fn in_dialog(&self, state: &mut SessionState, message: &str) -> Reply {
        // the optional question after an outcome: anything that does not answer it ends the
        // dialog and is read as a new message
        let refining = state.active.as_ref().is_some_and(|a| {
            self.dialogs
                .get(&a.dialog)
                .is_some_and(|d| d.is_refinement(&a.step))
        });
        if refining {
            let before = state.clone();
            let answered = !message.is_empty()
                && !looks_like_question(message)
                && !matches!(
                    engine::answer(&self.dialogs, state, message),
                    None | Some(Turn::NotUnderstood { .. }) | Some(Turn::GaveUp { .. })
                );
            *state = before;
            if !answered {
                state.active = None;
                return self.handle_message(state, message);
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
        // a question in the middle of a dialog ("苏州医保去外地看病要备案吗") is answered
        // first, even when it happens to name an option, then the question is asked again;
        // searched at most once per message
        let title = state
            .active
            .as_ref()
            .and_then(|a| self.dialogs.get(&a.dialog))
            .map(|d| d.title.as_str());
        // small talk asked as a question ("能转人工吗", "你是机器人吗") is small talk, not a
        // search; "好的"/"是的" stay answers to the dialog's question
        let is_question = looks_like_question(message);
        if is_question && let Some(intent) = self.talk.classify(message).filter(|i| i.id != "ack") {
            let said = self.smalltalk(state, intent);
            return self.then_resume(state, said);
        }
        let asked = is_question.then(|| self.search_in_dialog(title, message));
        if let Some(result) = asked.as_ref().filter(|r| r.answered) {
            return self.faq_then_resume(state, result);
        }
        let search = || {
            asked
                .clone()
                .unwrap_or_else(|| self.search_in_dialog(title, message))
        };
        let before = state.clone();
        let Some(turn) = engine::answer(&self.dialogs, state, message) else {
            return self.faq_reply(state, &search());
        };
        if let Turn::NotUnderstood { .. } = turn {
            // small talk ("谢谢", "你是谁"): answered, then the question is asked again
            if let Some(intent) = self.talk.classify(message) {
                *state = before;
                let said = self.smalltalk(state, intent);
                return self.then_resume(state, said);
            }
            // maybe a question in the middle of the dialog: answer it, then ask again
            let result = search();
            if result.answered {
                *state = before;
                return self.faq_then_resume(state, &result);
            }
        }
        self.render(state, turn, None)
    }

    /// A question asked in the middle of a dialog: on its own words, or, when that answers
    /// nothing, together with the dialog's subject ("要带什么材料" in the filing dialog).
    fn search_in_dialog(&self, title: Option<&str>, message: &str) -> SearchResult {
        // every dialog is about care away from home: the question needs no 异地 of its own
        let ctx = crate::search::SearchContext { cross_region: true };
        let direct = self.search.search_with(message, 3, &ctx);
        if direct.out_of_scope.is_some() {
            return direct;
        }
        let Some(title) = title else {
            return direct;
        };
        // read with the dialog's subject too ("交了以后要等多久" in the filing dialog is the
        // filing's processing time, not the reimbursement's): that reading wins when the
        // user's own words also allow it
        let within = self
            .search
            .search_with(&format!("{message} {title}"), 3, &ctx);
        // the user's words must point there themselves ("蓝色的" gets nothing from the title)
        let plausible = |id: &str| {
            direct
                .hits
                .iter()
                .any(|h| h.id == id && h.score >= 0.5 * SUGGESTION_MIN_SCORE)
        };
        match within.hits.first() {
            Some(top) if within.answered && plausible(&top.id) => within,
            _ => direct,
        }
    }

    /// An FAQ answer in the middle of a dialog, followed by the dialog's current question.
    fn faq_then_resume(&self, state: &mut SessionState, result: &SearchResult) -> Reply {
        let faq = self.faq_reply(state, result);
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

    /// Remembers every slot the message states outright, replacing what was known ("不对，
    /// 是张家港的"). Amounts only when the message names a money unit. Returns the slots that
    /// changed.
    fn learn(
        &self,
        state: &mut SessionState,
        message: &str,
        corrects: bool,
    ) -> Vec<(String, String)> {
        let has_money_unit = message.contains(['元', '块', '万', '千']);
        let mut changed = Vec::new();
        for (slot, value) in self.dialogs.slots.extract(message) {
            // the situation, not a dialog's own diagnostic slots (the card_failure questions)
            if !SLOT_ORDER.contains(&slot.as_str()) && slot != "mentions_chronic" {
                continue;
            }
            let choice = self
                .dialogs
                .slots
                .get(&slot)
                .is_some_and(|d| d.kind == SlotKind::Choice);
            if !choice && !has_money_unit {
                continue;
            }
            if state.slots.get(&slot) != Some(&value) {
                // a correction ("不对，是张家港的") may make the last answer the wrong one:
                // follow-ups are read against the new situation, not the old topic
                if state.slots.insert(slot.clone(), value.clone()).is_some() && corrects {
                    state.topic = None;
                }
                changed.push((slot, value));
            }
        }
        changed
    }

    /// The option of the last clarifying question that the message picks: its number
    /// ("2", "第二个"), or clearly more of its words than any other option's. Options not
    /// picked stay pending for [`Assistant::question`], which prefers them.
    fn pick(&self, state: &mut SessionState, message: &str) -> Option<String> {
        if state.pending.is_empty() {
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
            let id = state.pending.get(n).cloned();
            state.pending.clear();
            return id;
        }
        let m = QUESTION_LEADS
            .iter()
            .fold(m.to_string(), |m, lead| m.replacen(lead, "", 1));
        let m = m.as_str();
        let mut scored: Vec<(f32, &String)> = state
            .pending
            .iter()
            .filter_map(|id| {
                let e = self.knowledge.faq(id)?;
                let best = std::iter::once(&e.question)
                    .chain(&e.variants)
                    .map(|p| overlap(m, &normalize(p)))
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
        let id = clear.then(|| scored[0].1.clone());
        if id.is_some() {
            state.pending.clear();
        }
        id
    }

    /// A question outside a dialog: an FAQ answer (read against the current topic when it
    /// continues it), a clarifying question, an out-of-scope referral, an acknowledgement of
    /// the facts the message gave, or an honest "I don't know".
    fn question(
        &self,
        state: &mut SessionState,
        message: &str,
        learned: &[(String, String)],
    ) -> Reply {
        let pending = std::mem::take(&mut state.pending);
        if let Some(vague) = self.talk.vague(message) {
            let options = vague.options.clone();
            let ask = vague.ask.clone();
            state.context = vague.words.first().cloned().into_iter().collect();
            return self.clarify(state, &ask, &options);
        }
        let ctx = self.search_context(state);
        let direct = self.search.search_with(message, 8, &ctx);
        let context = self.context_words(state);
        let continues =
            !context.is_empty() && (self.talk.is_followup(message) || !pending.is_empty());
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
        let says_enough =
            direct.out_of_scope.is_some() && content_chars(message) >= OUT_OF_SCOPE_CHARS;
        if !says_enough && (continues || (unknown && !context.is_empty() && learned.is_empty())) {
            // read against the conversation: the user's own words win when their answer is
            // also plausible in context; otherwise the reading in context does, preferring
            // the options just offered, then the topic's family
            let within = self
                .search
                .search_with(&format!("{message} {context}"), 8, &ctx);
            let near_top = within.hits.first().map_or(0.0, |h| 0.75 * h.score);
            if let Some(id) = within
                .hits
                .iter()
                .filter(|h| h.score >= near_top)
                .map(|h| &h.id)
                .find(|id| pending.contains(id))
                && (!direct.answered || continues)
            {
                return self.entry_reply(state, &id.clone());
            }
            // the message's own best reading, also when only the want of a cross-region word
            // kept it from answering (the conversation supplies that)
            let own = direct.hits.first().filter(|h| {
                direct.answered
                    || (direct.out_of_scope.is_none() && h.score >= SUGGESTION_MIN_SCORE)
            });
            // a full question whose own reading is unmistakable and has nothing to do with
            // what the context points at is a new question ("好吧。那出院结账是不是只用付他
            // 自己承担的那部分" after a filing answer); short ones ("那现在还用备案吗") are
            // read in context
            if let Some(own) = own
                && content_chars(message) >= SELF_CONTAINED_CHARS
                && direct
                    .hits
                    .get(1)
                    .is_none_or(|second| own.score >= CLEAR_LEAD * second.score)
                && within
                    .hits
                    .first()
                    .is_some_and(|top| !direct.hits.iter().any(|h| h.id == top.id))
            {
                return self.entry_reply(state, &own.id.clone());
            }
            if let Some(own) = own
                && within
                    .hits
                    .iter()
                    .any(|h| h.id == own.id && h.score >= 0.5 * within.hits[0].score)
            {
                return self.entry_reply(state, &own.id.clone());
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
                return self.entry_reply(state, &id);
            }
        }
        if direct.answered {
            let hits = &direct.hits;
            // too close to call on a short message: ask instead of guessing
            if hits.len() > 1
                && message.chars().count() <= 10
                && hits[1].score >= 0.95 * hits[0].score
            {
                let options: Vec<String> = hits
                    .iter()
                    .take(crate::talk::MAX_OPTIONS)
                    .filter(|h| h.score >= 0.8 * hits[0].score)
                    .map(|h| h.id.clone())
                    .collect();
                // a follow-up ("那要多久") is read together with the unclear message
                state.context = vec![crate::text::mask_personal_numbers(message)];
                return self.clarify(state, "您想问的是哪一个？", &options);
            }
            let mut reply = self.entry_reply(state, &hits[0].id);
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
        if !learned.is_empty() && !continues && !self.asks(message) {
            return self.acknowledge(state, learned, None, message);
        }
        self.faq_reply(state, &direct)
    }

    /// What the conversation already says about cross-region care: a topic that is about it,
    /// or a known place of care (a question without 异地/外地… words then still counts).
    fn search_context(&self, state: &SessionState) -> crate::search::SearchContext {
        let topic_cross = state
            .topic
            .as_deref()
            .and_then(|t| self.knowledge.faq(t))
            .is_some_and(|e| !e.general);
        crate::search::SearchContext {
            cross_region: topic_cross || state.slots.contains_key("care_location"),
        }
    }

    /// Whether a message is plainly about care at the place of insurance ("在苏州本地社区医院看
    /// 门诊报多少"): no cross-region sense in it or in the conversation. Estimates and
    /// checklists are for care away from home, so such a message starts no dialog; it is a
    /// question about local benefits.
    fn about_local_care(&self, state: &SessionState, norm: &str) -> bool {
        ["本地", "本市", "在参保地看"]
            .iter()
            .any(|w| norm.contains(w))
            && !state.slots.contains_key("care_location")
            && !self.search.has_cross_region_cue(norm)
    }

    /// Whether a message outside a dialog asks something (rather than only stating facts):
    /// a question form, a trailing 呢, or a follow-up lead-in ("那门诊呢").
    fn asks(&self, message: &str) -> bool {
        let m = message.trim_end_matches(['。', '.', '!', '！', ' ']);
        looks_like_question(m)
            || m.ends_with(['呢', '不', '没'])
            || m.ends_with("没有")
            || ["那", "那么", "还有", "另外", "如果", "要是"]
                .iter()
                .any(|w| m.starts_with(w))
            || [
                "哪",
                "啥",
                "咋",
                "几",
                "有没有",
                "行不行",
                "是否",
                "会不会",
                "好不好",
                "管不管",
                "能否",
                "可否",
                "怎样",
            ]
            .iter()
            .any(|w| m.contains(w))
    }

    /// The words that stand for the conversation so far: the current topic's tags, the
    /// area of the last clarifying question, and the user's region and place of care.
    fn context_words(&self, state: &SessionState) -> String {
        let mut words: Vec<String> = Vec::new();
        if let Some(entry) = state.topic.as_deref().and_then(|t| self.knowledge.faq(t)) {
            words.extend(entry.tags.first().cloned());
        }
        words.extend(state.context.iter().cloned());
        for slot in ["insured_region", "care_location"] {
            if let Some(v) = state.slots.get(slot) {
                words.push(self.dialogs.slots.search_words(slot, v));
            }
        }
        words.join(" ")
    }

    /// The current topic and its related entries, and the options last offered.
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

    /// What the assistant understood of a message that only gave facts, and the part of the
    /// current topic's answer that applies to the user's region, if the topic has one.
    fn acknowledge(
        &self,
        state: &mut SessionState,
        learned: &[(String, String)],
        topic: Option<&str>,
        message: &str,
    ) -> Reply {
        // the order a person would tell it in: who, where, what happened
        let rank = |slot: &str| {
            SLOT_ORDER
                .iter()
                .position(|s| *s == slot)
                .unwrap_or(SLOT_ORDER.len())
        };
        let mut learned = learned.to_vec();
        learned.sort_by_key(|(slot, _)| rank(slot));
        let understood: Vec<String> = learned
            .iter()
            .filter_map(|(slot, value)| {
                let def = self.dialogs.slots.get(slot)?;
                Some(format!(
                    "{}：{}",
                    def.title,
                    self.dialogs.slots.label(slot, value)
                ))
            })
            .collect();
        // a follow-up such as "那怎么办" is read together with what was just told (masked:
        // the session state is stored)
        state.context = vec![crate::text::mask_personal_numbers(message)];
        let mut text = format!("好的，记下了（{}）。", understood.join("；"));
        let region_changed = learned.iter().any(|(s, _)| s == "insured_region");
        let topic = topic.or(state.topic.as_deref());
        if region_changed
            && let Some(entry) = topic.and_then(|t| self.knowledge.faq(t))
            && let Some(part) = region_part(&entry.answer, &self.region_name(state))
        {
            text.push_str(&format!("\n关于刚才的问题，按您的参保地：\n{part}"));
        } else {
            text.push_str(
                "\n您可以接着问具体问题；需要的话，输入“备案材料清单”我按您的情况列材料，输入“帮我算能报多少”估算报销金额。",
            );
        }
        Reply::text(text)
    }

    /// The label of the user's insured region (苏州, 张家港), or "" when unknown.
    fn region_name(&self, state: &SessionState) -> String {
        state
            .slots
            .get("insured_region")
            .map(|r| self.dialogs.slots.label("insured_region", r))
            .unwrap_or_default()
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

    /// The answer of entry `id`, with the part for the user's region first, brief sources,
    /// and the entry remembered as the current topic.
    fn entry_reply(&self, state: &mut SessionState, id: &str) -> Reply {
        let Some(entry) = self.knowledge.faq(id) else {
            // ids come from the index or the clarify data, both validated against the
            // knowledge; an unknown one gets the honest "I don't know"
            let nothing = self.search.search("", 1);
            return self.faq_reply(state, &nothing);
        };
        state.topic = Some(entry.id.clone());
        state.pending.clear();
        state.context.clear();
        let answer = region_first(&entry.answer, &self.region_name(state));
        let mut reply = Reply::of(
            ReplyKind::Faq,
            format!(
                "{}\n\n来源：{}",
                answer.trim_end(),
                self.cite_brief(&entry.sources)
            ),
        );
        reply.faq = Some(FaqRef {
            id: entry.id.clone(),
        });
        reply
    }

    /// "详细依据": every rule the last estimate used (chat shows a summary).
    fn basis(&self, state: &SessionState, command: &str) -> Option<Reply> {
        let c = command.trim_matches(|c: char| !c.is_alphanumeric());
        if !matches!(
            c,
            "详细依据" | "依据" | "查看依据" | "全部依据" | "详细规则"
        ) {
            return None;
        }
        let input = estimate_input_json(state, &self.checklist_texts.regions);
        let result =
            EstimateInput::from_json(&input).and_then(|i| estimate::estimate(&self.policies, &i));
        Some(match result {
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
        })
    }

    /// 重新开始 / 退出 / 返回.
    fn control(&self, state: &mut SessionState, command: &str) -> Option<Reply> {
        let command = command.trim_start_matches('/');
        match command {
            "重新开始" | "重来" | "从头开始" | "reset" | "restart" => {
                Some(match engine::restart(&self.dialogs, state) {
                    Some(turn) => self.render(state, turn, Some("好的，我们从头开始。".into())),
                    None => {
                        *state = SessionState::new();
                        self.welcome()
                    }
                })
            }
            "退出" | "取消" | "结束" | "不问了" | "exit" | "quit" | "cancel" => {
                let was = state.active.take();
                Some(Reply::text(if was.is_some() {
                    "好的，已退出当前问答。您可以继续提问，或输入“备案材料清单”“帮我算能报多少”重新开始。"
                } else {
                    "好的。还有其他异地就医的问题，随时问我。"
                }))
            }
            "返回" | "上一步" | "上一个" | "back" => {
                Some(match engine::back(&self.dialogs, state) {
                    Some(turn) => self.render(state, turn, None),
                    None => Reply::text(
                        "现在没有进行中的问答，没有可以返回的上一步。请直接输入您的问题。",
                    ),
                })
            }
            _ => None,
        }
    }

    /// The dialog whose trigger phrase occurs in the (normalised) message, if any.
    fn trigger(&self, command: &str) -> Option<String> {
        self.dialogs
            .dialogs
            .iter()
            .flat_map(|d| d.triggers.iter().map(move |t| (d, t)))
            .filter(|(_, t)| {
                let t = normalize(t.trim_start_matches('/'));
                !t.is_empty() && (command.contains(&t) || command.trim_start_matches('/') == t)
            })
            .max_by_key(|(_, t)| t.chars().count())
            .map(|(d, _)| d.id.clone())
    }

    /// Renders a search result: the answer with its sources, an out-of-scope referral, or an
    /// honest "I don't know" with the hotline and suggestions.
    fn faq_reply(&self, state: &mut SessionState, result: &SearchResult) -> Reply {
        if result.answered
            && let Some(hit) = result.hits.first()
        {
            return self.entry_reply(state, &hit.id);
        }
        if let Some(topic) = result
            .out_of_scope
            .as_deref()
            .and_then(|t| self.knowledge.out_of_scope_topic(t))
        {
            let mut reply = Reply::of(
                ReplyKind::OutOfScope,
                format!(
                    "这个问题不属于异地就医（备案、直接结算、零星报销）的范围，我不想给您不准确的答复。\n{}",
                    topic.referral
                ),
            );
            reply.unanswered = true;
            return reply;
        }
        // whom to ask: the user's own region when it is known, else both possibilities
        let ask = if state.slots.contains_key("insured_region") {
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
                    let mut r = Reply::of(
                        ReplyKind::Dialog,
                        prefix(format!(
                            "抱歉，这种情况我暂时没法给出估算：{reason}\n具体报销金额请咨询您的参保地医保经办机构。"
                        )),
                    );
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
        if !d.steps.iter().any(|s| s.outcome == Some(Outcome::Estimate)) {
            return None;
        }
        let region = state.slots.get("insured_region")?;
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

    fn checklist_reply(&self, state: &SessionState) -> Reply {
        let mut situation = Situation::default();
        for (slot, value) in &state.slots {
            // slots of other dialogs (estimate amounts…) are not part of the situation
            let _ = situation.set(slot, value);
        }
        match checklist::checklist(&situation, &self.checklist_texts) {
            Ok(list) => {
                let mut reply = Reply::of(
                    ReplyKind::Dialog,
                    crate::render::checklist_text(&list, &self.checklist_texts, |s| {
                        self.cite_brief(&[s.to_string()])
                    }),
                );
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
        let input = estimate_input_json(state, &self.checklist_texts.regions);
        let result =
            EstimateInput::from_json(&input).and_then(|i| estimate::estimate(&self.policies, &i));
        match result {
            Ok(est) => {
                let value = serde_json::to_value(&est).ok();
                let mut text = crate::render::estimate_brief_text(&est);
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
    let values: Vec<crate::dialog::slots::SlotValue> = regions
        .iter()
        .map(|r| crate::dialog::slots::SlotValue {
            value: r.id.clone(),
            label: r.label.clone(),
            aliases: r.aliases.clone(),
            answers: vec![r.name.clone()],
            search: Vec::new(),
        })
        .collect();
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

/// The order in which an acknowledgement lists what it understood.
const SLOT_ORDER: [&str; 12] = [
    "insured_region",
    "scheme",
    "employment",
    "category",
    "care_location",
    "filing_type",
    "filed",
    "stage",
    "visit",
    "hospital_level",
    "by_proxy",
    "total",
];

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

/// A message phrased as a question rather than as an answer to one.
/// Letters, digits and Chinese characters in a message (punctuation, spaces and emoji aside).
fn content_chars(message: &str) -> usize {
    message.chars().filter(|c| c.is_alphanumeric()).count()
}

fn looks_like_question(message: &str) -> bool {
    let m = message.trim_end();
    let asks_with_ba = m.trim_end_matches(['。', '.', '!', '！']).ends_with('吧')
        && ["能", "可以", "会", "要", "是不是", "还"]
            .iter()
            .any(|w| m.contains(w));
    asks_with_ba
        || ["对了", "顺便问", "请问", "问一下", "问下"]
            .iter()
            .any(|w| m.starts_with(w))
        || m.ends_with(['吗', '？', '?'])
        || [
            "怎么",
            "什么",
            "哪些",
            "哪里",
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
            "行不行",
            "好不好",
            "有没有",
            "能否",
            "多长时间",
        ]
        .iter()
        .any(|w| m.contains(w))
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

/// Paragraphs of an answer (separated by blank lines) that are about one region: those
/// that name it in their first few characters ("苏州其他地区的参保人员：…").
fn region_paragraphs<'a>(answer: &'a str, region: &str) -> (Vec<&'a str>, Vec<&'a str>) {
    answer
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .partition(|p| {
            !region.is_empty()
                && p.trim()
                    .chars()
                    .take(8)
                    .collect::<String>()
                    .contains(region)
        })
}

/// The answer with the paragraphs about `region` first (unchanged when none is about it, or
/// when they already come first).
pub fn region_first(answer: &str, region: &str) -> String {
    let (mine, rest) = region_paragraphs(answer, region);
    if mine.is_empty() {
        return answer.to_string();
    }
    mine.into_iter()
        .chain(rest)
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The paragraphs of an answer about `region`, if there are any.
fn region_part(answer: &str, region: &str) -> Option<String> {
    let (mine, _) = region_paragraphs(answer, region);
    (!mine.is_empty()).then(|| mine.join("\n\n").trim().to_string())
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
