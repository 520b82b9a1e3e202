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
use tantivy::query::{BooleanQuery, BoostQuery, DisjunctionMaxQuery, Occur, Query, TermQuery};
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
    /// Weight of the best single phrasing's score in an entry's score.
    pub weight_phrasing: f32,
    /// Weight of the whole entry's score (all phrasings, tags, answer) in an entry's score.
    pub weight_entry: f32,
    pub boost_phrase_grams: f32,
    pub boost_question: f32,
    pub boost_variants: f32,
    pub boost_tags: f32,
    pub boost_answer: f32,
    pub boost_grams: f32,
    /// Weight of a word that came from synonym expansion, relative to the user's own words.
    pub synonym_weight: f32,
    pub min_score: f32,
    pub min_coverage: f32,
    /// Abstain when the best out-of-scope topic scores at least this share of the best entry.
    pub out_of_scope_ratio: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            weight_phrasing: 1.0,
            weight_entry: 1.5,
            boost_phrase_grams: 0.6,
            boost_question: 2.0,
            boost_variants: 1.5,
            boost_tags: 1.0,
            boost_answer: 0.4,
            boost_grams: 0.6,
            synonym_weight: 0.6,
            min_score: 30.0,
            min_coverage: 0.0,
            out_of_scope_ratio: 0.8,
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
    /// Score of the best-matching out-of-scope topic (0 when none matched).
    #[serde(skip)]
    pub out_of_scope_score: f32,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    phrase: Field,
    phrase_grams: Field,
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
            phrase: sb.add_text_field("phrase", text("zh_words")),
            phrase_grams: sb.add_text_field("phrase_grams", text("zh_bigrams")),
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
            // One document per phrasing (the canonical question first), so that an entry can
            // score as its best-matching phrasing: twelve phrasings do not dilute each other.
            for phrasing in std::iter::once(&e.question).chain(&e.variants) {
                writer.add_document(doc!(
                    fields.id => e.id.as_str(),
                    fields.phrase => phrasing.as_str(),
                    fields.phrase_grams => phrasing.as_str(),
                ))?;
            }
            // And one document for the whole entry.
            let mut d = doc!(
                fields.id => e.id.as_str(),
                fields.question => e.question.as_str(),
                fields.answer => e.answer.as_str(),
                fields.grams => e.question.as_str(),
            );
            for v in &e.variants {
                d.add_text(fields.variants, v);
                d.add_text(fields.grams, v);
            }
            for t in &e.tags {
                d.add_text(fields.tags, t);
            }
            writer.add_document(d)?;

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
        // Out-of-scope topics are indexed like entries (ids prefixed `oos:`): when one of them
        // ranks first, the question is about something yidi does not cover.
        for topic in &knowledge.out_of_scope {
            let id = format!("{OOS_PREFIX}{}", topic.id);
            let mut d = doc!(fields.id => id.as_str(), fields.tags => topic.label.as_str());
            for ex in &topic.examples {
                writer.add_document(doc!(
                    fields.id => id.as_str(),
                    fields.phrase => ex.as_str(),
                    fields.phrase_grams => ex.as_str(),
                ))?;
                d.add_text(fields.variants, ex);
                d.add_text(fields.grams, ex);
            }
            writer.add_document(d)?;
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
        let mut result = SearchResult {
            query: query.to_string(),
            answered: false,
            hits: Vec::new(),
            out_of_scope_score: 0.0,
        };
        let own_words = dedup(self.analyzer.words_normalized(&norm));
        if own_words.is_empty() || limit == 0 {
            return result;
        }
        // Per synonym group the words its other terms add; a group counts as much as its
        // best-matching word (a disjunction max), however many terms it lists.
        let groups: Vec<Vec<String>> = self
            .expander
            .expand(&norm)
            .iter()
            .map(|terms| {
                let words = terms.iter().flat_map(|t| self.analyzer.words_normalized(t));
                dedup(words.filter(|w| !own_words.contains(w)).collect())
            })
            .filter(|ws| !ws.is_empty())
            .collect();
        let grams = dedup(self.analyzer.bigrams_normalized(&norm));

        let t = self.tuning;
        let f = self.fields;
        let entry_fields = [
            (f.question, t.boost_question),
            (f.variants, t.boost_variants),
            (f.tags, t.boost_tags),
            (f.answer, t.boost_answer),
        ];
        let phrasing_fields = [(f.phrase, 1.0)];
        let phrasing_query = build_query(&own_words, &groups, &grams, &phrasing_fields, (f.phrase_grams, t.boost_phrase_grams), t.synonym_weight);
        let entry_query = build_query(&own_words, &groups, &grams, &entry_fields, (f.grams, t.boost_grams), t.synonym_weight);

        let searcher = self.reader.searcher();
        let mut scores: HashMap<String, f32> = HashMap::new();
        let n_entries = self.questions.len() + 10;
        let runs = [
            (&phrasing_query, n_entries * 4, t.weight_phrasing),
            (&entry_query, n_entries, t.weight_entry),
        ];
        for (query, depth, weight) in runs {
            let top = match searcher.search(query, &TopDocs::with_limit(depth.max(1)).order_by_score()) {
                Ok(top) => top,
                Err(e) => {
                    tracing::error!(error = %e, "search failed");
                    return result;
                }
            };
            // phrasing documents arrive best first: the first of an entry is its best
            let mut seen = HashSet::new();
            for (score, addr) in top {
                let Ok(doc) = searcher.doc::<TantivyDocument>(addr) else { continue };
                let Some(id) = doc.get_first(f.id).and_then(|v| v.as_str()) else { continue };
                if seen.insert(id.to_string()) {
                    *scores.entry(id.to_string()).or_default() += weight * score;
                }
            }
        }
        let mut ranked: Vec<(String, f32)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        result.out_of_scope_score = ranked
            .iter()
            .find(|(id, _)| id.starts_with(OOS_PREFIX))
            .map_or(0.0, |(_, s)| *s);
        ranked.retain(|(id, _)| !id.starts_with(OOS_PREFIX));
        for (id, score) in ranked.into_iter().take(limit) {
            result.hits.push(Hit {
                question: self.questions.get(&id).cloned().unwrap_or_default(),
                coverage: self.coverage(&id, &own_words),
                id,
                score,
            });
        }
        if let Some(best) = result.hits.first() {
            result.answered = best.score >= t.min_score
                && best.coverage >= t.min_coverage
                && result.out_of_scope_score < t.out_of_scope_ratio * best.score;
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

const OOS_PREFIX: &str = "oos:";

/// Σ own words over `fields` + one disjunction max per synonym group + Σ bigrams.
fn build_query(
    own_words: &[String],
    groups: &[Vec<String>],
    grams: &[String],
    fields: &[(Field, f32)],
    gram_field: (Field, f32),
    synonym_weight: f32,
) -> BooleanQuery {
    let word_query = |word: &str, weight: f32| -> Box<dyn Query> {
        let per_field = fields
            .iter()
            .map(|&(field, boost)| (Occur::Should, term_query(field, word, boost * weight)))
            .collect::<Vec<_>>();
        Box::new(BooleanQuery::new(per_field))
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for w in own_words {
        clauses.push((Occur::Should, word_query(w, 1.0)));
    }
    for words in groups {
        let alternatives = words.iter().map(|w| word_query(w, synonym_weight)).collect();
        clauses.push((Occur::Should, Box::new(DisjunctionMaxQuery::new(alternatives))));
    }
    for g in grams {
        clauses.push((Occur::Should, term_query(gram_field.0, g, gram_field.1)));
    }
    BooleanQuery::new(clauses)
}

fn term_query(field: Field, word: &str, boost: f32) -> Box<dyn Query> {
    let q = TermQuery::new(Term::from_field_text(field, word), IndexRecordOption::WithFreqs);
    Box::new(BoostQuery::new(Box::new(q), boost))
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|w| seen.insert(w.clone())).collect()
}
