//! Dialog acts: what a message does in the conversation (asks, tells, corrects, thanks…),
//! decided by a linear classifier trained at load from `knowledge/acts.toml`.
//!
//! Features are the message's characters and character bigrams, its first and last
//! characters, where its question marks stand, its length, A-not-A forms (能不能, 刷不刷), and
//! what the situation reader found in it (facts stated, places named, an amount): so "我妈在上
//! 海住院了" (facts, no ask) and "我妈在上海住院了能刷卡吗" (facts and an ask) are told apart
//! by the model, not by a phrase list. The classifier is the search's own multinomial logistic
//! regression ([`crate::search::classifier`]).

use std::path::Path;

use serde::Deserialize;

use crate::search::classifier::{Classifier, Example, TrainParams};
use crate::text::is_cjk;

/// What a message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    /// Asks for information (any form, also a story that ends in a question).
    Question,
    /// Asks what to do in the situation ("咋整", "医保怎么弄").
    HowTo,
    /// Reports a problem without a question form ("医保卡刷不了").
    Problem,
    /// A bare keyword query ("门慢 跨省").
    Keywords,
    /// An elliptical question changing one detail of the previous one ("那北京呢").
    FollowUp,
    /// States facts only.
    Statement,
    /// Corrects something said before ("不对，是张家港的").
    Correction,
    /// A short answer to a question asked ("办了", "三级").
    Answer,
    /// Thanks, goodbye.
    Closing,
    /// Acknowledgement ("好 知道咧", "明白了 我去问问").
    Ack,
    Greeting,
    /// About the assistant, or asking for a human.
    Meta,
    Abuse,
    /// Names a whole area ("报销的事").
    Vague,
}

impl Act {
    pub const ALL: [Act; 14] = [
        Act::Question,
        Act::HowTo,
        Act::Problem,
        Act::Keywords,
        Act::FollowUp,
        Act::Statement,
        Act::Correction,
        Act::Answer,
        Act::Closing,
        Act::Ack,
        Act::Greeting,
        Act::Meta,
        Act::Abuse,
        Act::Vague,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Act::Question => "question",
            Act::HowTo => "howto",
            Act::Problem => "problem",
            Act::Keywords => "keywords",
            Act::FollowUp => "followup",
            Act::Statement => "statement",
            Act::Correction => "correction",
            Act::Answer => "answer",
            Act::Closing => "closing",
            Act::Ack => "ack",
            Act::Greeting => "greeting",
            Act::Meta => "meta",
            Act::Abuse => "abuse",
            Act::Vague => "vague",
        }
    }

    pub fn parse(id: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.id() == id)
    }

    /// The message wants information from us (a question, a problem, keywords, a follow-up).
    pub fn asks(self) -> bool {
        matches!(
            self,
            Act::Question | Act::HowTo | Act::Problem | Act::Keywords | Act::FollowUp
        )
    }

    /// Small talk: the reply is a fitting line, not an answer.
    pub fn is_social(self) -> bool {
        matches!(
            self,
            Act::Closing | Act::Ack | Act::Greeting | Act::Meta | Act::Abuse
        )
    }

    /// The message tells facts rather than asking.
    pub fn tells(self) -> bool {
        matches!(self, Act::Statement | Act::Correction | Act::Answer)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActsFile {
    act: Vec<ActRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActRaw {
    id: String,
    #[expect(dead_code, reason = "editor-facing description")]
    means: String,
    examples: Vec<String>,
}

/// The least examples an act needs.
const MIN_EXAMPLES: usize = 12;

/// Every `HOLD_OUT`-th example of each act is held out when [`ActModel::held_out`] measures
/// the classifier.
pub const HOLD_OUT: usize = 5;

/// What the situation reader found in a message, as features of the act.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals {
    /// Situation slots the message states.
    pub facts: usize,
    /// Places named with a role.
    pub places: usize,
    /// An amount of money.
    pub amount: bool,
    /// A dialog's question is waiting for an answer.
    pub pending: bool,
}

/// The trained act classifier.
pub struct ActModel {
    classifier: Classifier,
    acts: Vec<Act>,
    /// The examples, by act (for `yidi eval --acts` and the signals of each example).
    examples: Vec<(Act, String)>,
}

impl std::fmt::Debug for ActModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActModel")
            .field("examples", &self.examples.len())
            .finish()
    }
}

