//! The consensus view of a model: its architecture, the layout of its flat fixed-point
//! parameter vector, and its deterministic initial weights.
//!
//! Parameters are `i32` in fixed point with `frac_bits` fractional bits (value = q / 2^f).
//! The flat layout, shared by every crate, is:
//!
//! * softmax regression: `W` (features × classes, row-major), then `b` (classes);
//! * MLP with hidden layers `h1, …, hk`: `W1` (features × h1), `b1` (h1), `W2` (h1 × h2),
//!   `b2` (h2), …, `W(k+1)` (hk × classes), `b(k+1)` (classes).
//!
//! `hidden` is written `hidden = 32` (one layer, as genesis files have always had it) or
//! `hidden = [64, 32]`. A spec with one hidden layer, or none, encodes exactly as before
//! deeper networks existed, so older genesis files keep their chain ids.
//!
//! The optional [`InputTransform`] (`[model.input]`) is the one scaling from raw features
//! to model inputs that every node applies: feature names in column order, a centre and a
//! scale per feature, and the label value of each class. It is part of the chain id, so no
//! two nodes of one chain can feed the model differently; the node and `predict` apply it,
//! validators never do (it decides no consensus rule).
//!
//! Initial weights are drawn with integer arithmetic only (SplitMix64 seeded by the genesis
//! `init_seed`, Glorot-uniform limits computed with an integer square root), so every node
//! on every platform starts from the same model hash. Biases, and all softmax-regression
//! weights, start at zero.

use serde::{Deserialize, Serialize};

/// Which network the chain trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Multinomial logistic regression.
    Softmax,
    /// One or more hidden layers with ReLU, then softmax.
    Mlp,
}

/// Architecture, shape, initial seed and fixed-point scale of the global model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The network.
    pub architecture: Architecture,
    /// Input features.
    pub features: u32,
    /// Output classes.
    pub classes: u32,
    /// Units of each hidden layer, input side first (MLP only; empty for softmax).
    #[serde(default, with = "hidden_layers")]
    pub hidden: Vec<u32>,
    /// Seed of the deterministic initial weights.
    pub init_seed: u64,
    /// Fractional bits of the fixed-point parameters.
    pub frac_bits: u8,
    /// The agreed scaling of raw features and naming of classes (absent in chains created
    /// before it existed: their nodes standardize with their own statistics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputTransform>,
}

/// The transform from a raw example to model inputs, agreed by the whole network: input `i`
/// is `(x_i − centre_i) / scale_i`, where `x_i` is the column named `features[i]`, and class
/// `k` is the label value `classes[k]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputTransform {
    /// Name of each feature column, in the order the model reads them.
    pub features: Vec<String>,
    /// Subtracted from each raw feature.
    pub centre: Vec<crate::fixed::Decimal9>,
    /// Each centred feature is divided by it (positive).
    pub scale: Vec<crate::fixed::Decimal9>,
    /// The label value of each class, class 0 first.
    pub classes: Vec<String>,
}

/// Longest feature or class name of an input transform, in bytes.
pub const MAX_TRANSFORM_NAME_BYTES: usize = 256;

impl InputTransform {
    /// Checks the transform against a model of `features` inputs and `classes` classes:
    /// one name, centre and scale per feature, one label per class, names non-empty, short
    /// and distinct, scales positive. The error names the field and what is wrong.
    pub fn check(&self, features: u32, classes: u32) -> Result<(), (&'static str, String)> {
        let f = features as usize;
        for (field, len) in [("features", self.features.len()), ("centre", self.centre.len()), ("scale", self.scale.len())] {
            if len != f {
                return Err((field, format!("has {len} entries but the model has {f} features")));
            }
        }
        if self.classes.len() != classes as usize {
            return Err(("classes", format!("has {} entries but the model has {classes} classes", self.classes.len())));
        }
        for (field, names) in [("features", &self.features), ("classes", &self.classes)] {
            let mut seen = std::collections::HashSet::new();
            for name in names {
                if name.is_empty() || name.len() > MAX_TRANSFORM_NAME_BYTES {
                    return Err((field, format!("names must be 1 to {MAX_TRANSFORM_NAME_BYTES} bytes, {name:?} is not")));
                }
                if !seen.insert(name.as_str()) {
                    return Err((field, format!("{name:?} appears twice")));
                }
            }
        }
        if let Some(i) = self.scale.iter().position(|s| s.0 <= 0) {
            return Err(("scale", format!("scale of feature {:?} is {}, but must be positive", self.features[i], self.scale[i])));
        }
        Ok(())
    }
}

