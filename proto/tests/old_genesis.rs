//! Genesis files written before deeper networks and the input transform existed (by the
//! `learnchain genesis new` of commit 4db5ec7) still load, with the chain ids that version
//! printed: an upgraded node stays on its chain.

use learnchain_proto::Genesis;

fn load(name: &str) -> Genesis {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Genesis::from_toml_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_one_layer_mlp_genesis_keeps_its_chain_id() {
    let g = load("genesis-v0-mlp.toml");
    assert_eq!(g.model.hidden, vec![16]);
    assert_eq!(g.model.input, None);
    assert_eq!(g.chain_id().to_hex(), "9059efcec8c709caeed5825cc0aebdc07171179a7784ea77d07f0d60a61da3e3");
    // Written back by this version and read again, it is the same chain.
    assert_eq!(Genesis::from_toml_str(&g.to_toml_string()).expect("round trip").chain_id(), g.chain_id());
}

#[test]
fn a_softmax_genesis_keeps_its_chain_id() {
    let g = load("genesis-v0-softmax.toml");
    assert!(g.model.hidden.is_empty());
    assert_eq!(g.chain_id().to_hex(), "99b4f918a44b80cde6c1f6d9c2df1d2129f53f1ce8b157cdbffc9bd930ff8bd9");
    assert!(g.to_toml_string().contains("hidden = 0"));
}
