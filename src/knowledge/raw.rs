//! The raw shapes of the knowledge files, exactly as serde reads them.
//! Unknown fields are errors, so a misspelt field name is reported instead of ignored.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesFile {
    #[serde(default)]
    pub source: Vec<SourceRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRaw {
    pub id: String,
    /// The seed file in ../shared/seeds/, when the text is stored there.
    #[serde(default)]
    pub file: Option<String>,
    pub title: String,
    /// A short name for chat citations ("苏州医保指南"); the title when absent.
    #[serde(default)]
    pub short: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// When the document was issued or published: "2019", "2023-06" or "2023-06-10".
    #[serde(default)]
    pub date: Option<String>,
    /// `official`, `quoted` or `secondary` (see sources.toml's header).
    #[serde(default)]
    pub tier: Option<String>,
    /// The page that was read, when there is one.
    #[serde(default)]
    pub url: Option<String>,
    /// For editors: how the date or tier was judged; read so that its type is checked.
    #[serde(default)]
    #[expect(dead_code, reason = "editor-facing comment")]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynonymsFile {
    #[serde(default)]
    pub group: Vec<GroupRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRaw {
    pub terms: Vec<String>,
    /// A comment for editors; read so that its type is checked, never used.
    #[serde(default)]
    #[expect(dead_code, reason = "editor-facing comment")]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqFile {
    #[serde(default)]
    pub faq: Vec<FaqRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqRaw {
    pub id: String,
    pub question: String,
    pub variants: Vec<String>,
    pub answer: String,
    /// One or two sentences that answer the question for anyone (chat leads with it).
    #[serde(default)]
    pub brief: Option<String>,
    pub sources: Vec<String>,
    /// The day the entry was last checked against its sources ("2026-12-07").
    #[serde(default)]
    pub as_of: Option<String>,
    pub tags: Vec<String>,
    pub region: String,
    #[serde(default)]
    pub related: Vec<String>,
    /// The brief answer for people in a given situation (the first that matches wins).
    #[serde(default)]
    pub case: Vec<CaseRaw>,
    #[serde(default)]
    pub hotline: Option<String>,
    #[serde(default)]
    pub general: bool,
    #[serde(default)]
    pub local_topic: Option<String>,
    /// Whom the entry is for: `outbound` (people of ours going away) or `inbound` (people
    /// from elsewhere coming to us); absent: anyone.
    #[serde(default)]
    pub direction: Option<String>,
    /// The situation the entry is written for (`stage = "in_hospital"`).
    #[serde(default)]
    pub fits: std::collections::BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRaw {
    pub when: std::collections::BTreeMap<String, OneOrMany>,
    pub say: String,
}

/// A condition's value: one, or a list meaning any of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfScopeFile {
    #[serde(default)]
    pub cross_region_cues: Vec<String>,
    #[serde(default)]
    pub topic: Vec<TopicRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRaw {
    pub id: String,
    pub label: String,
    pub referral: String,
    pub examples: Vec<String>,
}
