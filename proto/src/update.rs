//! Update encodings: how a submission carries its model update, and how validators turn it
//! back into exact integers (DESIGN.md, v2 "Update encodings").
//!
//! # Genesis and wire form
//!
//! The genesis names one [`UpdateEncoding`] (`[consensus] update_encoding`, default `"i32"`):
//!
//! | encoding | carried as | bytes per parameter |
//! |---|---|---|
//! | `i32` | one `i32` per parameter, in grid units of `2^-frac_bits` (today's form) | 4 |
//! | `i16`, `i8` | one signed level per parameter and one scale per tensor | 2, 1 |
//! | `i16:N`, `i8:N` | one signed level per parameter and one scale per chunk of `N` parameters | 2 + 4/N, 1 + 4/N |
//!
//! A submission carries an [`EncodedUpdate`]. In the canonical encoding (bincode, fixed-width
//! little-endian) that is a `u32` variant tag (0 = `I32`, 1 = `I16`, 2 = `I8`), then for `I32`
//! a `u64` count and the `i32`s; for `I16` / `I8` the [`ScaleGroups`] (`u32` tag 0 = per
//! tensor, 1 = chunks followed by the `u32` chunk length), a `u64` count and the `u32` scales,
//! a `u64` count and the `i16` / `i8` levels. Every value has exactly one encoding: any tag,
//! count or level byte pattern that is not one decodes to an error, and trailing bytes are
//! refused by [`crate::encoding::decode`]. Counts are bounded by the message size limit
//! before anything is allocated (serde's cautious size hint, see [`crate::encoding`]).
//!
//! Coordinate `i` of group `g` (a tensor of [`ModelSpec::layout`], or the chunk
//! `[g·N, (g+1)·N)` of the flat parameter vector) decodes to the integer
//! `level_i × scale_g` grid units ([`EncodedUpdate::decode`]): exact integer arithmetic,
//! the same on every platform. Levels are symmetric, `|level| ≤ 127` (`i8`) or `32767`
//! (`i16`) — the one asymmetric value `-128` / `-32768` is refused — and each scale is at
//! least 1 and at most `max_update_abs / 127` (or `/ 32767`), so no decoded coordinate can
//! exceed the genesis `max_update_abs`. Everything after decoding (the update-norm bound,
//! aggregation, the model hash) is what it was for `i32` updates.
//!
//! # Rounding, and why it costs no privacy
//!
//! A data source quantises its update *after* DP-SGD has added the noise and projected each
//! step (`learnchain_model::quantize`): the quantiser reads only the already private
//! update and fresh randomness, so it is post-processing and spends no extra `ε`. The scale
//! of a group is the smallest integer number of grid units `s ≥ 1` with `max|x| ≤ s·127`
//! (or `s·32767`) over the group's real-valued coordinates `x` (in grid units). Each level is
//! `x/s` rounded *stochastically*: up with probability `frac(x/s)`, else down, drawn from
//! the node's ChaCha20 generator seeded from the operating system. The rounding is
//! unbiased (`E[level·s] = x`), and its error is below one scale step per coordinate,
//! `|level·s − x| < s`, with variance `s²·p(1 − p) ≤ s²/4` (`p = frac(x/s)`); over a group
//! of `k` coordinates the squared error is at most `k·s²/4` in expectation.
//!
//! The validators' update-norm bound applies to the decoded integers. An honest quantised
//! update that happens to round over it is shrunk and re-quantised, and in the end rounded
//! toward zero, which never increases a coordinate's magnitude — so an honest update always
//! passes (see `learnchain_model::quantize`).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::hash::TaggedHasher;
use crate::model::ModelSpec;

/// Smallest chunk length `N` of `i16:N` / `i8:N`: at `N = 128` an `i8` update costs
/// `1 + 4/128 ≈ 1.03` bytes per parameter with its scales.
pub const MIN_CHUNK: u32 = 128;
/// Largest chunk length `N` of `i16:N` / `i8:N` (larger chunks: use per-tensor scales).
pub const MAX_CHUNK: u32 = 1 << 20;

