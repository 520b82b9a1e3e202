//! A [`Reply`] as WeChat text: no buttons, so a dialog question's choices and a clarifying
//! question's options become numbered lines (the user answers "1", "2" or in words; the
//! text is [`crate::render::numbered_text`]), and a long text is split into messages within
//! WeChat's limit, at paragraph, line or sentence boundaries.

use crate::assistant::Reply;

/// WeChat's limit on a text message's content, in bytes of UTF-8 (a passive reply and a
/// customer-service message alike).
pub const MAX_TEXT_BYTES: usize = 2048;

/// WeChat lets an account send at most five customer-service messages after a user's
/// message; a reply never needs more pieces than that.
pub const MAX_PIECES: usize = 5;

/// Ends the last piece when a reply had to be cut to [`MAX_PIECES`].
pub const CUT_NOTE: &str = "……（内容较长，余下部分未能显示。可以换个问法，或把问题拆开来问。）";

/// The reply's text with its choices or options as numbered lines (shared with every
/// channel without buttons: [`crate::render::numbered_text`]).
pub fn text(reply: &Reply) -> String {
    crate::render::numbered_text(reply)
}

/// The messages of a reply: its [`text`] split within [`MAX_TEXT_BYTES`], at most
/// [`MAX_PIECES`] of them.
pub fn pieces(reply: &Reply) -> Vec<String> {
    let mut pieces = split(&text(reply), MAX_TEXT_BYTES);
    if pieces.len() > MAX_PIECES {
        pieces.truncate(MAX_PIECES);
        let last = pieces.last_mut().expect("five pieces");
        while last.len() + CUT_NOTE.len() > MAX_TEXT_BYTES {
            last.pop();
        }
        last.push_str(CUT_NOTE);
    }
    pieces
}

/// Splits `text` into pieces of at most `limit` bytes (`limit` ≥ 4, so any character fits),
/// never inside a character. A cut goes, by preference, at a paragraph break, a line break,
/// after the end of a sentence (。！？；!?;), after a clause (，、,) or at a space, in the
/// second half of the piece; else at the limit. Whitespace at a cut is dropped, and so are
/// blank pieces: the pieces, in order and separated by whitespace, are the text.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(4);
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.len() <= limit {
            pieces.push(rest.to_string());
            break;
        }
        let mut hard = limit;
        while !rest.is_char_boundary(hard) {
            hard -= 1;
        }
        let window = &rest[..hard];
        let half = hard / 2;
        let after = |i: usize| i + window[i..].chars().next().map_or(1, char::len_utf8);
        let late = |i: Option<usize>| i.filter(|&i| i >= half && i > 0);
        let end = late(window.rfind("\n\n"))
            .or_else(|| late(window.rfind('\n')))
            .or_else(|| {
                late(
                    window
                        .rfind(['。', '！', '？', '；', '!', '?', ';'])
                        .map(after),
                )
            })
            .or_else(|| late(window.rfind(['，', '、', ',']).map(after)))
            .or_else(|| late(window.rfind(char::is_whitespace)))
            .unwrap_or(hard);
        let piece = rest[..end].trim_end();
        if !piece.is_empty() {
            pieces.push(piece.to_string());
        }
        rest = rest[end..].trim_start();
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::{Choice, FaqOption};
    use proptest::prelude::*;

    fn check(text: &str, limit: usize) -> Vec<String> {
        let pieces = split(text, limit);
        for p in &pieces {
            assert!(p.len() <= limit.max(4), "piece over {limit}: {p:?}");
            assert!(!p.trim().is_empty());
        }
        let joined: String = pieces.concat();
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(
            joined
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
            squeezed
        );
        pieces
    }

    #[test]
    fn choices_and_options_are_numbered_lines() {
        let mut r = Reply::text("就诊医院是几级医院？");
        r.choices = vec![
            Choice {
                value: "level3".into(),
                label: "三级医院".into(),
            },
            Choice {
                value: "level2".into(),
                label: "二级医院".into(),
            },
        ];
        let t = text(&r);
        assert!(t.contains("\n1. 三级医院\n2. 二级医院\n"), "{t}");
        assert!(t.ends_with("（请回复数字，或直接输入选项文字）"), "{t}");
        let mut r = Reply::text("您想问哪一个？");
        r.options = vec![FaqOption {
            id: "a".into(),
            question: "异地就医备案怎么办".into(),
        }];
        assert!(text(&r).contains("\n1. 异地就医备案怎么办\n（请回复数字"));
        assert_eq!(text(&Reply::text("你好\n")), "你好");
    }

    #[test]
    fn long_text_is_cut_after_a_sentence() {
        let sentence = format!("{}。", "甲".repeat(99));
        let text = sentence.repeat(10);
        let pieces = check(&text, MAX_TEXT_BYTES);
        assert!(pieces.len() > 1);
        for p in &pieces {
            assert!(p.ends_with('。'), "{p}");
        }
    }

    #[test]
    fn paragraphs_come_before_sentences_and_a_run_without_breaks_is_cut_hard() {
        let text = format!(
            "{}\n\n{}。{}",
            "甲".repeat(400),
            "乙".repeat(100),
            "丙".repeat(300)
        );
        let pieces = check(&text, 2048);
        assert_eq!(pieces[0], "甲".repeat(400));
        let pieces = check(&"丁".repeat(1000), 2048);
        assert_eq!(pieces[0].chars().count(), 682);
    }

    #[test]
    fn a_reply_is_at_most_five_messages() {
        let r = Reply::text(format!("{}。", "长".repeat(300)).repeat(40));
        let p = pieces(&r);
        assert_eq!(p.len(), MAX_PIECES);
        assert!(p[4].ends_with(CUT_NOTE));
        assert!(p.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
    }

    proptest! {
        #[test]
        fn any_text_splits_within_the_limit(text in any::<String>(), limit in 4usize..64) {
            check(&text, limit);
        }

        #[test]
        fn chinese_text_splits_within_the_limit(
            text in "([甲乙丙。，、\n ]{0,12}|😀|\n\n|[a-z]{0,5}){0,60}",
            limit in 4usize..40,
        ) {
            check(&text, limit);
        }
    }
}
