//! The two architectures in float: softmax regression and an MLP of any depth, with
//! hand-written backward passes.
//!
//! A [`Network`] owns one flat `Vec<f64>` in exactly the layout of the fixed-point global
//! model (`ModelSpec::layout`: `[W1, b1, …, Wn, bn]`, row-major), and reads its
//! tensors as ndarray views over slices of that vector, so converting to and from the
//! consensus representation is a plain element-wise map and the gradient comes back in the
//! same layout, ready for an SGD step.
//!
//! * Softmax regression: `Z = X·W + b`.
//! * MLP with k hidden layers: `H0 = X`, `Hi = relu(H(i−1)·Wi + bi)` for `i = 1..k`,
//!   `Z = Hk·W(k+1) + b(k+1)`. The backward pass walks the layers in reverse: a dense
//!   layer's gradient from the activation below it and `dL/d(output)`, then
//!   `dL/dH = dL/d(output)·Wᵀ` masked by the ReLU.
//!
//! Both end in a softmax over classes with the cross-entropy loss averaged over the batch,
//! computed through a max-shifted log-sum-exp so large logits neither overflow nor lose the
//! loss. [`Network::gradient`] returns the loss and the data gradient only;
//! [`Network::add_weight_decay`] adds the L2 term on weight matrices (never biases)
//! separately, so a DP-SGD trainer can clip and noise the data gradient before the
//! data-independent penalty is added.

use learnchain_proto::genesis::MAX_MODEL_PARAMS_HARD;
use learnchain_proto::model::{Architecture, ModelSpec, TensorSlot};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};

use crate::fixed::to_float;
use crate::error::TrainError;

/// Float parameters of one model, laid out like the fixed-point global model.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    spec: ModelSpec,
    layout: Vec<TensorSlot>,
    params: Vec<f64>,
}

impl Network {
    /// A network over `params`, which must hold `spec.param_count()` values in the spec's
    /// flat layout.
    pub fn new(spec: &ModelSpec, params: Vec<f64>) -> Result<Self, TrainError> {
        let expected = check_spec(spec)?;
        if params.len() != expected {
            return Err(TrainError::WeightCount {
                expected: spec.param_count(),
                found: params.len(),
            });
        }
        Ok(Self {
            spec: spec.clone(),
            layout: spec.layout(),
            params,
        })
    }

    /// A network holding the float value of the fixed-point weights `weights`.
    pub fn from_fixed(spec: &ModelSpec, weights: &[i32]) -> Result<Self, TrainError> {
        Self::new(spec, to_float(spec, weights))
    }

    /// The spec this network implements.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The flat parameters.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// The flat parameters, for an optimizer step.
    pub fn params_mut(&mut self) -> &mut [f64] {
        &mut self.params
    }

    /// The flat parameters, consuming the network.
    pub fn into_params(self) -> Vec<f64> {
        self.params
    }

