//! FAQ search: an in-RAM tantivy index built from the knowledge, queried with a boolean query
//! that we construct from tokens ourselves, and an abstention rule that decides "answered".
//!
//! Ranking: BM25 over several fields of one document per FAQ entry: the canonical question,
//! the alternative phrasings, the tags, the answer (jieba words, each with its own boost) and
//! character bigrams of the question and phrasings. Query words found through the synonym
//! list count at a lower weight than the user's own words.
//!
//! Abstention: a hit is an answer only when its score clears [`Tuning::min_score`] *and* the
//! entry covers enough of the query's meaning: the idf-weighted share of the query's content
//! words that occur in the entry (directly or through a synonym), [`Tuning::min_coverage`].
//! A question about pensions shares words such as 医保 with the knowledge base, but its topic
//! words (养老金, 缴费) occur in no entry, so its coverage stays low.

mod analyzer;
pub mod eval;
mod synonyms;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, TantivyDocument, Term, doc};

pub use analyzer::Analyzer;
use analyzer::{AnalyzerTokenizer, Mode};
pub use synonyms::Expander;

use crate::knowledge::Knowledge;
use crate::text::normalize_query;

/// Ranking and abstention parameters. The defaults were calibrated on the evaluation sets
/// (see README, "Search quality").
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub boost_question: f32,
    pub boost_variants: f32,
    pub boost_tags: f32,
    pub boost_answer: f32,
    pub boost_grams: f32,
    /// Weight of a word that came from synonym expansion, relative to the user's own words.
    pub synonym_weight: f32,
    pub min_score: f32,
    pub min_coverage: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            boost_question: 2.0,
            boost_variants: 1.5,
            boost_tags: 1.0,
            boost_answer: 0.4,
            boost_grams: 0.6,
            synonym_weight: 0.6,
            min_score: 6.0,
            min_coverage: 0.6,
        }
    }
}

/// One ranked FAQ entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    pub question: String,
    /// Idf-weighted share of the query's content words that this entry contains.
    #[serde(skip)]
    pub coverage: f32,
}

/// The result of one search.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub query: String,
    pub answered: bool,
    pub hits: Vec<Hit>,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    question: Field,
    variants: Field,
    tags: Field,
    answer: Field,
    grams: Field,
}

/// The FAQ index. Build once per knowledge version; searching takes `&self` and is
/// thread-safe (one reader per process, a fresh searcher per query).
pub struct SearchEngine {
    analyzer: Analyzer,
    expander: Expander,
    fields: Fields,
    reader: IndexReader,
    tuning: Tuning,
    /// Per entry id: every word of the entry, for coverage.
    vocab: HashMap<String, HashSet<String>>,
    /// Document frequency of each word over entries, for coverage weights.
    df: HashMap<String, u32>,
    n_docs: u32,
    questions: HashMap<String, String>,
}

impl SearchEngine {
    /// Builds the index (loads the jieba dictionary once).
    pub fn build(knowledge: &Knowledge) -> tantivy::Result<SearchEngine> {
        let expander = Expander::new(&knowledge.synonyms);
        let analyzer = Analyzer::new(expander.all_terms());
        Self::build_with(knowledge, analyzer, Tuning::default())
    }