/// Training parameters of the act classifier (more epochs than the search's: fewer, shorter
/// texts).
fn params() -> TrainParams {
    TrainParams {
        epochs: 30,
        learning_rate: 1.0,
        l2: 0.001,
        unknown_in_norm: false,
    }
}

/// The examples of `acts.toml`, validated: every act known, at least [`MIN_EXAMPLES`] each,
/// every act present, no example under two acts.
pub fn load_examples(root: &Path) -> Result<Vec<(Act, String)>, Vec<String>> {
    const F: &str = "acts.toml";
    let mut found = Vec::new();
    let file: Option<ActsFile> = crate::knowledge::read_toml(root, F, &mut found);
    let mut errors: Vec<String> = found.iter().map(ToString::to_string).collect();
    let Some(file) = file else {
        return Err(errors);
    };
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<String, Act> = std::collections::HashMap::new();
    for (i, raw) in file.act.iter().enumerate() {
        let Some(act) = Act::parse(&raw.id) else {
            errors.push(format!(
                "{F}: act #{}: field `id`: unknown act `{}` (one of {})",
                i + 1,
                raw.id,
                Act::ALL.map(Act::id).join(", ")
            ));
            continue;
        };
        if raw.examples.len() < MIN_EXAMPLES {
            errors.push(format!(
                "{F}: act `{}`: field `examples`: needs at least {MIN_EXAMPLES} examples, has {}",
                raw.id,
                raw.examples.len()
            ));
        }
        for e in &raw.examples {
            let key = e.trim().to_string();
            if key.is_empty() {
                errors.push(format!(
                    "{F}: act `{}`: field `examples`: an empty example",
                    raw.id
                ));
                continue;
            }
            if let Some(other) = seen.insert(key.clone(), act)
                && other != act
            {
                errors.push(format!(
                    "{F}: act `{}`: field `examples`: “{key}” is also an example of `{}`",
                    raw.id,
                    other.id()
                ));
            }
            out.push((act, key));
        }
    }
    for act in Act::ALL {
        if !file.act.iter().any(|a| a.id == act.id()) {
            errors.push(format!("{F}: act `{}` is missing", act.id()));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

impl ActModel {
    /// Trains on `examples`, each with the signals the situation reader gives it.
    pub fn train(examples: Vec<(Act, String, Signals)>) -> ActModel {
        let acts: Vec<Act> = Act::ALL.to_vec();
        let training: Vec<Example> = examples
            .iter()
            .map(|(act, text, signals)| Example {
                features: features(text, signals),
                class: acts.iter().position(|a| a == act).unwrap_or(0),
                weight: 1.0,
            })
            .collect();
        let classifier = Classifier::train(&training, acts.len(), params());
        ActModel {
            classifier,
            acts,
            examples: examples.into_iter().map(|(a, t, _)| (a, t)).collect(),
        }
    }

    /// The most probable act of a message and its probability; `probs` for every act in
    /// [`Act::ALL`] order.
    pub fn classify(&self, raw: &str, signals: &Signals) -> (Act, f32, Vec<f32>) {
        let probs = self.classifier.predict(&features(raw, signals));
        let (best, p) = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or((0, 0.0), |(i, p)| (i, *p));
        (self.acts[best], p, probs)
    }

    pub fn examples(&self) -> &[(Act, String)] {
        &self.examples
    }
}

/// The features of a message for the act classifier.
pub fn features(raw: &str, signals: &Signals) -> Vec<String> {
    let simplified = fast2s::convert(raw.trim());
    let chars: Vec<char> = simplified
        .chars()
        .map(|c| match c {
            '？' => '?',
            '！' => '!',
            '，' => ',',
            _ => c.to_ascii_lowercase(),
        })
        .collect();
    let content: Vec<char> = chars
        .iter()
        .copied()
        .filter(|c| is_cjk(*c) || c.is_alphanumeric())
        .collect();
    let mut f: Vec<String> = Vec::with_capacity(content.len() * 2 + 12);
    for c in &content {
        f.push(format!("c{c}"));
    }
    // bigrams over the text with punctuation kept as a boundary mark
    let marked: Vec<char> = chars
        .iter()
        .map(|&c| {
            if is_cjk(c) || c.is_alphanumeric() {
                c
            } else if c == '?' {
                '?'
            } else {
                '|'
            }
        })
        .collect();
    for w in marked.windows(2) {
        if w[0] != '|' || w[1] != '|' {
            f.push(format!("b{}{}", w[0], w[1]));
        }
    }
    if let (Some(first), Some(last)) = (content.first(), content.last()) {
        f.push(format!("s{first}"));
        f.push(format!("e{last}"));
        if content.len() >= 2 {
            f.push(format!("e{}{}", content[content.len() - 2], last));
            f.push(format!("s{}{}", first, content[1]));
        }
    }
    let trimmed: String = chars.iter().collect::<String>();
    let trimmed = trimmed.trim_end();
    if trimmed.ends_with('?') {
        f.push("?end".into());
    }
    if let Some(p) = trimmed.find('?')
        && trimmed[p..]
            .chars()
            .skip(1)
            .any(|c| is_cjk(c) || c.is_alphanumeric())
    {
        f.push("?mid".into());
    }
    // A-not-A: 能不能, 刷不刷, 有没有, 中不中
    if content
        .windows(3)
        .any(|w| w[0] == w[2] && matches!(w[1], '不' | '没') && is_cjk(w[0]))
    {
        f.push("anota".into());
    }
    let spaces = simplified.split_whitespace().count();
    if spaces >= 2 && content.len() <= 16 && !simplified.contains(['，', ',', '。', '?', '？']) {
        f.push("spaced".into());
    }
    let n = content.len();
    let len = match n {
        0..=2 => "len2",
        3..=4 => "len4",
        5..=8 => "len8",
        9..=16 => "len16",
        17..=32 => "len32",
        _ => "len+",
    };
    f.push(len.into());
    let facts = match signals.facts {
        0 => "facts0",
        1 => "facts1",
        2..=3 => "facts3",
        _ => "facts+",
    };
    f.push(facts.into());
    if signals.places > 0 {
        f.push("places".into());
    }
    if signals.amount {
        f.push("amount".into());
    }
    if signals.pending {
        f.push("pending".into());
    }
    f
}

/// Accuracy of the act classifier on held-out examples: every [`HOLD_OUT`]-th example of each
/// act is left out of training and classified; `(act, text, predicted)` of every miss too.
pub struct HeldOut {
    pub total: usize,
    pub correct: usize,
    pub misses: Vec<(Act, String, Act)>,
}

/// Trains without every [`HOLD_OUT`]-th example of each act and classifies those.
pub fn held_out(examples: &[(Act, String, Signals)]) -> HeldOut {
    let mut train = Vec::new();
    let mut test = Vec::new();
    let mut count: std::collections::HashMap<Act, usize> = std::collections::HashMap::new();
    for e in examples {
        let k = count.entry(e.0).or_default();
        *k += 1;
        if (*k).is_multiple_of(HOLD_OUT) {
            test.push(e.clone());
        } else {
            train.push(e.clone());
        }
    }
    let model = ActModel::train(train);
    let mut correct = 0;
    let mut misses = Vec::new();
    for (act, text, signals) in &test {
        let (got, ..) = model.classify(text, signals);
        if got == *act {
            correct += 1;
        } else {
            misses.push((*act, text.clone(), got));
        }
    }
    HeldOut {
        total: test.len(),
        correct,
        misses,
    }
}
