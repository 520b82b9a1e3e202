//! Loading and validating the knowledge folder.
//!
//! Files are parsed in two stages: serde reads the raw TOML shape ([`raw`]), then
//! [`validate`](self) turns it into the typed [`Knowledge`] or a list of
//! [`KnowledgeError`]s, each naming the file, the entry and the field. A broken folder never
//! yields a half-loaded `Knowledge`.

mod provenance;
mod raw;

pub use provenance::{DocDate, Flagged, Freshness, Provenance, SECONDARY_MARK, Tier};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Longest answer, in characters, that fits a chat bubble.
pub const MAX_ANSWER_CHARS: usize = 600;

/// Longest brief answer (an entry's `brief`, a case's `say`): one or two sentences.
pub const MAX_BRIEF_CHARS: usize = 120;

/// The situation words a case may name, and their values (../shared/spec/checklist.md, and
/// yidi's `direction` and `patient`; `insured_region` takes any region id and `other`,
/// checked against the regions when the assistant loads).
pub const CASE_KEYS: [(&str, &[&str]); 11] = [
    ("insured_region", &[]),
    ("scheme", &["employee", "resident"]),
    ("employment", &["working", "retired"]),
    (
        "care_location",
        &["in_province", "shanghai", "yangtze_delta", "other_province"],
    ),
    (
        "filing_type",
        &[
            "resettled_retiree",
            "long_term_resident",
            "posted_worker",
            "referral",
            "temporary",
            "none",
        ],
    ),
    ("filed", &["true", "false"]),
    (
        "stage",
        &["before_care", "in_hospital", "discharged_self_paid"],
    ),
    (
        "visit",
        &["inpatient", "outpatient", "emergency", "maternity"],
    ),
    ("by_proxy", &["true", "false"]),
    ("direction", &["outbound", "inbound", "within"]),
    ("patient", &["self", "parent", "spouse", "child"]),
];

/// The brief answer for people in one situation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Case {
    /// Every condition must hold: the situation's value of the key is one of the values.
    pub when: BTreeMap<String, Vec<String>>,
    pub say: String,
}

impl Case {
    /// Whether the case applies to a situation (`get` gives a key's value, if known).
    pub fn applies<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.when
            .iter()
            .all(|(k, vs)| get(k).is_some_and(|v| vs.iter().any(|x| x == v)))
    }
}

/// The regions a rule can belong to.
pub const REGIONS: [&str; 4] = ["national", "jiangsu", "suzhou", "zhangjiagang"];

/// One validated FAQ entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaqEntry {
    pub id: String,
    pub question: String,
    pub variants: Vec<String>,
    pub answer: String,
    /// One or two sentences that answer the question for anyone: chat leads with it.
    pub brief: String,
    /// Brief answers for particular situations; the first that applies replaces `brief`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<Case>,
    pub sources: Vec<String>,
    /// The day the entry was last checked against its sources.
    pub as_of: DocDate,
    pub tags: Vec<String>,
    pub region: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotline: Option<String>,
    /// True when the answer also holds outside cross-region care (起付线, 冒用医保卡…), so
    /// the entry may answer a question that names no cross-region situation. Entries that
    /// only apply to cross-region care leave it false.
    #[serde(skip)]
    pub general: bool,
    /// The out-of-scope topic that a question gets when it matches this entry but has no
    /// cross-region sense (生育 without 异地 → the maternity-benefit topic). Only on entries
    /// that are not `general`.
    #[serde(skip)]
    pub local_topic: Option<String>,
    /// Whom the entry is for: `outbound` (people insured with us who go away for care) or
    /// `inbound` (people insured elsewhere who come to us); `None`: anyone.
    #[serde(skip)]
    pub direction: Option<String>,
    /// The situation the entry is written for (e.g. `stage = "in_hospital"` for the backfill
    /// before discharge): when the person's situation contradicts it and a close hit fits,
    /// that hit answers instead. Empty: any situation.
    #[serde(skip)]
    pub fits: BTreeMap<String, Vec<String>>,
    /// Words (normalised) one of which a message must hold for this entry to answer it
    /// ("别人", "借", "老公的"… for the entry on using someone else's card): without them the
    /// entry is not a reading of the message. Empty: no such condition.
    #[serde(skip)]
    pub requires: Vec<String>,
    /// The file the entry came from, relative to the knowledge folder.
    #[serde(skip)]
    pub file: String,
}

/// A source document that entries cite.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    /// The seed file (../shared/seeds/), for the documents stored there.
    pub file: Option<String>,
    pub title: String,
    /// Short name for chat citations.
    pub short: String,
    pub region: Option<String>,
    /// When it was issued or published, when known.
    pub date: Option<DocDate>,
    pub tier: Tier,
    /// The page that was read.
    pub url: Option<String>,
}

/// Groups of equivalent terms; the first term of a group is the canonical one.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    pub groups: Vec<Vec<String>>,
}

/// A topic the assistant does not cover, with typical phrasings (search uses them to
/// recognise out-of-scope questions).
#[derive(Debug, Clone)]
pub struct OutOfScopeTopic {
    pub id: String,
    pub label: String,
    /// What the user is told: that this is outside cross-region care, and whom to ask.
    pub referral: String,
    pub examples: Vec<String>,
}

/// Everything the assistant knows, validated.
#[derive(Debug, Clone)]
pub struct Knowledge {
    pub root: PathBuf,
    pub faqs: Vec<FaqEntry>,
    pub sources: Vec<Source>,
    pub synonyms: Synonyms,
    pub out_of_scope: Vec<OutOfScopeTopic>,
    /// Words that give a question a cross-region sense (异地, 外地, 备案, 转诊, 回老家…), from
    /// `out_of_scope.toml`, normalised.
    pub cross_region_cues: Vec<String>,
    by_id: HashMap<String, usize>,
}

