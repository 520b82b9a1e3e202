//! FAQ search: an in-RAM tantivy index built from the knowledge, queried with a boolean query
//! that we construct from tokens ourselves, and an abstention rule that decides "answered".
//!
//! Documents: one per phrasing (the canonical question and each alternative phrasing) and one
//! per entry (question, phrasings, tags and answer as separate fields). Out-of-scope topics
//! (`knowledge/out_of_scope.toml`) are indexed the same way, as decoys.
//!
//! Ranking: an entry's score is `weight_phrasing × (its best phrasing's BM25)` plus
//! `weight_entry × (its entry document's BM25)`. The query is built from jieba words (each
//! field with its boost) and character bigrams; each synonym group found in the query adds
//! one disjunction-max clause over its other terms, at a lower weight than the user's words.
//!
//! Abstention: the best entry is an answer only when its score clears
//! [`Tuning::min_score`] and no out-of-scope topic comes close to it
//! ([`Tuning::out_of_scope_ratio`]). Both were calibrated on the evaluation sets (README).

mod analyzer;
pub mod eval;
mod synonyms;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, DisjunctionMaxQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
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
    /// The best entry's score must reach this to count as an answer.
    pub min_score: f32,
    /// Abstain when the best out-of-scope topic scores at least this share of the best entry.
    pub out_of_scope_ratio: f32,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            weight_phrasing: 1.0,
            weight_entry: 1.0,
            boost_phrase_grams: 0.6,
            boost_question: 2.0,
            boost_variants: 1.5,
            boost_tags: 1.0,
            boost_answer: 0.0,
            boost_grams: 0.6,
            synonym_weight: 0.4,
            min_score: 30.0,
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
    /// When not answered because an out-of-scope topic matched the question at least as
    /// well as the FAQ: that topic's id (the assistant then refers the user elsewhere).
    #[serde(skip)]
    pub out_of_scope: Option<String>,
}

#[derive(Clone, Copy)]
struct Fields {
    phrase: Field,
    phrase_grams: Field,
    question: Field,
    variants: Field,
    tags: Field,
    answer: Field,
    grams: Field,
}

/// Something that can rank: an FAQ entry or an out-of-scope topic.
struct Candidate {
    id: String,
    question: String,
    out_of_scope: bool,
}

/// The FAQ index. Build once per knowledge version; searching takes `&self` and is
/// thread-safe (one reader per process, a fresh searcher per query).
pub struct SearchEngine {
    analyzer: Analyzer,
    expander: Expander,
    /// Words of each synonym term, tokenized once at build time.
    term_words: HashMap<String, Vec<String>>,
    fields: Fields,
    reader: IndexReader,
    /// Per segment, per document: the index of its candidate.
    doc_candidate: Vec<Vec<u32>>,
    candidates: Vec<Candidate>,
    tuning: Tuning,
}

impl SearchEngine {
    /// Builds the index (loads the jieba dictionary once).
    pub fn build(knowledge: &Knowledge) -> tantivy::Result<SearchEngine> {
        Self::build_with(knowledge, Analyzer::new(), Tuning::default())
    }

