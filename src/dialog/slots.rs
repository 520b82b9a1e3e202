//! The slot vocabulary (`dialogs/slots.toml`) and slot extraction from free text.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::money::{self, MoneyError};
use crate::text::normalize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotKind {
    Choice,
    Money,
    Integer,
    /// Free text, such as a place's name (`insured_place`); set by the situation reader.
    Text,
}

/// One allowed value of a choice slot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotValue {
    pub value: String,
    pub label: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub answers: Vec<String>,
    /// Words that stand for this value when a follow-up question is searched in the
    /// context of the user's situation ("跨省 省外" for other_province); the label when empty.
    #[serde(default)]
    pub search: Vec<String>,
    /// Phrases that cancel this value in a message that states it ("出院了" is not
    /// "discharged after paying oneself" when the message says it was settled directly).
    #[serde(default)]
    pub unless: Vec<String>,
    /// Accepted as an answer but not offered as a choice (button).
    #[serde(default)]
    pub hidden: bool,
}

/// A slot: what it is called for users, its kind and its values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotDef {
    pub kind: SlotKind,
    pub title: String,
    #[serde(default)]
    pub values: Vec<SlotValue>,
    /// For money slots: answers that mean 0 ("不清楚" → 0).
    #[serde(default)]
    pub zero_answers: Vec<String>,
    /// For money slots: words that name this amount in a sentence ("自费" in "全自费的大概
    /// 2000"), so that one message can give several amounts.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// For choice slots whose values are data kept elsewhere: `"regions"` (the region files
    /// of the knowledge folder, filled in by [`super::Dialogs::fill_values`]).
    #[serde(default)]
    pub values_from: Option<String>,
    /// The aliases normalised once (they are matched on every message).
    #[serde(skip)]
    compiled: std::sync::OnceLock<Compiled>,
}

/// A slot's aliases, normalised for matching.
#[derive(Debug, Clone, Default)]
struct Compiled {
    /// Each choice alias (and label) as its `…`-separated parts, with its value.
    choice: Vec<(String, Vec<String>)>,
    /// The first part of each of `choice`'s aliases, in the same order (pattern `i` is
    /// `choice[i].1[0]`): one pass over a message finds every place any alias may start.
    firsts: Option<aho_corasick::AhoCorasick>,
    /// The money aliases.
    money: Vec<String>,
}

impl SlotDef {
    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let choice: Vec<(String, Vec<String>)> = self
                .values
                .iter()
                .flat_map(|v| {
                    v.aliases
                        .iter()
                        .chain(std::iter::once(&v.label))
                        .map(|alias| {
                            let parts: Vec<String> = alias
                                .split('…')
                                .map(normalize)
                                .filter(|p| !p.is_empty())
                                .collect();
                            (v.value.clone(), parts)
                        })
                })
                .filter(|(_, parts)| !parts.is_empty())
                .collect();
            // without the automaton (see `text::literals`) `find_choice` finds nothing; no panic path
            let firsts = (!choice.is_empty())
                .then(|| crate::text::literals(choice.iter().map(|(_, p)| p[0].as_str())))
                .flatten();
            Compiled {
                choice,
                firsts,
                money: self.aliases.iter().map(|a| normalize(a)).collect(),
            }
        })
    }

    /// Forgets the normalised aliases after the values changed.
    pub(super) fn values_changed(&mut self) {
        self.compiled = std::sync::OnceLock::new();
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SlotsFile {
    pub slots: BTreeMap<String, SlotDef>,
}

/// What reading an answer for one slot gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Value(String),
    /// The text is about this slot but its value is not acceptable (e.g. a negative amount).
    Invalid(String),
    /// Nothing in the text answers this slot.
    Nothing,
}

/// All slots, by name.
#[derive(Debug, Clone, Default)]
pub struct SlotDefs {
    pub defs: BTreeMap<String, SlotDef>,
    /// The first parts of every choice slot's aliases in one automaton, pattern `i` naming
    /// the slot `mentioned.1[i]`: one pass tells which slots a message may state.
    mentioned: std::sync::OnceLock<Option<(aho_corasick::AhoCorasick, Vec<String>)>>,
}

impl SlotDefs {
    pub fn new(defs: BTreeMap<String, SlotDef>) -> SlotDefs {
        SlotDefs {
            defs,
            mentioned: std::sync::OnceLock::new(),
        }
    }

    /// Builds every slot's alias matchers (otherwise built on first use).
    pub fn prepare(&self) {
        for def in self.defs.values() {
            def.compiled();
        }
        self.all_firsts();
    }

