//! An FAQ entry's answer for one person: a lead of one or two sentences for their situation
//! (the first of the entry's cases that applies, else its brief), then the answer's
//! paragraphs for their region only (general paragraphs and the paragraph that starts with
//! their region's name), cut to one phone screen with "详细" for the rest.

use std::collections::BTreeMap;

use crate::knowledge::FaqEntry;
use crate::understanding::Direction;

/// About one phone screen of chat text (characters, sources excluded).
pub const SCREEN_CHARS: usize = 300;

/// What "详细" gives: said when an answer was cut.
pub const MORE_HINT: &str = "（回复“详细”看完整解答）";

/// The value of a situation word for cases: a slot, or the derived `direction`.
pub fn situation_value<'a>(
    slots: &'a BTreeMap<String, String>,
    direction: &'a str,
    key: &str,
) -> Option<&'a str> {
    if key == "direction" {
        return (direction != "unknown").then_some(direction);
    }
    slots.get(key).map(String::as_str)
}

/// The lead for a situation: the first case that applies, else the brief. `true` when a case
/// applied (the lead is personal).
pub fn lead<'a>(entry: &'a FaqEntry, slots: &BTreeMap<String, String>) -> (&'a str, bool) {
    let direction = Direction::of(slots).as_str();
    match entry
        .cases
        .iter()
        .find(|c| c.applies(|k| situation_value(slots, direction, k)))
    {
        Some(c) => (c.say.as_str(), true),
        None => (entry.brief.as_str(), false),
    }
}

/// The paragraphs of an answer (separated by blank lines) that a person of `region` (its
/// label: 苏州, 张家港) reads: the general ones and their region's (those starting with
/// "{label}参保"), the region's first. Every paragraph when the region is unknown.
pub fn paragraphs_for<'a>(
    answer: &'a str,
    region: Option<&str>,
    labels: &[String],
) -> Vec<&'a str> {
    let all: Vec<&str> = answer
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let starts_region = |p: &str, label: &str| p.starts_with(&format!("{label}参保"));
    let Some(region) = region else {
        return all;
    };
    let mine: Vec<&str> = all
        .iter()
        .copied()
        .filter(|p| starts_region(p, region))
        .collect();
    let general = all
        .iter()
        .copied()
        .filter(|p| !labels.iter().any(|l| starts_region(p, l)));
    mine.into_iter().chain(general).collect()
}

/// `lead`, then as many of `paragraphs` (line by line) as fit [`SCREEN_CHARS`]; `true` when
/// something was left out. A paragraph that merely repeats the lead is skipped.
pub fn fit(lead: &str, paragraphs: &[&str]) -> (String, bool) {
    let mut text = lead.trim().to_string();
    let mut used = text.chars().count();
    let mut cut = false;
    'outer: for p in paragraphs {
        // a paragraph that says little beyond the lead is left out
        if lead.contains(p.trim()) || overlap(p, lead) >= 0.6 {
            continue;
        }
        let mut first = true;
        for line in p.lines() {
            let n = line.chars().count();
            if used + n + 1 > SCREEN_CHARS {
                cut = true;
                break 'outer;
            }
            text.push_str(if first { "\n\n" } else { "\n" });
            text.push_str(line);
            used += n + 1;
            first = false;
        }
    }
    (text, cut)
}

/// A lead without the "yes" that answers a question ("可以。出院前补办…" → "出院前补办…"), for
/// when it is said without the question having been asked.
pub fn without_yes(lead: &str) -> &str {
    ["可以。", "能。", "是的。", "需要。", "可以，", "能，"]
        .iter()
        .find_map(|y| lead.strip_prefix(y))
        .unwrap_or(lead)
}

/// The share of `a`'s character bigrams (letters and ideographs) that occur in `b`.
pub fn overlap(a: &str, b: &str) -> f32 {
    let grams = |t: &str| -> Vec<(char, char)> {
        let cs: Vec<char> = t.chars().filter(|c| c.is_alphanumeric()).collect();
        cs.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let ga = grams(a);
    if ga.is_empty() {
        return 0.0;
    }
    let gb: rustc_hash::FxHashSet<(char, char)> = grams(b).into_iter().collect();
    ga.iter().filter(|g| gb.contains(g)).count() as f32 / ga.len() as f32
}

/// The whole answer for a region: its paragraphs first, the rest after.
pub fn full(answer: &str, region: Option<&str>, labels: &[String]) -> String {
    let mine = paragraphs_for(answer, region, labels);
    let rest: Vec<&str> = answer
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !mine.contains(p))
        .collect();
    mine.into_iter()
        .chain(rest)
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "总原则。\n1. 一\n2. 二\n\n苏州参保人员：苏州的做法。\n\n张家港参保人员：张家港的做法。\n\n最后的提醒。";

    fn labels() -> Vec<String> {
        vec!["苏州".to_string(), "张家港".to_string()]
    }

    #[test]
    fn a_region_reads_the_general_paragraphs_and_its_own() {
        let p = paragraphs_for(ANSWER, Some("张家港"), &labels());
        assert_eq!(
            p,
            vec![
                "张家港参保人员：张家港的做法。",
                "总原则。\n1. 一\n2. 二",
                "最后的提醒。"
            ]
        );
        assert_eq!(paragraphs_for(ANSWER, None, &labels()).len(), 4);
    }

    #[test]
    fn an_answer_is_cut_to_a_screen_at_a_line() {
        let long = format!("{}\n\n{}", "甲".repeat(250), "乙".repeat(100));
        let (text, cut) = fit("简答。", &long.split("\n\n").collect::<Vec<_>>());
        assert!(cut);
        assert!(text.chars().count() <= SCREEN_CHARS);
        assert!(text.starts_with("简答。\n\n甲"));
        let (text, cut) = fit("简答。", &["短。"]);
        assert_eq!((text.as_str(), cut), ("简答。\n\n短。", false));
    }
}
