//! Node config TOML: `NodeConfig` as `NodeConfig::load` parses it (`toml::from_str` on the
//! file's UTF-8 text, node/src/config.rs), then what the node checks and derives from it at
//! start-up: `NodeConfig::validate` (roles, RPC address, data section, partition spec),
//! `adversary()`, `rpc_addr()`, `member_key_path()`, and for a data source the privacy plan
//! (`PrivacyPlan::resolve`, node/src/privacy.rs, under a fuzz genesis with 1000 examples),
//! which runs the accountant on the configured parameters.
//!
//! Asserts: no panic, no unbounded allocation or time (the run's `-timeout`); a config that
//! validates has a role, a shard below its shard count and a test fraction in [0, 1).
#![no_main]

use learnchain_fuzz::fixture;
use learnchain_node::NodeConfig;
use learnchain_node::privacy::PrivacyPlan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(cfg) = toml::from_str::<NodeConfig>(text) else { return };
    let _ = cfg.adversary();
    let _ = cfg.rpc_addr();
    let _ = cfg.member_key_path();
    if cfg.validate().is_err() {
        return;
    }
    assert!(!cfg.roles.is_empty());
    assert!(cfg.data.shard < cfg.data.shards);
    assert!((0.0..1.0).contains(&cfg.data.test_fraction));
    let _ = PrivacyPlan::resolve(&cfg.privacy, &fixture(0).genesis, 1000);
});
