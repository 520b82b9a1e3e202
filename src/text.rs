//! Text normalisation shared by indexing and querying.
//!
//! Every piece of text that reaches the tokenizer goes through [`normalize`] first, so the
//! index and the queries agree on one form: Simplified characters, half-width ASCII, lower
//! case, no control characters, bounded length.
//!
//! What may reach the database and the logs is decided here too: [`mask_personal_numbers`]
//! before anything is stored, [`log_id`] for every session id in a log line.

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
        // is_cjk first: it answers for most characters without Unicode's tables
        let keep = is_cjk(c) || c.is_alphanumeric() || matches!(c, '.' | '-' | '%');
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
    let mut norm = normalize(first_chars(input, MAX_QUERY_CHARS * 2));
    let kept = first_chars(&norm, MAX_QUERY_CHARS).len();
    norm.truncate(kept);
    norm
}

/// The first `n` characters of `s` (all of it when shorter).
fn first_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((end, _)) => &s[..end],
        None => s,
    }
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

/// Masks personal numbers before text is logged or stored, erring toward masking: every
/// number that could be personal keeps at most its first 3 and last 4 digits, the rest
/// becomes `*` (one `*` per character, so the text keeps its length in characters).
///
/// How a number is found, whatever way it is written:
///
/// - **Digits** are ASCII, full-width and other Unicode decimal digits, circled and
///   superscript digits, and Chinese numerals written digit by digit (〇零一幺二…九; 十, 百, 万
///   and the like are words, so amounts such as 五万三千 are never digits).
/// - **Chains**: digit groups joined by up to four [separator](is_separator) characters
///   (anything but a letter or a digit: punctuation, symbols, spaces of every width, line
///   breaks, zero-width and other invisible characters), or touching in different scripts
///   (`139一二三四5678`), form one chain. A letter (a Chinese character too) ends a chain.
/// - **How groups are joined** decides what they may form. The characters people write
///   *inside* a number (spaces, hyphens and dashes, `.`, `/`, commas, brackets, `+`,
///   invisible characters: [`is_number_separator`]) join groups freely, as always. Any other
///   join (`、` `：` `。` `→` a line break, `#`…) joins groups into one number only when every
///   join of that number is the same (`139、1234、5678`, `320582：19800101：123X`), so that
///   amounts in a calculation (`50000.00 × 90% = 45000.00`) or a list (`5000、3000、2000`)
///   are not read as one long number.
/// - **Within a chain**, from left to right, whole groups are matched as: an ID-card number
///   (18 characters, the last may be X, or 15; with a province code and a birth date), a
///   date (`2024-10-29`, `2024.1.5`, `2024/10/29`: left readable), a mobile number (11
///   digits starting with 1, optionally after 0, 86 or +86), a public hotline of the
///   knowledge base ([`PUBLIC_NUMBERS`]: left readable), a card number in groups of four,
///   or a single group of 11 digits or more. A personal match is masked on its own, so an
///   amount beside it (`花了50000 13912345678`) stays readable.
/// - **Whatever is left** between those matches, joined by number separators, is masked as
///   one number when it holds 11 digits or more (two numbers run together, a bank card split
///   oddly, a landline with its area code), since no amount or date in a question is that
///   long.
pub fn mask_personal_numbers(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if digit(chars[i]).is_none() {
            i += 1;
            continue;
        }
        let (groups, end) = chain(&chars, i);
        mask_chain(&chars, &groups, &mut out);
        i = end;
    }
    out.into_iter().collect()
}

/// Numbers published in the knowledge base (seed 000): the 张家港 hotline and the towns'
/// medical-insurance numbers. They are left readable wherever they appear.
pub const PUBLIC_NUMBERS: &[&str] = &[
    "051212333",
    "12333",
    "58261872",
    "58662127",
    "56906016",
    "58402883",
    "58701107",
    "58901619",
    "58554879",
    "58760013",
    "58639176",
    "58305027",
];

/// Most separator characters allowed between two digit groups of one number (four spaces
/// are still one number).
const MAX_SEPARATOR_RUN: usize = 4;

