//! The trained model outside the chain: the model file of a block, `learnchain model
//! export` and `learnchain predict`.
//!
//! [`file_at`] reads the fixed-point model after a block of a [`Chain`] and turns it into
//! the safetensors bytes of `learnchain_model::export`, with the block's provenance and
//! the genesis's input transform; the RPC port serves them at `GET /model.safetensors`
//! and [`export`] writes them, fetched from a running node or read from a stopped node's
//! data directory. [`predict`] reads a model file back and applies it to raw data.

pub mod export;
pub mod predict;

use learnchain_chain::{BlockMeta, Chain};
use learnchain_model::export::{Provenance, to_safetensors};
use learnchain_proto::model::ModelSpec;
use learnchain_rpc::ApiError;

pub use export::export;
pub use predict::predict;

/// The model file of the block at `height` of `chain`'s best chain (`None`: the head).
/// A height above the head is [`ApiError::NotFound`].
pub fn file_at(chain: &Chain, height: Option<u64>) -> Result<Vec<u8>, ApiError> {
    let (provenance, weights) = weights_at(chain, height)?;
    encode(&chain.genesis().model, &weights, &provenance)
}

/// The fixed-point model after the block at `height` (`None`: the head) and where it comes
/// from: the part of [`file_at`] that reads the chain, so a caller holding the chain's lock
/// can release it before the file is encoded.
pub fn weights_at(chain: &Chain, height: Option<u64>) -> Result<(Provenance, Vec<i32>), ApiError> {
    let meta = meta_at(chain, height)?;
    let weights = chain.model_at(&meta.hash).map_err(|e| ApiError::Internal(e.to_string()))?;
    let provenance =
        Provenance { chain_id: chain.chain_id(), height: meta.height, block_hash: meta.hash, model_hash: meta.model_hash };
    Ok((provenance, weights))
}

/// The block at `height` of `chain`'s best chain (`None`: the head), as the RPC and the
/// model file name a block: a height above the head is [`ApiError::NotFound`].
pub fn meta_at(chain: &Chain, height: Option<u64>) -> Result<BlockMeta, ApiError> {
    let Some(h) = height else { return Ok(chain.head().clone()) };
    let hash = chain
        .canonical_hash(h)
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("no block at height {h} (head is {})", chain.head().height)))?;
    chain.meta(&hash).ok_or_else(|| ApiError::Internal(format!("no meta for {hash}")))
}

/// The model file of `weights` (of the model `spec`) from the block `provenance` names.
pub fn encode(spec: &ModelSpec, weights: &[i32], provenance: &Provenance) -> Result<Vec<u8>, ApiError> {
    to_safetensors(spec, weights, provenance).map_err(|e| ApiError::Internal(e.to_string()))
}
