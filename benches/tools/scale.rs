//! Benchmark tool (issue 24): what search costs as the knowledge grows.
//!
//! `cargo run --release --example scale -- KNOWLEDGE_DIR [REGION_EVAL]`
//!
//! Loads the knowledge (e.g. a pack of `benches/scale/gen-regions.py`), builds the search
//! engine as `yidi search` does, then times every question of ../shared/eval/dev.jsonl and
//! real-dev.jsonl (and of REGION_EVAL: `{"q", "id", "region"}` lines, asked with the asker's
//! insured region as context) one by one, and prints one JSON line: load and build times, the
//! per-query median and p99, the share of region questions whose top hit is the expected id,
//! and the peak RSS.
use std::time::Instant;

use yidi::search::SearchContext;

fn lines(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ctx_for(region: &Option<String>) -> SearchContext<'_> {
    SearchContext {
        cross_region: false,
        region: region.as_deref(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "knowledge".into());
    let region_eval = args.next();
    let t0 = Instant::now();
    let k = yidi::Knowledge::load(&dir).expect("knowledge");
    let loaded = t0.elapsed();
    let analyzer = yidi::search::Analyzer::new();
    let dictionary = t0.elapsed() - loaded;
    let b = Instant::now();
    let e = yidi::SearchEngine::build_with(&k, analyzer, yidi::search::Tuning::default())
        .expect("index");
    let build = b.elapsed();
    let rss_ready = status("VmRSS:");
    // every shard built (what a server does beside serving after it is ready)
    let w = Instant::now();
    e.warm();
    let warm = w.elapsed();
    let rss_warm = status("VmRSS:");
    let heap: serde_json::Map<String, serde_json::Value> = e
        .heap_report()
        .into_iter()
        .map(|(part, bytes)| (part.to_string(), (bytes / 1024 / 1024).into()))
        .collect();

    let mut questions: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for f in ["../shared/eval/dev.jsonl", "../shared/eval/real-dev.jsonl"] {
        for v in lines(f) {
            questions.push((
                v["q"].as_str().unwrap().to_string(),
                v["id"].as_str().map(str::to_string),
                None,
            ));
        }
    }
    let plain = questions.len();
    if let Some(f) = &region_eval {
        // at most 2,000 region questions (evenly spread over the regions)
        let all = lines(f);
        let step = all.len().div_ceil(2000).max(1);
        for v in all.into_iter().step_by(step) {
            questions.push((
                v["q"].as_str().unwrap().to_string(),
                v["id"].as_str().map(str::to_string),
                v["region"].as_str().map(str::to_string),
            ));
        }
    }
    // warm up once, then time each question (mean of REPEAT searches)
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // right: answered with the expected entry first, or not answered when none is expected
    let (mut right, mut asked, mut plain_right) = (0usize, 0usize, 0usize);
    for (q, want, region) in &questions {
        let r = e.search_with(q, 3, &ctx_for(region));
        let got = if r.answered {
            r.hits.first().map(|h| h.id.clone())
        } else {
            None
        };
        if region.is_some() {
            asked += 1;
            right += usize::from(got == *want);
        } else {
            plain_right += usize::from(got == *want);
        }
    }
    let mut times: Vec<f64> = Vec::with_capacity(questions.len());
    let mut region_times: Vec<f64> = Vec::new();
    let all = Instant::now();
    for (i, (q, _, region)) in questions.iter().enumerate() {
        let ctx = ctx_for(region);
        let s = Instant::now();
        for _ in 0..repeat {
            std::hint::black_box(e.search_with(q, 3, &ctx));
        }
        let us = s.elapsed().as_secs_f64() * 1e6 / repeat as f64;
        if i < plain {
            times.push(us);
        } else {
            region_times.push(us);
        }
    }
    let total = all.elapsed();
    times.sort_by(f64::total_cmp);
    region_times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "knowledge": dir,
            "entries": k.faqs.len(),
            "load_ms": loaded.as_secs_f64() * 1e3,
            "dictionary_ms": dictionary.as_secs_f64() * 1e3,
            "build_ms": build.as_secs_f64() * 1e3,
            "rss_ready_mb": rss_ready / 1024,
            "shards": e.shard_count(),
            "warm_all_shards_ms": warm.as_secs_f64() * 1e3,
            "rss_warm_mb": rss_warm / 1024,
            "heap_mb": heap,
            "queries": questions.len(),
            "median_us": pct(&times, 0.5),
            "p99_us": pct(&times, 0.99),
            "region_median_us": pct(&region_times, 0.5),
            "region_p99_us": pct(&region_times, 0.99),
            "plain_top1_right": plain_right as f64 / plain.max(1) as f64,
            "region_questions": asked,
            "region_top1_right": if asked > 0 { right as f64 / asked as f64 } else { 0.0 },
            "search_total_ms": total.as_secs_f64() * 1e3,
            "peak_rss_mb": status("VmHWM:") / 1024,
        })
    );
}
