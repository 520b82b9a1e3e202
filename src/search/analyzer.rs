//! Chinese text analysis: one jieba dictionary per process, shared by the index's tokenizers
//! and by query construction, so index and queries always agree on tokens.

use std::sync::Arc;

use jieba_rs::Jieba;
use rustc_hash::FxHashSet;
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use crate::text::{is_cjk, normalize};

/// Function words and question words that carry no topic. Dropped from index and queries.
const STOPWORDS: &[&str] = &[
    "的",
    "了",
    "吗",
    "呢",
    "吧",
    "啊",
    "呀",
    "哦",
    "嘛",
    "么",
    "我",
    "我们",
    "你",
    "您",
    "他",
    "她",
    "是",
    "不是",
    "在",
    "有",
    "没",
    "能",
    "能不能",
    "可以",
    "可不可以",
    "吗",
    "怎么",
    "怎么样",
    "怎样",
    "如何",
    "什么",
    "啥",
    "哪些",
    "哪个",
    "要",
    "要不要",
    "需要",
    "还",
    "还是",
    "都",
    "就",
    "和",
    "与",
    "或",
    "或者",
    "及",
    "去",
    "到",
    "给",
    "把",
    "被",
    "让",
    "对",
    "从",
    "这",
    "那",
    "这个",
    "那个",
    "一下",
    "请问",
    "一个",
    "个",
    "下",
    "会",
    "会不会",
    "也",
    "又",
    "再",
    "得",
    "地",
    "着",
    "过",
    "请",
    "想",
    "想问",
    "问",
    "问下",
    "问一下",
    "谢谢",
    "你好",
    "是否",
    "其",
    "之",
    "为",
    "以",
    "等",
    "该",
    "时",
    "时候",
    "后",
    "前",
    "里",
    "上",
    "中",
    "吗?",
    "怎么办",
    "办法",
    // dialect and chat forms of the question words above
    "咋",
    "咋办",
    "咋整",
    "咋样",
    "啥子",
    "整啥",
    "么样",
];

/// Shared analyzer: cheap to clone (the dictionary sits behind an `Arc`).
#[derive(Clone)]
pub struct Analyzer {
    jieba: Arc<Jieba>,
    stopwords: Arc<FxHashSet<&'static str>>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new()
    }
}

impl Analyzer {
    /// Loads jieba's dictionary (once per process: clone the analyzer to share it).
    ///
    /// Synonym terms are deliberately not added to the dictionary: as whole tokens, long
    /// colloquial phrases (在外地看病, 回去报) become rare and weigh far too much. The synonym
    /// list reaches the index as concept tokens instead (`Expander::concepts`).
    pub fn new() -> Analyzer {
        let jieba = Arc::new(Jieba::new());
        // jieba reads its part-of-speech model (for the tags of words not in its dictionary,
        // which `away_from_home` reads) on first use, tens of milliseconds: read it now,
        // beside the rest of the start-up, rather than in the first question's time
        let warm = Arc::clone(&jieba);
        let _ = std::thread::Builder::new()
            .name("jieba-posseg".into())
            .spawn(move || drop(warm.tag(OUT_OF_DICTIONARY, true)));
        Analyzer {
            jieba,
            stopwords: Arc::new(STOPWORDS.iter().copied().collect()),
        }
    }

    pub fn is_stopword(&self, w: &str) -> bool {
        self.stopwords.contains(w)
    }

    /// Content words of `text` (normalised first), in search mode: long words also yield
    /// their dictionary sub-words (异地就医 → 异地, 就医, 异地就医).
    pub fn words(&self, text: &str) -> Vec<String> {
        self.words_normalized(&normalize(text))
    }

    /// As [`words`](Self::words) for text that is already normalised.
    pub fn words_normalized(&self, norm: &str) -> Vec<String> {
        let norm = strip_question_forms(norm);
        self.jieba
            .cut_for_search(&norm, true)
            .into_iter()
            .map(|t| t.word)
            .filter(|w| is_content(w) && !self.is_stopword(w))
            .map(str::to_string)
            .collect()
    }