/// Characters that may join the digit groups of one number: anything that is neither a
/// letter (of any script, Chinese characters included) nor a digit (see
/// [`mask_personal_numbers`]). The check character `X` of an ID card is a letter, found on
/// its own.
pub fn is_separator(c: char) -> bool {
    // circled and squared Latin letters are symbols (So) that Unicode also calls alphabetic
    let symbol = matches!(c as u32,
        0x24B6..=0x24E9 | 0x1F130..=0x1F149 | 0x1F150..=0x1F169 | 0x1F170..=0x1F189);
    (symbol || !c.is_alphabetic()) && digit(c).is_none()
}

/// The separators written inside numbers (`139 1234 5678`, `139-1234-5678`, `6222.0212`,
/// `(0512)`, zero-width characters): groups joined by these alone form one number whatever
/// the mix.
pub fn is_number_separator(c: char) -> bool {
    matches!(c,
        ' ' | '\t' | '-' | '.' | '/' | ',' | '_' | '+' | '(' | ')' | '[' | ']' | '·' | '•'
        | '\u{00A0}' | '\u{00AD}' | '\u{2000}'..='\u{200F}' | '\u{2010}'..='\u{2015}'
        | '\u{2027}' | '\u{202F}' | '\u{205F}'..='\u{2064}' | '\u{2212}' | '\u{2E3A}' | '\u{2E3B}'
        | '\u{3000}' | '\u{30FB}' | '\u{FE58}' | '\u{FE63}' | '\u{FEFF}'
        | '，' | '．' | '／' | '－' | '＋' | '（' | '）' | '［' | '］' | '＿' | '｜' | '|' | '～' | '〜')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Arabic,
    Chinese,
}

/// The value (0–9, or 10 for a digit of unknown value) and script of a digit character.
fn digit(c: char) -> Option<(u8, Script)> {
    const ZEROS: &[u32] = &[
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
        0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
        0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
        0xFF10, 0x104A0, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1FBF0,
    ];
    // the common cases first: ASCII, and Chinese characters other than the numerals
    if c.is_ascii() {
        return match c {
            '0'..='9' => Some((c as u8 - b'0', Script::Arabic)),
            '*' => Some((11, Script::Arabic)),
            _ => None,
        };
    }
    let u = c as u32;
    if (0x4E00..=0x9FFF).contains(&u) && !"零一壹幺二贰三叁四肆五伍六陆七柒八捌九玖".contains(c)
    {
        return None;
    }
    if let Some(&z) = ZEROS.iter().find(|&&z| (z..z + 10).contains(&u)) {
        return Some(((u - z) as u8, Script::Arabic));
    }
    let arabic = |v: u32| Some((v as u8, Script::Arabic));
    match u {
        // superscripts and subscripts
        0x2070 => arabic(0),
        0xB9 => arabic(1),
        0xB2 | 0xB3 => arabic(u - 0xB0),
        0x2074..=0x2079 => arabic(u - 0x2070),
        0x2080..=0x2089 => arabic(u - 0x2080),
        // circled, parenthesised and full-stop digits
        0x2460..=0x2468 => arabic(u - 0x245F),
        0x2474..=0x247C => arabic(u - 0x2473),
        0x2488..=0x2490 => arabic(u - 0x2487),
        0x24EA | 0x24FF | 0x1F100 => arabic(0),
        0x2776..=0x277E => arabic(u - 0x2775),
        0x2780..=0x2788 => arabic(u - 0x277F),
        0x278A..=0x2792 => arabic(u - 0x2789),
        0x1F101..=0x1F10A => arabic(u - 0x1F101),
        _ => match c {
            // an already masked digit: masking twice changes nothing
            '*' => Some((11, Script::Arabic)),
            '〇' | '零' => Some((0, Script::Chinese)),
            '一' | '壹' | '幺' => Some((1, Script::Chinese)),
            '二' | '贰' => Some((2, Script::Chinese)),
            '三' | '叁' => Some((3, Script::Chinese)),
            '四' | '肆' => Some((4, Script::Chinese)),
            '五' | '伍' => Some((5, Script::Chinese)),
            '六' | '陆' => Some((6, Script::Chinese)),
            '七' | '柒' => Some((7, Script::Chinese)),
            '八' | '捌' => Some((8, Script::Chinese)),
            '九' | '玖' => Some((9, Script::Chinese)),
            // other numeric characters (of unknown value) still count as digits
            c if c.is_numeric() && !is_cjk(c) => Some((10, Script::Arabic)),
            _ => None,
        },
    }
}

