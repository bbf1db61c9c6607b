//! The model file: a trained global model as a safetensors file that leaves the chain, and
//! reading one back for `predict`.
//!
//! [`to_safetensors`] turns the fixed-point global model at one block into a file with one
//! float32 tensor per layer weight and bias, named `layers.{i}.weight` (shape
//! `[inputs, outputs]`: the layer computes `x @ weight + bias`) and `layers.{i}.bias`
//! (shape `[outputs]`), input layer first; hidden layers use ReLU and the last ends in a
//! softmax. The safetensors `__metadata__` (strings only, as the format requires) holds:
//!
//! | key | value |
//! |---|---|
//! | `format` | `learnchain-model/1` |
//! | `chain_id`, `block_hash`, `model_hash` | 64 hex digits |
//! | `height` | the block height, decimal |
//! | `architecture` | `softmax` or `mlp` |
//! | `hidden` | JSON list of hidden-layer widths |
//! | `frac_bits` | the fixed-point fraction bits of the on-chain model |
//! | `features`, `classes` | JSON lists: feature column names, class labels (`null` without an agreed transform) |
//! | `input_transform` | JSON `{"centre": […], "scale": […]}` (input = (x − centre) / scale), or `null` |
//! | `forward` | the forward pass in words |
//! | `content_sha256` | SHA-256 over every other metadata entry and every tensor (below) |
//!
//! `content_sha256` hashes, in order: each other metadata entry sorted by key, as
//! `u64-le(len(key)) key u64-le(len(value)) value`; then each tensor in layer order
//! (weight, bias, …) as `u64-le(len(name)) name u64-le(len(data)) data`. It detects a file
//! altered or damaged after export (not a forger, who can recompute it); `model_hash`
//! ties the tensors to the chain: when every weight is exact in float32 (|q| < 2^24, true of
//! any trained model at the usual 16 fraction bits with weights below 256), reading the
//! file recomputes the fixed-point weights and checks them against it.
//!
//! The file is written here, not by `safetensors::serialize`: that function orders the
//! metadata by `HashMap` iteration, so two exports of one model would differ in bytes,
//! and the node serves the same bytes over HTTP as `model export` writes. The layout is the
//! format's own (8-byte little-endian header length, JSON header padded with spaces to a
//! multiple of 8, then the tensor data) and every file is read back through the
//! `safetensors` crate, which checks it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use learnchain_proto::hash::model_hash;
use learnchain_proto::model::{Architecture, InputTransform, ModelSpec, TensorSlot};
use learnchain_proto::{Decimal9, Hash32};
use safetensors::{Dtype, SafeTensors};
use serde_json::json;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::network::Network;

/// The `format` metadata value of a learnchain model file.
pub const FORMAT: &str = "learnchain-model/1";
/// Largest model file read: 4 M parameters of float32 plus a header of names.
pub const MAX_MODEL_FILE_BYTES: u64 = 128 << 20;

/// Which block a model file's weights come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The chain id (hash of its genesis).
    pub chain_id: Hash32,
    /// Height of the block.
    pub height: u64,
    /// Hash of the block.
    pub block_hash: Hash32,
    /// Hash of the fixed-point model after the block (the header's `model_hash`).
    pub model_hash: Hash32,
}

/// A model file read back.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// The model's spec (`init_seed` is not exported and reads as 0).
    pub spec: ModelSpec,
    /// The network with the file's weights.
    pub network: Network,
    /// Where the weights come from.
    pub provenance: Provenance,
    /// Whether the fixed-point weights recomputed from the tensors hash to
    /// `provenance.model_hash` (`false`: some weight is not exact in float32, so the check
    /// could not be made).
    pub hash_verified: bool,
}

