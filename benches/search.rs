//! Criterion benchmarks: one FAQ query (in scope, out of scope, long), all in-scope
//! questions of the shared evaluation sets (`../shared/eval/dev.jsonl` and `real-dev.jsonl`),
//! and building the index from the knowledge folder (with the jieba dictionary already
//! loaded, as on reload, and from scratch, as at start-up).
//!
//! `cargo bench --bench search` (`-- eval_set` for the evaluation questions only). Before
//! criterion runs, the per-question distribution over the evaluation questions is printed
//! (each question's mean time over repeated searches; median, mean, p90 and max over the
//! questions).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use yidi::search::{Analyzer, SearchEngine, Tuning};

/// The in-scope questions of the shared evaluation sets.
fn in_scope_questions() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval");
    let mut out = Vec::new();
    for file in ["dev.jsonl", "real-dev.jsonl"] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            eprintln!("{file} not found beside the crate: skipped");
            continue;
        };
        let cases = yidi::search::eval::parse_cases(&text).expect("valid cases");
        out.extend(cases.into_iter().filter(|c| c.id.is_some()).map(|c| c.q));
    }
    out
}

/// Each question's mean search time over `rounds` searches, in µs.
fn per_question(engine: &SearchEngine, questions: &[String], rounds: u32) -> Vec<f64> {
    questions
        .iter()
        .map(|q| {
            black_box(engine.search(q, 3));
            let start = Instant::now();
            for _ in 0..rounds {
                black_box(engine.search(black_box(q), 3));
            }
            start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let knowledge = yidi::Knowledge::load(yidi::default_knowledge_dir()).expect("valid knowledge");
    let engine = SearchEngine::build(&knowledge).expect("index");

    let questions = in_scope_questions();
    if !questions.is_empty() {
        let mut times = per_question(&engine, &questions, 200);
        times.sort_by(f64::total_cmp);
        let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "in-scope evaluation questions: n={}, per question median {:.1} µs, mean {:.1} µs, \
             p90 {:.1} µs, max {:.1} µs",
            times.len(),
            at(0.5),
            times.iter().sum::<f64>() / times.len() as f64,
            at(0.9),
            at(1.0)
        );
        let mut group = c.benchmark_group("search");
        group.throughput(Throughput::Elements(questions.len() as u64));
        group.bench_function("eval_set_in_scope", |b| {
            b.iter(|| {
                for q in &questions {
                    black_box(engine.search(black_box(q), 3));
                }
            })
        });
        group.finish();
    }
    let queries = [
        ("in_scope", "社保卡在外地医院刷不了怎么办"),
        (
            "situational",
            "我是张家港的退休职工，搬去上海跟儿子住，住院了还没备案，出院前补办来得及吗",
        ),
        ("out_of_scope", "公积金贷款怎么办理"),
    ];
    for (name, q) in queries {
        c.bench_function(&format!("search/{name}"), |b| {
            b.iter(|| engine.search(black_box(q), 3))
        });
    }
    let long = "异地就医备案".repeat(2_000);
    c.bench_function("search/12k_chars", |b| {
        b.iter(|| engine.search(black_box(&long), 3))
    });

    let analyzer = Analyzer::new();
    let mut group = c.benchmark_group("build");
    group.sample_size(20);
    group.bench_function("index_only", |b| {
        b.iter(|| {
            SearchEngine::build_with(&knowledge, analyzer.clone(), Tuning::default()).unwrap()
        })
    });
    group.bench_function("with_dictionary", |b| {
        b.iter(|| SearchEngine::build(&knowledge).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