impl Knowledge {
    /// Loads and validates the knowledge folder at `root`.
    pub fn load(root: impl AsRef<Path>) -> Result<Knowledge, KnowledgeErrors> {
        let root = root.as_ref();
        let mut errors = Vec::new();
        let sources = load_sources(root, &mut errors);
        let synonyms = load_synonyms(root, &mut errors);
        let faqs = load_faqs(root, &sources, &mut errors);
        // with sources.toml broken the tiers are unknown: no follow-on errors
        if !errors.iter().any(|e| e.file == "sources.toml") {
            check_secondary_notes(&faqs, &sources, &mut errors);
        }
        let (out_of_scope, cross_region_cues) = load_out_of_scope(root, &mut errors);
        for e in &faqs {
            if let Some(t) = &e.local_topic
                && !out_of_scope.iter().any(|o| &o.id == t)
            {
                errors.push(err(
                    &e.file,
                    Some(&e.id),
                    Some("local_topic"),
                    format!("names unknown out-of-scope topic `{t}`"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(KnowledgeErrors(without_follow_ons(errors, &sources, &faqs)));
        }
        let by_id = faqs
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        Ok(Knowledge {
            root: root.to_path_buf(),
            faqs,
            sources,
            synonyms,
            out_of_scope,
            cross_region_cues,
            by_id,
        })
    }

    /// The knowledge with only the FAQ entries at `indexes` (in that order): what one search
    /// shard is built from (sources are left out: search does not read them).
    pub fn subset(&self, indexes: &[usize]) -> Knowledge {
        let faqs: Vec<FaqEntry> = indexes.iter().map(|&i| self.faqs[i].clone()).collect();
        let by_id = faqs
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        Knowledge {
            root: self.root.clone(),
            faqs,
            sources: Vec::new(),
            synonyms: self.synonyms.clone(),
            out_of_scope: self.out_of_scope.clone(),
            cross_region_cues: self.cross_region_cues.clone(),
            by_id,
        }
    }

    pub fn faq(&self, id: &str) -> Option<&FaqEntry> {
        self.by_id.get(id).map(|&i| &self.faqs[i])
    }

    pub fn out_of_scope_topic(&self, id: &str) -> Option<&OutOfScopeTopic> {
        self.out_of_scope.iter().find(|t| t.id == id)
    }

    /// The hotline that the assistant gives when it cannot answer (from the `contacts` entry).
    pub fn hotline(&self) -> &str {
        self.faq("contacts")
            .and_then(|e| e.hotline.as_deref())
            .unwrap_or_default()
    }

    /// A human-readable label for a citation such as `004 第十八条`: the document's title,
    /// the place in it, its date and tier ("《江苏省异地就医经办服务规程》第十八条（2019年，官方原文）").
    pub fn cite(&self, source: &str) -> String {
        let (id, locator) = source.split_once(' ').unwrap_or((source, ""));
        match self.source(id) {
            Some(s) => {
                let when = s
                    .date
                    .map(|d| format!("{}，", d.chinese()))
                    .unwrap_or_default();
                format!(
                    "《{}》{}（{when}{}）",
                    s.title,
                    locator.trim(),
                    s.tier.label()
                )
            }
            None => source.to_string(),
        }
    }

    /// The source document with this id.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The documents an entry cites, each once, in citation order.
    pub fn documents(&self, entry: &FaqEntry) -> Vec<&Source> {
        let mut out: Vec<&Source> = Vec::new();
        for c in &entry.sources {
            let id = c.split_whitespace().next().unwrap_or("");
            if let Some(s) = self.source(id)
                && !out.iter().any(|o| o.id == s.id)
            {
                out.push(s);
            }
        }
        out
    }

    /// Each of an entry's citations with its document's title, date, tier and address.
    pub fn provenance(&self, entry: &FaqEntry) -> Vec<Provenance> {
        entry
            .sources
            .iter()
            .filter_map(|c| {
                let id = c.split_whitespace().next().unwrap_or("");
                let s = self.source(id)?;
                Some(Provenance {
                    source: c.clone(),
                    document: s.title.clone(),
                    date: s.date,
                    tier: s.tier,
                    url: s.url.clone(),
                })
            })
            .collect()
    }

    /// The strongest tier among an entry's sources: `Secondary` means the entry rests on
    /// secondary sources only.
    pub fn tier(&self, entry: &FaqEntry) -> Tier {
        self.documents(entry)
            .iter()
            .map(|s| s.tier)
            .max()
            .unwrap_or(Tier::Secondary)
    }

    /// The newest dated document an entry cites.
    pub fn newest_source(&self, entry: &FaqEntry) -> Option<(&Source, DocDate)> {
        self.documents(entry)
            .into_iter()
            .filter_map(|s| Some((s, s.date?)))
            .max_by_key(|(_, d)| d.last_day())
    }

    /// The entries whose newest source is older than `max_age_years` on `today`, and those
    /// resting only on secondary sources (`yidi check`).
    pub fn freshness(&self, today: DocDate, max_age_years: u32) -> Freshness {
        let flag = |e: &FaqEntry| Flagged {
            id: e.id.clone(),
            file: e.file.clone(),
            as_of: e.as_of,
            newest: self.newest_source(e).map(|(s, d)| (s.id.clone(), d)),
            documents: self.documents(e).iter().map(|s| s.id.clone()).collect(),
        };
        let mut report = Freshness {
            max_age_years,
            today: Some(today),
            ..Freshness::default()
        };
        for e in &self.faqs {
            let stale = match self.newest_source(e) {
                Some((_, d)) => d.older_than(max_age_years, today),
                None => true,
            };
            if stale {
                report.stale.push(flag(e));
            }
            if self.tier(e) == Tier::Secondary {
                report.secondary_only.push(flag(e));
            }
        }
        report
    }

    /// A brief citation for chat: the source's short name, and the locator when it is an
    /// article or question number ("第八条", "问5"; other locators are left to the full
    /// citation). An unknown source is its own name.
    pub fn cite_short(&self, source: &str) -> (String, Option<String>) {
        let (id, locator) = source.split_once(' ').unwrap_or((source, ""));
        let locator = locator.trim();
        match self.source(id) {
            Some(s) => (
                s.short.clone(),
                is_numbered_locator(locator).then(|| locator.to_string()),
            ),
            None => (source.to_string(), None),
        }
    }
}

/// An entry whose sources are all secondary says so where the chat shows it: in its brief
/// and in every case ([`SECONDARY_MARK`]).
fn check_secondary_notes(faqs: &[FaqEntry], sources: &[Source], errors: &mut Vec<KnowledgeError>) {
    for e in faqs {
        let tiers: Option<Vec<Tier>> = e
            .sources
            .iter()
            .map(|c| {
                let id = c.split_whitespace().next().unwrap_or("");
                sources.iter().find(|s| s.id == id).map(|s| s.tier)
            })
            .collect();
        let Some(tiers) = tiers else { continue };
        if tiers.is_empty() || tiers.iter().any(|t| *t != Tier::Secondary) {
            continue;
        }
        let says = |field: &str, text: &str, errors: &mut Vec<KnowledgeError>| {
            if !text.contains(SECONDARY_MARK) {
                errors.push(err(
                    &e.file,
                    Some(&e.id),
                    Some(field),
                    format!(
                        "the entry rests only on secondary sources: say so (\"{SECONDARY_MARK}\") \
                         and point to the hotline"
                    ),
                ));
            }
        };
        says("brief", &e.brief, errors);
        for (k, c) in e.cases.iter().enumerate() {
            says(&format!("case[{}].say", k + 1), &c.say, errors);
        }
    }
}

/// "第八条", "问5", "相关事项3": a locator short enough to keep in a chat citation.
fn is_numbered_locator(locator: &str) -> bool {
    let n = locator.chars().count();
    n > 0 && n <= 8 && (locator.starts_with('第') || locator.chars().any(|c| c.is_ascii_digit()))
}

/// One problem in the knowledge folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeError {
    /// Path relative to the knowledge folder.
    pub file: String,
    /// The entry id, or its position (`#3`) when it has no usable id.
    pub entry: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for KnowledgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(entry) = &self.entry {
            write!(f, ": entry `{entry}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one load, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct KnowledgeErrors(pub Vec<KnowledgeError>);

impl fmt::Display for KnowledgeErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

fn err(
    file: &str,
    entry: Option<&str>,
    field: Option<&str>,
    message: impl Into<String>,
) -> KnowledgeError {
    KnowledgeError {
        file: file.to_string(),
        entry: entry.map(str::to_string),
        field: field.map(str::to_string),
        message: message.into(),
    }
}

pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(
    root: &Path,
    rel: &str,
    errors: &mut Vec<KnowledgeError>,
) -> Option<T> {
    let path = root.join(rel);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(err(rel, None, None, format!("cannot read: {e}")));
            return None;
        }
    };
    match toml::from_str::<T>(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let (line, _) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((0, 0));
            let mut msg = e.message().to_string();
            if line > 0 {
                msg = format!("line {line}: {msg}");
            }
            // serde names the missing/unknown field in its message; a type error is about the
            // key of the value it points at
            let typed = ["invalid type", "invalid value", "invalid length"]
                .iter()
                .any(|p| e.message().starts_with(p));
            let field = field_in_message(e.message()).or_else(|| {
                e.span()
                    .filter(|_| typed)
                    .and_then(|s| key_at(&text, s.start))
            });
            errors.push(err(
                rel,
                entry_at(&text, e.span().map(|s| s.start)).as_deref(),
                field.as_deref(),
                msg,
            ));
            None
        }
    }
}

/// Drops the errors that only follow from a file that could not be read at all: with no
/// `sources.toml`, every citation looks unknown; with a FAQ file unreadable, every `related`
/// link into it, and the `contacts` entry if it is there.
fn without_follow_ons(
    errors: Vec<KnowledgeError>,
    sources: &[Source],
    faqs: &[FaqEntry],
) -> Vec<KnowledgeError> {
    let failed = |file: &str| {
        errors.iter().any(|e| e.file == file)
            && if file == "sources.toml" {
                sources.is_empty()
            } else {
                !faqs.iter().any(|f| f.file == file)
            }
    };
    let sources_failed = failed("sources.toml");
    let faq_failed = errors
        .iter()
        .any(|e| e.file.starts_with("faq/") && e.file.ends_with(".toml") && failed(&e.file));
    errors
        .iter()
        .filter(|e| {
            let field = e.field.as_deref();
            let citation = field == Some("sources") && e.message.contains("sources.toml");
            let link = (field == Some("related") && e.message.starts_with("names unknown entry"))
                || (e.file == "faq/" && e.entry.as_deref() == Some("contacts"));
            !((sources_failed && citation) || (faq_failed && link))
        })
        .cloned()
        .collect()
}

/// The key of the `key = value` line at or before byte `offset`: the field a type error is
/// about (toml names the type, not the field).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    // the line holding `offset`, then the lines before it, nearest first
    let line_end = text[offset..].find('\n').map_or(text.len(), |p| offset + p);
    for line in text[..line_end].lines().rev() {
        let line = line.trim();
        if line.starts_with('[') {
            // a table header: the error is about the table, not a key of it
            return None;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Some(key.to_string());
            }
        }
    }
    None
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    (line, before.len() - before.rfind('\n').map_or(0, |p| p + 1))
}

/// The `id` of the `[[faq]]` table that contains byte `offset`, if one is declared before it.
fn entry_at(text: &str, offset: Option<usize>) -> Option<String> {
    let offset = offset?.min(text.len());
    let table_start = if text[offset..].starts_with("[[") {
        offset
    } else {
        text[..offset].rfind("[[")?
    };
    let rest = &text[table_start..];
    let end = rest[2..].find("[[").map_or(rest.len(), |p| p + 2);
    rest[..end].lines().find_map(|l| {
        let l = l.trim();
        let v = l.strip_prefix("id")?.trim_start().strip_prefix('=')?.trim();
        Some(v.trim_matches('"').to_string())
    })
}

fn field_in_message(msg: &str) -> Option<String> {
    if !(msg.starts_with("missing field") || msg.starts_with("unknown field")) {
        return None;
    }
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

fn load_sources(root: &Path, errors: &mut Vec<KnowledgeError>) -> Vec<Source> {
    const FILE: &str = "sources.toml";
    let Some(raw) = read_toml::<raw::SourcesFile>(root, FILE, errors) else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.source.into_iter().enumerate() {
        let label = if s.id.trim().is_empty() {
            format!("#{}", i + 1)
        } else {
            s.id.clone()
        };
        if !is_source_id(&s.id) {
            errors.push(err(
                FILE,
                Some(&label),
                Some("id"),
                "must be a three-digit seed id such as \"004\"",
            ));
        } else if !seen.insert(s.id.clone()) {
            errors.push(err(FILE, Some(&label), Some("id"), "is declared twice"));
        }
        if s.title.trim().is_empty() {
            errors.push(err(FILE, Some(&label), Some("title"), "must not be empty"));
        }
        let short = match s.short {
            Some(short) if short.trim().is_empty() => {
                errors.push(err(FILE, Some(&label), Some("short"), "must not be empty"));
                short
            }
            Some(short) => short,
            None => s.title.clone(),
        };
        let date = s.date.as_deref().and_then(|d| {
            DocDate::parse(d)
                .inspect_err(|e| errors.push(err(FILE, Some(&label), Some("date"), e.clone())))
                .ok()
        });
        let tier = match s.tier.as_deref() {
            None => {
                errors.push(err(
                    FILE,
                    Some(&label),
                    Some("tier"),
                    format!("is missing: one of {}", Tier::VALUES.join(", ")),
                ));
                Tier::Secondary
            }
            Some(t) => Tier::parse(t).unwrap_or_else(|| {
                errors.push(err(
                    FILE,
                    Some(&label),
                    Some("tier"),
                    format!("{t:?} is not one of {}", Tier::VALUES.join(", ")),
                ));
                Tier::Secondary
            }),
        };
        if let Some(u) = &s.url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            errors.push(err(
                FILE,
                Some(&label),
                Some("url"),
                format!("{u:?} is not an http(s) address"),
            ));
        }
        if s.file.as_deref().is_none_or(|f| f.trim().is_empty()) && s.url.is_none() {
            errors.push(err(
                FILE,
                Some(&label),
                None,
                "needs a `file` (a seed) or the `url` of the page that was read",
            ));
        }
        out.push(Source {
            id: s.id,
            file: s.file,
            title: s.title,
            short,
            region: s.region,
            date,
            tier,
            url: s.url,
        });
    }
    out
}

fn is_source_id(id: &str) -> bool {
    id.len() == 3 && id.bytes().all(|b| b.is_ascii_digit())
}

fn load_synonyms(root: &Path, errors: &mut Vec<KnowledgeError>) -> Synonyms {
    const FILE: &str = "synonyms.toml";
    let Some(raw) = read_toml::<raw::SynonymsFile>(root, FILE, errors) else {
        return Synonyms::default();
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut groups = Vec::new();
    for (i, g) in raw.group.into_iter().enumerate() {
        let label = format!(
            "#{} ({})",
            i + 1,
            g.terms.first().map_or("", String::as_str)
        );
        if g.terms.len() < 2 {
            errors.push(err(
                FILE,
                Some(&label),
                Some("terms"),
                "a group needs at least two terms",
            ));
        }
        let mut terms = Vec::new();
        for t in g.terms {
            let norm = crate::text::normalize(&t);
            if norm.is_empty() || norm.contains(' ') {
                errors.push(err(
                    FILE,
                    Some(&label),
                    Some("terms"),
                    format!("term {t:?} must be one word without spaces"),
                ));
                continue;
            }
            if let Some(other) = seen.insert(norm.clone(), i + 1) {
                errors.push(err(
                    FILE,
                    Some(&label),
                    Some("terms"),
                    format!("term {t:?} is already in group #{other}"),
                ));
                continue;
            }
            terms.push(norm);
        }
        groups.push(terms);
    }
    Synonyms { groups }
}

/// `out_of_scope.toml` is optional: without it, only the score threshold decides abstention.
fn load_out_of_scope(
    root: &Path,
    errors: &mut Vec<KnowledgeError>,
) -> (Vec<OutOfScopeTopic>, Vec<String>) {
    const FILE: &str = "out_of_scope.toml";
    if !root.join(FILE).exists() {
        return (Vec::new(), Vec::new());
    }
    let Some(raw) = read_toml::<raw::OutOfScopeFile>(root, FILE, errors) else {
        return (Vec::new(), Vec::new());
    };
    let mut cues = Vec::new();
    for c in &raw.cross_region_cues {
        let norm = crate::text::normalize(c);
        if norm.is_empty() || norm.contains(' ') {
            errors.push(err(
                FILE,
                None,
                Some("cross_region_cues"),
                format!("cue {c:?} must be one word without spaces"),
            ));
        } else {
            cues.push(norm);
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in raw.topic.into_iter().enumerate() {
        let label = if t.id.trim().is_empty() {
            format!("#{}", i + 1)
        } else {
            t.id.clone()
        };
        if t.id.trim().is_empty() || !seen.insert(t.id.clone()) {
            errors.push(err(
                FILE,
                Some(&label),
                Some("id"),
                "must be non-empty and unique",
            ));
        }
        if t.examples.len() < 3 || t.examples.iter().any(|e| e.trim().is_empty()) {
            errors.push(err(
                FILE,
                Some(&label),
                Some("examples"),
                "needs at least three non-empty phrasings",
            ));
        }
        if t.referral.trim().is_empty() {
            errors.push(err(
                FILE,
                Some(&label),
                Some("referral"),
                "must say whom to ask instead",
            ));
        }
        out.push(OutOfScopeTopic {
            id: t.id,
            label: t.label,
            referral: t.referral,
            examples: t.examples,
        });
    }
    (out, cues)
}

/// The ids of the region files in `regions/` and the shards they name: the values an entry's
/// `region` may take besides [`REGIONS`] (the files themselves are validated with the regions).
fn region_names(root: &Path) -> HashSet<String> {
    let mut out = HashSet::new();
    let Ok(dir) = std::fs::read_dir(root.join(crate::guidance::region::DIR)) else {
        return out;
    };
    for path in dir.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            out.insert(stem.to_string());
        }
        let shard = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("shard").and_then(|s| s.as_str()).map(str::to_string));
        out.extend(shard);
    }
    out
}

fn load_faqs(root: &Path, sources: &[Source], errors: &mut Vec<KnowledgeError>) -> Vec<FaqEntry> {
    let dir = root.join("faq");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            errors.push(err(
                "faq/",
                None,
                None,
                format!("cannot read the folder: {e}"),
            ));
            return Vec::new();
        }
    };
    files.sort();
    if files.is_empty() {
        errors.push(err("faq/", None, None, "holds no .toml file"));
    }
    let source_ids: HashSet<&str> = sources.iter().map(|s| s.id.as_str()).collect();
    let extra_regions = region_names(root);
    let mut entries = Vec::new();
    // id -> file where first seen
    let mut first_seen: BTreeMap<String, String> = BTreeMap::new();
    for path in files {
        let rel = format!(
            "faq/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let Some(raw) = read_toml::<raw::FaqFile>(root, &rel, errors) else {
            continue;
        };
        if raw.faq.is_empty() {
            errors.push(err(&rel, None, None, "holds no [[faq]] entry"));
        }
        for (i, e) in raw.faq.into_iter().enumerate() {
            if let Some(entry) = validate_entry(&rel, i, e, &source_ids, &extra_regions, errors) {
                if let Some(other) = first_seen.get(&entry.id) {
                    errors.push(err(
                        &rel,
                        Some(&entry.id),
                        Some("id"),
                        format!("is already used in {other}"),
                    ));
                    continue;
                }
                first_seen.insert(entry.id.clone(), rel.clone());
                entries.push(entry);
            }
        }
    }
    // cross-entry checks
    for e in &entries {
        for r in &e.related {
            if !first_seen.contains_key(r) {
                errors.push(err(
                    &e.file,
                    Some(&e.id),
                    Some("related"),
                    format!("names unknown entry `{r}`"),
                ));
            }
        }
    }
    match entries.iter().find(|e| e.id == "contacts") {
        None if !entries.is_empty() => errors.push(err(
            "faq/",
            Some("contacts"),
            None,
            "the `contacts` entry is missing (it carries the hotline)",
        )),
        Some(e) if e.hotline.is_none() => errors.push(err(
            &e.file,
            Some("contacts"),
            Some("hotline"),
            "the contacts entry must give the hotline",
        )),
        _ => {}
    }
    entries
}