/// Why a model file could not be written or read.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The weights do not fit the spec.
    #[error("the model has {found} weights but its spec needs {expected}")]
    WeightCount {
        /// Parameters of the spec.
        expected: usize,
        /// Weights given.
        found: usize,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is larger than any model file.
    #[error("{path} has {size} bytes, more than a model file can have ({MAX_MODEL_FILE_BYTES})")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The bytes are not a readable safetensors file.
    #[error("not a valid safetensors file (truncated or damaged?): {0}")]
    NotSafetensors(String),
    /// A safetensors file, but not one `learnchain model export` wrote.
    #[error("not a learnchain model file: {0}")]
    NotLearnchain(String),
    /// The learnchain metadata or tensors are inconsistent.
    #[error("the model file is malformed: {0}")]
    Malformed(String),
    /// The content digest does not match: the file changed after export.
    #[error(
        "the model file was altered or damaged after export: its content does not match its content_sha256 \
         (export it again from a node)"
    )]
    Altered,
    /// The weights recomputed from the tensors do not hash to the file's model hash.
    #[error("the model file's weights do not match its model_hash {0}: the file is not the model of that block")]
    ModelHashMismatch(String),
}

/// The model file of `weights` (fixed point, in `spec`'s layout) at the block `provenance`
/// names.
pub fn to_safetensors(spec: &ModelSpec, weights: &[i32], provenance: &Provenance) -> Result<Vec<u8>, ExportError> {
    let expected = usize::try_from(spec.param_count()).unwrap_or(usize::MAX);
    if weights.len() != expected {
        return Err(ExportError::WeightCount { expected, found: weights.len() });
    }
    let scale = spec.scale();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = spec
        .layout()
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let (name, shape) = tensor_name_and_shape(i, slot);
            let data = weights[slot.range()]
                .iter()
                .flat_map(|&q| ((f64::from(q) / scale) as f32).to_le_bytes())
                .collect();
            (name, shape, data)
        })
        .collect();
    let mut metadata = metadata_of(spec, provenance);
    let digest = content_digest(&metadata, tensors.iter().map(|(n, _, d)| (n.as_str(), d.as_slice())));
    metadata.insert("content_sha256".into(), digest);

    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!(metadata));
    let mut offset = 0usize;
    for (name, shape, data) in &tensors {
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + data.len()]}),
        );
        offset += data.len();
    }
    let mut header = serde_json::to_vec(&header).map_err(|e| ExportError::Malformed(e.to_string()))?;
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, _, data) in &tensors {
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// The file's name and shape of tensor `index` of the layout (`slot`): the weight
/// `layers.{i}.weight` `[inputs, outputs]` or the bias `layers.{i}.bias` `[outputs]` of
/// layer `i`.
fn tensor_name_and_shape(index: usize, slot: &TensorSlot) -> (String, Vec<usize>) {
    if index.is_multiple_of(2) {
        (format!("layers.{}.weight", index / 2), vec![slot.rows, slot.cols])
    } else {
        (format!("layers.{}.bias", index / 2), vec![slot.cols])
    }
}

/// Every metadata entry but the digest.
fn metadata_of(spec: &ModelSpec, p: &Provenance) -> BTreeMap<String, String> {
    let architecture = match spec.architecture {
        Architecture::Softmax => "softmax",
        Architecture::Mlp => "mlp",
    };
    let input = spec.input.as_ref();
    let transform = input.map(|t| {
        let floats = |v: &[Decimal9]| v.iter().map(|d| d.to_f64()).collect::<Vec<f64>>();
        json!({"centre": floats(&t.centre), "scale": floats(&t.scale)})
    });
    let mut m = BTreeMap::new();
    m.insert("format".into(), FORMAT.into());
    m.insert("chain_id".into(), p.chain_id.to_hex());
    m.insert("height".into(), p.height.to_string());
    m.insert("block_hash".into(), p.block_hash.to_hex());
    m.insert("model_hash".into(), p.model_hash.to_hex());
    m.insert("architecture".into(), architecture.into());
    m.insert("hidden".into(), json!(spec.hidden).to_string());
    m.insert("frac_bits".into(), spec.frac_bits.to_string());
    m.insert("features".into(), json!(input.map(|t| &t.features)).to_string());
    m.insert("classes".into(), json!(input.map(|t| &t.classes)).to_string());
    m.insert("input_transform".into(), json!(transform).to_string());
    m.insert(
        "forward".into(),
        "x = (raw - centre) / scale; for each layer i: x = x @ layers.i.weight + layers.i.bias, then relu \
         except after the last; probabilities = softmax(x)"
            .into(),
    );
    m
}

/// `content_sha256` of the metadata `m` (without the digest) and the tensors in order.
fn content_digest<'a>(m: &BTreeMap<String, String>, tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    let mut item = |a: &[u8], b: &[u8]| {
        h.update((a.len() as u64).to_le_bytes());
        h.update(a);
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "content_sha256") {
        item(k.as_bytes(), v.as_bytes());
    }
    for (name, data) in tensors {
        item(name.as_bytes(), data);
    }
    hex::encode(h.finalize())
}

