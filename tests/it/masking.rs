//! Masking of personal numbers (`text::mask_personal_numbers`): an adversarial corpus
//! (`tests/data/masking_corpus.jsonl`), properties over generated numbers written every which
//! way, and the shipped knowledge passing through unchanged (its replies are stored masked).

use proptest::prelude::*;
use serde_json::Value;
use yidi::text::{is_number_separator, mask_personal_numbers};

use crate::helpers::{assistant, repo};

/// The digits a reader could still see: digit-like characters as ASCII digits, anything
/// that is not a letter dropped (a reader skips punctuation, symbols and spaces), a letter
/// or a `*` a break.
fn skeleton(s: &str) -> String {
    s.chars()
        .filter(|&c| c.is_alphabetic() || c == '*' || c.is_numeric())
        .map(|c| match c {
            '0'..='9' => c,
            '０'..='９' => char::from_u32(c as u32 - 0xFF10 + 0x30).unwrap(),
            _ => match "〇一二三四五六七八九".chars().position(|d| d == c) {
                Some(v) => char::from_digit(v as u32, 10).unwrap(),
                None => match "零幺".chars().position(|d| d == c) {
                    Some(v) => char::from_digit(v as u32, 10).unwrap(),
                    None => '|',
                },
            },
        })
        .collect()
}

/// No 8 consecutive digits of `secret` are readable in `masked`, and at least `len - 7` of
/// its characters were masked.
fn assert_hidden(text: &str, masked: &str, secret: &str) {
    let digits: Vec<char> = secret.chars().filter(char::is_ascii_digit).collect();
    let seen = skeleton(masked);
    for w in digits.windows(8) {
        let w: String = w.iter().collect();
        assert!(
            !seen.contains(&w),
            "{secret} readable in {masked:?} (from {text:?})"
        );
    }
    let stars =
        masked.chars().filter(|&c| c == '*').count() - text.chars().filter(|&c| c == '*').count();
    assert!(
        stars + 7 >= secret.chars().count(),
        "only {stars} characters of {secret} masked in {masked:?} (from {text:?})"
    );
}

/// The separator sweep of issue 23: what a person might put between the groups of a number
/// (the review's leaking examples first, then spaces, invisibles, dashes, dots, brackets,
/// punctuation, symbols, emoji and mixes, 1 to 4 characters).
pub const SWEEP_SEPARATORS: &[&str] = &[
    "、",
    "：",
    ":",
    "。",
    ";",
    "；",
    "~",
    "#",
    "=",
    "\u{2026}",
    "\"",
    "\u{201d}",
    "\\",
    "→",
    "\u{2028}",
    "\n",
    "    ",
    " ",
    "  ",
    "   ",
    "\t",
    "\u{a0}",
    "\u{3000}",
    "\u{2002}",
    "\u{2003}",
    "\u{2009}",
    "\u{202f}",
    "\u{200b}",
    "\u{200c}",
    "\u{200d}",
    "\u{2060}",
    "\u{feff}",
    "\u{ad}",
    "\r\n",
    "\r",
    "\u{2029}",
    "\u{85}",
    "\u{b}",
    "-",
    "--",
    " - ",
    "－",
    "\u{2013}",
    "\u{2014}",
    "\u{2015}",
    "\u{2010}",
    "\u{2011}",
    "−",
    "_",
    ".",
    "．",
    "·",
    "\u{2022}",
    "・",
    "\u{2027}",
    "∙",
    "/",
    "／",
    "|",
    "｜",
    "\\\\",
    "(",
    ")",
    "（",
    "）",
    "[",
    "]",
    "【",
    "】",
    "「",
    "」",
    "『",
    "』",
    "<",
    ">",
    "《",
    "》",
    "«",
    "»",
    ",",
    "，",
    "!",
    "！",
    "?",
    "？",
    "'",
    "\u{2018}",
    "\u{2019}",
    "\u{201c}",
    "`",
    "¨",
    "&",
    "＆",
    "@",
    "＠",
    "%",
    "％",
    "^",
    "+",
    "＋",
    "＝",
    "～",
    "〜",
    "$",
    "¥",
    "￥",
    "°",
    "§",
    "¶",
    "\u{203b}",
    "★",
    "☆",
    "●",
    "○",
    "■",
    "□",
    "▲",
    "◆",
    "←",
    "↑",
    "⇒",
    "✓",
    "♥",
    "\u{1f600}",
    "\u{1f449}",
    "©",
    "®",
    "™",
    "×",
    "÷",
    "±",
    "：\n",
    " → ",
    "、 ",
    "#\u{200b}",
    "=>",
];

