//! BM25 at query time from a table read out of the tantivy index at load.
//!
//! The index is tiny (a few thousand short documents) and fixed for the engine's life, so
//! everything a tantivy query would compute per query (term dictionary look-ups, postings
//! decoding, BM25 weights and length norms, the query and scorer trees of a hundred term
//! clauses) is computed once here: per token, per field, its postings with their BM25 length
//! factor. A query then costs one hash look-up per token and a few additions per posting.
//!
//! Scores are tantivy's: the same BM25 formula (k1 = 1.2, b = 0.75, idf over all documents,
//! the field's average length over all documents, document lengths through tantivy's
//! one-byte fieldnorm code) and the same operations in the same order per term
//! (`(idf × (1 + k1) × boost) × tf / (tf + norm)`); only the order in which a document's
//! clause scores are added may differ from tantivy's scorer tree (a last-bit difference).

use rustc_hash::FxHashMap;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, TERMINATED};

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// One term's postings in one field: a range of `postings` and the term's BM25 weight
/// `idf × (1 + k1)` in that field.
#[derive(Clone, Copy, Default)]
struct Slot {
    start: u32,
    end: u32,
    weight: f32,
}

/// The postings of every indexed token, per field.
pub(super) struct TermTable<const F: usize> {
    ids: FxHashMap<Box<str>, u32>,
    slots: Vec<[Slot; F]>,
    /// Per posting: the document and `tf / (tf + k1 × (1 - b + b × length / average length))`.
    postings: Vec<(u32, f32)>,
    num_docs: usize,
}

impl<const F: usize> TermTable<F> {
    /// Reads the postings of `fields` (slot `i` is `fields[i]`) from all segments; documents
    /// are numbered across segments in segment order.
    pub fn build(searcher: &Searcher, fields: &[Field; F]) -> tantivy::Result<Self> {
        let segments = searcher.segment_readers();
        let mut offsets = Vec::with_capacity(segments.len());
        let mut num_docs = 0u64;
        for seg in segments {
            offsets.push(num_docs as u32);
            num_docs += u64::from(seg.max_doc());
        }
        let mut table = TermTable {
            ids: FxHashMap::default(),
            slots: Vec::new(),
            postings: Vec::new(),
            num_docs: num_docs as usize,
        };
        for (slot, &field) in fields.iter().enumerate() {
            let mut total_tokens = 0u64;
            let mut per_term: FxHashMap<Vec<u8>, Vec<(u32, u32, u8)>> = FxHashMap::default();
            let mut order: Vec<Vec<u8>> = Vec::new();
            for (seg, &offset) in segments.iter().zip(&offsets) {
                let inverted = seg.inverted_index(field)?;
                total_tokens += inverted.total_num_tokens();
                let norms = seg.get_fieldnorms_reader(field)?;
                let mut stream = inverted.terms().stream()?;
                while stream.advance() {
                    let mut postings = inverted.read_postings_from_terminfo(
                        stream.value(),
                        IndexRecordOption::WithFreqs,
                    )?;
                    let list = per_term.entry(stream.key().to_vec()).or_insert_with(|| {
                        order.push(stream.key().to_vec());
                        Vec::new()
                    });
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        list.push((offset + doc, postings.term_freq(), norms.fieldnorm_id(doc)));
                        doc = postings.advance();
                    }
                }
            }
            let average = total_tokens as f32 / num_docs.max(1) as f32;
            let mut norm_cache = [0.0f32; 256];
            for (id, n) in norm_cache.iter_mut().enumerate() {
                let length = FieldNormReader::id_to_fieldnorm(id as u8);
                *n = K1 * (1.0 - B + B * length as f32 / average);
            }
            for key in order {
                let list = &per_term[&key];
                let Ok(text) = std::str::from_utf8(&key) else {
                    continue;
                };
                let next = table.slots.len() as u32;
                let id = *table.ids.entry(text.into()).or_insert(next);
                if id == next {
                    table.slots.push([Slot::default(); F]);
                }
                let start = table.postings.len() as u32;
                for &(doc, tf, norm_id) in list {
                    let tf = tf as f32;
                    table
                        .postings
                        .push((doc, tf / (tf + norm_cache[norm_id as usize])));
                }
                table.slots[id as usize][slot] = Slot {
                    start,
                    end: table.postings.len() as u32,
                    weight: idf(list.len() as u64, num_docs) * (1.0 + K1),
                };
            }
        }
        table.ids.shrink_to_fit();
        Ok(table)
    }

    /// Hands over the map of every indexed token to its id (the caller keeps its own
    /// look-up table; this one is then empty).
    pub fn take_tokens(&mut self) -> FxHashMap<Box<str>, u32> {
        std::mem::take(&mut self.ids)
    }

    /// Approximate heap bytes held (slots and postings).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<[Slot; F]>()
            + self.postings.capacity() * std::mem::size_of::<(u32, f32)>()
            + self.ids.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
            + self.ids.keys().map(|k| k.len()).sum::<usize>()
    }

    /// Number of documents (of all segments).
    pub fn num_docs(&self) -> usize {
        self.num_docs
    }

    /// Raises each of its documents' scores to at least the score of term `id` in field
    /// `slot`, with `boost` (a disjunction max over terms of one field).
    #[inline]
    pub fn max_into(&self, acc: &mut Scores, id: u32, slot: usize, boost: f32) {
        let s = self.slots[id as usize][slot];
        let postings = &self.postings[s.start as usize..s.end as usize];
        // a new cell's score is 0 and every score is positive
        acc.fold_postings(postings, s.weight * boost, f32::max);
    }

    /// Adds the score of term `id` in field `slot`, with `boost`, to each of its documents.
    #[inline]
    pub fn add(&self, acc: &mut Scores, id: u32, slot: usize, boost: f32) {
        let s = self.slots[id as usize][slot];
        let postings = &self.postings[s.start as usize..s.end as usize];
        acc.fold_postings(postings, s.weight * boost, |score, x| score + x);
    }
}