    /// Forgets the combined matcher after a slot's values changed.
    pub(super) fn values_changed(&mut self) {
        self.mentioned = std::sync::OnceLock::new();
    }

    fn all_firsts(&self) -> Option<&(aho_corasick::AhoCorasick, Vec<String>)> {
        self.mentioned
            .get_or_init(|| {
                let mut names = Vec::new();
                let mut firsts = Vec::new();
                for (name, def) in &self.defs {
                    if def.kind != SlotKind::Choice {
                        continue;
                    }
                    for (_, parts) in &def.compiled().choice {
                        firsts.push(parts[0].clone());
                        names.push(name.clone());
                    }
                }
                crate::text::literals(firsts.iter().map(String::as_str)).map(|ac| (ac, names))
            })
            .as_ref()
    }

    /// The choice slots an alias of which may start somewhere in `norm` (a superset of the
    /// slots [`SlotDefs::spans`] finds anything for), each once.
    pub fn mentioned(&self, norm: &str) -> std::collections::BTreeSet<&str> {
        match self.all_firsts() {
            Some((ac, names)) => ac
                .find_overlapping_iter(norm)
                .map(|m| names[m.pattern().as_usize()].as_str())
                .collect(),
            // without the automaton every slot is looked at
            None => self.defs.keys().map(String::as_str).collect(),
        }
    }

    pub fn get(&self, slot: &str) -> Option<&SlotDef> {
        self.defs.get(slot)
    }

    /// The words that stand for a value in a contextual search: its `search` words, else
    /// its label.
    pub fn search_words(&self, slot: &str, value: &str) -> String {
        match self
            .get(slot)
            .and_then(|d| d.values.iter().find(|v| v.value == value))
        {
            Some(v) if !v.search.is_empty() => v.search.join(" "),
            Some(v) => v.label.clone(),
            None => value.to_string(),
        }
    }

    /// The button label of a value, or the value itself.
    pub fn label(&self, slot: &str, value: &str) -> String {
        self.get(slot)
            .and_then(|d| d.values.iter().find(|v| v.value == value))
            .map_or_else(|| value.to_string(), |v| v.label.clone())
    }

