use std::time::Instant;
fn main() {
    let k = yidi::Knowledge::load(yidi::default_knowledge_dir()).unwrap();
    let e = yidi::SearchEngine::build(&k).unwrap();
    let q = "社保卡在外地医院刷不了怎么办";
    let a = e.analyzer();
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(a.words(q));
    }
    println!("words {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(a.bigrams(q));
    }
    println!("bigrams {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(yidi::text::normalize_query(q));
    }
    println!("normalize {:?}", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(e.search(q, 3));
    }
    println!("search {:?}", t.elapsed() / n);
}