/// `hidden` in a human-readable format is an integer (no layer, or one) or a list of layer
/// widths; in the canonical encoding, no layer or one is a `u32` (0 for none) as it was
/// before deeper networks, and more are a sequence. No decoder reads a genesis from the
/// canonical encoding (it is only hashed for the chain id), so the two shapes never meet a
/// non-self-describing reader.
mod hidden_layers {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub(super) fn serialize<S: Serializer>(layers: &[u32], s: S) -> Result<S::Ok, S::Error> {
        match layers {
            [] => s.serialize_u32(0),
            [one] => s.serialize_u32(*one),
            many => {
                let mut seq = s.serialize_seq(Some(many.len()))?;
                for layer in many {
                    seq.serialize_element(layer)?;
                }
                seq.end()
            }
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Hidden {
            One(u32),
            Layers(Vec<u32>),
        }
        Ok(match Hidden::deserialize(d)? {
            Hidden::One(0) => Vec::new(),
            Hidden::One(h) => vec![h],
            Hidden::Layers(layers) => layers,
        })
    }
}

/// Where one tensor lives in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorSlot {
    /// First index.
    pub offset: usize,
    /// Rows (1 for a bias).
    pub rows: usize,
    /// Columns.
    pub cols: usize,
}

impl TensorSlot {
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index range in the flat vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

impl ModelSpec {
    /// The width of every layer, input first and classes last: `[features, classes]` for
    /// softmax regression, `[features, h1, …, hk, classes]` for an MLP.
    pub fn widths(&self) -> Vec<u32> {
        let mut widths = vec![self.features];
        if self.architecture == Architecture::Mlp {
            widths.extend_from_slice(&self.hidden);
        }
        widths.push(self.classes);
        widths
    }

    /// Dense layers, input side first.
    pub fn layers(&self) -> usize {
        self.widths().len() - 1
    }

    /// The tensors in flat order: `[W1, b1, …, Wn, bn]` (`[W, b]` for softmax regression).
    pub fn layout(&self) -> Vec<TensorSlot> {
        let widths = self.widths();
        let mut offset = 0;
        let mut slots = Vec::with_capacity(2 * widths.len());
        for pair in widths.windows(2) {
            let (fan_in, fan_out) = (pair[0] as usize, pair[1] as usize);
            for rows in [fan_in, 1] {
                slots.push(TensorSlot { offset, rows, cols: fan_out });
                offset += rows * fan_out;
            }
        }
        slots
    }

    /// Total number of parameters (saturating, so absurd shapes are caught by validation).
    pub fn param_count(&self) -> u64 {
        self.widths().windows(2).fold(0u64, |total, pair| {
            let (fan_in, fan_out) = (u64::from(pair[0]), u64::from(pair[1]));
            total.saturating_add(fan_in.saturating_add(1).saturating_mul(fan_out))
        })
    }

    /// A short description for people: `softmax`, `mlp[32]`, `mlp[64,32]`.
    pub fn describe(&self) -> String {
        match self.architecture {
            Architecture::Softmax => "softmax".to_owned(),
            Architecture::Mlp => {
                let layers: Vec<String> = self.hidden.iter().map(u32::to_string).collect();
                format!("mlp[{}]", layers.join(","))
            }
        }
    }

    /// The fixed-point scale, 2^frac_bits.
    pub fn scale(&self) -> f64 {
        (1u64 << self.frac_bits) as f64
    }

