//! Replies as a channel shows them: the text of checklists and estimates (chat bubbles and
//! the terminal alike), and a [`Reply`] with its choices or options for channels without
//! buttons. Shared by the core (which puts checklist and estimate text into its replies),
//! the terminal (`src/main.rs`), Telegram, WeChat and the stored transcripts the console
//! shows; the channels keep only their transport limits (message sizes, keyboards).

use crate::guidance::checklist::{Checklist, ChecklistTexts, Item, Text};
use crate::guidance::estimate::{Estimate, Route};
use crate::reply::Reply;

/// How many rules the chat form of an estimate names; "详细依据" shows them all.
const BRIEF_RULES: usize = 3;

/// An estimate for a chat bubble: the same figures as [`estimate_text`], with the basis
/// summarised in a few lines (all rules behind "详细依据" and in the API's `estimate`).
pub fn estimate_brief_text(e: &Estimate) -> String {
    let full = estimate_text(e);
    if e.rules.len() <= BRIEF_RULES {
        return full;
    }
    // the rules that decide the figures, not the list of where parameters came from
    let key: Vec<&str> = e
        .rules
        .iter()
        .map(String::as_str)
        .filter(|r| !r.starts_with("参数来源"))
        .take(BRIEF_RULES)
        .collect();
    let all = format!("依据：{}", e.rules.join("；"));
    let brief = format!(
        "主要依据（共{}条，这里列出{}条）：{}\n输入“详细依据”查看全部依据和参数来源。",
        e.rules.len(),
        key.len(),
        key.join("；")
    );
    full.replacen(&all, &brief, 1)
}

/// An estimate as chat text: itemised, with the rules used and the disclaimer.
pub fn estimate_text(e: &Estimate) -> String {
    use rust_decimal::Decimal;
    let total = e.fund_pays + e.patient_pays;
    let pct = |d: Decimal| (d * Decimal::from(100)).normalize().to_string();
    let mut t = format!("医保报销估算（仅供参考）\n医疗总费用：{total:.2} 元\n");
    if !e.self_pay.is_zero() || !e.class_b_copay.is_zero() {
        t.push_str(&format!(
            "先由个人负担：目录外自费 {:.2} 元，乙类先行自付 {:.2} 元\n",
            e.self_pay, e.class_b_copay
        ));
    }
    t.push_str(&format!(
        "政策范围内费用：{:.2} 元，其中起付线 {:.2} 元由个人负担\n",
        e.eligible, e.deductible_applied
    ));
    if !e.bands.is_empty() {
        t.push_str("分段报销：\n");
        for b in &e.bands {
            let range = match b.upper {
                // "至", not a dash: transcripts mask digit chains joined by dashes
                Some(u) => format!("{:.2} 至 {u:.2} 元段", b.lower),
                None => format!("{:.2} 元以上段", b.lower),
            };
            let factor = if b.factor == Decimal::ONE {
                String::new()
            } else {
                format!(" × {}%", pct(b.factor))
            };
            t.push_str(&format!(
                "· {range}：{:.2} × {}%{factor} = {:.2} 元\n",
                b.portion,
                pct(b.rate),
                b.amount
            ));
        }
    }
    t.push_str(&format!(
        "医保基金支付：约 {:.2} 元{}\n",
        e.fund_pays,
        if e.cap_applied {
            "（已达年度最高支付限额）"
        } else {
            ""
        }
    ));
    t.push_str(&format!("个人负担：约 {:.2} 元\n", e.patient_pays));
    t.push_str(match e.route {
        Route::Direct => "结算方式：在联网定点医院直接结算，只需支付个人负担部分。\n",
        Route::Manual => "结算方式：需先全额垫付，再回参保地申请零星（手工）报销。\n",
    });
    t.push_str(&format!("依据：{}\n{}", e.rules.join("；"), e.disclaimer));
    t
}