/// Reads the model file at `path` (refusing one over [`MAX_MODEL_FILE_BYTES`] before
/// reading it).
pub fn read_model_file(path: impl AsRef<Path>) -> Result<ModelFile, ExportError> {
    let path = path.as_ref();
    let io = |source| ExportError::Io { path: path.display().to_string(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_MODEL_FILE_BYTES {
        return Err(ExportError::TooLarge { path: path.display().to_string(), size });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_MODEL_FILE_BYTES).read_to_end(&mut bytes).map_err(io)?;
    from_safetensors(&bytes)
}

/// Reads a model file from its bytes: the safetensors structure (through the crate), the
/// learnchain metadata, the tensors' names, types and shapes, the content digest and, where
/// the weights allow, the model hash.
pub fn from_safetensors(bytes: &[u8]) -> Result<ModelFile, ExportError> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| ExportError::NotSafetensors(e.to_string()))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| ExportError::NotSafetensors(e.to_string()))?;
    let meta: BTreeMap<String, String> = header
        .metadata()
        .as_ref()
        .ok_or_else(|| ExportError::NotLearnchain("the file has no metadata".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match meta.get("format") {
        Some(f) if f == FORMAT => {}
        Some(f) => return Err(ExportError::NotLearnchain(format!("its format is {f:?}, this node reads {FORMAT:?}"))),
        None => return Err(ExportError::NotLearnchain("its metadata has no `format` entry".into())),
    }
    let get = |key: &str| meta.get(key).ok_or_else(|| ExportError::Malformed(format!("the metadata lacks `{key}`")));
    let parse_json = |key: &str| -> Result<serde_json::Value, ExportError> {
        serde_json::from_str(get(key)?).map_err(|e| ExportError::Malformed(format!("metadata `{key}` is not JSON: {e}")))
    };
    let hash = |key: &str| {
        Hash32::from_hex(get(key)?).map_err(|e| ExportError::Malformed(format!("metadata `{key}`: {e}")))
    };
    let bad = |key: &str, why: &str| ExportError::Malformed(format!("metadata `{key}` {why}"));

    let architecture = match get("architecture")?.as_str() {
        "softmax" => Architecture::Softmax,
        "mlp" => Architecture::Mlp,
        other => return Err(bad("architecture", &format!("is {other:?}, not softmax or mlp"))),
    };
    let hidden: Vec<u32> = serde_json::from_value(parse_json("hidden")?).map_err(|_| bad("hidden", "is not a list of widths"))?;
    let frac_bits: u8 = get("frac_bits")?.parse().map_err(|_| bad("frac_bits", "is not a number"))?;
    if !(1..=30).contains(&frac_bits) {
        return Err(bad("frac_bits", "is out of range"));
    }
    let provenance = Provenance {
        chain_id: hash("chain_id")?,
        height: get("height")?.parse().map_err(|_| bad("height", "is not a number"))?,
        block_hash: hash("block_hash")?,
        model_hash: hash("model_hash")?,
    };
    let features: Option<Vec<String>> =
        serde_json::from_value(parse_json("features")?).map_err(|_| bad("features", "is not a list of names"))?;
    let classes: Option<Vec<String>> =
        serde_json::from_value(parse_json("classes")?).map_err(|_| bad("classes", "is not a list of labels"))?;
    let transform: Option<BTreeMap<String, Vec<f64>>> = serde_json::from_value(parse_json("input_transform")?)
        .map_err(|_| bad("input_transform", "is not {\"centre\": [...], \"scale\": [...]}"))?;

    // The first weight's rows are the features, the last weight's columns the classes.
    let shape_of = |name: &str| {
        tensors
            .tensor(name)
            .map_err(|_| ExportError::Malformed(format!("the file has no tensor `{name}`")))
    };
    let layers = hidden.len() + 1;
    let first = shape_of("layers.0.weight")?;
    let last = shape_of(&format!("layers.{}.weight", layers - 1))?;
    let (Some(&f), Some(&c)) = (first.shape().first(), last.shape().get(1)) else {
        return Err(ExportError::Malformed("a weight tensor is not a matrix".into()));
    };
    let mut spec = ModelSpec {
        architecture,
        features: u32::try_from(f).map_err(|_| bad("features", "is too many"))?,
        classes: u32::try_from(c).map_err(|_| bad("classes", "is too many"))?,
        hidden,
        init_seed: 0,
        frac_bits,
        input: None,
    };
    crate::network::check_spec(&spec).map_err(|e| ExportError::Malformed(e.to_string()))?;
    spec.input = match (features, classes, transform) {
        (Some(features), Some(classes), Some(t)) => {
            let decimals = |key: &str| -> Result<Vec<Decimal9>, ExportError> {
                t.get(key)
                    .ok_or_else(|| bad("input_transform", &format!("lacks `{key}`")))?
                    .iter()
                    .map(|&v| Decimal9::from_f64(v).map_err(|e| bad("input_transform", &e)))
                    .collect()
            };
            let input = InputTransform { features, classes, centre: decimals("centre")?, scale: decimals("scale")? };
            input.check(spec.features, spec.classes).map_err(|(field, why)| bad(field, &why))?;
            Some(input)
        }
        (None, None, None) => None,
        _ => return Err(bad("input_transform", "is given without feature names and class labels, or they without it")),
    };

    let mut names = Vec::with_capacity(2 * layers);
    let mut params = Vec::with_capacity(usize::try_from(spec.param_count()).unwrap_or(0));
    for (i, slot) in spec.layout().iter().enumerate() {
        let (name, shape) = tensor_name_and_shape(i, slot);
        let view = shape_of(&name)?;
        if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
            return Err(ExportError::Malformed(format!(
                "tensor `{name}` is {:?} {:?}, the architecture needs F32 {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        params.extend(view.data().chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))));
        names.push(name);
    }
    if tensors.len() != names.len() {
        return Err(ExportError::Malformed(format!(
            "the file has {} tensors, the architecture {}",
            tensors.len(),
            names.len()
        )));
    }
    let data: Vec<(&str, &[u8])> =
        names.iter().map(|n| (n.as_str(), tensors.tensor(n).map(|v| v.data()).unwrap_or_default())).collect();
    if content_digest(&meta, data.into_iter()) != *get("content_sha256")? {
        return Err(ExportError::Altered);
    }
    let hash_verified = match fixed_point(&params, spec.scale()) {
        Some(q) if model_hash(&q) == provenance.model_hash => true,
        Some(_) => return Err(ExportError::ModelHashMismatch(provenance.model_hash.to_hex())),
        None => false,
    };
    let network = Network::new(&spec, params).map_err(|e| ExportError::Malformed(e.to_string()))?;
    Ok(ModelFile { spec, network, provenance, hash_verified })
}

/// The fixed-point weights the float32 values came from, if every one is exact (an integer
/// multiple of 2^-frac_bits within `±2^24` steps, where float32 holds it exactly).
fn fixed_point(params: &[f64], scale: f64) -> Option<Vec<i32>> {
    const EXACT: f64 = (1u32 << 24) as f64;
    params
        .iter()
        .map(|&v| {
            let q = v * scale;
            (q.fract() == 0.0 && q.abs() < EXACT).then_some(q as i32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Mlp,
            features: 3,
            classes: 2,
            hidden: vec![4, 3],
            init_seed: 5,
            frac_bits: 16,
            input: Some(InputTransform {
                features: vec!["a".into(), "b".into(), "c".into()],
                centre: vec![Decimal9(1_500_000_000), Decimal9(-2), Decimal9(0)],
                scale: vec![Decimal9(2_000_000_000), Decimal9(1), Decimal9(3_000_000)],
                classes: vec!["no".into(), "yes".into()],
            }),
        }
    }

    fn provenance(weights: &[i32]) -> Provenance {
        Provenance {
            chain_id: Hash32([1; 32]),
            height: 7,
            block_hash: Hash32([2; 32]),
            model_hash: model_hash(weights),
        }
    }

    fn file() -> (ModelSpec, Vec<i32>, Vec<u8>) {
        let s = spec();
        let w = s.initial_weights();
        let bytes = to_safetensors(&s, &w, &provenance(&w)).expect("exports");
        (s, w, bytes)
    }

    #[test]
    fn round_trips_with_provenance_and_transform() {
        let (s, w, bytes) = file();
        assert_eq!(bytes, to_safetensors(&s, &w, &provenance(&w)).expect("exports"), "deterministic bytes");
        let back = from_safetensors(&bytes).expect("reads back");
        assert!(back.hash_verified);
        assert_eq!(back.provenance, provenance(&w));
        assert_eq!(back.spec, ModelSpec { init_seed: 0, ..s.clone() });
        let expected = Network::from_fixed(&s, &w).expect("valid");
        assert_eq!(back.network.params(), expected.params());
        // The crate's own reader sees the tensors with the documented names and shapes.
        let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
        assert_eq!(st.tensor("layers.1.weight").expect("present").shape(), &[4, 3]);
        assert_eq!(st.tensor("layers.2.bias").expect("present").shape(), &[2]);
    }

    #[test]
    fn refuses_truncated_altered_and_foreign_files() {
        let (_, _, bytes) = file();
        for cut in [0, 7, 8, 100, bytes.len() - 1] {
            let err = from_safetensors(&bytes[..cut]).expect_err("truncated");
            assert!(matches!(err, ExportError::NotSafetensors(_)), "cut at {cut}: {err}");
        }
        // A flipped bit in the last weight: the digest no longer matches.
        let mut altered = bytes.clone();
        *altered.last_mut().expect("non-empty") ^= 0x40;
        assert!(matches!(from_safetensors(&altered), Err(ExportError::Altered)));
        // Metadata edited in place (same length): also refused.
        let needle = b"\"height\":\"7\"";
        let at = bytes.windows(needle.len()).position(|w| w == needle).expect("height in header");
        let mut edited = bytes.clone();
        edited[at + 10] = b'8';
        assert!(matches!(from_safetensors(&edited), Err(ExportError::Altered)));
        // A safetensors file from elsewhere.
        let data = vec![0u8; 8];
        let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &data).expect("valid view");
        let foreign = safetensors::serialize([("w", view)], None).expect("serializes");
        assert!(matches!(from_safetensors(&foreign), Err(ExportError::NotLearnchain(_))));
        assert!(matches!(from_safetensors(b"not a model"), Err(ExportError::NotSafetensors(_))));
    }

    #[test]
    fn a_model_hash_that_does_not_match_is_refused() {
        let s = spec();
        let w = s.initial_weights();
        let mut p = provenance(&w);
        p.model_hash = Hash32([9; 32]);
        let bytes = to_safetensors(&s, &w, &p).expect("exports");
        assert!(matches!(from_safetensors(&bytes), Err(ExportError::ModelHashMismatch(_))));
    }

    #[test]
    fn a_chain_without_a_transform_exports_nulls() {
        let mut s = spec();
        s.input = None;
        let w = s.initial_weights();
        let back = from_safetensors(&to_safetensors(&s, &w, &provenance(&w)).expect("exports")).expect("reads");
        assert_eq!(back.spec.input, None);
        assert!(matches!(to_safetensors(&s, &w[1..], &provenance(&w)), Err(ExportError::WeightCount { .. })));
    }
}