/// The check character of an ID-card number.
fn is_check_x(c: char) -> bool {
    matches!(c, 'X' | 'x' | 'Ｘ' | 'ｘ' | '×')
}

/// A run of digits of one script, and what separates it from the group before.
struct Group {
    /// Character positions of the digits.
    positions: Vec<usize>,
    /// Their values, as ASCII digits (`?` for a digit of unknown value).
    value: String,
    /// The separator characters before this group (empty for the first group or a change of
    /// script).
    sep_before: String,
    /// Where the group ends (one past its last digit).
    end: usize,
}

/// The chain of digit groups starting at `start` (a digit), and where it ends.
fn chain(chars: &[char], start: usize) -> (Vec<Group>, usize) {
    let mut groups = Vec::new();
    let mut i = start;
    let mut sep_before = String::new();
    while let Some((_, script)) = digit(chars[i]) {
        let mut g = Group {
            positions: Vec::new(),
            value: String::new(),
            sep_before: std::mem::take(&mut sep_before),
            end: i,
        };
        while i < chars.len() {
            match digit(chars[i]) {
                Some((v, s)) if s == script => {
                    g.positions.push(i);
                    g.value.push(match v {
                        11 => '*',
                        v => char::from_digit(u32::from(v), 10).unwrap_or('?'),
                    });
                    i += 1;
                }
                _ => break,
            }
        }
        g.end = i;
        groups.push(g);
        // the next group: after a few separators, or straight away in another script
        let mut j = i;
        while j < chars.len() && j - i < MAX_SEPARATOR_RUN && is_separator(chars[j]) {
            j += 1;
        }
        if j < chars.len() && digit(chars[j]).is_some() {
            sep_before = chars[i..j].iter().collect();
            i = j;
        } else {
            break;
        }
    }
    (groups, i)
}

/// The ID-card check character right after group `g` (directly or after separators).
fn check_x_after(chars: &[char], g: &Group) -> Option<usize> {
    let mut j = g.end;
    while j < chars.len() && j - g.end < MAX_SEPARATOR_RUN && is_separator(chars[j]) {
        j += 1;
    }
    let x = chars.get(j).copied().filter(|&c| is_check_x(c))?;
    // `X` followed by more letters is a word, not a check character
    let next = chars.get(j + 1).copied();
    (is_check_x(x) && !next.is_some_and(|n| n.is_ascii_alphabetic())).then_some(j)
}

/// A plausible ID-card number (without its check character): a province code and a birth date.
fn plausible_id(v: &str) -> bool {
    let num = |r: std::ops::Range<usize>| v.get(r).and_then(|s| s.parse::<u32>().ok());
    let province = matches!(
        num(0..2),
        Some(11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83)
    );
    if v.contains('*') {
        // already masked as an ID card (its first 3 and last 4 kept): masked the same way
        let total = if v.len() == 17 { 18 } else { v.len() };
        return province
            && v.chars()
                .enumerate()
                .all(|(k, c)| (c == '*') == (3..total - 4).contains(&k));
    }
    let (month, day) = match v.len() {
        17 | 18 => {
            if !matches!(num(6..10), Some(1900..=2099)) {
                return false;
            }
            (num(10..12), num(12..14))
        }
        15 => (num(8..10), num(10..12)),
        _ => return false,
    };
    province && matches!(month, Some(1..=12)) && matches!(day, Some(1..=31))
}

/// What a run of whole groups, starting at one group, turned out to be.
enum Match {
    /// Masked: these character positions, of which the first `skip` are a prefix (0, 86)
    /// left as written and then 3 and 4 kept at either end.
    Personal {
        groups: usize,
        positions: Vec<usize>,
        skip: usize,
    },
    /// Left readable, and not part of any number around it (a date, a public hotline).
    Readable { groups: usize },
}

/// Whether `sep` (what stands between two groups; empty for a change of script) is made
/// only of separators written inside numbers.
fn number_join(sep: &str) -> bool {
    sep.chars().all(is_number_separator)
}