/// Bits of a quantised level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Width {
    /// `i16` levels, `|level| ≤ 32767`.
    I16,
    /// `i8` levels, `|level| ≤ 127`.
    I8,
}

impl Width {
    /// The largest level magnitude, `2^(bits−1) − 1`.
    pub fn max_level(self) -> i32 {
        match self {
            Width::I16 => i32::from(i16::MAX),
            Width::I8 => i32::from(i8::MAX),
        }
    }

    /// Bytes per level on the wire.
    pub fn bytes(self) -> u64 {
        match self {
            Width::I16 => 2,
            Width::I8 => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Width::I16 => "i16",
            Width::I8 => "i8",
        }
    }
}

/// Which parameters share one scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScaleGroups {
    /// One scale per tensor of [`ModelSpec::layout`].
    PerTensor,
    /// One scale per chunk of this many parameters of the flat vector (the last chunk may
    /// be shorter).
    Chunks(u32),
}

impl ScaleGroups {
    /// The index ranges of the flat parameter vector that share one scale, in order.
    pub fn ranges(self, spec: &ModelSpec) -> Vec<Range<usize>> {
        match self {
            ScaleGroups::PerTensor => spec.layout().iter().filter(|t| !t.is_empty()).map(|t| t.range()).collect(),
            ScaleGroups::Chunks(n) => {
                let d = usize::try_from(spec.param_count()).unwrap_or(0);
                let n = (n as usize).max(1);
                (0..d).step_by(n).map(|start| start..(start + n).min(d)).collect()
            }
        }
    }
}

/// The genesis choice of how updates travel (`[consensus] update_encoding`).
///
/// Written `i32`, `i16`, `i8`, `i16:N` or `i8:N` (see the module docs); any other spelling
/// is refused, so each value has one written form, which is also what enters the chain id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum UpdateEncoding {
    /// One `i32` per parameter (the default).
    #[default]
    I32,
    /// Quantised levels of `width` bits with scales per `groups`.
    Quantized {
        /// Level width.
        width: Width,
        /// Scale groups.
        groups: ScaleGroups,
    },
}

impl UpdateEncoding {
    /// Whether this is the default `i32` (which the genesis does not write, so a genesis
    /// without the key keeps its chain id).
    pub fn is_i32(&self) -> bool {
        *self == UpdateEncoding::I32
    }

    /// The most bytes an encoded update of `spec`'s model takes (body only, with its
    /// variant tag and length prefixes), for the genesis size limits.
    pub fn max_update_bytes(&self, spec: &ModelSpec) -> u64 {
        let d = spec.param_count();
        match *self {
            // Exactly what the limits always reserved for the update vector, so a genesis
            // without the key keeps its limits and its chain id.
            UpdateEncoding::I32 => d.saturating_mul(4),
            UpdateEncoding::Quantized { width, groups } => {
                let scales = self::scale_count(groups, spec);
                d.saturating_mul(width.bytes()).saturating_add(4 * scales).saturating_add(32)
            }
        }
    }

    /// Checks the chunk length bounds (a parsed value always passes; one built in code may
    /// not).
    pub fn check(&self) -> Result<(), String> {
        if let UpdateEncoding::Quantized { groups: ScaleGroups::Chunks(n), .. } = *self
            && !(MIN_CHUNK..=MAX_CHUNK).contains(&n)
        {
            return Err(format!("the chunk length {n} is outside [{MIN_CHUNK}, {MAX_CHUNK}]"));
        }
        Ok(())
    }
}

fn scale_count(groups: ScaleGroups, spec: &ModelSpec) -> u64 {
    match groups {
        ScaleGroups::PerTensor => spec.layout().len() as u64,
        ScaleGroups::Chunks(n) => spec.param_count().div_ceil(u64::from(n.max(1))),
    }
}

impl fmt::Display for UpdateEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UpdateEncoding::I32 => f.write_str("i32"),
            UpdateEncoding::Quantized { width, groups: ScaleGroups::PerTensor } => f.write_str(width.name()),
            UpdateEncoding::Quantized { width, groups: ScaleGroups::Chunks(n) } => write!(f, "{}:{n}", width.name()),
        }
    }
}

