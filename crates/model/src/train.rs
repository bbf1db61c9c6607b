//! Local training: minibatch SGD on a data source's own shard, starting from the global model.
//!
//! [`train_local`] checks its inputs (shard non-empty, feature count and labels matching the
//! spec, weights matching the layout), turns the fixed-point global model into floats, and
//! runs `local_steps` steps. Each step draws `batch_size` examples uniformly *without*
//! replacement from a `ChaCha20Rng` seeded with the caller's seed (the whole shard, in random
//! order, if it is smaller than a batch), so a run is reproducible from `(global, data,
//! seed)`. The trained float parameters leave as a [`LocalUpdate`]; quantizing them into the
//! integer update is [`crate::fixed::quantize_delta`]'s job.
//!
//! # The DP-SGD seam
//!
//! One step is three separate pieces: (1) the data gradient of the batch,
//! [`Network::gradient`]; (2) the data-independent L2 term, [`Network::add_weight_decay`];
//! (3) the update `θ ← θ − lr · g`. Differentially private SGD replaces only (1) and the
//! sampler: draw the batch by Poisson sampling, call `gradient` on each example alone (a
//! 1-row batch), clip each per-example gradient to norm C, sum, add Gaussian noise N(0, σ²C²)
//! from a CSPRNG and divide by the expected batch size. (2) and (3) stay as they are, and so
//! does everything around the loop. [`crate::dp::train_local_dp`] is that trainer.

use learnchain_proto::genesis::TrainingParams;
use learnchain_proto::model::ModelSpec;
use ndarray::Axis;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::data::Dataset;
pub use crate::error::TrainError;
use crate::network::{Network, check_labels, check_spec};

/// The result of local training.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalUpdate {
    /// The trained float parameters, in the spec's flat layout.
    pub params: Vec<f64>,
    /// Examples in the shard trained on.
    pub examples: u32,
    /// Objective (mean cross-entropy plus L2 penalty) of the last step's minibatch, computed
    /// before that step's update.
    pub final_loss: f64,
}

/// Runs `params.local_steps` steps of minibatch SGD on `data` from the fixed-point model
/// `global`, sampling batches with a `ChaCha20Rng` seeded by `seed`.
pub fn train_local(
    spec: &ModelSpec,
    params: &TrainingParams,
    global: &[i32],
    data: &Dataset,
    seed: u64,
) -> Result<LocalUpdate, TrainError> {
    check_local_steps(params)?;
    if params.batch_size == 0 {
        return Err(TrainError::InvalidParams {
            field: "batch_size",
            reason: "must be at least 1",
        });
    }
    check_dataset(spec, data)?;
    let mut net = Network::from_fixed(spec, global)?;
    let lr = params.learning_rate.to_f64();
    let l2 = params.weight_decay.to_f64();
    let n = data.len();
    let batch = n.min(params.batch_size as usize);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut final_loss = f64::NAN;

    for step in 0..params.local_steps {
        let rows = rand::seq::index::sample(&mut rng, n, batch).into_vec();
        let x = data.x.select(Axis(0), &rows);
        let y: Vec<u32> = rows.iter().map(|&i| data.y[i]).collect();
        let (loss, mut grad) = net.gradient(x.view(), &y)?;
        let loss = loss + net.add_weight_decay(l2, &mut grad);
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step });
        }
        sgd_step(&mut net, lr, &grad);
        final_loss = loss;
    }
    finish(net, params, n, final_loss)
}

/// Refuses a round of zero local steps.
pub(crate) fn check_local_steps(params: &TrainingParams) -> Result<(), TrainError> {
    if params.local_steps == 0 {
        return Err(TrainError::InvalidParams {
            field: "local_steps",
            reason: "must be at least 1",
        });
    }
    Ok(())
}

/// One SGD update: `p ← p − lr·g`.
pub(crate) fn sgd_step(net: &mut Network, lr: f64, grad: &[f64]) {
    for (p, g) in net.params_mut().iter_mut().zip(grad) {
        *p -= lr * g;
    }
}

/// Ends a training run over `n` examples: refuses a model that left the finite floats,
/// otherwise returns the update.
pub(crate) fn finish(
    net: Network,
    params: &TrainingParams,
    n: usize,
    final_loss: f64,
) -> Result<LocalUpdate, TrainError> {
    if !net.params().iter().all(|p| p.is_finite()) {
        return Err(TrainError::Diverged {
            step: params.local_steps,
        });
    }
    Ok(LocalUpdate {
        params: net.into_params(),
        examples: u32::try_from(n).unwrap_or(u32::MAX),
        final_loss,
    })
}