    /// Character bigrams over the runs of content words (stopwords and punctuation break a
    /// run); a run of one character yields that character. Robust to words jieba splits
    /// differently, to colloquial compounds and to single mistyped characters.
    pub fn bigrams(&self, text: &str) -> Vec<String> {
        self.bigrams_normalized(&normalize(text))
    }

    /// True when normalised text places someone away from home: two different place names
    /// (张家港参保…在常州住院), or a move or stay at a place other than the home region
    /// (在青岛, 去北京, 回安徽). A place named alone ("重庆住院起付线") is not enough: that
    /// asks about the place's own insurance.
    pub fn away_from_home(&self, norm: &str) -> bool {
        let tags = self.jieba.tag(norm, true);
        let mut places: Vec<&str> = Vec::new();
        let mut prev = "";
        let mut moved = false;
        for t in &tags {
            let w = t.word;
            if w.trim().is_empty() {
                continue;
            }
            if t.tag == "ns" && w.chars().count() >= 2 && !GENERIC_PLACES.contains(&w) {
                if !places.contains(&w) {
                    places.push(w);
                }
                if MOVES.contains(&prev) && !HOME_PLACES.iter().any(|h| w.starts_with(h)) {
                    moved = true;
                }
            }
            prev = w;
        }
        moved || places.len() >= 2
    }

    pub fn bigrams_normalized(&self, norm: &str) -> Vec<String> {
        let norm = strip_question_forms(norm);
        let mut grams = Grams::default();
        self.bigrams_of_cut(
            self.jieba.cut(&norm, true).iter().map(|t| t.word),
            &mut grams,
        );
        grams.to_strings()
    }

    /// [`words_normalized`](Self::words_normalized) and
    /// [`bigrams_normalized`](Self::bigrams_normalized) of the same text from one jieba
    /// pass: search mode is the plain cut plus each long word's dictionary sub-words, so the
    /// plain cut that the bigrams need is read back out of it.
    pub fn words_and_bigrams(&self, norm: &str) -> (Vec<String>, Grams) {
        let norm = strip_question_forms(norm);
        let tokens = self.jieba.cut_for_search(&norm, true);
        // The plain cut's tokens tile the text; each long token comes after its sub-words,
        // which end inside it. Read backwards, a token is the plain cut's when it ends where
        // the next plain token starts.
        let mut plain = vec![false; tokens.len()];
        let mut cursor = usize::MAX;
        for (i, t) in tokens.iter().enumerate().rev() {
            if cursor == usize::MAX || t.end == cursor {
                plain[i] = true;
                cursor = t.start;
            }
        }
        let mut words = Vec::with_capacity(tokens.len());
        words.extend(
            tokens
                .iter()
                .map(|t| t.word)
                .filter(|w| is_content(w) && !self.is_stopword(w))
                .map(str::to_string),
        );
        let mut grams = Grams::default();
        self.bigrams_of_cut(
            tokens
                .iter()
                .zip(&plain)
                .filter(|(_, p)| **p)
                .map(|(t, _)| t.word),
            &mut grams,
        );
        (words, grams)
    }

    /// Character bigrams of runs of content words, from a plain cut, added to `out`.
    fn bigrams_of_cut<'a>(&self, cut: impl Iterator<Item = &'a str>, out: &mut Grams) {
        let mut run: Vec<char> = Vec::with_capacity(32);
        let flush = |run: &mut Vec<char>, out: &mut Grams| {
            if run.len() == 1 {
                out.push(&run[..1]);
            }
            for pair in run.windows(2) {
                out.push(pair);
            }
            run.clear();
        };
        for w in cut {
            if w.chars().all(is_cjk) && !self.is_stopword(w) {
                run.extend(w.chars());
            } else {
                flush(&mut run, out);
                if is_content(w) && !self.is_stopword(w) && !w.chars().any(is_cjk) {
                    out.push_str(w);
                }
            }
        }
        flush(&mut run, out);
    }
}

/// The bigrams of a text (and the single characters and non-CJK words among them), in order,
/// in one buffer: a search makes one allocation for them, not one per bigram.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Grams {
    text: String,
    ends: Vec<usize>,
}

