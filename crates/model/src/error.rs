//! [`TrainError`]: why training, evaluation or building a network could not run. Its own
//! module because both the network (shapes, labels) and the trainers (datasets,
//! hyper-parameters, divergence) raise it; each variant names what was wrong.

use thiserror::Error;

/// Why training or evaluation could not run.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TrainError {
    /// The model spec cannot be built.
    #[error("invalid model spec: {0}")]
    InvalidSpec(&'static str),
    /// The dataset has no examples.
    #[error("the dataset is empty")]
    EmptyDataset,
    /// A gradient was asked for on a batch of no examples.
    #[error("the batch is empty")]
    EmptyBatch,
    /// The data's width does not match the model's input.
    #[error("the data has {found} features but the model expects {expected}")]
    FeatureMismatch {
        /// Features in the model spec.
        expected: usize,
        /// Features in the data.
        found: usize,
    },
    /// A label names a class the model does not have.
    #[error(
        "example {index} has label {label}, but the model has only {classes} classes (labels 0..{classes})"
    )]
    LabelOutOfRange {
        /// Row of the example (in the dataset or batch checked).
        index: usize,
        /// Its label.
        label: u32,
        /// Classes of the model.
        classes: u32,
    },
    /// Feature rows and labels differ in number.
    #[error("the data has {rows} feature rows but {labels} labels")]
    LabelCount {
        /// Rows of features.
        rows: usize,
        /// Labels.
        labels: usize,
    },
    /// The weight vector does not match the spec's layout.
    #[error("the model has {found} weights but its spec needs {expected}")]
    WeightCount {
        /// `ModelSpec::param_count`.
        expected: u64,
        /// Length of the vector given.
        found: usize,
    },
    /// A training hyper-parameter cannot be used.
    #[error("training parameter `{field}` is invalid: {reason}")]
    InvalidParams {
        /// The field of `TrainingParams`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The loss or the parameters became NaN or infinite.
    #[error(
        "training diverged at step {step}: the loss or the parameters are no longer finite \
         (lower the learning rate or standardize the features)"
    )]
    Diverged {
        /// Zero-based step at which it was noticed.
        step: u32,
    },
}
