//! Development tool: start-up cost (dictionary, index, classifier) and the mean time of one
//! search. `cargo run --release --example prof`
use std::time::Instant;

fn main() {
    let started = Instant::now();
    let k = yidi::Knowledge::load(yidi::default_knowledge_dir()).unwrap();
    let loaded = started.elapsed();
    let analyzer = yidi::search::Analyzer::new();
    let dictionary = started.elapsed();
    let t = yidi::search::Tuning::default();
    let e = yidi::SearchEngine::build_with(&k, analyzer.clone(), t).unwrap();
    let ready = started.elapsed();
    // the classifier's share: build again without training epochs
    let mut untrained = t;
    untrained.train.epochs = 0;
    let b = Instant::now();
    drop(yidi::SearchEngine::build_with(&k, analyzer.clone(), untrained).unwrap());
    let without_training = b.elapsed();
    let b = Instant::now();
    drop(yidi::SearchEngine::build_with(&k, analyzer, t).unwrap());
    let with_training = b.elapsed();
    println!(
        "knowledge {loaded:?}, + jieba dictionary {dictionary:?}, ready (index + classifier) {ready:?}; \
         rebuild {with_training:?} of which training {:?}",
        with_training.saturating_sub(without_training)
    );
    let story = "我父亲是张家港的退休职工，去年退休回到原籍地安徽生活，前几天在当地医院住院了。\
                 现在不是全国联网了吗？为什么医院说不能直接结算，要我们先垫钱？";
    for (name, qs) in [
        (
            "in scope",
            vec![
                "社保卡在外地医院刷不了怎么办",
                "已经出院自费结算了还能补备案吗",
            ],
        ),
        ("out of scope", vec!["公积金怎么提取"]),
        ("story", vec![story]),
    ] {
        let n = 1000;
        let start = Instant::now();
        for i in 0..n {
            std::hint::black_box(e.search(qs[i % qs.len()], 3));
        }
        println!("mean search, {name}: {:?}", start.elapsed() / n as u32);
    }
}
