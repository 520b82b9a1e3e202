//! Query-time synonym expansion: a query that says 医保卡 also looks for 社会保障卡 and 社保卡.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::knowledge::Synonyms;

/// Finds synonym terms in normalised text (one automaton, leftmost-longest, so 刷卡失败 wins
/// over a shorter term inside it) and maps them to their groups.
#[derive(Debug, Clone, Default)]
pub struct Expander {
    groups: Vec<Vec<String>>,
    /// Pattern i of the automaton is `terms[i]`, of group `term_group[i]`.
    terms: Vec<String>,
    term_group: Vec<usize>,
    automaton: Option<AhoCorasick>,
    by_term: HashMap<String, usize>,
}

impl Expander {
    pub fn new(synonyms: &Synonyms) -> Expander {
        let groups = synonyms.groups.clone();
        let (terms, term_group): (Vec<String>, Vec<usize>) = groups
            .iter()
            .enumerate()
            .flat_map(|(g, ts)| ts.iter().map(move |t| (t.clone(), g)))
            .unzip();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&terms)
            .ok();
        let by_term = terms
            .iter()
            .cloned()
            .zip(term_group.iter().copied())
            .collect();
        Expander {
            groups,
            terms,
            term_group,
            automaton,
            by_term,
        }
    }

    /// Every term of the synonym list.
    pub fn all_terms(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(String::as_str)
    }

    /// The groups found in `norm` (sorted) and the terms that were found (indices of
    /// [`term`](Self::term)).
    pub(super) fn find(&self, norm: &str) -> (Vec<usize>, Vec<usize>) {
        let mut groups = Vec::new();
        let mut found = Vec::new();
        if let Some(ac) = &self.automaton {
            for m in ac.find_iter(norm) {
                let term = m.pattern().as_usize();
                found.push(term);
                groups.push(self.term_group[term]);
            }
        }
        groups.sort_unstable();
        groups.dedup();
        (groups, found)
    }

    /// The terms to add to a (normalised) query: for each group one of whose terms occurs in
    /// the query, the group's other terms (one inner list per group, in list order). Terms
    /// already in the query are not repeated. A term inside a longer matched term does not
    /// count (刷卡 inside 刷卡失败).
    pub fn expand(&self, norm_query: &str) -> Vec<Vec<String>> {
        let (groups, found) = self.find(norm_query);
        groups
            .into_iter()
            .map(|g| {
                self.groups[g]
                    .iter()
                    .filter(|t| !found.iter().any(|&f| self.terms[f] == **t))
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
        self.find(norm)
            .0
            .into_iter()
            .map(|g| format!("~{}", self.groups[g][0]))
            .collect()
    }

    /// Number of terms over all groups.
    pub(super) fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// Term `i` of the list (all groups' terms in order).
    pub(super) fn term(&self, i: usize) -> &str {
        &self.terms[i]
    }

    /// The indices of group `g`'s terms, in list order.
    pub(super) fn group_terms(&self, g: usize) -> std::ops::Range<usize> {
        let start = self.term_group.partition_point(|&x| x < g);
        let end = self.term_group.partition_point(|&x| x <= g);
        start..end
    }

    /// Number of groups.
    pub(super) fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The canonical term of group `g` (its concept token is `~` + it).
    pub(super) fn canonical(&self, g: usize) -> Option<&str> {
        self.groups[g].first().map(String::as_str)
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
