//! Model files: `learnchain_model::export::from_safetensors` (crates/model/src/export.rs), the
//! reader behind `read_model_file` (which `learnchain predict` runs on a file that may have
//! come from another node's `GET /model.safetensors`): the safetensors structure, the
//! learnchain metadata (JSON values inside), tensor names, types and shapes, the content
//! digest and the model hash.
//!
//! Asserts: no panic, no unbounded allocation; an accepted file's network has the spec's
//! parameter count.
#![no_main]

use learnchain_model::export::from_safetensors;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = from_safetensors(data) else { return };
    assert_eq!(file.network.params().len() as u64, file.spec.param_count());
});
