//! A linear text classifier trained at index build from the knowledge's own phrasings: each
//! FAQ entry and each out-of-scope topic is a class, its question, variants (entries) or
//! examples (topics) are the training texts.
//!
//! Features are what the analyzer makes of a text (jieba words in search mode, synonym
//! concept tokens, character bigrams), weighted by inverse document frequency over the
//! training texts and L2-normalised. The model is multinomial logistic regression trained by
//! stochastic gradient descent in a fixed pseudo-random order, so the same knowledge always
//! gives the same model. Unlike word overlap, it learns which words tell classes apart: 生育
//! appears in the maternity entry and in the maternity-allowance topic, 异地 only in entries.

use rustc_hash::FxHashMap;

/// Training parameters.
#[derive(Debug, Clone, Copy)]
pub struct TrainParams {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 weight decay per epoch (applied as `w *= 1 - learning_rate * l2`).
    pub l2: f32,
    /// At prediction, features unknown to the model count in the norm of a text.
    pub unknown_in_norm: bool,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            epochs: 15,
            learning_rate: 1.0,
            l2: 0.002,
            unknown_in_norm: true,
        }
    }
}

/// One training text: its features, its class and how much it counts.
pub struct Example {
    pub features: Vec<String>,
    pub class: usize,
    pub weight: f32,
}

/// A trained model.
pub struct Classifier {
    vocab: FxHashMap<String, u32>,
    idf: Vec<f32>,
    classes: usize,
    /// Feature-major: the weights of feature `f` are `weights[f * classes..][..classes]`.
    /// Trained in `f32`, kept at half precision: the weights are most of a shard's memory
    /// (issue 24: 158 of 327 MB over 150 shards), and a weight's relative error of 2⁻¹¹
    /// moves a logit by thousandths, far below the margins the search decides on
    /// (every evaluation file answers with the same entries either way).
    weights: Vec<half::f16>,
    bias: Vec<f32>,
    idf_max: f32,
    /// Whether unknown features count in a text's norm (see `vectorize`).
    pub unknown_in_norm: bool,
}

type Sparse = Vec<(u32, f32)>;