fn validate_entry(
    file: &str,
    index: usize,
    raw: raw::FaqRaw,
    source_ids: &HashSet<&str>,
    extra_regions: &HashSet<String>,
    errors: &mut Vec<KnowledgeError>,
) -> Option<FaqEntry> {
    let before = errors.len();
    let label = if raw.id.trim().is_empty() {
        format!("#{}", index + 1)
    } else {
        raw.id.clone()
    };
    let mut bad = |field: &str, msg: String| errors.push(err(file, Some(&label), Some(field), msg));
    if raw.id.is_empty()
        || !raw
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bad(
            "id",
            "must be non-empty and use only a-z, 0-9 and '-'".into(),
        );
    }
    if raw.question.trim().is_empty() {
        bad("question", "must not be empty".into());
    }
    if raw.variants.is_empty() {
        bad("variants", "needs at least one alternative phrasing".into());
    }
    if raw.variants.iter().any(|v| v.trim().is_empty()) {
        bad("variants", "holds an empty phrasing".into());
    }
    let answer = raw.answer.trim().to_string();
    if answer.is_empty() {
        bad("answer", "must not be empty".into());
    }
    let n = answer.chars().count();
    if n > MAX_ANSWER_CHARS {
        bad(
            "answer",
            format!("has {n} characters; at most {MAX_ANSWER_CHARS} fit a chat bubble"),
        );
    }
    let brief = raw.brief.as_deref().unwrap_or_default().trim().to_string();
    if brief.is_empty() {
        bad(
            "brief",
            "is missing: one or two sentences that answer the question".into(),
        );
    }
    let n = brief.chars().count();
    if n > MAX_BRIEF_CHARS {
        bad(
            "brief",
            format!("has {n} characters; at most {MAX_BRIEF_CHARS}"),
        );
    }
    let mut cases = Vec::new();
    for (k, c) in raw.case.into_iter().enumerate() {
        let field = format!("case[{}]", k + 1);
        let say = c.say.trim().to_string();
        let n = say.chars().count();
        if say.is_empty() || n > MAX_BRIEF_CHARS {
            bad(
                &format!("{field}.say"),
                format!("has {n} characters; needs 1 to {MAX_BRIEF_CHARS}"),
            );
        }
        if c.when.is_empty() {
            bad(
                &format!("{field}.when"),
                "needs at least one condition".into(),
            );
        }
        let when = conditions(c.when, &format!("{field}.when"), &mut bad);
        cases.push(Case { when, say });
    }
    let fits = conditions(raw.fits, "fits", &mut bad);
    if let Some(d) = &raw.direction
        && !matches!(d.as_str(), "inbound" | "outbound")
    {
        bad(
            "direction",
            format!("{d:?} is not one of inbound, outbound"),
        );
    }
    let as_of = match raw.as_of.as_deref().map(DocDate::parse) {
        None => {
            bad(
                "as_of",
                "is missing: the day the entry was last checked against its sources (2026-12-07)"
                    .into(),
            );
            None
        }
        Some(Err(e)) => {
            bad("as_of", e);
            None
        }
        Some(Ok(d)) if !d.is_full() => {
            bad(
                "as_of",
                format!("{d} names no day: write the day, 2026-12-07"),
            );
            None
        }
        Some(Ok(d)) => Some(d),
    };
    if raw.sources.is_empty() {
        bad("sources", "must name at least one source".into());
    }
    for s in &raw.sources {
        let id = s.split_whitespace().next().unwrap_or("");
        if !source_ids.contains(id) {
            bad(
                "sources",
                format!("{s:?} does not start with a seed id from sources.toml"),
            );
        }
    }
    if raw.tags.is_empty() || raw.tags.iter().any(|t| t.trim().is_empty()) {
        bad("tags", "needs at least one non-empty tag".into());
    }
    if !REGIONS.contains(&raw.region.as_str()) && !extra_regions.contains(raw.region.as_str()) {
        bad(
            "region",
            format!(
                "{:?} is not one of {}, a region of regions/ or a region's shard",
                raw.region,
                REGIONS.join(", ")
            ),
        );
    }
    if let Some(h) = &raw.hotline
        && (h.trim().is_empty() || !h.chars().all(|c| c.is_ascii_digit() || c == '-'))
    {
        bad("hotline", format!("{h:?} is not a phone number"));
    }
    if errors.len() > before {
        return None;
    }
    Some(FaqEntry {
        id: raw.id,
        question: raw.question.trim().to_string(),
        variants: raw
            .variants
            .into_iter()
            .map(|v| v.trim().to_string())
            .collect(),
        answer,
        brief,
        cases,
        sources: raw.sources,
        // present: a missing or malformed date was an error above
        as_of: as_of.unwrap_or(DocDate::ymd(1970, 1, 1)),
        tags: raw.tags,
        region: raw.region,
        related: raw.related,
        hotline: raw.hotline,
        general: raw.general,
        local_topic: raw.local_topic,
        direction: raw.direction,
        fits,
        requires: raw
            .requires
            .iter()
            .map(|w| crate::text::normalize(w))
            .filter(|w| !w.is_empty())
            .collect(),
        file: file.to_string(),
    })
}

