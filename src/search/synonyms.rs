//! Query-time synonym expansion: a query that says 医保卡 also looks for 社会保障卡 and 社保卡.

use std::collections::HashMap;

use crate::knowledge::Synonyms;

/// Lookup from any term to its group.
#[derive(Debug, Clone, Default)]
pub struct Expander {
    groups: Vec<Vec<String>>,
    /// (term, group) pairs, longest term first, for substring detection in the query.
    terms: Vec<(String, usize)>,
    by_term: HashMap<String, usize>,
}

impl Expander {
    pub fn new(synonyms: &Synonyms) -> Expander {
        let groups = synonyms.groups.clone();
        let mut terms: Vec<(String, usize)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, ts)| ts.iter().map(move |t| (t.clone(), g)))
            .collect();
        terms.sort_by(|a, b| {
            b.0.chars()
                .count()
                .cmp(&a.0.chars().count())
                .then(a.0.cmp(&b.0))
        });
        let by_term = terms.iter().cloned().collect();
        Expander {
            groups,
            terms,
            by_term,
        }
    }

    /// Every term of the synonym list (for the tokenizer's dictionary).
    pub fn all_terms(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(t, _)| t.as_str())
    }

    /// The terms to add to a (normalised) query: for each group one of whose terms occurs in
    /// the query, the group's other terms (one inner list per group, in list order). Terms
    /// already in the query are not repeated. A term found inside a longer, already matched
    /// term is skipped (刷卡 inside 刷卡失败).
    pub fn expand(&self, norm_query: &str) -> Vec<Vec<String>> {
        let mut matched_spans: Vec<(usize, usize)> = Vec::new();
        let mut groups = Vec::new();
        for (term, g) in &self.terms {
            let mut from = 0;
            while let Some(pos) = norm_query[from..].find(term.as_str()) {
                let start = from + pos;
                let end = start + term.len();
                let inside = matched_spans.iter().any(|&(s, e)| s <= start && end <= e);
                if !inside {
                    matched_spans.push((start, end));
                    if !groups.contains(g) {
                        groups.push(*g);
                    }
                }
                from = end;
            }
        }
        groups.sort_unstable();
        groups
            .into_iter()
            .map(|g| {
                self.groups[g]
                    .iter()
                    .filter(|t| !norm_query.contains(t.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|ts| !ts.is_empty())
            .collect()
    }

    /// One concept token per synonym group found in `norm` (`~` + the group's canonical
    /// term), in group order. Indexing and querying both add them, so that 回去报 in a
    /// question meets 零星报销 in an entry through one token whose weight reflects the
    /// whole group, rather than through rare surface forms.
    pub fn concepts(&self, norm: &str) -> Vec<String> {
        let mut matched_spans: Vec<(usize, usize)> = Vec::new();
        let mut groups = Vec::new();
        for (term, g) in &self.terms {
            let mut from = 0;
            while let Some(pos) = norm[from..].find(term.as_str()) {
                let start = from + pos;
                let end = start + term.len();
                if !matched_spans.iter().any(|&(s, e)| s <= start && end <= e) {
                    matched_spans.push((start, end));
                    if !groups.contains(g) {
                        groups.push(*g);
                    }
                }
                from = end;
            }
        }
        groups.sort_unstable();
        groups
            .into_iter()
            .map(|g| format!("~{}", self.groups[g][0]))
            .collect()
    }

    /// The group of `term`, if it is in the list.
    pub fn group_of(&self, term: &str) -> Option<&[String]> {
        self.by_term.get(term).map(|&g| self.groups[g].as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expander() -> Expander {
        Expander::new(&Synonyms {
            groups: vec![
                vec!["社会保障卡".into(), "社保卡".into(), "医保卡".into()],
                vec!["刷卡失败".into(), "刷不了".into()],
                vec!["刷卡结算".into(), "直接结算".into()],
                vec!["零星报销".into(), "手工报销".into(), "回去报销".into()],
            ],
        })
    }

    #[test]
    fn colloquial_terms_expand_to_official_ones() {
        let e = expander().expand("医保卡刷不了");
        assert_eq!(e, vec![vec!["社会保障卡", "社保卡"], vec!["刷卡失败"]]);
    }

    #[test]
    fn official_terms_expand_to_colloquial_ones() {
        assert_eq!(
            expander().expand("零星报销要什么材料"),
            vec![vec!["手工报销", "回去报销"]]
        );
    }

    #[test]
    fn a_term_inside_a_longer_match_is_not_expanded_again() {
        // 刷卡失败 matches; 刷卡 is not a term here, and 刷卡结算 must not fire on 刷卡失败
        let e = expander().expand("刷卡失败");
        assert_eq!(e, vec![vec!["刷不了"]]);
    }

    #[test]
    fn unrelated_queries_expand_to_nothing() {
        assert!(expander().expand("公积金怎么提取").is_empty());
        assert_eq!(expander().group_of("社保卡").map(|g| g.len()), Some(3));
    }
}