/// Whether consecutive `groups` may be one number: joined only by number separators, or
/// every join the same (`139、1234、5678`).
fn one_way_of_joining(groups: &[Group]) -> bool {
    let joins = groups.get(1..).unwrap_or_default();
    joins.iter().all(|g| number_join(&g.sep_before))
        || joins.iter().all(|g| g.sep_before == joins[0].sep_before)
}

fn joined(groups: &[Group]) -> (String, Vec<usize>) {
    let mut value = String::new();
    let mut positions = Vec::new();
    for g in groups {
        value.push_str(&g.value);
        positions.extend_from_slice(&g.positions);
    }
    (value, positions)
}

/// The longest match starting at group `i`, if any (in order of preference).
fn match_at(chars: &[char], groups: &[Group], i: usize) -> Option<Match> {
    let rest = &groups[i..];
    // windows of whole groups, by growing length, up to 19 digits, while their joins are
    // number separators or all the same
    let mut windows: Vec<(usize, String, Vec<usize>)> = Vec::new();
    for n in 1..=rest.len() {
        if !one_way_of_joining(&rest[..n]) {
            break;
        }
        let (value, positions) = joined(&rest[..n]);
        if value.len() > 19 && n > 1 {
            break;
        }
        windows.push((n, value, positions));
    }
    let arabic = |n: usize| {
        rest[..n].iter().all(|g| {
            g.positions
                .iter()
                .all(|&p| digit(chars[p]).is_some_and(|d| d.1 == Script::Arabic))
        })
    };
    // a date, year first
    if rest.len() >= 3 && arabic(3) {
        let (y, m, d) = (&rest[0].value, &rest[1].value, &rest[2].value);
        let seps = [rest[1].sep_before.as_str(), rest[2].sep_before.as_str()];
        let date_sep = |s: &str| matches!(s, "-" | "." | "/" | "－" | "．" | "／");
        let in_range =
            |s: &str, lo: u32, hi: u32| s.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v));
        if y.len() == 4
            && in_range(y, 1900, 2099)
            && (1..=2).contains(&m.len())
            && in_range(m, 1, 12)
            && (1..=2).contains(&d.len())
            && in_range(d, 1, 31)
            && seps[0] == seps[1]
            && date_sep(seps[0])
        {
            return Some(Match::Readable { groups: 3 });
        }
    }
    // a published hotline
    if let Some((n, ..)) = windows
        .iter()
        .rev()
        .find(|(n, value, _)| arabic(*n) && PUBLIC_NUMBERS.contains(&value.as_str()))
    {
        return Some(Match::Readable { groups: *n });
    }
    // an ID-card number: 18 characters (17 digits and X) or 15 digits
    for (n, value, positions) in windows.iter().rev() {
        let mut positions = positions.clone();
        let ok = match value.len() {
            18 | 15 => plausible_id(value),
            17 => match check_x_after(chars, &rest[n - 1]) {
                Some(x) if plausible_id(value) => {
                    positions.push(x);
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if ok {
            return Some(Match::Personal {
                groups: *n,
                positions,
                skip: 0,
            });
        }
    }
    // a mobile number, possibly after 0, 86 or +86
    for (n, value, positions) in &windows {
        let skip = match value.len() {
            11 => 0,
            12 if value.starts_with('0') => 1,
            13 if value.starts_with("86") => 2,
            _ => continue,
        };
        let mobile = value[skip..].starts_with('1')
            && value[skip + 1..].starts_with(['3', '4', '5', '6', '7', '8', '9']);
        if !mobile {
            continue;
        }
        return Some(Match::Personal {
            groups: *n,
            positions: positions.clone(),
            skip,
        });
    }
    // a card number in groups of four (the last may be shorter)
    for (n, value, positions) in windows.iter().rev() {
        let fours = rest[..n - 1].iter().all(|g| g.value.len() == 4)
            && (1..=4).contains(&rest[n - 1].value.len());
        if *n >= 4 && fours && (16..=19).contains(&value.len()) {
            return Some(Match::Personal {
                groups: *n,
                positions: positions.clone(),
                skip: 0,
            });
        }
    }
    None
}

/// Replaces all but the first 3 and last 4 of `positions[skip..]` with `*`.
fn mask_positions(out: &mut [char], positions: &[usize], skip: usize) {
    let kept = positions.get(skip..).unwrap_or_default();
    let n = kept.len();
    for (k, &p) in kept.iter().enumerate() {
        if k >= 3 && k + 4 < n {
            out[p] = '*';
        }
    }
}

/// How the groups of a chain were classified.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Personal,
    Readable,
    Left,
}

fn mask_chain(chars: &[char], groups: &[Group], out: &mut [char]) {
    let mut kinds = vec![Kind::Left; groups.len()];
    let mut i = 0;
    while i < groups.len() {
        match match_at(chars, groups, i) {
            Some(Match::Personal {
                groups: n,
                positions,
                skip,
            }) => {
                mask_positions(out, &positions, skip);
                kinds[i..i + n].fill(Kind::Personal);
                i += n;
            }
            Some(Match::Readable { groups: n }) => {
                kinds[i..i + n].fill(Kind::Readable);
                i += n;
            }
            None => i += 1,
        }
    }
    // a group left over that is tied to a personal number (by a hyphen, a dot, an invisible
    // character, nothing) belongs to it: an extension, the rest of an oddly split number
    let loose = |g: &Group| {
        !number_join(&g.sep_before)
            || g.sep_before
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, ',' | '，'))
    };
    for k in 0..groups.len() {
        if kinds[k] != Kind::Personal {
            continue;
        }
        let mut j = k + 1;
        while j < groups.len() && kinds[j] == Kind::Left && !loose(&groups[j]) {
            for &p in &groups[j].positions {
                out[p] = '*';
            }
            kinds[j] = Kind::Personal;
            j += 1;
        }
        let mut j = k;
        while j > 0 && kinds[j - 1] == Kind::Left && !loose(&groups[j]) {
            for &p in &groups[j - 1].positions {
                out[p] = '*';
            }
            kinds[j - 1] = Kind::Personal;
            j -= 1;
        }
    }
    // what is left between matches is masked as one number when it holds 11 digits or more
    let mut run: Vec<usize> = Vec::new();
    for (g, kind) in groups.iter().zip(&kinds) {
        if *kind == Kind::Left {
            // another kind of join (a list, a calculation) starts another run
            if !number_join(&g.sep_before) {
                if run.len() >= 11 {
                    mask_positions(out, &run, 0);
                }
                run.clear();
            }
            run.extend_from_slice(&g.positions);
        } else {
            if run.len() >= 11 {
                mask_positions(out, &run, 0);
            }
            run.clear();
        }
    }
    if run.len() >= 11 {
        mask_positions(out, &run, 0);
    }
}