/// idf as tantivy computes it: `ln(1 + (N - n + 0.5) / (n + 0.5))`.
fn idf(doc_freq: u64, doc_count: u64) -> f32 {
    let x = ((doc_count - doc_freq) as f32 + 0.5) / (doc_freq as f32 + 0.5);
    (1.0 + x).ln()
}

/// Per-document scores of one query: a dense array and the documents touched, so that
/// clearing and collecting cost the matches, not the index size.
///
/// Whether a posting's document is new to the query is a coin toss for the branch
/// predictor, so adding is branch-free: the document is always written at the end of the
/// touched list, and the end moves on only when it was new.
#[derive(Default)]
pub(super) struct Scores {
    cells: Vec<Cell>,
    /// The documents touched are `touched[..len]` (its length is one more than the number
    /// of documents: room for the write past the end).
    touched: Vec<u32>,
    len: usize,
}

/// One document's score, and whether it is in the touched list.
#[derive(Clone, Copy, Default)]
struct Cell {
    score: f32,
    hit: bool,
}

impl Scores {
    /// Makes room for `num_docs` documents (all scores cleared).
    pub fn fit(&mut self, num_docs: usize) {
        self.clear();
        if self.cells.len() != num_docs {
            self.cells = vec![Cell::default(); num_docs];
            self.touched = vec![0; num_docs + 1];
        }
    }

    /// Marks `doc` touched and returns its cell.
    #[inline]
    fn touch(&mut self, doc: u32) -> &mut Cell {
        let cell = &mut self.cells[doc as usize];
        self.touched[self.len] = doc;
        self.len += usize::from(!cell.hit);
        cell.hit = true;
        cell
    }

    #[inline]
    pub fn add(&mut self, doc: u32, s: f32) {
        self.touch(doc).score += s;
    }

    /// Combines `w × tf` of each posting `(doc, tf)` into its document's score: as
    /// [`touch`](Self::touch), with the list's end kept in a register (a write through
    /// `self` could change it, as far as the compiler knows).
    #[inline]
    fn fold_postings(
        &mut self,
        postings: &[(u32, f32)],
        w: f32,
        combine: impl Fn(f32, f32) -> f32,
    ) {
        let cells = &mut self.cells[..];
        let touched = &mut self.touched[..];
        let mut len = self.len;
        for &(doc, tf) in postings {
            let cell = &mut cells[doc as usize];
            touched[len] = doc;
            len += usize::from(!cell.hit);
            cell.hit = true;
            cell.score = combine(cell.score, w * tf);
        }
        self.len = len;
    }

    /// The documents touched, in the order first touched.
    fn touched(&self) -> &[u32] {
        &self.touched[..self.len]
    }

    /// Raises each document's score to at least the other's (a disjunction max), then
    /// clears `other`.
    pub fn max_from(&mut self, other: &mut Scores) {
        for &doc in other.touched() {
            let s = other.cells[doc as usize].score;
            let cell = self.touch(doc);
            // a new cell's score is 0 and every score is positive
            cell.score = cell.score.max(s);
        }
        other.clear();
    }

    /// Adds each document's score to `acc`, then clears these scores.
    pub fn add_into(&mut self, acc: &mut Scores) {
        for &doc in self.touched() {
            acc.add(doc, self.cells[doc as usize].score);
        }
        self.clear();
    }

    /// Hands each document with a positive score, and its score, to `f` (in the order
    /// first touched), and clears all scores.
    pub fn drain(&mut self, mut f: impl FnMut(u32, f32)) {
        let cells = &mut self.cells[..];
        for &doc in &self.touched[..self.len] {
            let cell = &mut cells[doc as usize];
            if cell.score > 0.0 {
                f(doc, cell.score);
            }
            *cell = Cell::default();
        }
        self.len = 0;
    }

    pub fn clear(&mut self) {
        self.drain(|_, _| {});
    }
}
