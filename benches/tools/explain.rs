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
        let r = e.search(&q, 5);
        println!(
            "answered: {} topic: {:?} ({:.2}) also: {:?}",
            r.answered,
            r.out_of_scope,
            r.out_of_scope_score,
            r.also.map(|h| h.id)
        );
        let a = e.analyse(&q, &yidi::search::SearchContext::default());
        println!("cross-region: {} long: {}", a.cross_region, a.long);
        for (i, sig) in a.texts.iter().enumerate() {
            let mut ranked: Vec<(usize, f32)> = sig.prob.iter().copied().enumerate().collect();
            ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
            let top: Vec<String> = ranked
                .iter()
                .take(4)
                .map(|&(c, p)| format!("{}:{p:.2}/{:.0}", e.candidate_id(c), sig.bm25[c]))
                .collect();
            println!("  text {i}: {}", top.join("  "));
        }
        for h in r.hits {
            println!("  {:>7.2} {}", h.score, h.id);
        }
    }
}
