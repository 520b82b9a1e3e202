//! Retrieval evaluation over JSON-lines files of
//! `{"q": "...", "id": "..." | null, "alt": ["...", ...]}` (`alt` optional: other entries that
//! are acceptable first answers).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{SearchEngine, SearchResult};

/// One evaluation question; `id: None` means out of scope (the assistant must abstain).
#[derive(Debug, Clone, Deserialize)]
pub struct EvalCase {
    pub q: String,
    pub id: Option<String>,
    /// Other entries that are acceptable as the first answer.
    #[serde(default)]
    pub alt: Vec<String>,
}

/// The metrics of `yidi eval --json` (cli.md), with added fields after the contract's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub n: usize,
    pub in_scope: usize,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub mrr: f64,
    pub abstain_accuracy: f64,
    /// As `recall_at_1`, counting an answer with one of the case's `alt` ids as right.
    pub recall_at_1_alt: f64,
    /// As `abstain_accuracy`, counting an answer with one of the case's `alt` ids as right.
    pub abstain_accuracy_alt: f64,
    /// Share of all cases handled right: the right first answer, or rightly declined.
    pub accuracy: f64,
    /// As `accuracy`, with `alt` ids accepted.
    pub accuracy_alt: f64,
}

/// A case the engine got wrong, for the human report.
#[derive(Debug, Clone)]
pub struct Miss {
    pub q: String,
    pub expected: Option<String>,
    pub got: Vec<String>,
    pub answered: bool,
}

/// Where the knowledge team should look: entries that answered questions they should not
/// have, and the out-of-scope questions that got an answer.
#[derive(Debug, Clone, Default)]
pub struct Confusion {
    /// Per entry: the questions it answered wrongly, with the expected id (None = decline).
    pub wrong_answers: BTreeMap<String, Vec<(String, Option<String>)>>,
    /// Per expected entry: how many of its questions were declined.
    pub declined: BTreeMap<String, usize>,
}

impl Confusion {
    /// The human report: worst entries first.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let mut wrong: Vec<_> = self.wrong_answers.iter().collect();
        wrong.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        if !wrong.is_empty() {
            out.push_str("entries that answered questions they should not:\n");
        }
        for (id, cases) in wrong {
            let oos = cases.iter().filter(|(_, e)| e.is_none()).count();
            out.push_str(&format!(
                "  {id}: {} wrong ({} of them out of scope)\n",
                cases.len(),
                oos
            ));
            for (q, expected) in cases {
                let q: String = q.chars().take(60).collect();
                let expected = expected.as_deref().unwrap_or("(decline)");
                out.push_str(&format!("    want {expected:<24} {q}\n"));
            }
        }
        let oos: Vec<_> = self
            .wrong_answers
            .iter()
            .flat_map(|(id, cases)| {
                cases
                    .iter()
                    .filter(|(_, e)| e.is_none())
                    .map(move |(q, _)| (id, q))
            })
            .collect();
        out.push_str(&format!("out-of-scope questions answered: {}\n", oos.len()));
        if !self.declined.is_empty() {
            out.push_str("entries whose questions were declined:\n");
            for (id, n) in &self.declined {
                out.push_str(&format!("  {id}: {n}\n"));
            }
        }
        out
    }
}

/// Parses an evaluation file; errors name the line.
pub fn parse_cases(text: &str) -> Result<Vec<EvalCase>, String> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let c: EvalCase = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        cases.push(c);
    }
    Ok(cases)
}

/// Runs every case through the engine (top 3) and computes the metrics.
pub fn evaluate(engine: &SearchEngine, cases: &[EvalCase]) -> (Metrics, Vec<Miss>) {
    let (m, misses, _) = evaluate_by(cases, |q| engine.search(q, 3));
    (m, misses)
}

/// The metrics, the misses and the confusion of `search` (top 3) over the cases.
pub fn evaluate_by(
    cases: &[EvalCase],
    mut search: impl FnMut(&str) -> SearchResult,
) -> (Metrics, Vec<Miss>, Confusion) {
    let (mut r1, mut r1_alt, mut r3, mut rr) = (0usize, 0usize, 0usize, 0.0f64);
    let (mut abstained, mut abstained_alt, mut in_scope) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    let mut confusion = Confusion::default();
    for c in cases {
        let res = search(&c.q);
        let ids: Vec<String> = res.hits.iter().map(|h| h.id.clone()).collect();
        let answer = ids.first().filter(|_| res.answered);
        let acceptable = answer.is_some_and(|a| c.alt.contains(a));
        let ok = match &c.id {
            Some(want) => {
                in_scope += 1;
                let pos = ids.iter().position(|x| x == want);
                if let Some(p) = pos {
                    r3 += 1;
                    rr += 1.0 / (p as f64 + 1.0);
                }
                let top1 = answer == Some(want);
                r1 += usize::from(top1);
                r1_alt += usize::from(top1 || acceptable);
                top1
            }
            None => {
                abstained += usize::from(!res.answered);
                abstained_alt += usize::from(!res.answered || acceptable);
                !res.answered
            }
        };
        if !ok {
            match answer {
                Some(a) => confusion
                    .wrong_answers
                    .entry(a.clone())
                    .or_default()
                    .push((c.q.clone(), c.id.clone())),
                None => {
                    if let Some(want) = &c.id {
                        *confusion.declined.entry(want.clone()).or_default() += 1;
                    }
                }
            }
            misses.push(Miss {
                q: c.q.clone(),
                expected: c.id.clone(),
                got: ids,
                answered: res.answered,
            });
        }
    }
    let out = cases.len() - in_scope;
    let ratio = |a: f64, b: usize| if b == 0 { 1.0 } else { round4(a / b as f64) };
    let m = Metrics {
        n: cases.len(),
        in_scope,
        recall_at_1: ratio(r1 as f64, in_scope),
        recall_at_3: ratio(r3 as f64, in_scope),
        mrr: ratio(rr, in_scope),
        abstain_accuracy: ratio(abstained as f64, out),
        recall_at_1_alt: ratio(r1_alt as f64, in_scope),
        abstain_accuracy_alt: ratio(abstained_alt as f64, out),
        accuracy: ratio((r1 + abstained) as f64, cases.len()),
        accuracy_alt: ratio((r1_alt + abstained_alt) as f64, cases.len()),
    };
    (m, misses, confusion)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