/// Situation conditions (a case's `when`, an entry's `fits`), validated against
/// [`CASE_KEYS`]; problems go to `bad(field, message)`.
fn conditions(
    raw: BTreeMap<String, raw::OneOrMany>,
    field: &str,
    bad: &mut impl FnMut(&str, String),
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (key, v) in raw {
        let values = match v {
            raw::OneOrMany::One(v) => vec![v],
            raw::OneOrMany::Many(vs) => vs,
        };
        match CASE_KEYS.iter().find(|(k, _)| *k == key) {
            None => bad(
                field,
                format!(
                    "`{key}` is not a situation word (one of {})",
                    CASE_KEYS.map(|(k, _)| k).join(", ")
                ),
            ),
            Some((_, allowed)) => {
                for v in &values {
                    let ok = if allowed.is_empty() {
                        !v.is_empty()
                            && v.bytes().all(|b| {
                                b.is_ascii_lowercase()
                                    || b.is_ascii_digit()
                                    || b == b'-'
                                    || b == b'_'
                            })
                    } else {
                        allowed.contains(&v.as_str())
                    };
                    if !ok {
                        bad(
                            &format!("{field}.{key}"),
                            format!("`{v}` is not a value of `{key}`"),
                        );
                    }
                }
            }
        }
        out.insert(key, values);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &str = "[[source]]\nid = \"004\"\nfile = \"004.txt\"\ntitle = \"江苏省异地就医经办服务规程\"\n\
         date = \"2019\"\ntier = \"official\"\n\
         [[source]]\nid = \"031\"\ntitle = \"某网站文章\"\ntier = \"secondary\"\n\
         url = \"https://example.org/a\"\ndate = \"2025-03-28\"\n";
    const SYNONYMS: &str = "[[group]]\nterms = [\"社会保障卡\", \"社保卡\"]\n";

    fn entry(id: &str) -> String {
        format!(
            "[[faq]]\nid = \"{id}\"\nquestion = \"问题{id}\"\nvariants = [\"说法一\", \"说法二\"]\n\
             answer = \"回答\"\nbrief = \"简答\"\nsources = [\"004 第八条\"]\nas_of = \"2026-12-07\"\ntags = [\"备案\"]\nregion = \"jiangsu\"\n"
        )
    }

    fn contacts() -> String {
        entry("contacts") + "hotline = \"0512-12333\"\n"
    }

    /// A valid knowledge folder with `faq/a.toml` = `faq`, plus the contacts entry.
    fn folder(faq: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("faq")).unwrap();
        std::fs::write(dir.path().join("sources.toml"), SOURCES).unwrap();
        std::fs::write(dir.path().join("synonyms.toml"), SYNONYMS).unwrap();
        std::fs::write(dir.path().join("faq/a.toml"), faq).unwrap();
        std::fs::write(dir.path().join("faq/z.toml"), contacts()).unwrap();
        dir
    }

    fn errors_of(faq: &str) -> Vec<KnowledgeError> {
        match Knowledge::load(folder(faq).path()) {
            Ok(_) => panic!("expected errors for:\n{faq}"),
            Err(e) => e.0,
        }
    }

    fn assert_error(faq: &str, file: &str, entry: Option<&str>, field: Option<&str>, needle: &str) {
        let errors = errors_of(faq);
        assert!(
            errors.iter().any(|e| e.file == file
                && e.entry.as_deref() == entry
                && e.field.as_deref() == field
                && e.message.contains(needle)),
            "no error {file}/{entry:?}/{field:?} containing {needle:?} in {errors:#?}"
        );
    }

    /// The entry ids in the first column of a Markdown document's tables.
    fn table_ids(doc: &str) -> Vec<&str> {
        doc.lines()
            .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
            .filter(|id| {
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && *id != "id"
            })
            .collect()
    }

    #[test]
    fn the_shipped_knowledge_folder_is_valid_and_covers_the_spec() {
        let k = Knowledge::load(crate::default_knowledge_dir()).unwrap_or_else(|e| panic!("{e}"));
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/spec/faq-coverage.md"
        );
        let spec = std::fs::read_to_string(path).expect("the spec lives in ../shared/spec");
        let ids = table_ids(&spec);
        assert!(ids.len() >= 41, "parsed {} ids from the spec", ids.len());
        for id in ids {
            assert!(k.faq(id).is_some(), "spec id {id} has no entry");
        }
        assert_eq!(k.hotline(), "0512-12333");
    }

    /// The 2026 coverage list (docs/faq-coverage.md): every id of its entry tables exists,
    /// and every shipped entry is listed there.
    #[test]
    fn the_shipped_knowledge_covers_the_2026_coverage_list() {
        let k = Knowledge::load(crate::default_knowledge_dir()).unwrap_or_else(|e| panic!("{e}"));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/faq-coverage.md");
        let doc = std::fs::read_to_string(path).unwrap();
        // the entry tables come before the folded research topics
        let tables = doc.split("## Research topics covered").next().unwrap();
        let ids = table_ids(tables);
        for id in &ids {
            assert!(k.faq(id).is_some(), "listed id {id} has no entry");
        }
        for e in &k.faqs {
            assert!(
                ids.contains(&e.id.as_str()) || tables.contains(&format!("`{}`", e.id)),
                "entry {} is not in docs/faq-coverage.md",
                e.id
            );
        }
    }

    #[test]
    fn a_valid_folder_loads() {
        let k = Knowledge::load(folder(&entry("filing-who")).path()).unwrap();
        assert_eq!(k.faqs.len(), 2);
        assert_eq!(k.faq("filing-who").unwrap().file, "faq/a.toml");
        assert_eq!(
            k.cite("004 第八条"),
            "《江苏省异地就医经办服务规程》第八条（2019年，官方原文）"
        );
    }

    #[test]
    fn toml_syntax_errors_name_file_and_line() {
        let bad = entry("x").replace("answer = \"回答\"", "answer = \"回答");
        assert_error(&bad, "faq/a.toml", Some("x"), None, "line 5");
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let missing = entry("x").replace("answer = \"回答\"\n", "");
        assert_error(
            &missing,
            "faq/a.toml",
            Some("x"),
            Some("answer"),
            "missing field",
        );
        let unknown = entry("x") + "anwser = \"typo\"\n";
        assert_error(
            &unknown,
            "faq/a.toml",
            Some("x"),
            Some("anwser"),
            "unknown field",
        );
    }

    #[test]
    fn empty_and_oversized_values_are_rejected() {
        assert_error(
            &entry("x").replace("answer = \"回答\"", "answer = \"  \""),
            "faq/a.toml",
            Some("x"),
            Some("answer"),
            "empty",
        );
        let long = "长".repeat(MAX_ANSWER_CHARS + 1);
        assert_error(
            &entry("x").replace("回答", &long),
            "faq/a.toml",
            Some("x"),
            Some("answer"),
            "601 characters",
        );
        assert_error(
            &entry("x").replace("[\"说法一\", \"说法二\"]", "[]"),
            "faq/a.toml",
            Some("x"),
            Some("variants"),
            "at least one",
        );
        assert_error(
            &entry("x").replace("[\"备案\"]", "[]"),
            "faq/a.toml",
            Some("x"),
            Some("tags"),
            "at least one",
        );
    }

    #[test]
    fn bad_ids_regions_and_sources_are_rejected() {
        assert_error(
            &entry("Bad Id"),
            "faq/a.toml",
            Some("Bad Id"),
            Some("id"),
            "a-z",
        );
        assert_error(
            &entry("x").replace("jiangsu", "shanghai"),
            "faq/a.toml",
            Some("x"),
            Some("region"),
            "not one of",
        );
        assert_error(
            &entry("x").replace("004 第八条", "009 第八条"),
            "faq/a.toml",
            Some("x"),
            Some("sources"),
            "seed id",
        );
        assert_error(
            &(entry("x") + "related = [\"nope\"]\n"),
            "faq/a.toml",
            Some("x"),
            Some("related"),
            "unknown entry",
        );
    }

    #[test]
    fn duplicate_ids_across_files_are_rejected() {
        assert_error(
            &contacts(),
            "faq/z.toml",
            Some("contacts"),
            Some("id"),
            "already used in faq/a.toml",
        );
    }

    #[test]
    fn the_contacts_entry_must_carry_the_hotline() {
        let dir = folder(&entry("x"));
        std::fs::write(dir.path().join("faq/z.toml"), entry("contacts")).unwrap();
        let errors = Knowledge::load(dir.path()).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].field.as_deref(), Some("hotline"));
        let bad = entry("x") + "hotline = \"call us\"\n";
        assert_error(
            &bad,
            "faq/a.toml",
            Some("x"),
            Some("hotline"),
            "phone number",
        );
    }

    #[test]
    fn synonym_groups_are_validated() {
        let dir = folder(&entry("x"));
        std::fs::write(
            dir.path().join("synonyms.toml"),
            "[[group]]\nterms = [\"社保卡\", \"医保卡\"]\n[[group]]\nterms = [\"医保卡\", \"卡\"]\n[[group]]\nterms = [\"单独\"]\n",
        )
        .unwrap();
        let errors = Knowledge::load(dir.path()).unwrap_err().0;
        let text = KnowledgeErrors(errors.clone()).to_string();
        assert!(text.contains("synonyms.toml: entry `#2 (医保卡)`: field `terms`: term \"医保卡\" is already in group #1"), "{text}");
        assert!(text.contains("a group needs at least two terms"), "{text}");
    }

    #[test]
    fn out_of_scope_topics_are_optional_but_validated() {
        let dir = folder(&entry("x"));
        assert!(Knowledge::load(dir.path()).unwrap().out_of_scope.is_empty());
        std::fs::write(
            dir.path().join("out_of_scope.toml"),
            "[[topic]]\nid = \"pension\"\nlabel = \"养老\"\nreferral = \" \"\nexamples = [\"退休金\"]\n",
        )
        .unwrap();
        let errors = Knowledge::load(dir.path()).unwrap_err().0;
        assert_eq!(
            errors[0].to_string(),
            "out_of_scope.toml: entry `pension`: field `examples`: needs at least three non-empty phrasings"
        );
        assert_eq!(
            errors[1].to_string(),
            "out_of_scope.toml: entry `pension`: field `referral`: must say whom to ask instead"
        );
    }

    #[test]
    fn missing_files_and_empty_folders_are_reported() {
        let dir = folder(&entry("x"));
        std::fs::remove_file(dir.path().join("sources.toml")).unwrap();
        let errors = Knowledge::load(dir.path()).unwrap_err().0;
        assert!(
            errors
                .iter()
                .any(|e| e.file == "sources.toml" && e.message.contains("cannot read"))
        );
        let empty = tempfile::tempdir().unwrap();
        let errors = Knowledge::load(empty.path()).unwrap_err().0;
        assert!(errors.iter().any(|e| e.file == "faq/"), "{errors:#?}");
    }

    fn sources_errors(sources: &str) -> Vec<String> {
        let dir = folder(&entry("x"));
        std::fs::write(dir.path().join("sources.toml"), sources).unwrap();
        match Knowledge::load(dir.path()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn sources_need_a_tier_a_real_date_and_a_file_or_an_address() {
        let base = "[[source]]\nid = \"004\"\ntitle = \"规程\"\n";
        let errors = sources_errors(base);
        assert!(
            errors.contains(&"sources.toml: entry `004`: field `tier`: is missing: one of official, quoted, secondary".to_string()),
            "{errors:#?}"
        );
        assert!(
            errors.contains(&"sources.toml: entry `004`: needs a `file` (a seed) or the `url` of the page that was read".to_string()),
            "{errors:#?}"
        );
        let errors = sources_errors(&format!(
            "{base}file = \"004.txt\"\ntier = \"A\"\ndate = \"2019-02-30\"\nurl = \"www.example.org\"\n"
        ));
        assert_eq!(
            errors,
            vec![
                "sources.toml: entry `004`: field `date`: \"2019-02-30\" is not a date written 2019, 2019-06 or 2019-06-30",
                "sources.toml: entry `004`: field `tier`: \"A\" is not one of official, quoted, secondary",
                "sources.toml: entry `004`: field `url`: \"www.example.org\" is not an http(s) address",
            ]
        );
        assert!(
            sources_errors(&format!(
                "{base}url = \"https://example.org\"\ntier = \"quoted\"\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn entries_need_the_day_they_were_checked() {
        let without = entry("x").replace("as_of = \"2026-12-07\"\n", "");
        assert_error(
            &without,
            "faq/a.toml",
            Some("x"),
            Some("as_of"),
            "is missing",
        );
        let month = entry("x").replace("2026-12-07", "2026-12");
        assert_error(
            &month,
            "faq/a.toml",
            Some("x"),
            Some("as_of"),
            "names no day",
        );
        let bad = entry("x").replace("2026-12-07", "2026-13-01");
        assert_error(
            &bad,
            "faq/a.toml",
            Some("x"),
            Some("as_of"),
            "is not a date",
        );
    }

    #[test]
    fn an_entry_resting_only_on_secondary_sources_says_so() {
        let secondary = entry("x").replace("004 第八条", "031 第一段")
            + "[[faq.case]]\nwhen = { filed = \"true\" }\nsay = \"可以。\"\n";
        let errors = errors_of(&secondary);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "faq/a.toml: entry `x`: field `brief`: the entry rests only on secondary sources: say so (\"未见官方原文\") and point to the hotline",
                "faq/a.toml: entry `x`: field `case[1].say`: the entry rests only on secondary sources: say so (\"未见官方原文\") and point to the hotline",
            ]
        );
        let said = secondary
            .replace("简答", "简答（网络资料，未见官方原文，请拨0512-12333确认）")
            .replace(
                "可以。",
                "可以（网络资料，未见官方原文，请拨0512-12333确认）。",
            );
        assert!(Knowledge::load(folder(&said).path()).is_ok());
        // one official source beside the secondary one is enough
        let mixed = entry("x").replace("[\"004 第八条\"]", "[\"031 第一段\", \"004 第八条\"]");
        assert!(Knowledge::load(folder(&mixed).path()).is_ok());
    }

    #[test]
    fn provenance_and_freshness_come_from_the_sources() {
        let faq = entry("old")
            + &entry("web")
                .replace("004 第八条", "031 第一段")
                .replace("简答", "简答（网络资料，未见官方原文，请拨0512-12333确认）")
            + &entry("both").replace(
                "[\"004 第八条\"]",
                "[\"004 第八条\", \"031 第一段\", \"004 第九条\"]",
            );
        let k = Knowledge::load(folder(&faq).path()).unwrap();
        let both = k.faq("both").unwrap();
        let p = serde_json::to_value(k.provenance(both)).unwrap();
        assert_eq!(
            p,
            serde_json::json!([
                {"source": "004 第八条", "document": "江苏省异地就医经办服务规程", "date": "2019", "tier": "official"},
                {"source": "031 第一段", "document": "某网站文章", "date": "2025-03-28", "tier": "secondary", "url": "https://example.org/a"},
                {"source": "004 第九条", "document": "江苏省异地就医经办服务规程", "date": "2019", "tier": "official"},
            ])
        );
        assert_eq!(k.tier(both), Tier::Official);
        assert_eq!(k.tier(k.faq("web").unwrap()), Tier::Secondary);
        assert_eq!(
            k.cite("031 第一段"),
            "《某网站文章》第一段（2025年3月28日，网络资料）"
        );

        let report = k.freshness(DocDate::ymd(2026, 12, 7), 3);
        let ids = |v: &[Flagged]| v.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
        // `old` and `contacts` cite only the 2019 rules; `both` has a 2025 source
        assert_eq!(ids(&report.stale), ["old", "contacts"]);
        assert_eq!(ids(&report.secondary_only), ["web"]);
        assert_eq!(
            report.stale[0].newest,
            Some(("004".to_string(), DocDate::parse("2019").unwrap()))
        );
        assert!(k.freshness(DocDate::ymd(2026, 12, 7), 10).stale.is_empty());
        let text = report.report();
        assert!(
            text.contains("  old (faq/a.toml): newest source 004 of 2019; checked 2026-12-07\n"),
            "{text}"
        );
        assert!(text.contains("  web (faq/a.toml): 031\n"), "{text}");
    }
}