    /// Builds the index with an existing analyzer (reuse its dictionary on reload) and tuning.
    pub fn build_with(knowledge: &Knowledge, analyzer: Analyzer, tuning: Tuning) -> tantivy::Result<SearchEngine> {
        let expander = Expander::new(&knowledge.synonyms);
        let mut sb = Schema::builder();
        let text = |tok: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tok)
                    .set_index_option(IndexRecordOption::WithFreqs),
            )
        };
        let fields = Fields {
            id: sb.add_text_field("id", STRING | STORED),
            question: sb.add_text_field("question", text("zh_words")),
            variants: sb.add_text_field("variants", text("zh_words")),
            tags: sb.add_text_field("tags", text("zh_words")),
            answer: sb.add_text_field("answer", text("zh_words")),
            grams: sb.add_text_field("grams", text("zh_bigrams")),
        };
        let index = Index::create_in_ram(sb.build());
        let words = AnalyzerTokenizer { analyzer: analyzer.clone(), mode: Mode::Words };
        let grams = AnalyzerTokenizer { analyzer: analyzer.clone(), mode: Mode::Bigrams };
        index.tokenizers().register("zh_words", TextAnalyzer::from(words));
        index.tokenizers().register("zh_bigrams", TextAnalyzer::from(grams));

        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;
        let mut vocab = HashMap::new();
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut questions = HashMap::new();
        for e in &knowledge.faqs {
            // One document per phrasing (the canonical question first): an entry scores as
            // its best-matching phrasing, so twelve phrasings do not dilute each other.
            for (i, phrasing) in std::iter::once(&e.question).chain(&e.variants).enumerate() {
                let mut d = doc!(
                    fields.id => e.id.as_str(),
                    fields.answer => e.answer.as_str(),
                    fields.grams => phrasing.as_str(),
                );
                d.add_text(if i == 0 { fields.question } else { fields.variants }, phrasing);
                for t in &e.tags {
                    d.add_text(fields.tags, t);
                }
                writer.add_document(d)?;
            }

            let mut words: HashSet<String> = HashSet::new();
            for text in std::iter::once(&e.question)
                .chain(&e.variants)
                .chain(&e.tags)
                .chain(std::iter::once(&e.answer))
            {
                words.extend(analyzer.words(text));
            }
            for w in &words {
                *df.entry(w.clone()).or_default() += 1;
            }
            vocab.insert(e.id.clone(), words);
            questions.insert(e.id.clone(), e.question.clone());
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(SearchEngine {
            analyzer,
            expander,
            fields,
            reader,
            tuning,
            vocab,
            df,
            n_docs: knowledge.faqs.len() as u32,
            questions,
        })
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn tuning(&self) -> Tuning {
        self.tuning
    }

    /// Searches for `query` and returns at most `limit` hits, best first.
    pub fn search(&self, query: &str, limit: usize) -> SearchResult {
        let norm = normalize_query(query);
        let mut result = SearchResult { query: query.to_string(), answered: false, hits: Vec::new() };
        let own_words = dedup(self.analyzer.words_normalized(&norm));
        if own_words.is_empty() || limit == 0 {
            return result;
        }
        let expanded: Vec<String> = self
            .expander
            .expand(&norm)
            .iter()
            .flat_map(|t| self.analyzer.words_normalized(t))
            .filter(|w| !own_words.contains(w))
            .collect();
        let expanded = dedup(expanded);
        let grams = dedup(self.analyzer.bigrams_normalized(&norm));

        let t = self.tuning;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add = |field: Field, word: &str, boost: f32| {
            let term = Term::from_field_text(field, word);
            let q = TermQuery::new(term, IndexRecordOption::WithFreqs);
            clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
        };
        for (words, weight) in [(&own_words, 1.0), (&expanded, t.synonym_weight)] {
            for w in words {
                add(self.fields.question, w, t.boost_question * weight);
                add(self.fields.variants, w, t.boost_variants * weight);
                add(self.fields.tags, w, t.boost_tags * weight);
                add(self.fields.answer, w, t.boost_answer * weight);
            }
        }
        for g in &grams {
            add(self.fields.grams, g, t.boost_grams);
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        // phrasing documents, collapsed to entries below
        let top = match searcher.search(&query, &TopDocs::with_limit(limit * 12 + 20).order_by_score()) {
            Ok(top) => top,
            Err(e) => {
                tracing::error!(error = %e, "search failed");
                return result;
            }
        };
        for (score, addr) in top {
            let Ok(doc) = searcher.doc::<TantivyDocument>(addr) else { continue };
            let Some(id) = doc.get_first(self.fields.id).and_then(|v| v.as_str()) else { continue };
            if result.hits.iter().any(|h| h.id == id) {
                continue;
            }
            if result.hits.len() == limit {
                break;
            }
            result.hits.push(Hit {
                id: id.to_string(),
                score,
                question: self.questions.get(id).cloned().unwrap_or_default(),
                coverage: self.coverage(id, &own_words),
            });
        }
        if let Some(best) = result.hits.first() {
            result.answered = best.score >= t.min_score && best.coverage >= t.min_coverage;
        }
        result
    }

    /// Idf-weighted share of `words` that entry `id` contains, directly or via a synonym.
    fn coverage(&self, id: &str, words: &[String]) -> f32 {
        let Some(vocab) = self.vocab.get(id) else { return 0.0 };
        let n = self.n_docs as f32;
        let (mut have, mut all) = (0.0f32, 0.0f32);
        for w in words {
            let df = self.df.get(w).copied().unwrap_or(0) as f32;
            let idf = ((n + 1.0) / (df + 0.5)).ln().max(0.1);
            all += idf;
            let covered = vocab.contains(w)
                || self.expander.group_of(w).is_some_and(|g| {
                    g.iter().any(|s| self.analyzer.words_normalized(s).iter().all(|x| vocab.contains(x)))
                });
            if covered {
                have += idf;
            }
        }
        if all == 0.0 { 0.0 } else { have / all }
    }
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|w| seen.insert(w.clone())).collect()
}
