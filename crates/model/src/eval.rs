//! Evaluation of a fixed-point model on a labelled dataset.
//!
//! [`evaluate`] takes the global model exactly as consensus holds it (`&[i32]`), converts it
//! to floats, and runs the forward pass over the data in chunks of [`EVAL_CHUNK_ROWS`]
//! examples so memory stays bounded whatever the dataset size. It reports accuracy (argmax of
//! the logits, ties to the lowest class) and mean cross-entropy as [`Metrics`], which
//! serialize for the RPC and logs.

use learnchain_proto::model::ModelSpec;
use ndarray::{Axis, Slice};
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::network::{Network, log_sum_exp};
use crate::train::{TrainError, check_dataset};

/// Examples per forward pass during evaluation.
pub const EVAL_CHUNK_ROWS: usize = 1024;

/// How well a model does on a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Fraction of examples whose highest logit is their label, in `[0, 1]`.
    pub accuracy: f64,
    /// Mean cross-entropy (natural log) over the examples.
    pub loss: f64,
    /// Examples evaluated.
    pub examples: usize,
}

/// Accuracy and mean cross-entropy of the fixed-point model `weights` on `data`.
pub fn evaluate(spec: &ModelSpec, weights: &[i32], data: &Dataset) -> Result<Metrics, TrainError> {
    check_dataset(spec, data)?;
    let net = Network::from_fixed(spec, weights)?;
    let n = data.len();
    let mut loss = 0.0;
    let mut correct = 0usize;
    for start in (0..n).step_by(EVAL_CHUNK_ROWS) {
        let end = n.min(start + EVAL_CHUNK_ROWS);
        let logits = net.logits(data.x.slice_axis(Axis(0), Slice::from(start..end)))?;
        for (row, &label) in logits.rows().into_iter().zip(&data.y[start..end]) {
            let label = label as usize;
            loss += log_sum_exp(row) - row[label];
            let mut best = 0;
            for (class, &z) in row.iter().enumerate() {
                if z > row[best] {
                    best = class;
                }
            }
            correct += usize::from(best == label);
        }
    }
    Ok(Metrics {
        accuracy: correct as f64 / n as f64,
        loss: loss / n as f64,
        examples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnchain_proto::model::Architecture;
    use ndarray::{Array2, array};

    fn spec() -> ModelSpec {
        ModelSpec {
            architecture: Architecture::Softmax,
            features: 2,
            classes: 2,
            hidden: vec![], input: None,
            init_seed: 0,
            frac_bits: 8,
        }
    }

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn zero_model_has_log2_loss() {
        let data =
            Dataset::new(array![[1.0, 2.0], [3.0, 4.0]], vec![0, 1], 2, names()).expect("valid");
        let m = evaluate(&spec(), &[0; 6], &data).expect("evaluates");
        assert_eq!(m.examples, 2);
        assert!((m.loss - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(m.accuracy, 0.5); // ties go to class 0
    }

    #[test]
    fn perfect_model() {
        // W = [[1, -1], [-1, 1]] in 8-bit fixed point: class = larger feature.
        let w = [256, -256, -256, 256, 0, 0];
        let x = Array2::from_shape_fn(
            (2000, 2),
            |(i, j)| if (i + j) % 2 == 0 { 5.0 } else { -5.0 },
        );
        let y = (0..2000).map(|i| (i % 2) as u32).collect();
        let data = Dataset::new(x, y, 2, names()).expect("valid");
        let m = evaluate(&spec(), &w, &data).expect("evaluates");
        assert_eq!(m.accuracy, 1.0);
        assert!(m.loss < 1e-4);
        assert_eq!(m.examples, 2000);
    }

    #[test]
    fn refuses_mismatches() {
        let data = Dataset::new(array![[1.0, 2.0]], vec![1], 2, names()).expect("valid");
        assert!(matches!(
            evaluate(&spec(), &[0; 5], &data),
            Err(TrainError::WeightCount { .. })
        ));
        let empty = Dataset::new(Array2::zeros((0, 2)), vec![], 2, names()).expect("valid");
        assert_eq!(
            evaluate(&spec(), &[0; 6], &empty),
            Err(TrainError::EmptyDataset)
        );
    }
}
