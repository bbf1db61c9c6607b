//! Genesis TOML: `Genesis::from_toml_str` (proto/src/genesis.rs), which parses and validates,
//! on the input as UTF-8 text (the node reads the file with `read_to_string`, which refuses
//! anything else: `load_genesis` in node/src/commands.rs).
//!
//! Asserts: no panic, no unbounded allocation or time; and for every genesis that is accepted,
//! the derived values the node computes at start-up (chain id, genesis header and its model
//! hash over the initial weights, parameter count, size-limit fitting) and a round trip:
//! `to_toml_string` then `from_toml_str` gives an equal genesis with the same chain id (the
//! genesis module promises the written form is what enters the chain id).
#![no_main]

use learnchain_proto::Genesis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(g) = Genesis::from_toml_str(text) else { return };
    let chain_id = g.chain_id();
    let header = g.header();
    assert_eq!(header.chain_id, chain_id);
    assert_eq!(g.param_count() as u64, g.model.param_count());
    let written = g.to_toml_string();
    let back = Genesis::from_toml_str(&written).unwrap_or_else(|e| panic!("an accepted genesis does not read back: {e}\n{written}"));
    assert_eq!(back, g, "the genesis changed through to_toml_string");
    assert_eq!(back.chain_id(), chain_id);
    let mut fitted = g.clone();
    fitted.fit_limits();
    let _ = fitted.validate();
});