/// A checklist as chat text: materials, warnings and channels, each with its source.
/// `cite` turns an item's source into what the reader sees (chat: the brief citation).
pub fn checklist_text(
    list: &Checklist,
    texts: &ChecklistTexts,
    cite: impl Fn(&str) -> String,
) -> String {
    let mut t = String::new();
    let filing: Vec<&Item> = list
        .items
        .iter()
        .filter(|i| list.filing.contains(&i.id))
        .collect();
    let manual: Vec<&Item> = list
        .items
        .iter()
        .filter(|i| list.manual.contains(&i.id))
        .collect();
    if !filing.is_empty() {
        t.push_str("办理异地就医备案需要准备：\n");
        for (n, i) in filing.iter().enumerate() {
            t.push_str(&format!("{}. {}（{}）\n", n + 1, i.text, cite(&i.source)));
        }
    }
    if !manual.is_empty() {
        t.push_str("回参保地零星（手工）报销需要准备：\n");
        for (n, i) in manual.iter().enumerate() {
            t.push_str(&format!("{}. {}（{}）\n", n + 1, i.text, cite(&i.source)));
        }
    }
    let warnings: Vec<&Text> = list
        .warnings
        .iter()
        .filter_map(|w| texts.warning(w))
        .collect();
    if !warnings.is_empty() {
        t.push_str("请注意：\n");
        for w in warnings {
            t.push_str(&format!("· {}（{}）\n", w.text, cite(&w.source)));
        }
    }
    let channels: Vec<&Text> = list
        .channels
        .iter()
        .filter_map(|c| texts.channel(c))
        .collect();
    if !channels.is_empty() {
        t.push_str("可以在这些地方办理：");
        t.push_str(
            &channels
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("；"),
        );
        t.push('\n');
    }
    if t.is_empty() {
        t.push_str("按您的情况，不需要额外准备材料。");
    }
    t.trim_end().to_string()
}

/// A reply for the terminal: a blank line, the text, each choice and then each option
/// numbered and indented (the number typed back picks it), a blank line.
pub fn terminal_text(reply: &Reply) -> String {
    let mut t = format!("\n{}\n", reply.text);
    for (i, c) in reply.choices.iter().enumerate() {
        t.push_str(&format!("  {}. {}\n", i + 1, c.label));
    }
    // a clarifying question's options: the core reads the number typed back
    for (i, o) in reply.options.iter().enumerate() {
        t.push_str(&format!("  {}. {}\n", i + 1, o.question));
    }
    t
}

/// A reply for a channel without buttons (WeChat): the text, then a clarifying question's
/// options (else the choices) as numbered lines and how to answer them.
pub fn numbered_text(reply: &Reply) -> String {
    let mut t = reply.text.trim_end().to_string();
    let lines: Vec<&str> = if !reply.options.is_empty() {
        reply.options.iter().map(|o| o.question.as_str()).collect()
    } else {
        reply.choices.iter().map(|c| c.label.as_str()).collect()
    };
    if !lines.is_empty() {
        t.push('\n');
        for (i, line) in lines.iter().enumerate() {
            t.push_str(&format!("\n{}. {line}", i + 1));
        }
        t.push_str(if reply.options.is_empty() {
            "\n（请回复数字，或直接输入选项文字）"
        } else {
            "\n（请回复数字，或直接提出您的问题）"
        });
    }
    t
}

/// A reply for a channel with buttons (Telegram): the text, plus the choices' labels as a
/// hint when they could not be made buttons.
pub fn button_text(reply: &Reply, has_buttons: bool) -> String {
    let mut text = reply.text.clone();
    if !has_buttons && !reply.choices.is_empty() {
        let labels = reply
            .choices
            .iter()
            .map(|c| c.label.as_str())
            .collect::<Vec<_>>();
        text.push_str(&format!("\n（请回复：{}）", labels.join("、")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{Choice, FaqOption};

    fn asking() -> Reply {
        let mut reply = Reply::text("就诊医院是几级医院？");
        reply.choices = vec![
            Choice {
                value: "3".into(),
                label: "三级医院".into(),
            },
            Choice {
                value: "2".into(),
                label: "二级医院".into(),
            },
        ];
        reply
    }

    #[test]
    fn choices_as_each_channel_shows_them() {
        let reply = asking();
        assert_eq!(
            terminal_text(&reply),
            "\n就诊医院是几级医院？\n  1. 三级医院\n  2. 二级医院\n"
        );
        assert_eq!(
            numbered_text(&reply),
            "就诊医院是几级医院？\n\n1. 三级医院\n2. 二级医院\n（请回复数字，或直接输入选项文字）"
        );
        assert_eq!(button_text(&reply, true), "就诊医院是几级医院？");
        assert_eq!(
            button_text(&reply, false),
            "就诊医院是几级医院？\n（请回复：三级医院、二级医院）"
        );
        let mut clarify = Reply::text("您想问哪一个？");
        clarify.options = vec![FaqOption {
            id: "deductible".into(),
            question: "起付线是什么".into(),
        }];
        assert_eq!(
            numbered_text(&clarify),
            "您想问哪一个？\n\n1. 起付线是什么\n（请回复数字，或直接提出您的问题）"
        );
        assert_eq!(
            terminal_text(&clarify),
            "\n您想问哪一个？\n  1. 起付线是什么\n"
        );
        assert_eq!(numbered_text(&Reply::text("好的。\n")), "好的。");
    }
}