    /// Builds the index with an existing analyzer (reuse its dictionary on reload) and tuning.
    pub fn build_with(
        knowledge: &Knowledge,
        analyzer: Analyzer,
        tuning: Tuning,
    ) -> tantivy::Result<SearchEngine> {
        let expander = Expander::new(&knowledge.synonyms);
        let mut sb = Schema::builder();
        let text = |tok: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tok)
                    .set_index_option(IndexRecordOption::WithFreqs),
            )
        };
        let candidate_field = sb.add_u64_field(CANDIDATE_FIELD, FAST);
        let fields = Fields {
            phrase: sb.add_text_field("phrase", text("zh_words")),
            phrase_grams: sb.add_text_field("phrase_grams", text("zh_bigrams")),
            question: sb.add_text_field("question", text("zh_words")),
            variants: sb.add_text_field("variants", text("zh_words")),
            tags: sb.add_text_field("tags", text("zh_words")),
            answer: sb.add_text_field("answer", text("zh_words")),
            grams: sb.add_text_field("grams", text("zh_bigrams")),
        };
        let index = Index::create_in_ram(sb.build());
        let words = AnalyzerTokenizer {
            analyzer: analyzer.clone(),
            mode: Mode::Words,
            concepts: Some(std::sync::Arc::new(expander.clone())),
        };
        let grams = AnalyzerTokenizer {
            analyzer: analyzer.clone(),
            mode: Mode::Bigrams,
            concepts: None,
        };
        index
            .tokenizers()
            .register("zh_words", TextAnalyzer::from(words));
        index
            .tokenizers()
            .register("zh_bigrams", TextAnalyzer::from(grams));

        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 15_000_000)?;
        let mut candidates = Vec::new();
        let faqs = knowledge.faqs.iter().map(|e| {
            let phrasings: Vec<&str> = std::iter::once(e.question.as_str())
                .chain(e.variants.iter().map(String::as_str))
                .collect();
            (
                e.id.clone(),
                e.question.clone(),
                phrasings,
                e.tags.clone(),
                e.answer.as_str(),
                false,
            )
        });
        let topics = knowledge.out_of_scope.iter().map(|t| {
            let phrasings = t.examples.iter().map(String::as_str).collect();
            (
                format!("{OOS_PREFIX}{}", t.id),
                t.label.clone(),
                phrasings,
                vec![t.label.clone()],
                "",
                true,
            )
        });
        for (id, question, phrasings, tags, answer, out_of_scope) in faqs.chain(topics) {
            let c = candidates.len() as u64;
            // one document per phrasing: an entry can score as its best-matching phrasing,
            // so twelve phrasings do not dilute each other
            for p in &phrasings {
                writer.add_document(
                    doc!(candidate_field => c, fields.phrase => *p, fields.phrase_grams => *p),
                )?;
            }
            // and one document for the whole entry
            let mut d = doc!(candidate_field => c, fields.question => phrasings[0], fields.answer => answer);
            for p in &phrasings {
                d.add_text(fields.grams, p);
            }
            for p in &phrasings[1..] {
                d.add_text(fields.variants, p);
            }
            for t in &tags {
                d.add_text(fields.tags, t);
            }
            writer.add_document(d)?;
            candidates.push(Candidate {
                id,
                question,
                out_of_scope,
            });
        }
        writer.commit()?;
        let reader = index.reader()?;
        let doc_candidate = reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|seg| {
                let col = seg.fast_fields().u64(CANDIDATE_FIELD)?;
                Ok((0..seg.max_doc())
                    .map(|d| col.first(d).unwrap_or(0) as u32)
                    .collect())
            })
            .collect::<tantivy::Result<Vec<Vec<u32>>>>()?;
        // A synonym term is looked up as itself when jieba keeps it whole (all terms are in
        // its dictionary), else as its words: fewer clauses, same matches.
        let term_words = expander
            .all_terms()
            .map(|t| {
                let words = analyzer.words_normalized(t);
                let words = if words.iter().any(|w| w == t) {
                    vec![t.to_string()]
                } else {
                    words
                };
                (t.to_string(), words)
            })
            .collect();
        Ok(SearchEngine {
            analyzer,
            expander,
            term_words,
            fields,
            reader,
            doc_candidate,
            candidates,
            tuning,
        })
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Searches for `query` and returns at most `limit` hits, best first.
    pub fn search(&self, query: &str, limit: usize) -> SearchResult {
        let norm = normalize_query(query);
        let mut result = SearchResult {
            query: query.to_string(),
            answered: false,
            hits: Vec::new(),
            out_of_scope_score: 0.0,
            out_of_scope: None,
        };
        let mut own_words = self.analyzer.words_normalized(&norm);
        if own_words.is_empty() {
            return result;
        }
        own_words.extend(self.expander.concepts(&norm));
        let own_words = dedup(own_words);
        // Per synonym group the words its other terms add; a group counts as much as its
        // best-matching word (a disjunction max), however many terms it lists.
        let groups: Vec<Vec<String>> = self
            .expander
            .expand(&norm)
            .iter()
            .map(|terms| {
                let words = terms
                    .iter()
                    .flat_map(|t| self.term_words.get(t).into_iter().flatten().cloned());
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
        let phrasing_query = build_query(
            &own_words,
            &groups,
            &grams,
            &phrasing_fields,
            (f.phrase_grams, t.boost_phrase_grams),
            t.synonym_weight,
        );
        let entry_query = build_query(
            &own_words,
            &groups,
            &grams,
            &entry_fields,
            (f.grams, t.boost_grams),
            t.synonym_weight,
        );

        let searcher = self.reader.searcher();
        let mut scores = vec![0.0f32; self.candidates.len()];
        let n = self.candidates.len();
        for (query, depth, weight) in [
            (&phrasing_query, n * 4, t.weight_phrasing),
            (&entry_query, n, t.weight_entry),
        ] {
            let top = match searcher.search(query, &TopDocs::with_limit(depth).order_by_score()) {
                Ok(top) => top,
                Err(e) => {
                    tracing::error!(error = %e, "search failed");
                    return result;
                }
            };
            // documents arrive best first: the first of a candidate is its best
            let mut seen = vec![false; n];
            for (score, addr) in top {
                let c =
                    self.doc_candidate[addr.segment_ord as usize][addr.doc_id as usize] as usize;
                if !seen[c] {
                    seen[c] = true;
                    scores[c] += weight * score;
                }
            }
        }
        let mut ranked: Vec<(usize, f32)> = scores
            .into_iter()
            .enumerate()
            .filter(|&(_, s)| s > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let best_topic = ranked
            .iter()
            .find(|(c, _)| self.candidates[*c].out_of_scope)
            .copied();
        result.out_of_scope_score = best_topic.map_or(0.0, |(_, s)| s);
        // `answered` is decided on the best entry, whatever the limit
        let mut best_score = None;
        for (i, (c, score)) in ranked
            .into_iter()
            .filter(|(c, _)| !self.candidates[*c].out_of_scope)
            .enumerate()
        {
            if i == 0 {
                best_score = Some(score);
            }
            if i >= limit {
                break;
            }
            let cand = &self.candidates[c];
            result.hits.push(Hit {
                id: cand.id.clone(),
                score,
                question: cand.question.clone(),
            });
        }
        if let Some(best) = best_score {
            result.answered =
                best >= t.min_score && result.out_of_scope_score < t.out_of_scope_ratio * best;
        }
        if !result.answered
            && let Some((c, score)) = best_topic
            && score >= t.out_of_scope_ratio * best_score.unwrap_or(0.0)
            && score >= t.min_score * t.out_of_scope_ratio
        {
            result.out_of_scope = Some(
                self.candidates[c]
                    .id
                    .trim_start_matches(OOS_PREFIX)
                    .to_string(),
            );
        }
        result
    }
}

const OOS_PREFIX: &str = "oos:";
const CANDIDATE_FIELD: &str = "candidate";

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
            .filter(|&&(_, boost)| boost > 0.0)
            .map(|&(field, boost)| (Occur::Should, term_query(field, word, boost * weight)))
            .collect::<Vec<_>>();
        Box::new(BooleanQuery::new(per_field))
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for w in own_words {
        clauses.push((Occur::Should, word_query(w, 1.0)));
    }
    for words in groups {
        let alternatives = words
            .iter()
            .map(|w| word_query(w, synonym_weight))
            .collect();
        clauses.push((
            Occur::Should,
            Box::new(DisjunctionMaxQuery::new(alternatives)),
        ));
    }
    if gram_field.1 > 0.0 {
        for g in grams {
            clauses.push((Occur::Should, term_query(gram_field.0, g, gram_field.1)));
        }
    }
    BooleanQuery::new(clauses)
}

fn term_query(field: Field, word: &str, boost: f32) -> Box<dyn Query> {
    let q = TermQuery::new(
        Term::from_field_text(field, word),
        IndexRecordOption::WithFreqs,
    );
    Box::new(BoostQuery::new(Box::new(q), boost))
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|w| seen.insert(w.clone())).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn engine() -> &'static SearchEngine {
        static E: OnceLock<SearchEngine> = OnceLock::new();
        E.get_or_init(|| {
            let k = Knowledge::load(crate::default_knowledge_dir()).expect("valid knowledge");
            SearchEngine::build(&k).expect("index")
        })
    }

    #[test]
    fn clear_questions_are_answered_with_the_right_entry() {
        for (q, id) in [
            ("社保卡丢了能在外地补办吗", "card-lost"),
            ("张家港医保咨询电话", "contacts"),
        ] {
            let r = engine().search(q, 3);
            assert!(r.answered, "{q}: {r:?}");
            assert_eq!(r.hits[0].id, id, "{q}");
        }
    }

    #[test]
    fn out_of_scope_topics_abstain_even_when_they_share_domain_words() {
        for q in [
            "医保个人账户的钱能取出来吗",
            "住房公积金贷款利率多少",
            "头疼吃什么药",
        ] {
            let r = engine().search(q, 3);
            assert!(!r.answered, "{q} should not be answered: {r:?}");
        }
    }

    #[test]
    fn weak_matches_abstain_but_keep_their_suggestions() {
        let r = engine().search("你好", 3);
        assert!(!r.answered, "{r:?}");
        let r = engine().search("备案", 3);
        assert!(!r.hits.is_empty(), "a bare keyword still gets suggestions");
    }

    #[test]
    fn empty_and_symbol_queries_return_nothing() {
        for q in ["", "   ", "？？！", "😀"] {
            let r = engine().search(q, 3);
            assert!(!r.answered && r.hits.is_empty(), "{q:?}: {r:?}");
        }
        let none = engine().search("社保卡丢了能在外地补办吗", 0);
        assert!(
            none.hits.is_empty() && none.answered,
            "answered does not depend on the limit"
        );
    }

    #[test]
    fn hits_are_sorted_and_limited() {
        let r = engine().search("异地就医备案", 5);
        assert!(r.hits.len() <= 5);
        assert!(r.hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(
            r.hits.iter().all(|h| !h.id.starts_with(OOS_PREFIX)),
            "decoys never surface"
        );
    }
}
