//! Conversation data beside the FAQ: small talk (`knowledge/smalltalk.toml`) and
//! clarification menus and follow-up cues (`knowledge/clarify.toml`), loaded and validated
//! like the rest of the knowledge, and the matchers over them. Pure: no IO after loading.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::knowledge::Knowledge;
use crate::text::normalize;

/// Intents that the assistant itself refers to, so every smalltalk file must define them.
pub const REQUIRED_INTENTS: [&str; 4] = ["empty", "emoji", "gibberish", "ack"];

/// At most this many options in a clarifying question (cli.md).
pub const MAX_OPTIONS: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmalltalkFile {
    #[serde(default)]
    fillers: Vec<String>,
    #[serde(default)]
    intent: Vec<IntentRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentRaw {
    id: String,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    anywhere: Vec<String>,
    #[serde(default)]
    max_chars: Option<usize>,
    #[serde(default)]
    priority: i32,
    reply: String,
    #[serde(default)]
    by_region: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClarifyFile {
    #[serde(default)]
    fillers: Vec<String>,
    #[serde(default)]
    vague: Vec<VagueRaw>,
    followup: FollowupRaw,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VagueRaw {
    id: String,
    words: Vec<String>,
    ask: String,
    options: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowupRaw {
    #[serde(default)]
    starts: Vec<String>,
    #[serde(default)]
    contains: Vec<String>,
    max_chars: usize,
}

/// One kind of small talk and what the assistant says to it.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    phrases: Vec<String>,
    anywhere: Vec<String>,
    max_chars: usize,
    priority: i32,
    reply: String,
    by_region: BTreeMap<String, String>,
}

impl Intent {
    /// The reply, for the user's insured region when one is known and has its own text.
    pub fn reply(&self, region: Option<&str>, hotline: &str) -> String {
        region
            .and_then(|r| self.by_region.get(r))
            .unwrap_or(&self.reply)
            .replace("{hotline}", hotline)
    }
}

impl Talk {
    /// Adds one region's replies (from its region file): `replies[intent]` becomes that
    /// intent's reply for users of `region`. Every intent must exist; errors name `file`.
    pub fn add_region_replies(
        &mut self,
        file: &str,
        region: &str,
        replies: &BTreeMap<String, String>,
    ) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        for (intent, text) in replies {
            match self.intents.iter_mut().find(|i| &i.id == intent) {
                Some(i) => {
                    i.by_region.insert(region.to_string(), text.clone());
                }
                None => errors.push(format!(
                    "{file}: field replies.{intent}: no intent `{intent}` in smalltalk.toml"
                )),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// What [`Talk::read`] found in a message.
#[derive(Debug, Clone, Copy)]
pub struct TalkReading<'a> {
    pub smalltalk: Option<&'a Intent>,
    pub vague: Option<&'a Vague>,
    /// A continuation of the current topic (a follow-up cue, or short).
    pub continues: bool,
    /// A follow-up cue, whatever the length.
    pub followup_cue: bool,
}

/// An area too broad to answer ("报销的事"), with the questions it could mean.
#[derive(Debug, Clone)]
pub struct Vague {
    pub id: String,
    pub words: Vec<String>,
    pub ask: String,
    pub options: Vec<String>,
}

/// Small talk, clarification menus and follow-up cues.
#[derive(Debug, Clone)]
pub struct Talk {
    intents: Vec<Intent>,
    /// Every intent's phrases with the index of its intent, the longest first (intents in
    /// file order among equals): the order `classify` removes them in.
    by_length: Vec<(String, usize)>,
    /// Finds whether any of `by_length`'s phrases occurs in a message at all (most
    /// messages hold none: then nothing is removed and the list need not be walked).
    any_phrase: Option<aho_corasick::AhoCorasick>,
    fillers: Vec<String>,
    vague: Vec<Vague>,
    vague_fillers: Vec<String>,
    starts: Vec<String>,
    contains: Vec<String>,
    followup_max_chars: usize,
}

/// Reads one TOML file of the knowledge folder with the knowledge's own reader (line and
/// field in the message); errors become `file: …` lines.
fn read<T: serde::de::DeserializeOwned>(
    root: &Path,
    file: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let mut found = Vec::new();
    let value = crate::knowledge::read_toml(root, file, &mut found);
    errors.extend(found.iter().map(ToString::to_string));
    value
}

/// Normalised, non-empty, longest first (so that the longest phrase is removed first).
fn phrases(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = list
        .iter()
        .map(|p| strip(&normalize(p)))
        .filter(|p| !p.is_empty())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.chars().count()));
    out.dedup();
    out
}

/// The text without punctuation, symbols and white space.
fn strip(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Removes every occurrence of `list`'s phrases (longest first); true if any was found.
fn remove_all(text: &mut String, list: &[String]) -> bool {
    let mut found = false;
    for p in list {
        if text.contains(p.as_str()) {
            *text = text.replace(p.as_str(), "");
            found = true;
        }
    }
    found
}

/// How an entry is named in errors: its id, or its position (`#3`) without one.
fn entry_name(id: &str, index: usize) -> String {
    if id.trim().is_empty() {
        format!("#{}", index + 1)
    } else {
        id.to_string()
    }
}

/// The entry's name; `duplicate` is called when its id is empty or already `seen`.
fn unique_id(
    id: &str,
    index: usize,
    seen: &mut HashSet<String>,
    duplicate: impl FnOnce(),
) -> String {
    if id.trim().is_empty() || !seen.insert(id.to_string()) {
        duplicate();
    }
    entry_name(id, index)
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

impl Talk {
    /// Loads `smalltalk.toml` and `clarify.toml` from the knowledge folder; clarification
    /// options must be FAQ ids of `knowledge`. All problems at once, one line each.
    pub fn load(root: &Path, knowledge: &Knowledge) -> Result<Talk, Vec<String>> {
        let mut errors = Vec::new();
        let small: Option<SmalltalkFile> = read(root, "smalltalk.toml", &mut errors);
        let clarify: Option<ClarifyFile> = read(root, "clarify.toml", &mut errors);
        let mut intents = Vec::new();
        let mut fillers = Vec::new();
        if let Some(file) = small {
            const F: &str = "smalltalk.toml";
            fillers = phrases(&file.fillers);
            let mut seen = HashSet::new();
            for (i, raw) in file.intent.into_iter().enumerate() {
                let name = unique_id(&raw.id, i, &mut seen, || {
                    errors.push(format!(
                        "{F}: intent `{}`: field `id`: must be non-empty and unique",
                        entry_name(&raw.id, i)
                    ))
                });
                if raw.reply.trim().is_empty() {
                    errors.push(format!(
                        "{F}: intent `{name}`: field `reply`: must not be empty"
                    ));
                }
                if !raw.anywhere.is_empty() && raw.max_chars.is_none() {
                    errors.push(format!(
                        "{F}: intent `{name}`: field `max_chars`: required with `anywhere`"
                    ));
                }
                for (region, text) in &raw.by_region {
                    if text.trim().is_empty() {
                        errors.push(format!(
                            "{F}: intent `{name}`: field `by_region.{region}`: must not be empty"
                        ));
                    }
                }
                intents.push(Intent {
                    id: raw.id,
                    phrases: phrases(&raw.phrases),
                    anywhere: phrases(&raw.anywhere),
                    max_chars: raw.max_chars.unwrap_or(0),
                    priority: raw.priority,
                    reply: raw.reply,
                    by_region: raw.by_region,
                });
            }
            for required in REQUIRED_INTENTS {
                if !seen.contains(required) {
                    errors.push(format!(
                        "{F}: intent `{required}` is missing (the assistant uses it)"
                    ));
                }
            }
        }
        let mut by_length: Vec<(String, usize)> = intents
            .iter()
            .enumerate()
            .flat_map(|(k, i)| i.phrases.iter().map(move |p| (p.clone(), k)))
            .collect();
        by_length.sort_by_cached_key(|(p, _)| std::cmp::Reverse(p.chars().count()));
        // literals well within the automaton's limits; without it every phrase is tried
        let any_phrase = crate::text::literals(by_length.iter().map(|(p, _)| p.as_str()));
        let mut talk = Talk {
            intents,
            by_length,
            any_phrase,
            fillers,
            vague: Vec::new(),
            vague_fillers: Vec::new(),
            starts: Vec::new(),
            contains: Vec::new(),
            followup_max_chars: 0,
        };
        if let Some(file) = clarify {
            const F: &str = "clarify.toml";
            talk.vague_fillers = phrases(&file.fillers);
            // the longest first: "想问下" goes as a whole, not as "问下" leaving "想"
            talk.vague_fillers
                .sort_by_key(|f| std::cmp::Reverse(f.chars().count()));
            let mut seen = HashSet::new();
            for (i, raw) in file.vague.into_iter().enumerate() {
                let name = unique_id(&raw.id, i, &mut seen, || {
                    errors.push(format!(
                        "{F}: vague `{}`: field `id`: must be non-empty and unique",
                        entry_name(&raw.id, i)
                    ))
                });
                if raw.words.iter().all(|w| w.trim().is_empty()) {
                    errors.push(format!(
                        "{F}: vague `{name}`: field `words`: needs at least one word"
                    ));
                }
                if raw.ask.trim().is_empty() {
                    errors.push(format!(
                        "{F}: vague `{name}`: field `ask`: must not be empty"
                    ));
                }
                if raw.options.len() < 2 || raw.options.len() > MAX_OPTIONS {
                    errors.push(format!(
                        "{F}: vague `{name}`: field `options`: needs 2 to {MAX_OPTIONS} FAQ ids"
                    ));
                }
                for o in &raw.options {
                    if knowledge.faq(o).is_none() {
                        errors.push(format!(
                            "{F}: vague `{name}`: field `options`: unknown FAQ id `{o}`"
                        ));
                    }
                }
                talk.vague.push(Vague {
                    id: raw.id,
                    words: phrases(&raw.words),
                    ask: raw.ask,
                    options: raw.options,
                });
            }
            talk.starts = phrases(&file.followup.starts);
            talk.contains = phrases(&file.followup.contains);
            talk.followup_max_chars = file.followup.max_chars;
        }
        if errors.is_empty() {
            Ok(talk)
        } else {
            Err(errors)
        }
    }

    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// The small-talk intent of a whole message, if it is small talk: a message with no
    /// words (emoji only, or empty), stray Latin letters, a message made only of small-talk
    /// phrases and fillers, or a short one with an `anywhere` phrase. The highest priority wins.
    pub fn classify(&self, message: &str) -> Option<&Intent> {
        self.classify_stripped(message, strip(&normalize(message)))
    }

    /// [`Talk::classify`] of a message whose stripped, normalised text is `s`.
    fn classify_stripped(&self, message: &str, s: String) -> Option<&Intent> {
        if s.is_empty() {
            let id = if message.trim().is_empty() {
                "empty"
            } else {
                "emoji"
            };
            return self.intent(id);
        }
        let chars = s.chars().count();
        let mut best: Option<&Intent> = None;
        fn consider<'a>(i: &'a Intent, best: &mut Option<&'a Intent>) {
            if best.is_none_or(|b| i.priority > b.priority) {
                *best = Some(i);
            }
        }
        // whole message: phrases of any intents plus fillers, nothing else
        let mut rest = s.clone();
        let mut matched = Vec::new();
        // no phrase in the message: none can be found in what removing nothing leaves
        if self.any_phrase.as_ref().is_none_or(|a| a.is_match(&s)) {
            for (p, i) in &self.by_length {
                if rest.contains(p.as_str()) {
                    rest = rest.replace(p.as_str(), "");
                    matched.push(&self.intents[*i]);
                }
            }
        }
        remove_all(&mut rest, &self.fillers);
        if rest.is_empty() {
            for i in matched {
                consider(i, &mut best);
            }
        }
        for i in &self.intents {
            if chars <= i.max_chars && i.anywhere.iter().any(|p| s.contains(p.as_str())) {
                consider(i, &mut best);
            }
        }
        if best.is_some() {
            return best;
        }
        // no Chinese at all and no number: letters typed at random, or another language
        if !s.chars().any(is_cjk) && s.chars().any(|c| c.is_ascii_alphabetic()) {
            return self.intent("gibberish");
        }
        None
    }

    /// The vague area a message names and nothing more ("报销的事", "备案的问题").
    pub fn vague(&self, message: &str) -> Option<&Vague> {
        self.vague_stripped(strip(&normalize(message)))
    }

    fn vague_stripped(&self, mut s: String) -> Option<&Vague> {
        remove_all(&mut s, &self.vague_fillers);
        if s.is_empty() {
            return None;
        }
        self.vague.iter().find(|v| v.words.contains(&s))
    }

    /// The vague area with id `id`.
    pub fn vague_by_id(&self, id: &str) -> Option<&Vague> {
        self.vague.iter().find(|v| v.id == id)
    }

    /// Whether a message has a follow-up's words ("那…", "要是…", "这种…"), whatever its length.
    pub fn has_followup_cue(&self, message: &str) -> bool {
        self.followup_cue_stripped(&strip(&normalize(message)))
    }

    fn followup_cue_stripped(&self, s: &str) -> bool {
        self.starts.iter().any(|p| s.starts_with(p.as_str()))
            || self.contains.iter().any(|p| s.contains(p.as_str()))
    }

    /// Everything small talk and follow-up cues say of one message, normalised once (`norm`
    /// is `text::normalize(message)`).
    pub fn read(&self, message: &str, norm: &str) -> TalkReading<'_> {
        let s = strip(norm);
        TalkReading {
            smalltalk: self.classify_stripped(message, s.clone()),
            vague: self.vague_stripped(s.clone()),
            continues: self.is_followup_stripped(&s),
            followup_cue: self.followup_cue_stripped(&s),
        }
    }

    /// Whether a message reads as a continuation of the current topic ("那要多久").
    pub fn is_followup(&self, message: &str) -> bool {
        self.is_followup_stripped(&strip(&normalize(message)))
    }

    fn is_followup_stripped(&self, s: &str) -> bool {
        if s.is_empty() {
            return false;
        }
        s.chars().count() <= self.followup_max_chars
            || self.starts.iter().any(|p| s.starts_with(p.as_str()))
            || self.contains.iter().any(|p| s.contains(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use crate::assistant::shipped;

    #[test]
    fn shipped_small_talk_is_recognised() {
        let a = shipped();
        let t = &a.talk;
        let id = |m: &str| t.classify(m).map(|i| i.id.clone());
        assert_eq!(id("您好").as_deref(), Some("greeting"));
        assert_eq!(id("早上好呀").as_deref(), Some("greeting"));
        assert_eq!(id("谢谢，再见").as_deref(), Some("goodbye"));
        assert_eq!(id("懂了，谢谢").as_deref(), Some("thanks"));
        assert_eq!(id("收到").as_deref(), Some("ack"));
        assert_eq!(id("你是人工还是AI").as_deref(), Some("identity"));
        assert_eq!(id("那帮我转个人工").as_deref(), Some("human"));
        assert_eq!(id("zxcvbnm").as_deref(), Some("gibberish"));
        assert_eq!(id("😂👍").as_deref(), Some("emoji"));
        assert_eq!(id("   ").as_deref(), Some("empty"));
        // questions are not small talk, even with a greeting or a small-talk word in them
        for q in [
            "你好，异地就医备案要带什么材料",
            "社保卡在外地刷不了怎么办",
            "人工耳蜗在外地装能报销吗",
            "可以让家人代办备案吗",
        ] {
            assert_eq!(id(q), None, "{q}");
        }
    }

    #[test]
    fn vague_areas_and_followups() {
        let a = shipped();
        let t = &a.talk;
        assert_eq!(
            t.vague("报销的事").map(|v| v.id.as_str()),
            Some("reimbursement")
        );
        assert_eq!(t.vague("备案的问题").map(|v| v.id.as_str()), Some("filing"));
        assert_eq!(
            t.vague("报销的事想问下").map(|v| v.id.as_str()),
            Some("reimbursement")
        );
        assert!(t.vague("备案要带什么材料").is_none());
        assert!(t.is_followup("那要多久"));
        assert!(t.is_followup("那门诊呢"));
        assert!(t.is_followup("需要带什么"));
        assert!(!t.is_followup("苏州参保的人去上海看病需要备案吗"));
    }

    #[test]
    fn invalid_files_are_reported_with_file_intent_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let a = shipped();
        std::fs::write(
            dir.path().join("smalltalk.toml"),
            "[[intent]]\nid = \"human\"\nanywhere = [\"转人工\"]\nreply = \"\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("clarify.toml"),
            "[[vague]]\nid = \"x\"\nwords = [\"报销\"]\nask = \"哪个？\"\noptions = [\"nope\"]\n[followup]\nmax_chars = 8\n",
        )
        .unwrap();
        let errors = super::Talk::load(dir.path(), &a.knowledge).unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "smalltalk.toml: intent `human`: field `reply`",
            "smalltalk.toml: intent `human`: field `max_chars`",
            "smalltalk.toml: intent `gibberish` is missing",
            "clarify.toml: vague `x`: field `options`: needs 2",
            "clarify.toml: vague `x`: field `options`: unknown FAQ id `nope`",
        ] {
            assert!(all.contains(needle), "{needle} not in:\n{all}");
        }
    }
}