const ACCEPTED: &str = "expected i32, i16, i8 (one scale per tensor), or i16:N / i8:N (one scale per chunk of N parameters)";

impl FromStr for UpdateEncoding {
    type Err = String;

    /// Parses `i32`, `i16`, `i8`, `i16:N` or `i8:N` with `N` in
    /// [`MIN_CHUNK`]..=[`MAX_CHUNK`], written without sign or leading zeros.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, chunk) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let width = match name {
            "i32" if chunk.is_none() => return Ok(UpdateEncoding::I32),
            "i32" => return Err(format!("update encoding {s:?}: i32 has no scales, so no chunk length")),
            "i16" => Width::I16,
            "i8" => Width::I8,
            _ => return Err(format!("unknown update encoding {s:?}: {ACCEPTED}")),
        };
        let groups = match chunk {
            None => ScaleGroups::PerTensor,
            Some(c) => {
                let canonical = !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) && !c.starts_with('0');
                let n = c.parse::<u32>().ok().filter(|_| canonical).ok_or_else(|| {
                    format!("update encoding {s:?}: the chunk length must be a whole number without sign or leading zeros; {ACCEPTED}")
                })?;
                ScaleGroups::Chunks(n)
            }
        };
        let e = UpdateEncoding::Quantized { width, groups };
        e.check().map_err(|why| format!("update encoding {s:?}: {why}"))?;
        Ok(e)
    }
}

impl Serialize for UpdateEncoding {
    /// The written form in every format (it is canonical: see [`UpdateEncoding::from_str`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for UpdateEncoding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A submission's model update, as it travels and is stored (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncodedUpdate {
    /// One `i32` per parameter, in grid units.
    I32(Vec<i32>),
    /// `i16` levels with their scales.
    I16 {
        /// Which parameters share a scale.
        groups: ScaleGroups,
        /// One scale per group, in grid units.
        scales: Vec<u32>,
        /// One level per parameter.
        values: Vec<i16>,
    },
    /// `i8` levels with their scales.
    I8 {
        /// Which parameters share a scale.
        groups: ScaleGroups,
        /// One scale per group, in grid units.
        scales: Vec<u32>,
        /// One level per parameter.
        values: Vec<i8>,
    },
}

/// Why an encoded update does not decode to a valid update of this chain's model.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum UpdateError {
    /// The update is not in the genesis encoding.
    #[error("update is encoded as {got}, but this chain's genesis update_encoding is {expected}")]
    WrongEncoding {
        /// The genesis encoding.
        expected: UpdateEncoding,
        /// The update's.
        got: UpdateEncoding,
    },
    /// Not one coordinate (level) per model parameter.
    #[error("update has {got} coordinates, the model has {expected}")]
    WrongLength {
        /// Model parameters.
        expected: usize,
        /// Coordinates carried.
        got: usize,
    },
    /// An `i32` coordinate beyond the genesis bound.
    #[error("update coordinate {index} is {value}, beyond the bound ±{bound}")]
    CoordinateTooLarge {
        /// The coordinate.
        index: usize,
        /// Its value.
        value: i32,
        /// The genesis `max_update_abs`.
        bound: i32,
    },
    /// Not one scale per tensor or chunk.
    #[error("update carries {got} scales, the encoding needs {expected} (one per tensor or chunk)")]
    ScaleCount {
        /// Groups of the encoding.
        expected: usize,
        /// Scales carried.
        got: usize,
    },
    /// A scale of zero.
    #[error("scale {group} is 0; every scale must be at least 1 grid unit")]
    ZeroScale {
        /// The group.
        group: usize,
    },
    /// A scale so large a level could decode beyond `max_update_abs`.
    #[error("scale {group} is {scale} grid units, above {max}: a level could decode beyond max_update_abs")]
    ScaleTooLarge {
        /// The group.
        group: usize,
        /// Its scale.
        scale: u32,
        /// `max_update_abs / max_level`.
        max: u32,
    },
    /// The asymmetric level `-128` / `-32768`.
    #[error("level {index} is {value}, outside the symmetric range ±{max}")]
    LevelOutOfRange {
        /// The coordinate.
        index: usize,
        /// Its level.
        value: i32,
        /// The largest level magnitude.
        max: i32,
    },
}

