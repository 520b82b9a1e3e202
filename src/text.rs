//! Text normalisation shared by indexing and querying.
//!
//! Every piece of text that reaches the tokenizer goes through [`normalize`] first, so the
//! index and the queries agree on one form: Simplified characters, half-width ASCII, lower
//! case, no control characters, bounded length.

/// The longest query (in characters) that search looks at. Longer input is cut, never
/// rejected: a pasted essay still gets an answer in bounded time.
pub const MAX_QUERY_CHARS: usize = 500;

/// Normalises `input` for search: traditional → simplified, full-width → half-width,
/// ASCII lower case, control characters and emoji become spaces, runs of spaces collapse.
pub fn normalize(input: &str) -> String {
    let simplified = fast2s::convert(input);
    let mut out = String::with_capacity(simplified.len());
    let mut last_space = true;
    for c in simplified.chars() {
        let c = half_width(c).to_ascii_lowercase();
        let keep = c.is_alphanumeric() || is_cjk(c) || matches!(c, '.' | '-' | '%');
        let c = if keep { c } else { ' ' };
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Normalises a query and cuts it to [`MAX_QUERY_CHARS`].
pub fn normalize_query(input: &str) -> String {
    let cut: String = input.chars().take(MAX_QUERY_CHARS * 2).collect();
    normalize(&cut).chars().take(MAX_QUERY_CHARS).collect()
}

/// True for CJK unified ideographs (the characters jieba segments).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

fn half_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    }
}

/// Masks personal numbers before text is logged or stored: 18-character ID-card numbers
/// and 11-digit mobile numbers keep their first 3 and last 4 characters.
pub fn mask_personal_numbers(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let mut end = j;
            // an ID-card number may end in X
            if j - i == 17 && j < chars.len() && matches!(chars[j], 'X' | 'x') {
                end = j + 1;
            }
            let len = end - i;
            let bounded = end == chars.len() || !chars[end].is_ascii_alphanumeric();
            if bounded && (len == 18 || (len == 11 && chars[i] == '1') || len == 15) {
                for (k, c) in chars[i..end].iter().enumerate() {
                    out.push(if k < 3 || k >= len - 4 { *c } else { '*' });
                }
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_and_full_width_are_folded() {
        assert_eq!(normalize("醫保卡"), "医保卡");
        assert_eq!(normalize("ＹＩＢＡＯ　card，刷不了！"), "yibao card 刷不了");
    }

    #[test]
    fn control_characters_and_emoji_become_single_spaces() {
        assert_eq!(
            normalize("社保卡\u{0}\u{7}丢了😭😭怎么办\n"),
            "社保卡 丢了 怎么办"
        );
        assert_eq!(normalize("   "), "");
    }

    #[test]
    fn long_queries_are_cut() {
        let q = "备案".repeat(50_000);
        assert_eq!(normalize_query(&q).chars().count(), MAX_QUERY_CHARS);
    }

    #[test]
    fn personal_numbers_are_masked() {
        assert_eq!(
            mask_personal_numbers("身份证32058219800101123X，电话13912345678，花了50000元"),
            "身份证320***********123X，电话139****5678，花了50000元"
        );
        assert_eq!(mask_personal_numbers("0512-12333"), "0512-12333");
    }
}