/// Checks that `data` can be fed to a model of `spec`: non-empty, consistent, the right
/// width, every label a class of the model.
pub(crate) fn check_dataset(spec: &ModelSpec, data: &Dataset) -> Result<(), TrainError> {
    check_spec(spec)?;
    if data.is_empty() {
        return Err(TrainError::EmptyDataset);
    }
    if data.x.nrows() != data.y.len() {
        return Err(TrainError::LabelCount {
            rows: data.x.nrows(),
            labels: data.y.len(),
        });
    }
    let expected = spec.features as usize;
    if data.features() != expected {
        return Err(TrainError::FeatureMismatch {
            expected,
            found: data.features(),
        });
    }
    check_labels(&data.y, spec.classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::builtin;
    use crate::eval::evaluate;
    use crate::fixed::quantize_delta;
    use learnchain_proto::Fixed6;
    use learnchain_proto::model::Architecture;
    use ndarray::Array2;

    fn training(lr: f64, steps: u32, batch: u32) -> TrainingParams {
        TrainingParams {
            learning_rate: Fixed6::from_f64(lr).expect("valid learning rate"),
            local_steps: steps,
            batch_size: batch,
            weight_decay: Fixed6(0),
        }
    }

    /// Standardized train/test split of a built-in set.
    fn prepared(name: &str) -> (Dataset, Dataset) {
        let data = builtin(name).expect("built-in dataset");
        let (mut train, mut test) = data.split(0.2, 7).expect("valid split");
        let standardizer = crate::Standardizer::fit(&train).expect("non-empty");
        standardizer.apply(&mut train).expect("same width");
        standardizer.apply(&mut test).expect("same width");
        (train, test)
    }

    /// Trains, quantizes the update onto the global model and evaluates the new global model.
    fn round_accuracy(
        spec: &ModelSpec,
        params: &TrainingParams,
        train: &Dataset,
        test: &Dataset,
    ) -> f64 {
        let global = spec.initial_weights();
        let update = train_local(spec, params, &global, train, 1).expect("training runs");
        assert!(update.final_loss.is_finite());
        assert_eq!(update.examples as usize, train.len());
        let delta = quantize_delta(&global, &update.params, spec.frac_bits, i32::MAX);
        let next: Vec<i32> = global.iter().zip(&delta).map(|(g, d)| g + d).collect();
        evaluate(spec, &next, test)
            .expect("evaluation runs")
            .accuracy
    }

    #[test]
    fn softmax_learns_breast_cancer() {
        let (train, test) = prepared("breast-cancer");
        let spec = ModelSpec {
            architecture: Architecture::Softmax,
            features: 30,
            classes: 2,
            hidden: vec![], input: None,
            init_seed: 0,
            frac_bits: 16,
        };
        let accuracy = round_accuracy(&spec, &training(0.1, 100, 32), &train, &test);
        assert!(accuracy >= 0.93, "test accuracy {accuracy}");
    }

    #[test]
    fn mlp_learns_digits() {
        let (train, test) = prepared("digits");
        let spec = ModelSpec {
            architecture: Architecture::Mlp,
            features: 64,
            classes: 10,
            hidden: vec![32], input: None,
            init_seed: 3,
            frac_bits: 16,
        };
        let accuracy = round_accuracy(&spec, &training(0.1, 300, 32), &train, &test);
        assert!(accuracy >= 0.85, "test accuracy {accuracy}");
    }

    fn tiny() -> (ModelSpec, Dataset) {
        let spec = ModelSpec {
            architecture: Architecture::Softmax,
            features: 2,
            classes: 2,
            hidden: vec![], input: None,
            init_seed: 0,
            frac_bits: 16,
        };
        let x = ndarray::array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let data =
            Dataset::new(x, vec![0, 1, 1], 2, vec!["a".into(), "b".into()]).expect("valid dataset");
        (spec, data)
    }

    #[test]
    fn deterministic_for_a_seed_and_small_shards_work() {
        let (spec, data) = tiny();
        let global = spec.initial_weights();
        let params = training(0.5, 5, 32); // batch larger than the shard
        let a = train_local(&spec, &params, &global, &data, 9).expect("trains");
        let b = train_local(&spec, &params, &global, &data, 9).expect("trains");
        assert_eq!(a, b);
        assert_ne!(a.params, vec![0.0; 6]);
        let mut params = training(0.5, 5, 1);
        let c = train_local(&spec, &params, &global, &data, 10).expect("trains");
        assert_ne!(a.params, c.params);
        params.weight_decay = Fixed6::from_f64(0.1).expect("valid");
        assert!(train_local(&spec, &params, &global, &data, 10).is_ok());
    }

    #[test]
    fn refuses_bad_inputs() {
        let (spec, data) = tiny();
        let global = spec.initial_weights();
        let params = training(0.1, 1, 2);
        let empty = Dataset::new(
            Array2::zeros((0, 2)),
            vec![],
            2,
            vec!["a".into(), "b".into()],
        )
        .expect("valid");
        assert_eq!(
            train_local(&spec, &params, &global, &empty, 0),
            Err(TrainError::EmptyDataset)
        );
        assert_eq!(
            train_local(&spec, &params, &global[1..], &data, 0),
            Err(TrainError::WeightCount {
                expected: 6,
                found: 5
            })
        );
        let mut wide = spec.clone();
        wide.features = 3;
        assert_eq!(
            train_local(&wide, &params, &[0; 9], &data, 0),
            Err(TrainError::FeatureMismatch {
                expected: 3,
                found: 2
            })
        );
        let mut labels = data.clone();
        labels.y[2] = 2;
        assert_eq!(
            train_local(&spec, &params, &global, &labels, 0),
            Err(TrainError::LabelOutOfRange {
                index: 2,
                label: 2,
                classes: 2
            })
        );
        assert!(matches!(
            train_local(&spec, &training(0.1, 0, 2), &global, &data, 0),
            Err(TrainError::InvalidParams {
                field: "local_steps",
                ..
            })
        ));
        let mut diverging = data.clone();
        diverging.x[[0, 0]] = f64::INFINITY;
        assert!(matches!(
            train_local(&spec, &training(0.1, 3, 3), &global, &diverging, 0),
            Err(TrainError::Diverged { step: 0 })
        ));
    }
}