    /// Tensor `index` of the layout as a matrix view (a bias is a 1 × n row).
    fn tensor(&self, index: usize) -> ArrayView2<'_, f64> {
        view(&self.layout[index], &self.params)
    }

    /// The logits (`examples × classes`) of a batch of examples (`examples × features`).
    pub fn logits(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, TrainError> {
        self.check_features(x)?;
        Ok(self.forward(x).logits)
    }

    /// Mean cross-entropy of the batch `(x, y)` and its gradient with respect to every
    /// parameter, flat in the spec's layout. Without weight decay: see
    /// [`Network::add_weight_decay`].
    pub fn gradient(
        &self,
        x: ArrayView2<'_, f64>,
        y: &[u32],
    ) -> Result<(f64, Vec<f64>), TrainError> {
        self.check_batch(x, y)?;
        let n = x.nrows() as f64;
        let Forward { hidden, mut logits } = self.forward(x);
        // dL/dZ = (softmax(Z) − onehot(y)) / n
        let loss = softmax_cross_entropy(&mut logits, y) / n;
        for (mut row, &label) in logits.rows_mut().into_iter().zip(y) {
            row[label as usize] -= 1.0;
        }
        let mut d_out = logits / n;

        let mut grad = vec![0.0; self.params.len()];
        for layer in (0..self.layers()).rev() {
            let input = if layer == 0 { x } else { hidden[layer - 1].view() };
            let (w, b) = (&self.layout[2 * layer], &self.layout[2 * layer + 1]);
            write_dense(&mut grad, w, b, input, d_out.view());
            if layer > 0 {
                // dH = d_out·Wᵀ, masked by the ReLU (h > 0 exactly where the
                // pre-activation was positive).
                let mut dh = d_out.dot(&self.tensor(2 * layer).t());
                dh.zip_mut_with(&hidden[layer - 1], |d, &a| {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                });
                d_out = dh;
            }
        }
        Ok((loss, grad))
    }

    /// Adds the L2 weight-decay gradient `l2 · W` of every weight matrix (not the biases) to
    /// `grad` (flat, as returned by [`Network::gradient`]) and returns the penalty
    /// `l2 / 2 · Σ W²` to add to the loss.
    pub fn add_weight_decay(&self, l2: f64, grad: &mut [f64]) -> f64 {
        if l2 == 0.0 {
            return 0.0;
        }
        let mut sum_sq = 0.0;
        // The layout alternates weight matrix, bias: [W1, b1, …, Wn, bn].
        for slot in self.layout.iter().step_by(2) {
            let weights = &self.params[slot.range()];
            for (g, &w) in grad.iter_mut().skip(slot.offset).zip(weights) {
                *g += l2 * w;
                sum_sq += w * w;
            }
        }
        0.5 * l2 * sum_sq
    }

    /// Dense layers of the network.
    fn layers(&self) -> usize {
        self.layout.len() / 2
    }

    /// The class probabilities (`examples × classes`, rows summing to 1) of a batch.
    pub fn probabilities(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, TrainError> {
        let mut z = self.logits(x)?;
        for mut row in z.rows_mut() {
            let lse = log_sum_exp(row.view());
            row.mapv_inplace(|v| (v - lse).exp());
        }
        Ok(z)
    }

    fn forward(&self, x: ArrayView2<'_, f64>) -> Forward {
        let last = self.layers() - 1;
        let mut hidden: Vec<Array2<f64>> = Vec::with_capacity(last);
        for layer in 0..last {
            let input = hidden.last().map_or(x, |h| h.view());
            let mut h = affine(input, self.tensor(2 * layer), self.tensor(2 * layer + 1));
            h.mapv_inplace(|v| v.max(0.0));
            hidden.push(h);
        }
        let input = hidden.last().map_or(x, |h| h.view());
        let logits = affine(input, self.tensor(2 * last), self.tensor(2 * last + 1));
        Forward { hidden, logits }
    }

    fn check_features(&self, x: ArrayView2<'_, f64>) -> Result<(), TrainError> {
        let expected = self.spec.features as usize;
        if x.ncols() != expected {
            return Err(TrainError::FeatureMismatch {
                expected,
                found: x.ncols(),
            });
        }
        Ok(())
    }

    fn check_batch(&self, x: ArrayView2<'_, f64>, y: &[u32]) -> Result<(), TrainError> {
        self.check_features(x)?;
        if x.nrows() != y.len() {
            return Err(TrainError::LabelCount {
                rows: x.nrows(),
                labels: y.len(),
            });
        }
        if y.is_empty() {
            return Err(TrainError::EmptyBatch);
        }
        check_labels(y, self.spec.classes)
    }
}

/// Activations kept from the forward pass for the backward pass.
struct Forward {
    /// The post-ReLU output of each hidden layer, input side first (none for softmax).
    hidden: Vec<Array2<f64>>,
    logits: Array2<f64>,
}

/// Checks that the spec describes a network this crate can build; returns its parameter
/// count.
pub(crate) fn check_spec(spec: &ModelSpec) -> Result<usize, TrainError> {
    if spec.features == 0 {
        return Err(TrainError::InvalidSpec("the model has no input features"));
    }
    if spec.classes == 0 {
        return Err(TrainError::InvalidSpec("the model has no output classes"));
    }
    match spec.architecture {
        Architecture::Mlp if spec.hidden.is_empty() => {
            return Err(TrainError::InvalidSpec(
                "an MLP needs at least one hidden layer",
            ));
        }
        Architecture::Mlp if spec.hidden.contains(&0) => {
            return Err(TrainError::InvalidSpec(
                "every hidden layer of an MLP needs at least one unit",
            ));
        }
        Architecture::Softmax if !spec.hidden.is_empty() => {
            return Err(TrainError::InvalidSpec(
                "a softmax model must have 0 hidden units",
            ));
        }
        _ => {}
    }
    let count = spec.param_count();
    if count > MAX_MODEL_PARAMS_HARD {
        return Err(TrainError::InvalidSpec(
            "the model has more parameters than the protocol allows",
        ));
    }
    usize::try_from(count).map_err(|_| TrainError::InvalidSpec("the model does not fit in memory"))
}

/// Checks every label against the class count.
pub(crate) fn check_labels(y: &[u32], classes: u32) -> Result<(), TrainError> {
    match y.iter().position(|&label| label >= classes) {
        Some(index) => Err(TrainError::LabelOutOfRange {
            index,
            label: y[index],
            classes,
        }),
        None => Ok(()),
    }
}

/// `log Σ exp(z)`, shifted by the maximum so it neither overflows nor underflows.
pub(crate) fn log_sum_exp(z: ArrayView1<'_, f64>) -> f64 {
    let max = z.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    if !max.is_finite() {
        return max;
    }
    max + z.fold(0.0, |s, &v| s + (v - max).exp()).ln()
}

/// Replaces each row of logits by its softmax and returns the summed cross-entropy
/// `Σ (logsumexp(z) − z_y)`. Labels must be in range.
fn softmax_cross_entropy(z: &mut Array2<f64>, y: &[u32]) -> f64 {
    let mut total = 0.0;
    for (mut row, &label) in z.rows_mut().into_iter().zip(y) {
        let lse = log_sum_exp(row.view());
        total += lse - row[label as usize];
        row.mapv_inplace(|v| (v - lse).exp());
    }
    total
}

/// `x·W + b` with the bias row broadcast over the batch.
fn affine(x: ArrayView2<'_, f64>, w: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut out = x.dot(&w);
    out += &b;
    out
}

/// Writes the gradients of a dense layer `input·W + b` given `d_out = dL/d(output)`:
/// `dW = inputᵀ·d_out`, `db = Σ_rows d_out`.
fn write_dense(
    grad: &mut [f64],
    w: &TensorSlot,
    b: &TensorSlot,
    input: ArrayView2<'_, f64>,
    d_out: ArrayView2<'_, f64>,
) {
    let mut dw = view_mut(w, grad);
    general_mat_mul(1.0, &input.t(), &d_out, 0.0, &mut dw);
    let mut db = view_mut(b, grad);
    db.assign(&d_out.sum_axis(Axis(0)).insert_axis(Axis(0)));
}

fn view<'a>(slot: &TensorSlot, flat: &'a [f64]) -> ArrayView2<'a, f64> {
    ArrayView2::from_shape((slot.rows, slot.cols), &flat[slot.range()])
        .expect("a layout slot lies inside the parameter vector checked at construction")
}