/// The numbers the sweep splits, in their usual groups: a mobile number (3-4-4), an ID card
/// (6-8-4) and a bank card (4-4-4-4-3).
pub const SWEEP_NUMBERS: [(&str, &[usize]); 3] = [
    ("13912345678", &[3, 4, 4]),
    ("32058219800101123X", &[6, 8, 4]),
    ("6222021234567890123", &[4, 4, 4, 4, 3]),
];

/// `number` cut into `groups` joined by `sep`.
pub fn split_number(number: &str, groups: &[usize], sep: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let mut parts = Vec::new();
    let mut at = 0;
    for &n in groups {
        parts.push(chars[at..at + n].iter().collect::<String>());
        at += n;
    }
    parts.join(sep)
}

/// Every text of the sweep, with the number it hides: `wrap` puts the written number in a
/// sentence.
pub fn sweep_texts(wrap: impl Fn(&str) -> String) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    for sep in SWEEP_SEPARATORS {
        for (number, groups) in SWEEP_NUMBERS {
            out.push((*sep, number, wrap(&split_number(number, groups, sep))));
        }
    }
    out
}

/// Whether 8 consecutive digits of `secret` can be read in `stored`.
pub fn shows(stored: &str, secret: &str) -> bool {
    let digits: Vec<char> = secret.chars().filter(char::is_ascii_digit).collect();
    let seen = skeleton(stored);
    digits
        .windows(8)
        .any(|w| seen.contains(&w.iter().collect::<String>()))
}

/// The separators of the sweep with which some number stays readable after `mask`.
pub fn sweep_leaks(mask: impl Fn(&str) -> String) -> Vec<&'static str> {
    let mut leaks: Vec<&str> = Vec::new();
    for (sep, secret, text) in sweep_texts(|n| format!("我的号码{n}谢谢")) {
        if shows(&mask(&text), secret) && !leaks.contains(&sep) {
            leaks.push(sep);
        }
    }
    leaks
}

#[test]
fn the_separator_sweep_leaves_no_number_readable() {
    let leaks = sweep_leaks(mask_personal_numbers);
    eprintln!(
        "separator sweep: {} of {} separators leak",
        leaks.len(),
        SWEEP_SEPARATORS.len()
    );
    assert!(leaks.is_empty(), "readable with {leaks:?}");
}

#[test]
fn the_adversarial_corpus_is_masked_and_amounts_dates_and_hotlines_stay_readable() {
    let text = std::fs::read_to_string(repo().join("tests/data/masking_corpus.jsonl")).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 100, "{} rows", rows.len());
    for row in &rows {
        let input = row["text"].as_str().unwrap();
        let masked = mask_personal_numbers(input);
        assert_eq!(masked.chars().count(), input.chars().count());
        for secret in row["secrets"].as_array().unwrap() {
            assert_hidden(input, &masked, secret.as_str().unwrap());
        }
        for keep in row["keep"].as_array().unwrap() {
            let keep = keep.as_str().unwrap();
            assert!(masked.contains(keep), "{keep:?} lost in {masked:?}");
        }
        if row["secrets"].as_array().unwrap().is_empty() {
            assert_eq!(masked, input, "nothing personal, nothing masked");
        }
        assert_eq!(
            mask_personal_numbers(&masked),
            masked,
            "masking is idempotent"
        );
    }
}