/// How a session appears in logs: a short hash, never the id itself (a caller may use a
/// phone number as the session id).
pub fn log_id(session_id: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    session_id.hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}

/// One automaton over `patterns` (pattern `i` is the `i`-th), built as a contiguous NFA:
/// a fraction of a DFA's build time, for short messages searched once each. `None` only
/// past the crate's size limits, which these lists are far from.
pub fn literals<'a>(
    patterns: impl IntoIterator<Item = &'a str>,
) -> Option<aho_corasick::AhoCorasick> {
    aho_corasick::AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .build(patterns)
        .ok()
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

    #[test]
    fn the_reviews_examples_are_masked_and_neighbours_stay_readable() {
        let m = mask_personal_numbers;
        assert_eq!(m("13912345678 13812345678"), "139****5678 138****5678");
        assert_eq!(m("花了50000 13912345678"), "花了50000 139****5678");
        assert_eq!(m("0512-12333 13912345678"), "0512-12333 139****5678");
        assert_eq!(m("13912345678-123"), "139****5678-***");
        assert_eq!(m("013912345678"), "0139****5678");
        assert_eq!(m("32058219800101１２３Ｘ"), "320***********１２３Ｘ");
        assert_eq!(
            m("139\u{200b}1234\u{200b}5678"),
            "139\u{200b}****\u{200b}5678"
        );
        assert_eq!(m("一三九一二三四五六七八"), "一三九****五六七八");
        assert_eq!(m("卡号6222021234567890123"), "卡号622************0123");
        assert_eq!(
            m("住院2024-10-29到2024-11-05"),
            "住院2024-10-29到2024-11-05"
        );
        assert_eq!(
            m("杨舍:58261872;乐余:58662127"),
            "杨舍:58261872;乐余:58662127"
        );
    }
}
