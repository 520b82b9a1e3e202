//! Development tool: mean time of one search with the current tuning (env overrides as in
//! `tune`: BA=0 etc.). `cargo run --release --example prof`
use std::time::Instant;
fn main() {
    let k = yidi::Knowledge::load(yidi::default_knowledge_dir()).unwrap();
    let mut t = yidi::search::Tuning::default();
    if let Ok(v) = std::env::var("BA") {
        t.boost_answer = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("BQ") {
        t.boost_question = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("BV") {
        t.boost_variants = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("BPG") {
        t.boost_phrase_grams = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("SW") {
        t.synonym_weight = v.parse().unwrap();
    }
    if let Ok(v) = std::env::var("BG") {
        t.boost_grams = v.parse().unwrap();
    }
    let e = yidi::SearchEngine::build_with(&k, yidi::search::Analyzer::new(), t).unwrap();
    let qs = [
        "社保卡在外地医院刷不了怎么办",
        "已经出院自费结算了还能补备案吗",
        "公积金怎么提取",
    ];
    let n = 2000;
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(e.search(qs[i % 3], 3));
    }
    println!("mean search {:?}", start.elapsed() / n as u32);
}
