//! Development tool: prints, for evaluation files, the score and coverage of the top hit of
//! every question, split into "right top-1", "wrong top-1" and "out of scope", so that the
//! abstention thresholds in `search::Tuning` can be chosen from the distributions.
//!
//! `cargo run --release --example tune -- ../shared/eval/dev.jsonl tests/data/holdout.jsonl`

use yidi::search::{SearchEngine, eval};

fn main() {
    let knowledge = yidi::Knowledge::load(yidi::default_knowledge_dir()).expect("valid knowledge");
    let mut tuning = yidi::search::Tuning::default();
    let env = |name: &str, slot: &mut f32| {
        if let Ok(v) = std::env::var(name) {
            *slot = v.parse().expect("a number");
        }
    };
    env("WP", &mut tuning.weight_phrasing);
    env("WE", &mut tuning.weight_entry);
    env("BPG", &mut tuning.boost_phrase_grams);
    env("BQ", &mut tuning.boost_question);
    env("BV", &mut tuning.boost_variants);
    env("BT", &mut tuning.boost_tags);
    env("BA", &mut tuning.boost_answer);
    env("BG", &mut tuning.boost_grams);
    env("SW", &mut tuning.synonym_weight);
    env("MS", &mut tuning.min_score);
    env("OR", &mut tuning.out_of_scope_ratio);
    let analyzer = yidi::search::Analyzer::new();
    let engine = SearchEngine::build_with(&knowledge, analyzer, tuning).expect("index");
    let mut rows = Vec::new();
    for file in std::env::args().skip(1) {
        let cases =
            eval::parse_cases(&std::fs::read_to_string(&file).expect("readable")).expect("valid");
        let (m, _) = eval::evaluate(&engine, &cases);
        let p1 = cases
            .iter()
            .filter(|c| {
                c.id.is_some()
                    && engine.search(&c.q, 1).hits.first().map(|h| &h.id) == c.id.as_ref()
            })
            .count();
        println!(
            "{file}: p@1(raw)={:.3} {}",
            p1 as f64 / m.in_scope as f64,
            serde_json::to_string(&m).unwrap()
        );
        for c in cases {
            let r = engine.search(&c.q, 3);
            let (score, top) = r
                .hits
                .first()
                .map_or((0.0, String::new()), |h| (h.score, h.id.clone()));
            let top = format!("{}{top}", if r.answered { "+" } else { "-" });
            let ratio = r.out_of_scope_score / score.max(0.01);
            let kind = match &c.id {
                None => "OUT",
                Some(id) if top[1..] == *id => "OK ",
                Some(_) => "BAD",
            };
            rows.push((kind, score, ratio, c.q, c.id.unwrap_or_default(), top));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(b.0).then(a.2.partial_cmp(&b.2).unwrap()));
    for (kind, score, ratio, q, want, top) in rows {
        println!(
            "{kind} score={score:>6.2} oos/score={ratio:.2} want={want:<24} top={top:<24} {q}"
        );
    }
}
