//! Development tool: calibrates the decision parameters of `search::Tuning` on evaluation
//! files, with a fixed held-out part that is only measured.
//!
//! `cargo run --example tune -- ../shared/eval/dev.jsonl ../shared/eval/real-dev.jsonl …`
//!
//! Every file is split by line number: line i (from 0) is held out when `i % SPLIT == SPLIT-1`
//! (`SPLIT`, default 3; 0 = nothing held out). Each message is analysed once; the decision
//! parameters are then varied over a grid (`GRID=1`) and the best settings on the tuning part
//! are reported with their held-out numbers. `DUMP=1` prints every case's decision.
//! Environment variables override the defaults: EPOCHS, LR, L2 (training), RP, RB (ranking
//! weights), MP (min_prob), MT (max_topic_prob), MS (min_score), LC (long_chars), AP.

use std::collections::HashMap;
use std::time::Instant;

use yidi::search::eval::{self, EvalCase, Metrics};
use yidi::search::{Analysis, SearchContext, SearchEngine, Tuning};

fn env_f32(name: &str, slot: &mut f32) {
    if let Ok(v) = std::env::var(name) {
        *slot = v.parse().expect("a number");
    }
}

fn main() {
    let knowledge = yidi::Knowledge::load(yidi::default_knowledge_dir()).expect("valid knowledge");
    let mut t = Tuning::default();
    if let Ok(v) = std::env::var("EPOCHS") {
        t.train.epochs = v.parse().expect("a number");
    }
    env_f32("LR", &mut t.train.learning_rate);
    env_f32("L2", &mut t.train.l2);
    t.train.unknown_in_norm = std::env::var("UN").map_or(true, |v| v == "1");
    env_f32("RP", &mut t.rank_prob);
    env_f32("RB", &mut t.rank_bm25);
    env_f32("MP", &mut t.min_prob);
    env_f32("MT", &mut t.max_topic_prob);
    env_f32("MS", &mut t.min_score);
    env_f32("AP", &mut t.also_min_prob);
    env_f32("AW", &mut t.answer_weight);
    env_f32("MU", &mut t.min_prob_uncued);
    t.long_whole_answers = std::env::var("LW").map_or(t.long_whole_answers, |v| v == "1");
    t.long_needs_cue = std::env::var("LN").map_or(t.long_needs_cue, |v| v == "1");
    if let Ok(v) = std::env::var("LC") {
        t.long_chars = v.parse().expect("a number");
    }
    let split: usize = std::env::var("SPLIT").map_or(3, |v| v.parse().expect("a number"));
    let analyzer = yidi::search::Analyzer::new();
    let started = Instant::now();
    let engine = SearchEngine::build_with(&knowledge, analyzer, t).expect("index");
    println!("index + classifier built in {:?}", started.elapsed());

    // (file, tuning part, held-out part)
    let mut files: Vec<(String, Vec<EvalCase>, Vec<EvalCase>)> = Vec::new();
    let mut analyses: HashMap<String, Analysis> = HashMap::new();
    let started = Instant::now();
    for file in std::env::args().skip(1) {
        let cases =
            eval::parse_cases(&std::fs::read_to_string(&file).expect("readable")).expect("valid");
        let (mut tune, mut held) = (Vec::new(), Vec::new());
        for (i, c) in cases.into_iter().enumerate() {
            analyses
                .entry(c.q.clone())
                .or_insert_with(|| engine.analyse(&c.q, &SearchContext::default()));
            if split > 0 && i % split == split - 1 {
                held.push(c);
            } else {
                tune.push(c);
            }
        }
        let name = file.rsplit('/').next().unwrap_or(&file).to_string();
        files.push((name, tune, held));
    }
    println!(
        "{} messages analysed in {:?}",
        analyses.len(),
        started.elapsed()
    );

    let run = |t: &Tuning, cases: &[EvalCase]| -> (Metrics, eval::Confusion, Vec<eval::Miss>) {
        let (m, misses, c) = eval::evaluate_by(cases, |q| engine.decide(q, &analyses[q], 3, t));
        (m, c, misses)
    };
    let objective = |t: &Tuning, held: bool| -> f64 {
        let mut sum = 0.0;
        for (_, tune, heldout) in &files {
            let cases = if held { heldout } else { tune };
            let (m, _, _) = run(t, cases);
            sum += (m.recall_at_1_alt + m.abstain_accuracy) / 2.0;
        }
        sum / files.len() as f64
    };
    let report = |t: &Tuning| {
        for (name, tune, held) in &files {
            for (part, cases) in [("tune", tune), ("held", held)] {
                if cases.is_empty() {
                    continue;
                }
                let (m, _, _) = run(t, cases);
                println!(
                    "  {name:<18} {part}: n={:<3} r@1={:.3} r@1alt={:.3} r@3={:.3} abst={:.3} abst_alt={:.3} acc={:.3}",
                    m.n,
                    m.recall_at_1,
                    m.recall_at_1_alt,
                    m.recall_at_3,
                    m.abstain_accuracy,
                    m.abstain_accuracy_alt,
                    m.accuracy
                );
            }
        }
    };
    println!(
        "current: tune objective {:.4}, held-out {:.4}",
        objective(&t, false),
        objective(&t, true)
    );
    report(&t);

    if std::env::var("GRID").is_ok() {
        let mut results = Vec::new();
        for mp in [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4] {
            for mt in [0.3, 0.4, 0.5, 0.6, 1.01] {
                for rb in [0.0, 0.1, 0.3, 1.0] {
                    for ms in [0.0, 10.0, 20.0, 30.0] {
                        for mu in [0.0, 0.2, 0.3, 0.4, 0.5] {
                            for lw in [true, false] {
                                let mut g = t;
                                g.min_prob = mp;
                                g.max_topic_prob = mt;
                                g.rank_bm25 = rb;
                                g.min_score = ms;
                                g.min_prob_uncued = mu;
                                g.long_whole_answers = lw;
                                results.push((objective(&g, false), g));
                            }
                        }
                    }
                }
            }
        }
        results.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (score, g) in results.iter().take(8) {
            println!(
                "tune {score:.4} held {:.4}: min_prob={} max_topic_prob={} rank_bm25={} min_score={} uncued={} whole={}",
                objective(g, true),
                g.min_prob,
                g.max_topic_prob,
                g.rank_bm25,
                g.min_score,
                g.min_prob_uncued,
                g.long_whole_answers
            );
        }
        if let Some((_, best)) = results.first() {
            report(best);
        }
    }
    if std::env::var("DUMP").is_ok() {
        for (name, tune, held) in &files {
            for (part, cases) in [("tune", tune), ("held", held)] {
                let (_, confusion, misses) = run(&t, cases);
                println!("== {name} {part}\n{}", confusion.report());
                for m in misses {
                    let q: String = m.q.chars().take(70).collect();
                    println!(
                        "miss want={:<24} got={:<40} answered={} {q}",
                        m.expected.unwrap_or_default(),
                        m.got.join(","),
                        m.answered
                    );
                }
            }
        }
    }
}
