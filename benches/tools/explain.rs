//! Development tool: shows how a query is analysed and ranked.
//! `cargo run --release --example explain -- "问题"`
fn main() {
    let k = yidi::Knowledge::load(yidi::default_knowledge_dir()).expect("valid knowledge");
    let e = yidi::SearchEngine::build(&k).expect("index");
    for q in std::env::args().skip(1) {
        let norm = yidi::text::normalize_query(&q);
        println!(
            "query: {q}\nwords: {:?}\nbigrams: {:?}",
            e.analyzer().words_normalized(&norm),
            e.analyzer().bigrams_normalized(&norm)
        );
        let ex = yidi::search::Expander::new(&k.synonyms);
        println!("synonym groups: {:?}", ex.expand(&norm));
        let r = e.search(&q, 41);
        println!("answered: {} oos: {:.2}", r.answered, r.out_of_scope_score);
        for h in r.hits {
            println!("  {:>7.2} {}", h.score, h.id);
        }
    }
}