#[test]
fn the_shipped_knowledge_passes_through_masking_unchanged() {
    let a = assistant();
    let mut texts: Vec<&str> = vec![];
    for e in &a.knowledge.faqs {
        texts.push(&e.question);
        texts.push(&e.answer);
        texts.extend(e.variants.iter().map(String::as_str));
    }
    for t in texts {
        assert_eq!(mask_personal_numbers(t), t);
    }
    let seed = std::fs::read_dir(repo().join("../shared/seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("000_"))
        .unwrap();
    let seed = std::fs::read_to_string(seed).unwrap();
    assert_eq!(
        mask_personal_numbers(&seed),
        seed,
        "seed 000's numbers stay readable"
    );
}

/// How a digit may be written.
fn script() -> impl Strategy<Value = usize> {
    0..4usize
}

fn write_digit(d: char, script: usize) -> char {
    let v = d.to_digit(10).unwrap();
    match script {
        0 => d,
        1 => char::from_u32(0xFF10 + v).unwrap(),
        2 => "〇一二三四五六七八九".chars().nth(v as usize).unwrap(),
        _ => char::from_u32(0x1D7CE + v).unwrap(),
    }
}

const SEPARATORS: &[&str] = &[
    " ", "  ", "-", ".", "/", ",", "，", "\u{200b}", "\u{3000}", "\u{a0}", "－", "–", "—",
    "\u{2060}", "．", " - ", "_", "\u{feff}",
];

/// `digits` written in one script, split into groups at random points by separators.
fn written(digits: String) -> impl Strategy<Value = String> {
    let n = digits.chars().count();
    (
        script(),
        proptest::collection::vec((any::<bool>(), 0..SEPARATORS.len()), n),
    )
        .prop_map(move |(script, cuts)| {
            let mut out = String::new();
            for (k, d) in digits.chars().enumerate() {
                if k > 0 && cuts[k].0 && k % 2 == 0 {
                    out.push_str(SEPARATORS[cuts[k].1]);
                }
                out.push(if d == 'X' {
                    'X'
                } else {
                    write_digit(d, script)
                });
            }
            out
        })
}

/// A card number as cards print it: in groups of four, or in one piece.
fn in_fours(digits: String) -> impl Strategy<Value = String> {
    (0..SEPARATORS.len(), any::<bool>()).prop_map(move |(sep, split)| {
        let chars: Vec<char> = digits.chars().collect();
        if !split {
            return digits.clone();
        }
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(SEPARATORS[sep])
    })
}

fn phone() -> impl Strategy<Value = String> {
    "1[3-9][0-9]{9}"
}

fn id_card() -> impl Strategy<Value = String> {
    (
        "3205[0-9]{2}",
        1940..2020u32,
        1..=12u32,
        1..=28u32,
        "[0-9]{3}[0-9X]",
    )
        .prop_map(|(region, y, m, d, tail)| format!("{region}{y}{m:02}{d:02}{tail}"))
}

fn bank_card() -> impl Strategy<Value = String> {
    "62[0-9]{14,17}"
}

/// Text that is readable and must stay so: amounts with units, dates, hotlines, words.
fn readable() -> impl Strategy<Value = String> {
    prop_oneof![
        (1..10_000_000u32).prop_map(|n| format!("{n}元")),
        (1..100_000u32, 0..100u32).prop_map(|(n, c)| format!("{n}.{c:02}元")),
        (1..100u32).prop_map(|n| format!("{n}万")),
        (2000..2030u32, 1..=12u32, 1..=28u32, 0..3usize).prop_map(|(y, m, d, s)| {
            let s = ["-", ".", "/"][s];
            format!("{y}{s}{m:02}{s}{d:02}")
        }),
        Just("0512-12333".to_string()),
        Just("12333".to_string()),
        Just("58261872".to_string()),
        Just("58305027".to_string()),
        Just("住院".to_string()),
        Just("报销多少".to_string()),
    ]
}

/// A line of an estimate as the replies write it (and the transcript stores it).
fn estimate_line() -> impl Strategy<Value = String> {
    (1..10_000_000u32, 1..=100u32, 0..100u32).prop_map(|(a, p, c)| {
        let paid = u64::from(a) * u64::from(p) / 100;
        format!("{a}.{c:02} × {p}% = {paid}.{c:02}")
    })
}

/// 1 to 4 characters of punctuation, symbols and spaces between two items, not only those
/// written inside numbers (two dates joined by `-` are one longer number).
fn item_join() -> impl Strategy<Value = String> {
    "[\\p{P}\\p{S}\\p{Z}&&[^*]]{1,4}".prop_filter("a join between items", |s: &String| {
        s.chars().any(|c| !is_number_separator(c))
    })
}

/// What may stand between two items.
fn joiner() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(" "),
        Just("，"),
        Just("、"),
        Just("；"),
        Just("电话"),
        Just("\n"),
        Just("和"),
        Just("，还有"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// A phone, ID-card or bank-card number written in any script with any separators, among
    /// readable items, is masked; the readable items around it are unchanged.
    #[test]
    fn personal_numbers_are_masked_however_written(
        (secret, number) in prop_oneof![
            phone().prop_flat_map(|s| (Just(s.clone()), written(s))),
            id_card().prop_flat_map(|s| (Just(s.clone()), written(s))),
            bank_card().prop_flat_map(|s| (Just(s.clone()), in_fours(s))),
        ],
        before in proptest::collection::vec((readable(), joiner()), 0..3),
        after in proptest::collection::vec((joiner(), readable()), 0..3),
        j1 in prop_oneof![Just(" "), Just("，"), Just("是"), Just(":")],
        j2 in prop_oneof![Just(" "), Just("，"), Just("。"), Just("")],
    ) {
        let mut text = String::new();
        let mut keep = Vec::new();
        for (item, join) in &before {
            text.push_str(item);
            text.push_str(join);
            keep.push(item.clone());
        }
        // a readable number needs a word or a unit before a personal one ("花了50000
        // 13912345678" is covered by the corpus)
        text.push_str("号码");
        text.push_str(j1);
        text.push_str(&number);
        text.push_str(j2);
        text.push_str("谢谢");
        for (join, item) in &after {
            text.push_str(join);
            text.push_str(item);
            keep.push(item.clone());
        }
        let masked = mask_personal_numbers(&text);
        assert_hidden(&text, &masked, &secret);
        for k in &keep {
            prop_assert!(masked.contains(k.as_str()), "{k:?} lost in {masked:?}");
        }
        prop_assert_eq!(mask_personal_numbers(&masked), masked.clone());
    }

    /// A phone, ID-card or bank-card number in its usual groups, joined by any 1 to 4
    /// characters of Unicode's punctuation, symbol and space categories, is masked.
    #[test]
    fn personal_numbers_are_masked_whatever_separates_their_groups(
        (secret, groups) in prop_oneof![
            phone().prop_map(|s| (s, vec![3, 4, 4])),
            id_card().prop_map(|s| (s, vec![6, 8, 4])),
            bank_card().prop_map(|s| {
                let n = s.len();
                let mut g = vec![4; n / 4];
                if n % 4 > 0 {
                    g.push(n % 4);
                }
                (s, g)
            }),
        ],
        // `*` is a masked digit to the masker, not a separator
        sep in "[\\p{P}\\p{S}\\p{Z}&&[^*]]{1,4}",
        before in proptest::collection::vec((readable(), joiner()), 0..3),
    ) {
        let mut text: String = before.iter().map(|(i, j)| format!("{i}{j}")).collect();
        text.push_str("号码");
        text.push_str(&split_number(&secret, &groups, &sep));
        text.push_str("谢谢");
        let masked = mask_personal_numbers(&text);
        prop_assert!(!shows(&masked, &secret), "{secret} readable in {masked:?}");
        for (item, _) in &before {
            prop_assert!(masked.contains(item.as_str()), "{item:?} lost in {masked:?}");
        }
        prop_assert_eq!(mask_personal_numbers(&masked), masked.clone());
    }

    /// Amounts, dates, hotlines and estimate lines stay readable whatever 1 to 4 characters
    /// of punctuation, symbols or spaces join them.
    #[test]
    fn readable_items_stay_readable_whatever_joins_them(
        items in proptest::collection::vec(
            (prop_oneof![readable(), estimate_line()], item_join()),
            1..5,
        ),
    ) {
        let text: String = items.iter().map(|(i, j)| format!("{i}{j}")).collect();
        prop_assert_eq!(mask_personal_numbers(&text), text);
    }

    /// Readable items alone are never masked, however they are joined.
    #[test]
    fn amounts_dates_and_hotlines_stay_readable(
        items in proptest::collection::vec((readable(), joiner()), 1..6),
    ) {
        let text: String = items.iter().map(|(i, j)| format!("{i}{j}")).collect();
        prop_assert_eq!(mask_personal_numbers(&text), text);
    }

    /// Any text: the same number of characters, idempotent, no panic.
    #[test]
    fn masking_keeps_length_and_is_idempotent(text in "\\PC{0,80}") {
        let masked = mask_personal_numbers(&text);
        prop_assert_eq!(masked.chars().count(), text.chars().count());
        prop_assert_eq!(mask_personal_numbers(&masked), masked);
    }
}

#[test]
fn masking_a_long_message_full_of_digits_takes_little_time() {
    let cases = [
        "1".repeat(2_000),
        "1 ".repeat(1_000),
        "13912345678 ".repeat(170),
        "一三九-".repeat(500),
        "2024-10-29 ".repeat(180),
        "1\u{200b}".repeat(1_000),
    ];
    for text in cases {
        let started = std::time::Instant::now();
        let masked = mask_personal_numbers(&text);
        let took = started.elapsed();
        assert_eq!(masked.chars().count(), text.chars().count());
        assert!(
            took < std::time::Duration::from_millis(200),
            "{took:?} for {:?}…",
            &text[..20]
        );
        eprintln!("{took:?}");
    }
}

/// Issue 23: estimate replies (their bands: "19000.00 × 85% = 16150.00", amounts up to ten
/// million) are stored as written: the masker joins digit groups across any non-letter, but
/// a calculation's mixed joins are not one number.
#[test]
fn estimate_replies_pass_through_masking_unchanged() {
    let a = assistant();
    let mut checked = 0;
    for total in [
        "800",
        "12345.67",
        "99999.99",
        "350000",
        "1234567.89",
        "9999999.99",
    ] {
        for (policy, scheme, level) in [
            ("suzhou", "employee", 3),
            ("suzhou", "resident", 2),
            ("zhangjiagang", "employee", 1),
        ] {
            let mut input = serde_json::json!({
                "policy": policy, "visit": "inpatient", "hospital_level": level,
                "filing_type": "long_term_resident", "filed": true, "total": total,
                "scheme": scheme, "admissions_before": 1,
            });
            if scheme == "employee" {
                input["employment"] = "retired".into();
            } else {
                input["category"] = "adult".into();
            }
            if total.parse::<f64>().unwrap() > 5_000.0 {
                input["self_pay"] = "100.50".into();
                input["class_b"] = "0".into();
            }
            let estimate = yidi::guidance::estimate::EstimateInput::from_json(&input)
                .and_then(|i| yidi::guidance::estimate::estimate(&a.policies, &i))
                .unwrap_or_else(|e| panic!("{input}: {e:?}"));
            for text in [
                yidi::render::estimate_text(&estimate),
                yidi::render::estimate_brief_text(&estimate),
            ] {
                assert_eq!(mask_personal_numbers(&text), text);
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "{checked} estimate texts");
}