    /// The deterministic initial weights. Call only on a validated spec.
    pub fn initial_weights(&self) -> Vec<i32> {
        let mut w = vec![0i32; usize::try_from(self.param_count()).unwrap_or(0)];
        if self.architecture == Architecture::Softmax {
            return w;
        }
        let mut rng = SplitMix64(self.init_seed);
        let one = 1u128 << self.frac_bits;
        for (i, slot) in self.layout().into_iter().enumerate() {
            if i % 2 == 1 {
                continue; // biases stay zero
            }
            // Glorot uniform: limit = sqrt(6 / (fan_in + fan_out)), in fixed point
            // limit_q = isqrt(6 · 2^(2f) / (fan_in + fan_out)).
            let fans = (slot.rows + slot.cols) as u128;
            let limit = isqrt(6 * one * one / fans.max(1)) as u64;
            let span = 2 * limit + 1;
            for x in &mut w[slot.range()] {
                let r = ((u128::from(rng.next()) * u128::from(span)) >> 64) as i64;
                *x = (r - limit as i64) as i32;
            }
        }
        w
    }
}

/// SplitMix64, a tiny generator with a fixed, documented output sequence.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Integer square root (floor).
pub fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128; // a starting guess only; corrected below
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlp() -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Mlp,
            features: 30,
            classes: 2,
            hidden: vec![16],
            init_seed: 7,
            frac_bits: 16,
            input: None,
        }
    }

    #[test]
    fn layout_covers_all_params() {
        let s = mlp();
        let layout = s.layout();
        assert_eq!(layout.len(), 4);
        let end = layout.last().map(|l| l.offset + l.len()).unwrap_or(0);
        assert_eq!(end as u64, s.param_count());
        assert_eq!(s.param_count(), 30 * 16 + 16 + 16 * 2 + 2);
    }

    #[test]
    fn init_is_deterministic_and_bounded() {
        let s = mlp();
        let a = s.initial_weights();
        assert_eq!(a, s.initial_weights());
        let limit = ((6.0f64 / 46.0).sqrt() * 65536.0) as i32 + 1;
        assert!(a[..480].iter().all(|v| v.abs() <= limit));
        assert!(a[..480].iter().any(|v| *v != 0));
        assert!(a[480..496].iter().all(|v| *v == 0));
        let mut other = s.clone();
        other.init_seed = 8;
        assert_ne!(a, other.initial_weights());
    }

    #[test]
    fn isqrt_exact() {
        for n in 0u128..2000 {
            let r = isqrt(n);
            assert!(r * r <= n && (r + 1) * (r + 1) > n);
        }
        assert_eq!(isqrt(u64::MAX as u128 * 4), 8589934591);
    }

    #[test]
    fn deep_layout_and_init() {
        let mut s = mlp();
        s.hidden = vec![16, 8];
        let layout = s.layout();
        assert_eq!(layout.len(), 6);
        assert_eq!(s.param_count(), 30 * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2);
        assert_eq!(layout.last().map(|l| l.offset + l.len()), Some(s.param_count() as usize));
        assert_eq!((layout[2].rows, layout[2].cols), (16, 8));
        let w = s.initial_weights();
        // The first layer draws exactly what the one-layer MLP of the same seed draws.
        assert_eq!(w[..480], mlp().initial_weights()[..480]);
        assert!(w[layout[2].range()].iter().any(|v| *v != 0));
        assert!(w[layout[3].range()].iter().all(|v| *v == 0));
        assert_eq!(s.describe(), "mlp[16,8]");
    }

    #[test]
    fn one_hidden_layer_encodes_as_before() {
        // The canonical encoding of a one-layer spec is the pre-deep-network one: hidden
        // as a plain u32, no trailing input transform.
        #[derive(serde::Serialize)]
        struct Old {
            architecture: Architecture,
            features: u32,
            classes: u32,
            hidden: u32,
            init_seed: u64,
            frac_bits: u8,
        }
        let old = Old { architecture: Architecture::Mlp, features: 30, classes: 2, hidden: 16, init_seed: 7, frac_bits: 16 };
        assert_eq!(crate::encoding::encode(&mlp()), crate::encoding::encode(&old));
        let toml_one: ModelSpec = toml::from_str("architecture = \"mlp\"\nfeatures = 30\nclasses = 2\nhidden = 16\ninit_seed = 7\nfrac_bits = 16\n").expect("parses");
        assert_eq!(toml_one, mlp());
        let toml_list: ModelSpec = toml::from_str("architecture = \"mlp\"\nfeatures = 30\nclasses = 2\nhidden = [64, 32]\ninit_seed = 7\nfrac_bits = 16\n").expect("parses");
        assert_eq!(toml_list.hidden, vec![64, 32]);
        let back: ModelSpec = toml::from_str(&toml::to_string(&toml_list).expect("writes")).expect("parses");
        assert_eq!(back, toml_list);
    }
}
