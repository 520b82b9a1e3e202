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

/// Masks personal numbers before text is logged or stored: ID-card numbers (15 or 18
/// characters, the last may be X) and mobile numbers (11 digits starting with 1, optionally
/// after +86) keep their first 3 and last 4 digits. Full-width digits count, and so do digit
/// groups split by single spaces or hyphens ("139-1234-5678", "320582 19800101 123X").
pub fn mask_personal_numbers(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let digit = |c: char| c.is_ascii_digit() || ('０'..='９').contains(&c);
    let mut out: Vec<char> = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if !digit(chars[i]) || (i > 0 && digit(chars[i - 1])) {
            i += 1;
            continue;
        }
        // a run of digits, with single separators between digit groups
        let mut positions = vec![i];
        let mut j = i + 1;
        while j < chars.len() {
            if digit(chars[j]) {
                positions.push(j);
                j += 1;
            } else if matches!(chars[j], ' ' | '-') && j + 1 < chars.len() && digit(chars[j + 1]) {
                j += 1;
            } else {
                break;
            }
        }
        // an ID card may end in X
        if positions.len() == 17 && j < chars.len() && matches!(chars[j], 'X' | 'x') {
            positions.push(j);
            j += 1;
        }
        let value: String = positions
            .iter()
            .map(|&p| to_ascii_digit(chars[p]))
            .collect();
        let skip = if value.len() == 13 && value.starts_with("861") {
            2
        } else {
            0
        };
        let n = positions.len() - skip;
        let personal = (n == 11 && value[skip..].starts_with('1')) || n == 15 || n == 18;
        if personal {
            for (k, &p) in positions[skip..].iter().enumerate() {
                if k >= 3 && k < n - 4 {
                    out[p] = '*';
                }
            }
        }
        i = j;
    }
    out.into_iter().collect()
}

fn to_ascii_digit(c: char) -> char {
    if ('０'..='９').contains(&c) {
        char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c)
    } else {
        c
    }
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
        assert_eq!(mask_personal_numbers("139-1234-5678"), "139-****-5678");
        assert_eq!(
            mask_personal_numbers("打139 1234 5678找我"),
            "打139 **** 5678找我"
        );
        assert_eq!(mask_personal_numbers("+8613912345678"), "+86139****5678");
        assert_eq!(
            mask_personal_numbers("１３９１２３４５６７８"),
            "１３９****５６７８"
        );
        assert_eq!(
            mask_personal_numbers("ID320582198001011234"),
            "ID320***********1234"
        );
        assert_eq!(
            mask_personal_numbers("320582 19800101 123X"),
            "320*** ******** 123X"
        );
        assert_eq!(
            mask_personal_numbers("花了50000元，住了12天"),
            "花了50000元，住了12天"
        );
    }
}
