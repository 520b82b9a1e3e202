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
    pub file: String,
    pub title: String,
    /// A short name for chat citations ("苏州医保指南"); the title when absent.
    #[serde(default)]
    pub short: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
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
    pub sources: Vec<String>,
    pub tags: Vec<String>,
    pub region: String,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub hotline: Option<String>,
    #[serde(default)]
    pub general: bool,
    #[serde(default)]
    pub local_topic: Option<String>,
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