impl Classifier {
    /// Trains a model over `classes` classes.
    pub fn train(examples: &[Example], classes: usize, params: TrainParams) -> Classifier {
        let mut vocab: FxHashMap<String, u32> = FxHashMap::default();
        let mut df: Vec<f32> = Vec::new();
        for ex in examples {
            let mut seen = std::collections::HashSet::new();
            for f in &ex.features {
                if !seen.insert(f.as_str()) {
                    continue;
                }
                let next = vocab.len() as u32;
                let id = *vocab.entry(f.clone()).or_insert(next);
                if id as usize == df.len() {
                    df.push(0.0);
                }
                df[id as usize] += 1.0;
            }
        }
        let n = examples.len() as f32;
        let idf: Vec<f32> = df
            .iter()
            .map(|d| ((n + 1.0) / (d + 1.0)).ln() + 1.0)
            .collect();
        let mut model = Classifier {
            vocab,
            idf,
            classes,
            weights: Vec::new(),
            bias: vec![0.0; classes],
            idf_max: ((n + 1.0) / 1.0).ln() + 1.0,
            unknown_in_norm: false,
        };
        let data: Vec<(Sparse, usize, f32)> = examples
            .iter()
            .map(|ex| (model.vectorize(&ex.features), ex.class, ex.weight))
            .collect();
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut probs = vec![0.0f32; classes];
        let mut weights = vec![0.0f32; df.len() * classes];
        for epoch in 0..params.epochs {
            // Fisher-Yates with a fixed xorshift generator: deterministic
            for i in (1..order.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            let lr = params.learning_rate / (1.0 + epoch as f32 * 0.2);
            for &i in &order {
                let (x, y, w) = &data[i];
                logits_into(&weights, &model.bias, x, &mut probs);
                softmax(&mut probs);
                probs[*y] -= 1.0;
                let step = lr * w;
                for (c, g) in probs.iter().enumerate() {
                    model.bias[c] -= step * g;
                }
                for &(f, v) in x {
                    let row = &mut weights[f as usize * classes..][..classes];
                    for (wc, g) in row.iter_mut().zip(&probs) {
                        *wc -= step * g * v;
                    }
                }
            }
            let decay = 1.0 - lr * params.l2;
            for wc in &mut weights {
                *wc *= decay;
            }
        }
        use half::slice::HalfFloatSliceExt;
        model.weights = vec![half::f16::ZERO; weights.len()];
        model.weights.convert_from_f32_slice(&weights);
        model.unknown_in_norm = params.unknown_in_norm;
        model
    }

    /// Class probabilities for a text's features (uniform when no feature is known).
    pub fn predict(&self, features: &[String]) -> Vec<f32> {
        let x = self.vectorize(features);
        let mut out = vec![0.0; self.classes];
        self.logits_into(&x, &mut out);
        softmax(&mut out);
        out
    }

    /// The id of a feature the model knows.
    pub fn feature_id(&self, feature: &str) -> Option<u32> {
        self.vocab.get(feature).copied()
    }

    /// Every known feature and its id.
    pub fn features(&self) -> impl Iterator<Item = (&str, u32)> {
        self.vocab.iter().map(|(f, &id)| (f.as_str(), id))
    }

    /// As [`predict`](Self::predict), from the ids of a text's known features (repeats
    /// allowed) and the number of its distinct unknown features: the same numbers without
    /// looking features up.
    pub fn predict_ids(&self, known: &[u32], unknown: usize) -> Vec<f32> {
        let x = self.vectorize_ids(
            known
                .iter()
                .map(|&id| (id, self.idf[id as usize]))
                .collect(),
            unknown,
        );
        let mut out = vec![0.0; self.classes];
        self.logits_into(&x, &mut out);
        softmax(&mut out);
        out
    }

    /// Approximate heap bytes held: (weights, everything else).
    pub fn heap_bytes(&self) -> (usize, usize) {
        let vocab = self.vocab.capacity() * (std::mem::size_of::<(String, u32)>() + 1)
            + self.vocab.keys().map(String::capacity).sum::<usize>();
        (
            self.weights.capacity() * std::mem::size_of::<half::f16>(),
            vocab + (self.idf.capacity() + self.bias.capacity()) * 4,
        )
    }

    /// Drops the feature names: [`predict_ids`](Self::predict_ids) keeps working, the
    /// look-ups by name ([`predict`](Self::predict), [`feature_id`](Self::feature_id),
    /// [`features`](Self::features), [`known`](Self::known)) then know no feature.
    pub fn forget_vocab(&mut self) {
        self.vocab = FxHashMap::default();
    }

    /// How many of `features` the model knows (0 means the prediction is only the prior).
    pub fn known(&self, features: &[String]) -> usize {
        features
            .iter()
            .filter(|f| self.vocab.contains_key(*f))
            .count()
    }

    /// The text as a sparse vector of known features, L2-normalised over all its features:
    /// words the model never saw count in the norm (at the highest idf), so a text made mostly
    /// of unknown words gets a short vector and an unsure prediction, not a confident one
    /// from its single known word.
    fn vectorize(&self, features: &[String]) -> Sparse {
        let mut x: Sparse = Vec::with_capacity(features.len());
        let mut unknown: Vec<&str> = Vec::new();
        for f in features {
            match self.vocab.get(f) {
                Some(&id) => x.push((id, self.idf[id as usize])),
                None => unknown.push(f),
            }
        }
        unknown.sort_unstable();
        unknown.dedup();
        self.vectorize_ids(x, unknown.len())
    }

    /// The vector of known features `(id, idf)` (repeats allowed), normalised over them and
    /// `unknown` distinct unknown features.
    fn vectorize_ids(&self, mut x: Sparse, unknown: usize) -> Sparse {
        x.sort_unstable_by_key(|&(id, _)| id);
        x.dedup_by_key(|&mut (id, _)| id);
        let unknown_weight = if self.unknown_in_norm {
            unknown as f32 * self.idf_max * self.idf_max
        } else {
            0.0
        };
        let norm = (x.iter().map(|(_, v)| v * v).sum::<f32>() + unknown_weight).sqrt();
        if norm > 0.0 {
            for (_, v) in &mut x {
                *v /= norm;
            }
        }
        x
    }

    fn logits_into(&self, x: &Sparse, out: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        out.copy_from_slice(&self.bias);
        let mut row = vec![0.0f32; self.classes];
        for &(f, v) in x {
            self.weights[f as usize * self.classes..][..self.classes]
                .convert_to_f32_slice(&mut row);
            for (o, w) in out.iter_mut().zip(&row) {
                *o += w * v;
            }
        }
    }
}

/// The logits of `x` under full-precision `weights` (feature-major) and `bias` (training).
fn logits_into(weights: &[f32], bias: &[f32], x: &Sparse, out: &mut [f32]) {
    let classes = bias.len();
    out.copy_from_slice(bias);
    for &(f, v) in x {
        let row = &weights[f as usize * classes..][..classes];
        for (o, w) in out.iter_mut().zip(row) {
            *o += w * v;
        }
    }
}

fn softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(words: &[&str], class: usize) -> Example {
        Example {
            features: words.iter().map(|w| w.to_string()).collect(),
            class,
            weight: 1.0,
        }
    }

    #[test]
    fn learns_which_words_tell_classes_apart() {
        let data = vec![
            ex(&["异地", "生育", "结算"], 0),
            ex(&["外地", "生孩子", "刷卡"], 0),
            ex(&["生育", "津贴", "多少"], 1),
            ex(&["生育", "津贴", "领取"], 1),
        ];
        let m = Classifier::train(&data, 2, TrainParams::default());
        let p = m.predict(&["异地".into(), "生育".into()]);
        assert!(p[0] > 0.6, "{p:?}");
        let p = m.predict(&["津贴".into(), "生育".into()]);
        assert!(p[1] > 0.6, "{p:?}");
        let p = m.predict(&["天气".into()]);
        assert_eq!(m.known(&["天气".into()]), 0);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }

    #[test]
    fn training_is_deterministic() {
        let data = vec![ex(&["a", "b"], 0), ex(&["b", "c"], 1), ex(&["c", "d"], 2)];
        let a = Classifier::train(&data, 3, TrainParams::default());
        let b = Classifier::train(&data, 3, TrainParams::default());
        assert_eq!(a.weights, b.weights);
    }
}
