//! Criterion benchmarks: one FAQ query (in scope, out of scope, long), and building the
//! index from the knowledge folder (with the jieba dictionary already loaded, as on reload,
//! and from scratch, as at start-up).
//!
//! `cargo bench --bench search`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use yidi::search::{Analyzer, SearchEngine, Tuning};

fn bench(c: &mut Criterion) {
    let knowledge = yidi::Knowledge::load(yidi::default_knowledge_dir()).expect("valid knowledge");
    let engine = SearchEngine::build(&knowledge).expect("index");
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