fn view_mut<'a>(slot: &TensorSlot, flat: &'a mut [f64]) -> ArrayViewMut2<'a, f64> {
    ArrayViewMut2::from_shape((slot.rows, slot.cols), &mut flat[slot.range()])
        .expect("a layout slot lies inside the gradient vector sized from the layout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use rand_distr::StandardNormal;

    fn spec(architecture: Architecture, hidden: &[u32]) -> ModelSpec {
        ModelSpec {
            architecture,
            features: 4,
            classes: 3,
            hidden: hidden.to_vec(),
            init_seed: 1,
            frac_bits: 16,
            input: None,
        }
    }

    fn random_matrix(rng: &mut ChaCha20Rng, rows: usize, cols: usize, scale: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| {
            scale * rng.sample::<f64, _>(StandardNormal)
        })
    }

    /// Central finite differences of (loss + decay penalty) against the analytic gradient.
    fn gradient_check(spec: &ModelSpec) {
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let count = spec.param_count() as usize;
        let params: Vec<f64> = (0..count)
            .map(|_| 0.5 * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let x = random_matrix(&mut rng, 7, spec.features as usize, 1.0);
        let y: Vec<u32> = (0..7).map(|_| rng.gen_range(0..spec.classes)).collect();
        let l2 = 0.03;
        let objective = |p: &[f64]| -> f64 {
            let net = Network::new(spec, p.to_vec()).expect("valid network");
            let (loss, mut grad) = net.gradient(x.view(), &y).expect("valid batch");
            loss + net.add_weight_decay(l2, &mut grad)
        };
        let net = Network::new(spec, params.clone()).expect("valid network");
        let (_, mut grad) = net.gradient(x.view(), &y).expect("valid batch");
        net.add_weight_decay(l2, &mut grad);
        let eps = 1e-5;
        for i in 0..count {
            let mut plus = params.clone();
            plus[i] += eps;
            let mut minus = params.clone();
            minus[i] -= eps;
            let numeric = (objective(&plus) - objective(&minus)) / (2.0 * eps);
            let analytic = grad[i];
            let tol = 1e-5 * (numeric.abs() + analytic.abs()) + 1e-9;
            assert!(
                (numeric - analytic).abs() <= tol,
                "param {i}: analytic {analytic}, numeric {numeric}"
            );
        }
    }

    #[test]
    fn softmax_gradient_matches_finite_differences() {
        gradient_check(&spec(Architecture::Softmax, &[]));
    }

    #[test]
    fn mlp_gradient_matches_finite_differences() {
        gradient_check(&spec(Architecture::Mlp, &[5]));
    }

    #[test]
    fn deep_mlp_gradients_match_finite_differences() {
        gradient_check(&spec(Architecture::Mlp, &[6, 5]));
        gradient_check(&spec(Architecture::Mlp, &[5, 4, 3]));
        gradient_check(&spec(Architecture::Mlp, &[3, 7, 2, 4]));
    }

    #[test]
    fn probabilities_are_the_softmax_of_the_logits() {
        let s = spec(Architecture::Mlp, &[6, 5]);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let params = (0..s.param_count()).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
        let net = Network::new(&s, params).expect("valid network");
        let x = random_matrix(&mut rng, 5, 4, 1.0);
        let p = net.probabilities(x.view()).expect("valid batch");
        let z = net.logits(x.view()).expect("valid batch");
        for (prow, zrow) in p.rows().into_iter().zip(z.rows()) {
            assert!((prow.sum() - 1.0).abs() < 1e-12);
            let argmax = |r: ndarray::ArrayView1<'_, f64>| {
                r.iter().enumerate().fold(0, |best, (i, &v)| if v > r[best] { i } else { best })
            };
            assert_eq!(argmax(prow), argmax(zrow));
        }
    }

    #[test]
    fn loss_is_stable_for_huge_logits() {
        let s = spec(Architecture::Softmax, &[]);
        let mut params = vec![0.0; s.param_count() as usize];
        params[0] = 1e6; // W[0][0]: class 0 gets a logit of 1e6 · x0
        let net = Network::new(&s, params).expect("valid network");
        let x = ndarray::array![[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]];
        let (loss, grad) = net.gradient(x.view(), &[0, 1]).expect("valid batch");
        assert!(
            loss.is_finite() && (loss - 0.5e6).abs() < 1e-6,
            "loss {loss}"
        );
        assert!(grad.iter().all(|g| g.is_finite()));
    }

    #[test]
    fn weight_decay_skips_biases() {
        let s = spec(Architecture::Mlp, &[2]);
        let net = Network::new(&s, vec![1.0; s.param_count() as usize]).expect("valid network");
        let mut grad = vec![0.0; s.param_count() as usize];
        let penalty = net.add_weight_decay(0.5, &mut grad);
        let layout = s.layout();
        assert!(grad[layout[0].range()].iter().all(|&g| g == 0.5));
        assert!(grad[layout[1].range()].iter().all(|&g| g == 0.0));
        assert!(grad[layout[2].range()].iter().all(|&g| g == 0.5));
        assert!(grad[layout[3].range()].iter().all(|&g| g == 0.0));
        assert_eq!(penalty, 0.25 * (layout[0].len() + layout[2].len()) as f64);
    }

    #[test]
    fn refuses_bad_inputs() {
        let s = spec(Architecture::Softmax, &[]);
        assert!(matches!(
            Network::new(&s, vec![0.0; 3]),
            Err(TrainError::WeightCount { found: 3, .. })
        ));
        let net = Network::new(&s, vec![0.0; 15]).expect("valid network");
        let x = Array2::zeros((2, 4));
        assert!(matches!(
            net.gradient(x.view(), &[0]),
            Err(TrainError::LabelCount { .. })
        ));
        assert!(matches!(
            net.gradient(x.view(), &[0, 3]),
            Err(TrainError::LabelOutOfRange {
                index: 1,
                label: 3,
                classes: 3
            })
        ));
        assert!(matches!(
            net.logits(Array2::zeros((2, 5)).view()),
            Err(TrainError::FeatureMismatch { .. })
        ));
        assert!(matches!(
            net.gradient(Array2::zeros((0, 4)).view(), &[]),
            Err(TrainError::EmptyBatch)
        ));
        let mlp = spec(Architecture::Mlp, &[]);
        assert!(matches!(
            Network::new(&mlp, vec![]),
            Err(TrainError::InvalidSpec(_))
        ));
        let gap = spec(Architecture::Mlp, &[4, 0]);
        assert!(matches!(
            Network::new(&gap, vec![]),
            Err(TrainError::InvalidSpec(_))
        ));
    }
}