    /// Reads `text` as the answer to a question about `slot`: a value, a label, an answer
    /// phrase, an alias, or (money) an amount. `accept` restricts choice values.
    pub fn parse_answer(&self, slot: &str, text: &str, accept: Option<&[String]>) -> Parsed {
        let Some(def) = self.get(slot) else {
            return Parsed::Nothing;
        };
        let norm = normalize(text);
        let allowed = |v: &str| accept.is_none_or(|a| a.iter().any(|x| x == v));
        match def.kind {
            SlotKind::Choice => {
                // exact value, label or answer phrase first
                // a value of the slot that this question does not take ("急诊" when only
                // 住院 or 门诊 can be estimated) is explained, not ignored
                let not_here = || {
                    let labels: Vec<&str> = def
                        .values
                        .iter()
                        .filter(|v| allowed(&v.value))
                        .map(|v| v.label.as_str())
                        .collect();
                    Parsed::Invalid(format!("这里只能选择：{}。", labels.join("、")))
                };
                // a short reply loses its particles: "已经办好了" → "已经办好", "还没办呢" → "还没办"
                let core = norm
                    .trim_end_matches(['了', '呢', '的', '啊', '吧', '呀', '哦', '嘛', ' '])
                    .to_string();
                let pick = |v: &SlotValue| {
                    if allowed(&v.value) {
                        Parsed::Value(v.value.clone())
                    } else {
                        not_here()
                    }
                };
                for v in &def.values {
                    // a button's value as sent ("resettled_retiree": normalising would turn
                    // its underscore into a space)
                    if text.trim() == v.value {
                        return pick(v);
                    }
                    let exact = [&norm, &core].into_iter().any(|t| {
                        *t == v.value
                            || *t == normalize(&v.label)
                            || v.answers.iter().any(|a| *t == normalize(a))
                    });
                    if exact {
                        return pick(v);
                    }
                }
                // "是的，办了", "没呢还没去": a short reply that starts with an answer phrase
                if core.chars().count() <= 8 {
                    let best = def
                        .values
                        .iter()
                        .flat_map(|v| v.answers.iter().map(move |a| (v, normalize(a))))
                        .filter(|(_, a)| !a.is_empty() && core.starts_with(a.as_str()))
                        .max_by_key(|(_, a)| a.chars().count());
                    if let Some((v, _)) = best {
                        return pick(v);
                    }
                }
                // then an alias or label anywhere in the text
                match find_choice(def, &norm) {
                    Some(v) if allowed(&v) => Parsed::Value(v),
                    Some(_) => not_here(),
                    None => Parsed::Nothing,
                }
            }
            SlotKind::Money => {
                if def.zero_answers.iter().any(|a| norm == normalize(a)) {
                    return Parsed::Value("0".into());
                }
                // "自费的没有", "乙类的不清楚": a short reply that ends with a zero answer
                let core = norm.trim_end_matches(['了', '呢', '啊', '吧', ' ', '。', '.']);
                if core.chars().count() <= 8
                    && !core.chars().any(|c| c.is_ascii_digit())
                    && def
                        .zero_answers
                        .iter()
                        .map(|a| normalize(a))
                        .filter(|a| a.chars().count() >= 2)
                        .any(|a| core.ends_with(a.as_str()))
                {
                    return Parsed::Value("0".into());
                }
                match money::parse_amount(text) {
                    Ok(v) => Parsed::Value(v.to_string()),
                    Err(MoneyError::Missing) => Parsed::Nothing,
                    Err(MoneyError::Unreadable) => match money::find_amount(text) {
                        Some(Ok(v)) => Parsed::Value(v.to_string()),
                        Some(Err(e)) => Parsed::Invalid(e.to_string()),
                        // no number at all ("谢了", "为啥报得少"): not an attempt at an amount
                        None if !text.chars().any(is_numeral) => Parsed::Nothing,
                        None => Parsed::Invalid(MoneyError::Unreadable.to_string()),
                    },
                    Err(e) => Parsed::Invalid(e.to_string()),
                }
            }
            SlotKind::Text => match text.trim() {
                "" => Parsed::Nothing,
                t => Parsed::Value(t.chars().take(40).collect()),
            },
            SlotKind::Integer => {
                let digits: String = norm.chars().filter(char::is_ascii_digit).collect();
                match digits.parse::<u32>() {
                    Ok(n) if n <= 365 => Parsed::Value(n.to_string()),
                    Ok(_) => {
                        Parsed::Invalid("次数太大了，请输入一个合理的数字，例如“0”或“1”。".into())
                    }
                    Err(_) => Parsed::Nothing,
                }
            }
        }
    }

    /// Every slot that `text` states outright (aliases of choice slots, and the amount as
    /// `total`), for filling a dialog from a rich first message.
    pub fn extract(&self, text: &str) -> BTreeMap<String, String> {
        let norm = normalize(text);
        let mut out = BTreeMap::new();
        for (name, def) in &self.defs {
            if def.kind == SlotKind::Choice
                && let Some(v) = find_choice(def, &norm)
            {
                out.insert(name.clone(), v);
            }
        }
        for (slot, (amount, _)) in self.extract_amounts(text) {
            if slot != "total" || amount > Decimal::ZERO {
                out.insert(slot, amount.to_string());
            }
        }
        out
    }

    /// Every place where an alias (or label) of choice slot `slot` occurs in `norm`, left to
    /// right, with its value: `(start, end, value)`. Denied aliases and aliases inside a
    /// longer one of another value are left out (see [`find_choice`]).
    pub fn spans(&self, slot: &str, norm: &str) -> Vec<(usize, usize, String)> {
        let Some(def) = self.get(slot) else {
            return Vec::new();
        };
        let mut spans: Vec<(usize, usize, String)> = choice_spans(def, norm)
            .into_iter()
            .map(|(s, e, v)| (s, e, v.to_string()))
            .collect();
        spans.sort_by_key(|s| (s.0, usize::MAX - (s.1 - s.0)));
        spans
    }

    /// Whether `norm` holds a phrase that cancels `value` of `slot` (its `unless`).
    pub fn cancelled(&self, slot: &str, value: &str, norm: &str) -> bool {
        self.get(slot)
            .and_then(|d| d.values.iter().find(|v| v.value == value))
            .is_some_and(|v| {
                v.unless
                    .iter()
                    .any(|u| norm.contains(normalize(u).as_str()))
            })
    }

