//! The model side of learnchain: everything that turns data into a model update and a model
//! into metrics.
//!
//! The global model is consensus state: a flat `Vec<i32>` in fixed point (value =
//! q / 2^frac_bits) laid out as `learnchain_proto::model::ModelSpec::layout` says. This crate
//! is the only place where that vector becomes floats, and only for local work:
//!
//! * [`fixed`] converts between the fixed-point global model and floats, and quantizes a
//!   trained model into the integer update a data source submits;
//! * [`network`] holds float parameters over the same flat layout and implements softmax
//!   regression and MLPs of any depth with hand-written gradients;
//! * [`quantize`] encodes a trained update in the genesis update encoding (`i32`, or `i16` /
//!   `i8` levels with scales, stochastically rounded after the DP noise);
//! * [`train`] runs local minibatch SGD from the global model ([`train_local`]);
//! * [`dp`] runs differentially private local training, DP-SGD ([`train_local_dp`]);
//! * [`eval`] measures accuracy and loss of a fixed-point model ([`evaluate`]);
//! * [`export`] writes the global model at a block as a safetensors file with its
//!   provenance and input transform, and reads one back for prediction;
//! * [`data`] owns datasets: built-in sets, the CSV loader, the agreed input transform,
//!   standardization, train/test split and IID / Dirichlet partitioning into shards.
//!
//! Data enters as a [`Dataset`] (from [`data::builtin()`] or [`data::load_csv`]) and the global
//! model as `&[i32]`; what leaves is a [`LocalUpdate`] (floats, to be quantized with
//! [`fixed::quantize_delta`], or encoded with [`quantize::encode_trained`]) or [`Metrics`]. Nothing here does network or disk I/O except
//! the CSV loader and the model-file reader.

pub mod data;
pub mod dp;
mod error;
pub mod eval;
pub mod export;
pub mod fixed;
pub mod network;
pub mod quantize;
pub mod train;

pub use data::{BUILTIN_DATASETS, DataError, Dataset, Standardizer};
pub use dp::{DpParams, train_local_dp};
pub use eval::{Metrics, evaluate};
pub use network::Network;
pub use train::{LocalUpdate, TrainError, train_local};
