//! Retrieval evaluation over JSON-lines files of `{"q": "...", "id": "..." | null}`.

use serde::{Deserialize, Serialize};

use super::SearchEngine;

/// One evaluation question; `id: None` means out of scope (the assistant must abstain).
#[derive(Debug, Clone, Deserialize)]
pub struct EvalCase {
    pub q: String,
    pub id: Option<String>,
}

/// The metrics of `yidi eval --json` (cli.md).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub n: usize,
    pub in_scope: usize,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub mrr: f64,
    pub abstain_accuracy: f64,
}

/// A case the engine got wrong, for the human report.
#[derive(Debug, Clone)]
pub struct Miss {
    pub q: String,
    pub expected: Option<String>,
    pub got: Vec<String>,
    pub answered: bool,
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
    let (mut r1, mut r3, mut rr, mut abstained, mut in_scope) =
        (0usize, 0usize, 0.0f64, 0usize, 0usize);
    let mut misses = Vec::new();
    for c in cases {
        let res = engine.search(&c.q, 3);
        let ids: Vec<String> = res.hits.iter().map(|h| h.id.clone()).collect();
        let ok = match &c.id {
            Some(want) => {
                in_scope += 1;
                let pos = ids.iter().position(|x| x == want);
                if let Some(p) = pos {
                    r3 += 1;
                    rr += 1.0 / (p as f64 + 1.0);
                }
                let top1 = res.answered && pos == Some(0);
                if top1 {
                    r1 += 1;
                }
                top1
            }
            None => {
                if !res.answered {
                    abstained += 1;
                }
                !res.answered
            }
        };
        if !ok {
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
    };
    (m, misses)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