    /// The amounts of `text`, each with the words it was written in ("三万多"): those named in
    /// their own clause ("一共花了3万，全自费的大概2000，乙类4000左右"; a name claims the first
    /// amount after it: "自费花了2000" is the self-paid part), else the first amount as the
    /// total. Negative or unreadable amounts are left out.
    pub fn extract_amounts(&self, text: &str) -> BTreeMap<String, (Decimal, String)> {
        let norm = normalize(text);
        let mut out: BTreeMap<String, (Decimal, String)> = BTreeMap::new();
        // an amount in a clause that names none is the total ("在合肥住院五万二，乙类六千")
        let mut unnamed: Option<(Decimal, String)> = None;
        for clause in norm.split(['，', ',', '。', '；', ';', '、', '！', '!', '？', '?', ' '])
        {
            let mut hits: Vec<(usize, &str)> = Vec::new();
            let mut denied: Vec<&str> = Vec::new();
            for (name, def) in &self.defs {
                if def.kind != SlotKind::Money {
                    continue;
                }
                for alias in &def.compiled().money {
                    for (i, _) in clause.match_indices(alias.as_str()) {
                        if negated_before(clause, i) {
                            denied.push(name.as_str());
                        } else {
                            hits.push((i, name.as_str()));
                        }
                    }
                }
            }
            hits.sort();
            if hits.is_empty() {
                if let Some((Ok(amount), words)) = money::find_amount_with_words(clause) {
                    if amount > Decimal::ZERO && unnamed.is_none() {
                        unnamed = Some((amount, words));
                    }
                } else {
                    // "没有自费的": a named part that is nothing
                    for name in denied {
                        if self
                            .defs
                            .get(name)
                            .is_some_and(|d| !d.zero_answers.is_empty())
                        {
                            out.entry(name.to_string())
                                .or_insert((Decimal::ZERO, String::new()));
                        }
                    }
                }
                continue;
            }
            let mut claiming: Option<&str> = None;
            for (k, &(at, name)) in hits.iter().enumerate() {
                let claimant = *claiming.get_or_insert(name);
                let end = hits.get(k + 1).map_or(clause.len(), |h| h.0);
                if let Some((Ok(amount), words)) = money::find_amount_with_words(&clause[at..end]) {
                    if amount >= Decimal::ZERO && !out.contains_key(claimant) {
                        out.insert(claimant.to_string(), (amount, words));
                    }
                    claiming = None;
                }
            }
        }
        if self.defs.contains_key("total")
            && !out.contains_key("total")
            && let Some(found) = unnamed
        {
            out.insert("total".into(), found);
        }
        out
    }
}

/// The value whose alias (or label) occurs earliest in `norm`; among aliases at the same
/// place, the longest. Aliases inside a longer alias of another value do not count
/// ("没备案" is not "备案了"). An alias with `…` matches its parts in order with at most
/// [`MAX_GAP`] characters between them and no negation (没/未/不) in a gap: "户口…迁" finds
/// "户口已经迁到" but not "户口没迁".
fn find_choice(def: &SlotDef, norm: &str) -> Option<String> {
    choice_spans(def, norm)
        .into_iter()
        .min_by_key(|s| (s.0, usize::MAX - (s.1 - s.0)))
        .map(|s| s.2.to_string())
}

/// Every occurrence of an alias of `def` in `norm` as `(start, end, value)`, without those
/// denied or contained in a longer alias's occurrence (see [`find_choice`]).
fn choice_spans<'a>(def: &'a SlotDef, norm: &str) -> Vec<(usize, usize, &'a str)> {
    let compiled = def.compiled();
    let Some(firsts) = compiled.firsts.as_ref() else {
        return Vec::new();
    };
    // every occurrence of every first part, each alias's own occurrences taken left to right
    // without overlapping one another (as repeated `find`s from the end of the last would)
    let mut next_from = vec![0usize; compiled.choice.len()];
    let mut spans: Vec<(usize, usize, usize, &str)> = Vec::new();
    for m in firsts.find_overlapping_iter(norm) {
        let i = m.pattern().as_usize();
        let (start, first_end) = (m.start(), m.end());
        if start < next_from[i] {
            continue;
        }
        next_from[i] = first_end;
        if negated_before(norm, start) {
            continue;
        }
        let (value, parts) = &compiled.choice[i];
        if let Some(end) = match_rest(norm, first_end, &parts[1..]) {
            spans.push((i, start, end, value.as_str()));
        }
    }
    // in the order of the aliases, then of the places (ties below go to the earlier alias)
    spans.sort_unstable_by_key(|&(i, start, ..)| (i, start));
    let spans: Vec<(usize, usize, &str)> =
        spans.into_iter().map(|(_, s, e, v)| (s, e, v)).collect();
    // drop spans contained in a longer span
    spans
        .iter()
        .filter(|s| {
            !spans
                .iter()
                .any(|o| o != *s && o.0 <= s.0 && s.1 <= o.1 && (o.1 - o.0) > (s.1 - s.0))
        })
        .copied()
        .collect()
}

