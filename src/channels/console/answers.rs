//! FAQ answers as a hotline agent reads them (`POST /v1/agent/search`, `POST
//! /v1/agent/entry`): the entry's lead for the caller's situation as the sentence to read
//! out, the caller's region's paragraphs first and the others folded, sources by title,
//! related entries as links, and a text message with the right hotline.
//!
//! Search for agents differs from the public search in two ways. A question an agent types
//! with a word of the knowledge (a synonym, a tag, a cross-region word) is about cross-region
//! care (the hotline is for nothing else), so it is searched in that context
//! ([`SearchContext::cross_region`]): "门特" alone reaches its entry. And when no entry
//! answers with confidence, the plausible ones (such a word, and a score of at least
//! [`PLAUSIBLE_MIN_SCORE`]) are still shown, as links with a short warning; "没有可靠答案"
//! only when nothing plausible exists.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::call::{cite_ids, contact, sms};
use crate::assistant::Assistant;
use crate::knowledge::FaqEntry;
use crate::search::SearchContext;

/// A hit below this score is not plausible enough to show an agent.
pub const PLAUSIBLE_MIN_SCORE: f32 = 10.0;
/// A hit that scores this and twice the next one answers a keyword query of the
/// knowledge's own words.
pub const KEYWORD_ANSWER_SCORE: f32 = 40.0;
/// How many entries a search shows at most.
pub const SEARCH_LIMIT: usize = 3;

/// An FAQ entry for the agent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentEntry {
    /// The entry's id.
    pub id: String,
    /// The entry's main question.
    pub question: String,
    /// The sentence to read to the caller: the entry's lead for their situation.
    pub say: String,
    /// Whether `say` is for this situation (a case of the entry applied) rather than the
    /// entry's general brief.
    pub personal: bool,
    /// The paragraphs for the caller's region: theirs first, then the general ones.
    pub paragraphs: Vec<String>,
    /// The other regions' paragraphs (folded in the console).
    pub others: Vec<String>,
    /// The caller's region's label, when known ("张家港").
    #[schema(required = true)]
    pub region: Option<String>,
    /// Sources by title ("《江苏省异地就医经办服务规程》第十八条").
    pub sources: Vec<String>,
    /// Related entries, as links.
    pub related: Vec<Link>,
    /// A text message of at most 140 characters: `say` and the hotline.
    pub sms: String,
    /// The day the entry was last checked against its sources (YYYY-MM-DD).
    #[schema(example = "2026-12-07")]
    pub as_of: String,
    /// The strongest tier among its documents: `official`, `quoted` or `secondary` (the
    /// answer rests on secondary sources only: the caller should confirm it).
    #[schema(example = "official")]
    pub tier: String,
    /// The documents it cites, each once: id, date and tier.
    pub documents: Vec<DocTier>,
}

/// A document an entry rests on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocTier {
    /// The document's id (knowledge/sources.toml).
    pub id: String,
    /// When it was issued or published, as precise as known; None when unknown.
    #[schema(required = true)]
    pub date: Option<String>,
    /// `official`, `quoted` or `secondary`.
    pub tier: String,
}

/// Another entry, by id and question.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    /// The entry's id.
    pub id: String,
    /// Its main question, the link's text.
    pub question: String,
}

/// What an agent's search found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentSearch {
    /// `answered` (the first entry answers), `plausible` (entries that may fit: check
    /// before answering), `out_of_scope` (not cross-region care: see `referral`) or `none`.
    #[schema(pattern = "^(answered|plausible|out_of_scope|none)$")]
    pub status: String,
    /// A line for the agent about the result, in Chinese.
    pub message: String,
    /// The entries found: the answer first (`answered`), or those that may fit.
    pub entries: Vec<AgentEntry>,
    /// Whom to refer an out-of-scope question to.
    #[schema(required = true)]
    pub referral: Option<String>,
}

/// Sentences written for the chat ("可以问我……", "告诉我……我可以帮您……") as an agent
/// reads them: left out. A clause that addresses the chat is cut from its sentence; a
/// bracketed aside that does is dropped.
pub fn for_agents(text: &str) -> String {
    const CUES: [&str; 5] = ["问我", "告诉我", "我可以帮您", "回复“", "输入“"];
    let chatty = |s: &str| CUES.iter().any(|c| s.contains(c));
    if !chatty(text) {
        return text.to_string();
    }
    // bracketed asides first
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('（') {
        let Some(close) = rest[open..].find('）') else {
            break;
        };
        let aside = &rest[open..open + close + '）'.len_utf8()];
        out.push_str(&rest[..open]);
        if !chatty(aside) {
            out.push_str(aside);
        }
        rest = &rest[open + aside.len()..];
    }
    out.push_str(rest);
    // then sentences, keeping their ends
    let mut kept = String::new();
    for sentence in out.split_inclusive(['。', '！', '？']) {
        if !chatty(sentence) {
            kept.push_str(sentence);
            continue;
        }
        let at = CUES
            .iter()
            .filter_map(|c| sentence.find(c))
            .min()
            .unwrap_or(0);
        if let Some(comma) = sentence[..at].rfind('，') {
            kept.push_str(&sentence[..comma]);
            kept.push('。');
        }
    }
    kept
}