impl EncodedUpdate {
    /// The encoding this update is in.
    pub fn encoding(&self) -> UpdateEncoding {
        match self {
            EncodedUpdate::I32(_) => UpdateEncoding::I32,
            EncodedUpdate::I16 { groups, .. } => UpdateEncoding::Quantized { width: Width::I16, groups: *groups },
            EncodedUpdate::I8 { groups, .. } => UpdateEncoding::Quantized { width: Width::I8, groups: *groups },
        }
    }

    /// Coordinates carried.
    pub fn len(&self) -> usize {
        match self {
            EncodedUpdate::I32(v) => v.len(),
            EncodedUpdate::I16 { values, .. } => values.len(),
            EncodedUpdate::I8 { values, .. } => values.len(),
        }
    }

    /// Whether it carries no coordinate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i32` vector of an `i32` update.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match self {
            EncodedUpdate::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The `i32` vector of an `i32` update, to change it (tools and tests).
    pub fn as_i32_mut(&mut self) -> Option<&mut Vec<i32>> {
        match self {
            EncodedUpdate::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Builds a quantised update from levels (each `|level| ≤ width.max_level()`, one per
    /// parameter) and scales; levels out of range are clamped.
    pub fn quantized(width: Width, groups: ScaleGroups, scales: Vec<u32>, levels: &[i32]) -> Self {
        let m = width.max_level();
        match width {
            Width::I16 => EncodedUpdate::I16 {
                groups,
                scales,
                values: levels.iter().map(|&l| l.clamp(-m, m) as i16).collect(),
            },
            Width::I8 => EncodedUpdate::I8 {
                groups,
                scales,
                values: levels.iter().map(|&l| l.clamp(-m, m) as i8).collect(),
            },
        }
    }

    /// Decodes to one `i32` per parameter in grid units, checking everything a validator
    /// checks of the update's form: the genesis `encoding`, one coordinate per parameter of
    /// `spec`, for `i32` every coordinate within `±max_abs`, and for quantised updates one
    /// scale per group, each in `[1, max_abs / max_level]`, and every level symmetric. An
    /// `i32` update is borrowed, a quantised one decoded once into a new vector.
    pub fn decode(&self, encoding: UpdateEncoding, spec: &ModelSpec, max_abs: i32) -> Result<Cow<'_, [i32]>, UpdateError> {
        let got = self.encoding();
        if got != encoding {
            return Err(UpdateError::WrongEncoding { expected: encoding, got });
        }
        let expected = usize::try_from(spec.param_count()).unwrap_or(usize::MAX);
        if self.len() != expected {
            return Err(UpdateError::WrongLength { expected, got: self.len() });
        }
        match self {
            EncodedUpdate::I32(v) => {
                if let Some(index) = v.iter().position(|x| x.unsigned_abs() > max_abs.unsigned_abs()) {
                    return Err(UpdateError::CoordinateTooLarge { index, value: v[index], bound: max_abs });
                }
                Ok(Cow::Borrowed(v))
            }
            EncodedUpdate::I16 { groups, scales, values } => {
                decode_levels(Width::I16, *groups, scales, values, spec, max_abs).map(Cow::Owned)
            }
            EncodedUpdate::I8 { groups, scales, values } => {
                decode_levels(Width::I8, *groups, scales, values, spec, max_abs).map(Cow::Owned)
            }
        }
    }

    /// Feeds the update to a hasher, covering every field exactly. An `i32` update hashes as
    /// it always did (its count, then its values), so the ids of `i32` chains are unchanged;
    /// a quantised update starts with the count `u64::MAX`, which no `i32` update can have,
    /// so the two forms never collide.
    pub fn hash_into(&self, h: &mut TaggedHasher) {
        let (tag, groups, scales, bytes): (u8, ScaleGroups, &[u32], Vec<u8>) = match self {
            EncodedUpdate::I32(v) => {
                h.update_i32s(v);
                return;
            }
            EncodedUpdate::I16 { groups, scales, values } => {
                (1, *groups, scales, values.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
            EncodedUpdate::I8 { groups, scales, values } => {
                (2, *groups, scales, values.iter().map(|&v| v as u8).collect())
            }
        };
        h.update_u64(u64::MAX).update([tag]);
        match groups {
            ScaleGroups::PerTensor => h.update([0u8]),
            ScaleGroups::Chunks(n) => h.update([1u8]).update(n.to_le_bytes()),
        };
        h.update_u64(scales.len() as u64);
        for s in scales {
            h.update(s.to_le_bytes());
        }
        h.update_u64(self.len() as u64).update(&bytes);
    }
}

fn decode_levels<L: Copy + Into<i32>>(
    width: Width,
    groups: ScaleGroups,
    scales: &[u32],
    values: &[L],
    spec: &ModelSpec,
    max_abs: i32,
) -> Result<Vec<i32>, UpdateError> {
    let ranges = groups.ranges(spec);
    if scales.len() != ranges.len() {
        return Err(UpdateError::ScaleCount { expected: ranges.len(), got: scales.len() });
    }
    let max_level = width.max_level();
    let max_scale = u32::try_from(max_abs.max(0) / max_level).unwrap_or(0);
    for (group, &scale) in scales.iter().enumerate() {
        if scale == 0 {
            return Err(UpdateError::ZeroScale { group });
        }
        if scale > max_scale {
            return Err(UpdateError::ScaleTooLarge { group, scale, max: max_scale });
        }
    }
    let mut out = Vec::with_capacity(values.len());
    for (range, &scale) in ranges.into_iter().zip(scales) {
        // |level| ≤ max_level and scale ≤ max_abs / max_level: the product fits i32.
        let scale = scale as i32;
        for (index, &level) in values[range.clone()].iter().enumerate() {
            let level: i32 = level.into();
            if level.abs() > max_level {
                return Err(UpdateError::LevelOutOfRange { index: range.start + index, value: level, max: max_level });
            }
            out.push(level * scale);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding;
    use crate::hash::TAG_SUBMISSION_SIGNING;
    use crate::model::Architecture;
    use proptest::prelude::*;

    fn mlp(features: u32, hidden: u32) -> ModelSpec {
        ModelSpec { architecture: Architecture::Mlp, features, classes: 3, hidden: vec![hidden], input: None, init_seed: 1, frac_bits: 16 }
    }

    fn digest(u: &EncodedUpdate) -> crate::Hash32 {
        let mut h = TaggedHasher::new(TAG_SUBMISSION_SIGNING);
        u.hash_into(&mut h);
        h.finish()
    }

    #[test]
    fn parses_and_prints_every_form() {
        for s in ["i32", "i16", "i8", "i16:128", "i8:4096", "i8:1048576"] {
            let e: UpdateEncoding = s.parse().expect(s);
            assert_eq!(e.to_string(), s);
        }
        assert_eq!("i8:256".parse(), Ok(UpdateEncoding::Quantized { width: Width::I8, groups: ScaleGroups::Chunks(256) }));
        for bad in ["", "i4", "I8", "i8:", "i8:127", "i8:1048577", "i8:0256", "i8:+256", "i8:-1", "i32:256", "i8:x", "f16"] {
            let err = bad.parse::<UpdateEncoding>().expect_err(bad);
            assert!(err.contains("update encoding"), "{bad}: {err}");
        }
        assert!("i8:99".parse::<UpdateEncoding>().expect_err("small").contains("[128, 1048576]"));
        assert!("i9".parse::<UpdateEncoding>().expect_err("unknown").contains("i8:N"));
    }

    #[test]
    fn groups_cover_the_model_once() {
        let spec = mlp(30, 16);
        let d = spec.param_count() as usize;
        for g in [ScaleGroups::PerTensor, ScaleGroups::Chunks(128), ScaleGroups::Chunks(1 << 20)] {
            let r = g.ranges(&spec);
            assert_eq!(r.first().map(|r| r.start), Some(0));
            assert_eq!(r.last().map(|r| r.end), Some(d));
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            assert_eq!(r.len() as u64, scale_count(g, &spec));
        }
        assert_eq!(ScaleGroups::PerTensor.ranges(&spec).len(), 4);
        assert_eq!(ScaleGroups::Chunks(128).ranges(&spec).len(), d.div_ceil(128));
    }

    fn i8_update(spec: &ModelSpec, groups: ScaleGroups, scale: u32) -> EncodedUpdate {
        let d = spec.param_count() as usize;
        let n = groups.ranges(spec).len();
        let levels: Vec<i32> = (0..d as i32).map(|i| (i * 37) % 255 - 127).collect();
        EncodedUpdate::quantized(Width::I8, groups, vec![scale; n], &levels)
    }

    #[test]
    fn decode_is_level_times_scale() {
        let spec = mlp(4, 3);
        let groups = ScaleGroups::PerTensor;
        let enc = UpdateEncoding::Quantized { width: Width::I8, groups };
        let ranges = groups.ranges(&spec);
        let scales: Vec<u32> = (1..=ranges.len() as u32).map(|s| s * 1000).collect();
        let levels: Vec<i32> = (0..spec.param_count() as i32).map(|i| i % 19 - 9).collect();
        let u = EncodedUpdate::quantized(Width::I8, groups, scales.clone(), &levels);
        let out = u.decode(enc, &spec, 1 << 24).expect("valid");
        for (g, r) in ranges.iter().enumerate() {
            for i in r.clone() {
                assert_eq!(out[i], levels[i] * scales[g] as i32);
            }
        }
        let plain = EncodedUpdate::I32(levels.clone());
        assert!(matches!(plain.decode(UpdateEncoding::I32, &spec, 1 << 24), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn each_malformed_update_is_refused_with_its_error() {
        let spec = mlp(40, 8);
        let groups = ScaleGroups::Chunks(128);
        let enc = UpdateEncoding::Quantized { width: Width::I8, groups };
        let max_abs = 1 << 20;
        let good = i8_update(&spec, groups, 5);
        good.decode(enc, &spec, max_abs).expect("valid");

        let err = good.decode(UpdateEncoding::I32, &spec, max_abs).expect_err("wrong encoding");
        assert!(matches!(err, UpdateError::WrongEncoding { expected: UpdateEncoding::I32, .. }), "{err}");
        let tensor = i8_update(&spec, ScaleGroups::PerTensor, 5);
        assert!(matches!(tensor.decode(enc, &spec, max_abs), Err(UpdateError::WrongEncoding { .. })));
        let i16: UpdateEncoding = "i16:128".parse().expect("valid");
        assert!(matches!(good.decode(i16, &spec, max_abs), Err(UpdateError::WrongEncoding { .. })));

        let EncodedUpdate::I8 { scales, values, .. } = &good else { unreachable!("built as i8") };
        let with = |scales: Vec<u32>, values: Vec<i8>| EncodedUpdate::I8 { groups, scales, values };

        let mut fewer = scales.clone();
        fewer.pop();
        assert_eq!(with(fewer, values.clone()).decode(enc, &spec, max_abs), Err(UpdateError::ScaleCount { expected: scales.len(), got: scales.len() - 1 }));
        let mut more = scales.clone();
        more.push(1);
        assert!(matches!(with(more, values.clone()).decode(enc, &spec, max_abs), Err(UpdateError::ScaleCount { .. })));

        let mut zero = scales.clone();
        zero[1] = 0;
        assert_eq!(with(zero, values.clone()).decode(enc, &spec, max_abs), Err(UpdateError::ZeroScale { group: 1 }));

        let max_scale = (max_abs / 127) as u32;
        let mut at = scales.clone();
        at[0] = max_scale;
        let largest = with(at, values.clone());
        let decoded = largest.decode(enc, &spec, max_abs).expect("the largest scale is allowed");
        assert!(decoded.iter().all(|v| v.unsigned_abs() <= max_abs as u32));
        let mut over = scales.clone();
        over[0] = max_scale + 1;
        assert_eq!(
            with(over, values.clone()).decode(enc, &spec, max_abs),
            Err(UpdateError::ScaleTooLarge { group: 0, scale: max_scale + 1, max: max_scale })
        );

        let mut short = values.clone();
        short.pop();
        assert!(matches!(with(scales.clone(), short).decode(enc, &spec, max_abs), Err(UpdateError::WrongLength { .. })));
        let mut long = values.clone();
        long.push(0);
        assert!(matches!(with(scales.clone(), long).decode(enc, &spec, max_abs), Err(UpdateError::WrongLength { .. })));

        let mut asym = values.clone();
        asym[7] = i8::MIN;
        assert_eq!(
            with(scales.clone(), asym).decode(enc, &spec, max_abs),
            Err(UpdateError::LevelOutOfRange { index: 7, value: -128, max: 127 })
        );

        let d = spec.param_count() as usize;
        let mut big = vec![0i32; d];
        big[3] = max_abs + 1;
        assert!(matches!(
            EncodedUpdate::I32(big).decode(UpdateEncoding::I32, &spec, max_abs),
            Err(UpdateError::CoordinateTooLarge { index: 3, .. })
        ));
    }

    #[test]
    fn canonical_bytes_short_and_trailing_refused() {
        let spec = mlp(10, 4);
        let u = i8_update(&spec, ScaleGroups::Chunks(128), 3);
        let bytes = encoding::encode(&u);
        // Layout: version, tag u32 = 2, groups tag u32 = 1 and N u32, scales (u64 + u32s), levels (u64 + bytes).
        assert_eq!(&bytes[1..5], &2u32.to_le_bytes());
        assert_eq!(&bytes[5..9], &1u32.to_le_bytes());
        assert_eq!(&bytes[9..13], &128u32.to_le_bytes());
        let scales = spec.param_count().div_ceil(128) as usize;
        assert_eq!(bytes.len(), 1 + 4 + 8 + 8 + 4 * scales + 8 + spec.param_count() as usize);
        assert_eq!(encoding::decode::<EncodedUpdate>(&bytes, 1 << 20), Ok(u.clone()));
        for cut in [1, 2, 9, 20, bytes.len() - 1] {
            assert!(encoding::decode::<EncodedUpdate>(&bytes[..cut], 1 << 20).is_err(), "short by {}", bytes.len() - cut);
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(encoding::decode::<EncodedUpdate>(&trailing, 1 << 20), Err(encoding::DecodeError::Trailing(1))));
        let mut bad_tag = bytes.clone();
        bad_tag[1] = 3;
        assert!(encoding::decode::<EncodedUpdate>(&bad_tag, 1 << 20).is_err(), "no fourth variant");
        let mut bad_groups = bytes.clone();
        bad_groups[5] = 2;
        assert!(encoding::decode::<EncodedUpdate>(&bad_groups, 1 << 20).is_err(), "no third grouping");
        // A level count that lies far beyond the message fails without a large allocation.
        let mut lying = bytes[..bytes.len() - spec.param_count() as usize - 8].to_vec();
        lying.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(encoding::decode::<EncodedUpdate>(&lying, 1 << 20), Err(encoding::DecodeError::Malformed(_))));
    }

    #[test]
    fn digest_covers_every_field_and_keeps_i32_digests() {
        let spec = mlp(10, 4);
        let u = i8_update(&spec, ScaleGroups::Chunks(128), 3);
        let base = digest(&u);
        let EncodedUpdate::I8 { groups, scales, values } = u.clone() else { unreachable!("i8") };
        let mut s2 = scales.clone();
        s2[0] += 1;
        assert_ne!(digest(&EncodedUpdate::I8 { groups, scales: s2, values: values.clone() }), base);
        let mut v2 = values.clone();
        v2[5] ^= 1;
        assert_ne!(digest(&EncodedUpdate::I8 { groups, scales: scales.clone(), values: v2 }), base);
        assert_ne!(digest(&EncodedUpdate::I8 { groups: ScaleGroups::Chunks(129), scales: scales.clone(), values: values.clone() }), base);
        let wide = EncodedUpdate::I16 { groups, scales, values: values.iter().map(|&v| i16::from(v)).collect() };
        assert_ne!(digest(&wide), base);
        // The i32 form hashes exactly as the bare vector did before encodings existed.
        let v = vec![1, -2, 3];
        let mut h = TaggedHasher::new(TAG_SUBMISSION_SIGNING);
        h.update_i32s(&v);
        assert_eq!(digest(&EncodedUpdate::I32(v)), h.finish());
    }

    #[test]
    fn i8_costs_at_most_1_05_bytes_per_parameter() {
        // 100 000 parameters: 10 000 features × 10 classes (softmax) minus nothing.
        let spec = ModelSpec { architecture: Architecture::Softmax, features: 9_999, classes: 10, hidden: vec![], input: None, init_seed: 1, frac_bits: 16 };
        let d = spec.param_count() as usize;
        assert_eq!(d, 100_000);
        for (enc, max_per_param) in [("i32", 4.001), ("i16", 2.001), ("i8", 1.001), ("i8:128", 1.05), ("i16:128", 2.05)] {
            let e: UpdateEncoding = enc.parse().expect("valid");
            let u = match e {
                UpdateEncoding::I32 => EncodedUpdate::I32(vec![0; d]),
                UpdateEncoding::Quantized { width, groups } => {
                    EncodedUpdate::quantized(width, groups, vec![1; groups.ranges(&spec).len()], &vec![0; d])
                }
            };
            let bytes = encoding::encoded_len(&u) as u64;
            // The i32 form's tag and count (12 bytes) come out of the submission overhead the
            // genesis reserves beside the update, as they always did.
            assert!(bytes <= e.max_update_bytes(&spec) + 16, "{enc}: {bytes} above the limit the genesis reserves");
            let per = bytes as f64 / d as f64;
            assert!(per <= max_per_param, "{enc}: {per} bytes per parameter");
        }
    }

    proptest! {
        #[test]
        fn round_trip_through_bytes_and_decode(
            features in 1u32..300,
            hidden in 1u32..8,
            chunk in prop::option::of(128u32..600),
            wide in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let spec = mlp(features, hidden);
            let groups = chunk.map_or(ScaleGroups::PerTensor, ScaleGroups::Chunks);
            let width = if wide { Width::I16 } else { Width::I8 };
            let m = width.max_level();
            let max_abs = 1 << 24;
            let ranges = groups.ranges(&spec);
            let mut x = seed;
            let mut next = || { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 33) as i64 };
            let scales: Vec<u32> = ranges.iter().map(|_| (next() % i64::from(max_abs / m)) as u32 + 1).collect();
            let levels: Vec<i32> = (0..spec.param_count()).map(|_| (next() % i64::from(2 * m + 1)) as i32 - m).collect();
            let u = EncodedUpdate::quantized(width, groups, scales.clone(), &levels);
            let bytes = encoding::encode(&u);
            prop_assert_eq!(encoding::encoded_len(&u), bytes.len());
            let back: EncodedUpdate = encoding::decode(&bytes, 1 << 24).expect("decodes");
            prop_assert_eq!(&back, &u);
            prop_assert_eq!(encoding::encode(&back), bytes);
            let out = back.decode(UpdateEncoding::Quantized { width, groups }, &spec, max_abs).expect("valid");
            for (g, r) in ranges.iter().enumerate() {
                for i in r.clone() {
                    prop_assert_eq!(i64::from(out[i]), i64::from(levels[i]) * i64::from(scales[g]));
                    prop_assert!(out[i].unsigned_abs() <= max_abs as u32);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(u) = encoding::decode::<EncodedUpdate>(&bytes, 1 << 20) {
                let _ = u.decode(u.encoding(), &mlp(3, 2), 1 << 20);
                prop_assert_eq!(encoding::encode(&u), bytes, "one encoding per value");
            }
        }
    }
}