/// A digit or a Chinese numeral (an amount may be written either way).
fn is_numeral(c: char) -> bool {
    c.is_ascii_digit()
        || c.is_numeric()
        || "零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟".contains(c)
}

/// Whether the words just before byte `at` deny what follows: "不是常住", "没备过案", "并非转诊".
/// The A-not-A question forms are not denials: "有没有备案", "是不是常住".
fn negated_before(norm: &str, at: usize) -> bool {
    let before: Vec<char> = norm[..at].chars().rev().take(3).collect();
    let ends_with = |s: &str| {
        let want: Vec<char> = s.chars().rev().collect();
        before.len() >= want.len() && before[..want.len()] == want[..]
    };
    let denial = ["没有", "不是", "并非", "没", "未", "不"]
        .into_iter()
        .find(|d| ends_with(d));
    match denial {
        None => false,
        // 有没有 / 有没, 是不是
        Some("没有") | Some("没") => !(ends_with("有没有") || ends_with("有没")),
        Some("不是") => !ends_with("是不是"),
        Some(_) => true,
    }
}

/// Most characters between the parts of a `…` alias.
const MAX_GAP: usize = 6;

/// Where the remaining `parts` of a gapped alias end when they follow `at` in order.
fn match_rest(norm: &str, at: usize, parts: &[String]) -> Option<usize> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(at);
    };
    let p = norm[at..].find(first.as_str())?;
    let gap = &norm[at..at + p];
    // the parts stand in one clause (normalising made punctuation spaces)
    if gap.chars().count() > MAX_GAP || gap.contains(['没', '未', '不', ' ']) {
        return None;
    }
    match_rest(norm, at + p + first.len(), rest)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_denied_alias_does_not_count_but_a_question_form_does() {
        let d = crate::assistant::shipped();
        let slots = &d.dialogs.slots;
        for (text, slot, value) in [
            ("我就是临时过去的，不是常住那边", "filing_type", "temporary"),
            ("看的门诊，之前没备过案", "filed", "false"),
            ("我爸长期居住在上海", "filing_type", "long_term_resident"),
            ("是不是常住那边都一样", "filing_type", "long_term_resident"),
            ("我妈已经备过案了", "filed", "true"),
        ] {
            let got = slots.extract(text).get(slot).cloned();
            assert_eq!(got.as_deref(), Some(value), "{text}");
        }
    }

    #[test]
    fn one_message_may_give_several_named_amounts() {
        let d = crate::assistant::shipped();
        let got = d
            .dialogs
            .slots
            .extract("一共花了3万，全自费的大概2000，乙类4000左右，今年头一回住院");
        assert_eq!(got.get("total").map(String::as_str), Some("30000"));
        assert_eq!(got.get("self_pay").map(String::as_str), Some("2000"));
        assert_eq!(got.get("class_b").map(String::as_str), Some("4000"));
        assert_eq!(got.get("admissions_before").map(String::as_str), Some("0"));
        // an amount without a name is the total, as before
        let got = d.dialogs.slots.extract("住院花了五万三千元");
        assert_eq!(got.get("total").map(String::as_str), Some("53000"));
        assert!(!got.contains_key("self_pay"));
        // a denied name gives nothing: "没有自费的" is not an amount
        let got = d.dialogs.slots.extract("总费用12000元，没有自费1000那么多");
        assert_eq!(got.get("total").map(String::as_str), Some("12000"));
        assert!(!got.contains_key("self_pay"), "{got:?}");
        let got = d.dialogs.slots.extract("自费花了2000，总共1万");
        assert_eq!(got.get("self_pay").map(String::as_str), Some("2000"));
        assert_eq!(got.get("total").map(String::as_str), Some("10000"));
    }

    #[test]
    fn values_with_underscores_are_answers_as_sent() {
        let d = crate::assistant::shipped();
        for (slot, value) in [
            ("filing_type", "resettled_retiree"),
            ("filing_type", "long_term_resident"),
            ("care_location", "in_province"),
            ("care_location", "other_province"),
        ] {
            assert_eq!(
                d.dialogs.slots.parse_answer(slot, value, None),
                super::Parsed::Value(value.to_string()),
                "{slot}={value}"
            );
        }
    }
}