/// `entry` for an agent helping a caller in the situation `slots`.
pub fn agent_entry(
    a: &Assistant,
    entry: &FaqEntry,
    slots: &BTreeMap<String, String>,
) -> AgentEntry {
    let region = slots.get("insured_region").map(String::as_str);
    let (say, personal) = a.entry_lead(entry, slots);
    let say = for_agents(say);
    let (mine, others) = a.entry_paragraphs(entry, region);
    let clean = |ps: Vec<&str>| -> Vec<String> {
        ps.into_iter()
            .map(for_agents)
            .filter(|p| !p.trim().is_empty())
            .collect()
    };
    let mut sources: Vec<String> = Vec::new();
    for s in &entry.sources {
        let t = cite_ids(a, &a.knowledge.cite(s));
        if !sources.contains(&t) {
            sources.push(t);
        }
    }
    let related = entry
        .related
        .iter()
        .filter_map(|id| a.knowledge.faq(id))
        .map(|e| Link {
            id: e.id.clone(),
            question: e.question.clone(),
        })
        .collect();
    let documents = a
        .knowledge
        .documents(entry)
        .into_iter()
        .map(|d| DocTier {
            id: d.id.clone(),
            date: d.date.map(|x| x.to_string()),
            tier: d.tier.as_str().to_string(),
        })
        .collect();
    AgentEntry {
        as_of: entry.as_of.to_string(),
        tier: a.knowledge.tier(entry).as_str().to_string(),
        documents,
        id: entry.id.clone(),
        question: entry.question.clone(),
        sms: sms(std::slice::from_ref(&say), &contact(a, region)),
        say,
        personal,
        paragraphs: clean(mine),
        others: clean(others),
        region: region
            .and_then(|r| a.checklist_texts.regions.get(r))
            .map(|r| r.label.clone()),
        sources,
        related,
    }
}

/// The hotline to give when nothing answers: the caller's region's, else the one the
/// knowledge gives for questions it cannot answer.
fn hotline(a: &Assistant, region: Option<&str>) -> String {
    region
        .and_then(|r| a.checklist_texts.regions.get(r))
        .and_then(|r| r.hotline.clone())
        .unwrap_or_else(|| a.knowledge.hotline().to_string())
}

/// Whether `q` holds a word of the knowledge's own vocabulary (a synonym, an entry's tag, a
/// cross-region word): only then are weak hits plausible ("兔子为什么爱吃胡萝卜" shares
/// nothing but "为什么" with any entry).
fn names_the_domain(a: &Assistant, q: &str) -> bool {
    let norm = crate::text::normalize_query(q);
    a.search.has_cross_region_word(&norm)
        || a.knowledge
            .synonyms
            .groups
            .iter()
            .flatten()
            .chain(a.knowledge.faqs.iter().flat_map(|e| &e.tags))
            .any(|t| t.chars().count() >= 2 && norm.contains(t.as_str()))
}

