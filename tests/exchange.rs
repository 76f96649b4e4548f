//! The exchange through the real binary against the local RFC 8693 STS:
//! every subject source, every parameter on the wire, the cache, the
//! margin, single flight, and every fault mode (DESIGN.md sections 2-3).

mod support;

use serde_json::json;
use support::cmd::Sandbox;
use support::sts::{Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";

/// A sandbox whose config has one exchange registry with `extra` fields,
/// plus the STS it talks to.
fn setup(options: StsOptions, extra: serde_json::Value) -> (Sandbox, Sts) {
    let sts = Sts::start(options);
    let sandbox = Sandbox::new();
    let mut entry = json!({
        "token_endpoint": sts.url(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    });
    for (k, v) in extra.as_object().unwrap() {
        entry[k] = v.clone();
    }
    sandbox.write_config(&json!({ "registries": { REGISTRY: entry } }));
    (sandbox, sts)
}

fn login(sandbox: &Sandbox, sts: &Sts) -> String {
    let subject = sts.mint_subject_token("alice", 3600);
    sandbox.store(REGISTRY, "alice", &subject).quiet_success();
    subject
}

#[test]
fn get_exchanges_the_stored_login_token() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    let subject = login(&sandbox, &sts);
    let out = sandbox.get(REGISTRY).quiet_success();
    let answer = out.json();
    assert_eq!(answer["ServerURL"], REGISTRY);
    assert_eq!(answer["Username"], "alice");
    let secret = out.secret();
    assert_ne!(secret, subject, "must return the exchanged token, not the login token");
    assert_eq!(sts.requests(), 1);
    let req = sts.last_request().unwrap();
    assert_eq!(req.form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn second_get_is_served_from_the_cache() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    let first = sandbox.get(REGISTRY).quiet_success().secret();
    let second = sandbox.get(REGISTRY).quiet_success().secret();
    assert_eq!(first, second);
    assert_eq!(sts.requests(), 1);
}
