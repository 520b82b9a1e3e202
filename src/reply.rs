//! What the assistant says back: [`Reply`], in the `chat --json` form of cli.md, and its
//! [`ReplyKind`]. Plain data shared by the core that builds replies, [`crate::render`] that
//! turns them into a channel's text, and the channels.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// A button a messaging app would show.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Choice {
    /// The value sent back when this choice is picked (Telegram's button data).
    pub value: String,
    /// What the choice shows (a button's or a numbered line's text).
    pub label: String,
}

/// Reference to the FAQ entry that answered.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct FaqRef {
    /// The entry's id (`GET /v1/faq/{id}` has it whole).
    pub id: String,
}

/// One entry a clarifying question offers.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct FaqOption {
    /// The FAQ entry's id.
    pub id: String,
    /// The entry's question, as offered.
    pub question: String,
}

/// What a reply is (cli.md, section Conversation).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// An FAQ entry answers (`faq` names it).
    Faq,
    /// A dialog's question or outcome (checklist, estimate, or a refusal).
    Dialog,
    /// Which of a few entries is meant (`options`).
    Clarify,
    /// Greetings, thanks, goodbyes, "who are you", a human, acknowledgements.
    #[default]
    Smalltalk,
    /// Outside cross-region care: says so and whom to ask.
    OutOfScope,
    /// About cross-region care but not in the knowledge: an honest "I don't know".
    Unanswered,
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 6] = [
        ReplyKind::Faq,
        ReplyKind::Dialog,
        ReplyKind::Clarify,
        ReplyKind::Smalltalk,
        ReplyKind::OutOfScope,
        ReplyKind::Unanswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Faq => "faq",
            ReplyKind::Dialog => "dialog",
            ReplyKind::Clarify => "clarify",
            ReplyKind::Smalltalk => "smalltalk",
            ReplyKind::OutOfScope => "out_of_scope",
            ReplyKind::Unanswered => "unanswered",
        }
    }

    pub fn parse(s: &str) -> Option<ReplyKind> {
        ReplyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the assistant says back, in the `chat --json` form of cli.md.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[schema(description = "one assistant reply, the `chat --json` form")]
pub struct Reply {
    /// What the reply is (cli.md, Conversation): an FAQ answer, a dialog's question or
    /// outcome, a clarifying question, small talk, outside cross-region care, or an honest
    /// 'I don't know'.
    pub kind: ReplyKind,
    /// The reply as the user reads it (plain text, line breaks as \n).
    pub text: String,
    /// The slot being asked for.
    #[schema(required = true)]
    pub asking: Option<String>,
    /// The answers a dialog's question offers (buttons, or numbered lines).
    pub choices: Vec<Choice>,
    /// The FAQ entry that answers, with its sources (kind faq).
    #[schema(required = true)]
    pub faq: Option<FaqRef>,
    /// A clarifying question's options, best first, at most 3; the user answers with the
    /// number, the question or free text.
    #[schema(max_items = 3)]
    pub options: Vec<FaqOption>,
    /// Everything the conversation knows of the user's situation (checklist.md / estimate.md
    /// slot names and values), from any turn.
    pub slots: BTreeMap<String, String>,
    /// The filing checklist, when a dialog produced one.
    #[schema(value_type = Option<crate::guidance::checklist::Checklist>, required = true)]
    pub checklist: Option<serde_json::Value>,
    /// The reimbursement estimate, when a dialog produced one.
    #[schema(value_type = Option<crate::guidance::estimate::Estimate>, required = true)]
    pub estimate: Option<serde_json::Value>,
    /// The dialog in progress or just finished (filing, estimate, card_failure).
    #[schema(required = true)]
    pub dialog: Option<String>,
    /// The user's question could not be answered (recorded for the knowledge team).
    #[serde(skip)]
    pub unanswered: bool,
}

impl Reply {
    /// A plain reply of kind `smalltalk` (callers set another kind where it applies).
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            kind: ReplyKind::Smalltalk,
            text: text.into(),
            asking: None,
            choices: Vec::new(),
            faq: None,
            options: Vec::new(),
            slots: BTreeMap::new(),
            checklist: None,
            estimate: None,
            dialog: None,
            unanswered: false,
        }
    }

    /// The reply as a transcript keeps it: the text, and a clarifying question's options
    /// numbered as the user saw them (so an agent reading it knows what "2" meant).
    pub fn transcript_text(&self) -> String {
        let mut t = self.text.clone();
        for (i, o) in self.options.iter().enumerate() {
            t.push_str(&format!("\n{}. {}", i + 1, o.question));
        }
        t
    }

    pub(crate) fn of(kind: ReplyKind, text: impl Into<String>) -> Reply {
        Reply {
            kind,
            ..Reply::text(text)
        }
    }
}
