//! The channel-agnostic core: a message in, a [`Reply`] out. No IO happens here; channels
//! (terminal, HTTP, Telegram) render the reply in their own idiom.

use serde::Serialize;

use crate::knowledge::Knowledge;
use crate::search::{SearchEngine, SearchResult};

/// Hits below this score are not even offered as "did you mean" suggestions.
const SUGGESTION_MIN_SCORE: f32 = 3.0;

/// A button a messaging app would show.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// Reference to the FAQ entry that answered.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FaqRef {
    pub id: String,
}

/// What the assistant says back, in the `chat --json` form of cli.md.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reply {
    pub text: String,
    pub asking: Option<String>,
    pub choices: Vec<Choice>,
    pub faq: Option<FaqRef>,
    pub checklist: Option<serde_json::Value>,
    pub estimate: Option<serde_json::Value>,
    pub dialog: Option<String>,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            asking: None,
            choices: Vec::new(),
            faq: None,
            checklist: None,
            estimate: None,
            dialog: None,
        }
    }
}

/// The assistant: knowledge plus its search index.
pub struct Assistant {
    pub knowledge: Knowledge,
    pub search: SearchEngine,
}

impl Assistant {
    pub fn new(knowledge: Knowledge) -> tantivy::Result<Assistant> {
        let search = SearchEngine::build(&knowledge)?;
        Ok(Assistant { knowledge, search })
    }

    /// The first thing a new user sees.
    pub fn welcome(&self) -> Reply {
        Reply::text(
            "您好，我是异地就医小助手，可以回答异地就医备案、直接结算、零星（手工）报销等问题，\
             例如：“社保卡在外地刷不了怎么办”“已经出院了还能补备案吗”。请直接输入您的问题。",
        )
    }

    /// Answers one user message.
    pub fn handle(&self, message: &str) -> Reply {
        if message.trim().is_empty() {
            return Reply::text("请输入您想咨询的问题，例如：“异地就医备案要带什么材料？”");
        }
        let result = self.search.search(message, 3);
        self.faq_reply(&result)
    }

    /// Renders a search result: the answer with its sources, or an honest "I don't know".
    pub fn faq_reply(&self, result: &SearchResult) -> Reply {
        if result.answered
            && let Some(entry) = result.hits.first().and_then(|h| self.knowledge.faq(&h.id))
        {
            let sources: Vec<String> = entry
                .sources
                .iter()
                .map(|s| self.knowledge.cite(s))
                .collect();
            let mut reply =
                Reply::text(format!("{}\n\n来源：{}", entry.answer, sources.join("；")));
            reply.faq = Some(FaqRef {
                id: entry.id.clone(),
            });
            return reply;
        }
        let mut text = format!(
            "抱歉，这个问题超出了我掌握的异地就医知识范围，我不想给您不准确的答复。\
             建议咨询人工：张家港市医疗保障局咨询电话 {}；其他地区参保的，请咨询参保地医保经办机构。",
            self.knowledge.hotline()
        );
        let suggestions: Vec<&str> = result
            .hits
            .iter()
            .filter(|h| h.score >= SUGGESTION_MIN_SCORE)
            .map(|h| h.question.as_str())
            .collect();
        if !suggestions.is_empty() {
            text.push_str("\n\n如果您想问的是下面的问题，可以直接照着问：");
            for s in suggestions {
                text.push_str("\n· ");
                text.push_str(s);
            }
        }
        Reply::text(text)
    }
}