impl Grams {
    fn push(&mut self, chars: &[char]) {
        self.text.extend(chars);
        self.ends.push(self.text.len());
    }

    fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Each gram, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

/// Characters that are not in jieba's dictionary: tagging them reads the part-of-speech model.
const OUT_OF_DICTIONARY: &str = "龘龘";

/// Words jieba tags as places that name no particular place.
const GENERIC_PLACES: &[&str] = &[
    "中国", "全国", "国家", "本地", "当地", "外地", "异地", "省内", "市区",
];

/// The insured's home region (yidi serves people insured in 苏州 and 张家港): being there is
/// not being away.
const HOME_PLACES: &[&str] = &["苏州", "张家港", "江苏"];

/// Words before a place that put someone there (在上海, 去北京, 回安徽).
const MOVES: &[&str] = &[
    "在", "去", "到", "回", "来", "住", "跑", "回到", "去了", "到了",
];

/// "A不A" question forms (能不能, 可不可以, 是不是…) ask yes or no and carry no topic; left in,
/// jieba cuts 能不能 into 能 + 不能 and 不能 then looks like "cannot" (不能报销).
const QUESTION_FORMS: &[&str] = &[
    "还能不能",
    "能不能",
    "可不可以",
    "是不是",
    "要不要",
    "会不会",
    "有没有",
    "用不用",
    "行不行",
    "需不需要",
    "需要不需要",
    "给不给",
    "算不算",
    "可以不可以",
];

fn strip_question_forms(norm: &str) -> String {
    // most texts hold none: one automaton pass says so (a `contains` per form would build
    // a substring searcher per form)
    static ANY_FORM: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
        std::sync::LazyLock::new(|| aho_corasick::AhoCorasick::new(QUESTION_FORMS).ok());
    if let Some(ac) = &*ANY_FORM
        && !ac.is_match(norm)
    {
        return norm.to_string();
    }
    let mut s = norm.to_string();
    for f in QUESTION_FORMS {
        if s.contains(f) {
            s = s.replace(f, " ");
        }
    }
    s
}

fn is_content(w: &str) -> bool {
    w.chars()
        .any(|c| is_unified_ideograph(c) || c.is_alphanumeric())
}

/// CJK Unified Ideographs' main block, all letters (Unicode 14 filled it): decided without
/// Unicode's tables, which `is_alphanumeric` searches for every Chinese character.
fn is_unified_ideograph(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF)
}

/// Which analysis a tantivy field uses.
#[derive(Clone, Copy)]
pub enum Mode {
    Words,
    Bigrams,
}

/// The analyzer as a tantivy tokenizer.
#[derive(Clone)]
pub struct AnalyzerTokenizer {
    pub analyzer: Analyzer,
    pub mode: Mode,
    /// In word mode, also emit the concept tokens of the synonym groups found.
    pub concepts: Option<std::sync::Arc<super::Expander>>,
}

impl Tokenizer for AnalyzerTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let words = match self.mode {
            Mode::Words => {
                let norm = normalize(text);
                let mut words = self.analyzer.words_normalized(&norm);
                if let Some(expander) = &self.concepts {
                    words.extend(expander.concepts(&norm));
                }
                words
            }
            Mode::Bigrams => self.analyzer.bigrams(text),
        };
        let tokens = words
            .into_iter()
            .enumerate()
            .map(|(i, w)| Token {
                offset_from: 0,
                offset_to: 0,
                position: i,
                text: w,
                position_length: 1,
            })
            .collect();
        VecTokenStream { tokens, next: 0 }
    }
}

pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyzer() -> Analyzer {
        Analyzer::new()
    }

    #[test]
    fn the_main_ideograph_block_is_all_letters() {
        // is_content's shortcut must agree with is_alphanumeric
        for c in (0x4E00..=0x9FFF).filter_map(char::from_u32) {
            assert!(is_unified_ideograph(c) && c.is_alphanumeric(), "{c}");
        }
    }

    #[test]
    fn the_warm_up_text_reaches_the_part_of_speech_model() {
        // jieba guesses a tag from its model only for words outside its dictionary: the
        // warm-up at start-up must tag such a word, or the model loads in a question's time
        let a = analyzer();
        let tags = a.jieba.tag(OUT_OF_DICTIONARY, true);
        assert!(!tags.is_empty());
        for t in &tags {
            assert!(!a.jieba.has_word(t.word), "{} is in the dictionary", t.word);
            assert!(t.word.chars().all(is_cjk), "{} is not CJK", t.word);
        }
    }

    #[test]
    fn words_drop_stopwords() {
        let a = analyzer();
        let w = a.words("我的医保电子凭证刷不了，零星报销怎么办？");
        for content in ["医保", "凭证", "零星", "报销"] {
            assert!(
                w.contains(&content.to_string()),
                "{content} missing from {w:?}"
            );
        }
        assert!(
            !w.iter().any(|x| x == "的" || x == "怎么办" || x == "我"),
            "{w:?}"
        );
    }

    #[test]
    fn search_mode_yields_sub_words() {
        let w = analyzer().words("异地就医备案");
        for sub in ["异地", "就医", "备案"] {
            assert!(w.contains(&sub.to_string()), "{sub} missing from {w:?}");
        }
    }

    #[test]
    fn traditional_input_is_tokenized_as_simplified() {
        let w = analyzer().words("醫保卡丟了");
        assert!(w.iter().any(|x| x.contains("医保")), "{w:?}");
    }

    #[test]
    fn bigrams_break_at_stopwords_and_keep_latin_words() {
        let b = analyzer().bigrams("yibao card 的社保卡");
        assert!(
            b.contains(&"yibao".to_string()) && b.contains(&"card".to_string()),
            "{b:?}"
        );
        assert!(
            b.contains(&"社保".to_string()) && b.contains(&"保卡".to_string()),
            "{b:?}"
        );
        assert!(!b.iter().any(|x| x.contains('的')), "{b:?}");
    }

    #[test]
    fn yes_no_question_forms_are_not_content() {
        let w = analyzer().words("费用能不能回去报，是不是要备案");
        assert!(
            !w.iter().any(|x| x == "不能" || x == "不是" || x == "能"),
            "{w:?}"
        );
        assert!(w.contains(&"备案".to_string()), "{w:?}");
    }

    #[test]
    fn one_pass_gives_the_words_and_bigrams_of_two() {
        let a = analyzer();
        let mut texts: Vec<String> = [
            "异地就医备案需要哪些材料",
            "中华人民共和国社会保障卡在外地医院刷不了怎么办",
            "wes-5.4.5 a-bc 医保电子凭证 yibao card",
            "能不能 回去报销，是不是要备案？",
            "",
            "   ",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["../shared/eval/real-dev.jsonl", "tests/data/holdout.jsonl"] {
            let text = std::fs::read_to_string(dir.join(file)).expect("evaluation set");
            texts.extend(text.lines().map(str::to_string));
        }
        for t in &texts {
            let norm = normalize(t);
            let (words, grams) = a.words_and_bigrams(&norm);
            assert_eq!(words, a.words_normalized(&norm), "{t}");
            assert_eq!(grams.to_strings(), a.bigrams_normalized(&norm), "{t}");
        }
    }

    #[test]
    fn empty_and_symbol_only_text_yield_nothing() {
        let a = analyzer();
        assert!(a.words("").is_empty());
        assert!(a.words("？？？！！😀").is_empty());
        assert!(a.bigrams("   ").is_empty());
    }
}

#[cfg(test)]
mod place_tests {
    use super::*;

    #[test]
    fn away_from_home_needs_a_move_or_two_places() {
        let a = Analyzer::new();
        for q in [
            "我妈在青岛跟我住社保卡丢了",
            "张家港参保的在常州住院",
            "去北京看病要备案吗",
        ] {
            assert!(a.away_from_home(&normalize(q)), "{q}");
        }
        for q in [
            "重庆市住院门槛费是多少",
            "在苏州住院怎么报销",
            "医保门诊报销上限",
        ] {
            assert!(!a.away_from_home(&normalize(q)), "{q}");
        }
    }
}
