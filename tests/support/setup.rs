//! The set-up most suites start from: a sandbox whose config has one
//! exchange registry, [`REGISTRY`], at a fresh local STS, with no login
//! stored yet; and the check that a command showed none of some secrets.

use serde_json::Value;

use super::cmd::{Output, Sandbox};
use super::sts::{Sts, StsOptions};

/// The exchange registry of [`exchange_sandbox`].
pub const REGISTRY: &str = "registry.example.com";

/// A sandbox with [`REGISTRY`] configured for exchange at a new STS with
/// default options (JWT subjects, nothing else in the entry).
pub fn exchange_sandbox() -> (Sandbox, Sts) {
    exchange_sandbox_with(StsOptions::default(), serde_json::json!({}))
}

/// The same with an STS of these options and `extra` fields in the entry.
pub fn exchange_sandbox_with(options: StsOptions, extra: Value) -> (Sandbox, Sts) {
    let sts = Sts::start(options);
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), extra);
    (sandbox, sts)
}

/// Asserts that neither stdout nor stderr of `out` contains any of
/// `secrets`.
#[track_caller]
pub fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for secret in secrets {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "a secret leaked: {out:?}");
    }
}