/// An agent's search for `q` with the caller's situation `slots`.
pub fn search(a: &Assistant, q: &str, slots: &BTreeMap<String, String>) -> AgentSearch {
    // the hotline's context, for words of the knowledge: "门特" alone is about care away
    // from home; "兔子为什么爱吃胡萝卜" is not made so
    let domain = names_the_domain(a, q);
    let ctx = SearchContext {
        cross_region: domain,
        region: slots.get("insured_region").map(String::as_str),
    };
    let result = a.search.search_with(q, SEARCH_LIMIT, &ctx);
    let entries = |min: f32| -> Vec<AgentEntry> {
        result
            .hits
            .iter()
            .filter(|h| h.score >= min)
            .filter_map(|h| a.knowledge.faq(&h.id))
            .map(|e| agent_entry(a, e, slots))
            .collect()
    };
    // a keyword the public search finds too short to answer from ("门特") answers an agent
    // when its entry clearly leads
    let clear_lead = domain
        && result.out_of_scope.is_none()
        && match result.hits.as_slice() {
            [first, second, ..] => {
                first.score >= KEYWORD_ANSWER_SCORE && first.score >= 2.0 * second.score
            }
            [first] => first.score >= KEYWORD_ANSWER_SCORE,
            [] => false,
        };
    if result.answered || clear_lead {
        return AgentSearch {
            status: "answered".into(),
            message: String::new(),
            entries: entries(0.0),
            referral: None,
        };
    }
    if let Some(topic) = result
        .out_of_scope
        .as_deref()
        .and_then(|t| a.knowledge.out_of_scope_topic(t))
    {
        return AgentSearch {
            status: "out_of_scope".into(),
            message: format!("这不是异地就医的问题（{}）。", topic.label),
            entries: Vec::new(),
            referral: Some(topic.referral.clone()),
        };
    }
    let plausible = if domain {
        entries(PLAUSIBLE_MIN_SCORE)
    } else {
        Vec::new()
    };
    if !plausible.is_empty() {
        return AgentSearch {
            status: "plausible".into(),
            message: "没有完全对题的把握：下面的条目可能相关，请核对后再回答。".into(),
            entries: plausible,
            referral: None,
        };
    }
    let hotline = hotline(a, slots.get("insured_region").map(String::as_str));
    AgentSearch {
        status: "none".into(),
        message: format!(
            "知识库里没有这个问题的可靠答案，请不要凭猜测回答。{}或记录问题后转交。",
            if hotline.is_empty() {
                String::new()
            } else {
                format!("可请来电者拨打医保咨询电话 {hotline}，")
            }
        ),
        entries: Vec::new(),
        referral: None,
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

    fn region(r: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("insured_region".to_string(), r.to_string())])
    }

    /// The hotline's shorthand reaches its entry (issue 21).
    #[test]
    fn shorthand_and_keywords_reach_the_right_entry() {
        let a = assistant();
        for (q, id) in [
            ("门特", "chronic-special-drugs"),
            ("门慢", "chronic-special-drugs"),
            ("门诊慢特病", "chronic-special-drugs"),
            ("窗口地址", "contacts"),
            ("张家港 窗口 地址", "contacts"),
            ("转外", "referral"),
            ("备案撤销", "filing-validity"),
        ] {
            let found = search(a, q, &region("zhangjiagang"));
            assert!(
                matches!(found.status.as_str(), "answered" | "plausible"),
                "{q}: {found:?}"
            );
            if q != "门慢" {
                assert_eq!(found.status, "answered", "{q}: {found:?}");
            }
            assert_eq!(found.entries[0].id, id, "{q}: {found:?}");
        }
        // out of scope stays out of scope, with whom to ask
        let pension = search(a, "养老金什么时候涨", &BTreeMap::new());
        assert_eq!(pension.status, "out_of_scope", "{pension:?}");
        assert!(pension.referral.is_some());
        for q in ["天气怎么样啊", "兔子为什么爱吃胡萝卜"] {
            let nothing = search(a, q, &BTreeMap::new());
            assert!(
                matches!(nothing.status.as_str(), "none" | "out_of_scope"),
                "{q}: {nothing:?}"
            );
        }
        // a weak hit on the knowledge's own words is offered, as such
        let weak = search(a, "窗口", &region("zhangjiagang"));
        assert_eq!(weak.status, "plausible", "{weak:?}");
        assert!(weak.message.contains("核对"), "{weak:?}");
        assert!(!weak.entries.is_empty());
    }

    #[test]
    fn an_entry_follows_the_callers_region() {
        let a = assistant();
        let e = a.knowledge.faq("filing-status-query").unwrap();
        let zjg = agent_entry(a, e, &region("zhangjiagang"));
        assert!(
            zjg.paragraphs[0].starts_with("张家港参保"),
            "{:?}",
            zjg.paragraphs
        );
        assert!(zjg.others.iter().any(|p| p.starts_with("苏州参保")));
        assert!(zjg.sms.contains("0512-12333") && zjg.sms.chars().count() <= 140);
        assert!(!zjg.related.is_empty());
        assert!(
            zjg.sources.iter().all(|s| s.starts_with('《')),
            "{:?}",
            zjg.sources
        );
        let anyone = agent_entry(a, e, &BTreeMap::new());
        assert!(anyone.others.is_empty());
    }

    #[test]
    fn lines_written_for_the_chat_are_left_out() {
        assert_eq!(
            for_agents(
                "去上海看病一般不用备案（可以问我“苏州参保去上海看病要备案吗”）。备案渠道：APP。"
            ),
            "去上海看病一般不用备案。备案渠道：APP。"
        );
        assert_eq!(
            for_agents("一般不用备案，但有几类人例外，详情可以问我“苏州参保去上海看病要备案吗”。"),
            "一般不用备案，但有几类人例外。"
        );
        assert_eq!(
            for_agents("按参保地政策执行。告诉我参保地、总费用，我可以帮您粗略估算。"),
            "按参保地政策执行。"
        );
        assert_eq!(for_agents("无关。"), "无关。");
    }
}
