//! `doctor` on key-based client authentication and actor tokens: the key
//! parses and signs, its file is private, the certificate is the key's and
//! neither expired, early nor about to expire, the actor token is there.
//! Findings name files and sources, never key material.

mod support;

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, KeyPair};
use serde_json::{Value, json};
use support::cmd::Sandbox;

const REGISTRY: &str = "registry.example.com";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/client-keys").join(name)
}

fn write_private(sandbox: &Sandbox, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = sandbox.root().join(name);
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path
}

/// `doctor --json`'s findings of `area` (the endpoint is not running;
/// those findings are not what these tests read).
fn findings(sandbox: &Sandbox, area: &str) -> Vec<(String, String)> {
    let out = sandbox.cmd(&["doctor", "--json"]).run();
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let list = report["findings"].as_array().unwrap();
    list.iter()
        .filter(|f| f["area"] == area)
        .map(|f| (f["level"].as_str().unwrap().to_owned(), f["text"].as_str().unwrap().to_owned()))
        .collect()
}

fn jwt_entry(sandbox: &Sandbox, key: &Path) {
    sandbox.write_exchange_config(
        REGISTRY,
        "http://127.0.0.1:9/token",
        json!({"client_auth": "private_key_jwt", "client_id": "c", "client_key_id": "k1",
               "client_key": {"source": "file", "path": key}}),
    );
}

#[test]
fn a_good_signing_key_is_reported_with_its_algorithm() {
    let sandbox = Sandbox::new();
    let key =
        write_private(&sandbox, "k.pem", &std::fs::read_to_string(fixture("p384-sec1.pem")).unwrap(), 0o600);
    jwt_entry(&sandbox, &key);
    let found = findings(&sandbox, "client");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "ok");
    assert!(found[0].1.contains("signs ES384 client assertions, kid k1"), "{found:?}");
}

#[test]
fn a_garbled_key_is_a_problem_that_shows_no_key() {
    let sandbox = Sandbox::new();
    let pem = std::fs::read_to_string(fixture("rsa-pkcs1.pem")).unwrap();
    let key = write_private(&sandbox, "k.pem", &pem.replace("-----END RSA PRIVATE KEY-----", ""), 0o600);
    jwt_entry(&sandbox, &key);
    let out = sandbox.cmd(&["doctor"]).run().failure();
    let line = out.stdout.lines().find(|l| l.contains("client key")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(line.starts_with('✗') && line.contains("not valid PEM"), "{out:?}");
    for body in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!out.stdout.contains(body), "{out:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_group_readable_key_file_is_a_warning() {
    let sandbox = Sandbox::new();
    let key =
        write_private(&sandbox, "k.pem", &std::fs::read_to_string(fixture("p256-sec1.pem")).unwrap(), 0o640);
    jwt_entry(&sandbox, &key);
    let found = findings(&sandbox, "client");
    assert!(found.iter().any(|(level, text)| level == "warning" && text.contains("mode 640")), "{found:?}");
}

/// An mTLS entry presenting a self-signed certificate valid between the
/// two Unix times, for `key` (or a fresh key's certificate when `other`).
fn mtls_entry(sandbox: &Sandbox, not_before: i64, not_after: i64, other: bool) {
    let key = KeyPair::generate().unwrap();
    let signer =
        if other { KeyPair::generate().unwrap() } else { KeyPair::from_pem(&key.serialize_pem()).unwrap() };
    let mut params = CertificateParams::new(vec!["client".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(not_before as u64);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(not_after as u64);
    let cert = params.self_signed(&signer).unwrap();
    let cert_path = write_private(sandbox, "client.pem", &cert.pem(), 0o644);
    let key_path = write_private(sandbox, "client.key", &key.serialize_pem(), 0o600);
    sandbox.write_exchange_config(
        REGISTRY,
        "https://127.0.0.1:9/token",
        json!({"client_auth": "self_signed_tls_client_auth", "client_id": "c",
               "client_certificate": cert_path, "client_key": {"source": "file", "path": key_path}}),
    );
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_valid_certificate_of_the_key_is_reported_with_its_end() {
    let sandbox = Sandbox::new();
    mtls_entry(&sandbox, now() - 3600, now() + 90 * 86_400, false);
    let found = findings(&sandbox, "client");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0 == "ok" && found[0].1.contains("is the key's and valid until"), "{found:?}");
}

#[test]
fn a_certificate_about_to_expire_is_a_warning() {
    let sandbox = Sandbox::new();
    // An hour over three days: the check may run a while after the
    // certificate is made (Wine starts slowly), and days are counted whole.
    mtls_entry(&sandbox, now() - 90 * 86_400, now() + 3 * 86_400 + 3_600, false);
    let found = findings(&sandbox, "client");
    assert!(
        found.iter().any(|(l, t)| l == "warning" && t.contains("expires at") && t.contains("3 days")),
        "{found:?}"
    );
}

#[test]
fn an_expired_or_early_certificate_is_a_problem() {
    let sandbox = Sandbox::new();
    mtls_entry(&sandbox, now() - 90 * 86_400, now() - 86_400, false);
    let found = findings(&sandbox, "client");
    assert!(found.iter().any(|(l, t)| l == "problem" && t.contains("expired at")), "{found:?}");
    mtls_entry(&sandbox, now() + 86_400, now() + 90 * 86_400, false);
    let found = findings(&sandbox, "client");
    assert!(found.iter().any(|(l, t)| l == "problem" && t.contains("not valid before")), "{found:?}");
}

#[test]
fn a_certificate_of_another_key_is_a_problem() {
    let sandbox = Sandbox::new();
    mtls_entry(&sandbox, now() - 3600, now() + 90 * 86_400, true);
    let found = findings(&sandbox, "client");
    assert!(
        found.iter().any(|(l, t)| l == "problem" && t.contains("is not for the client key")),
        "{found:?}"
    );
}

#[test]
fn a_missing_actor_token_is_a_problem_with_its_variable() {
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        "http://127.0.0.1:9/token",
        json!({"actor_token": {"source": "env", "var": "JOB_TOKEN"},
               "actor_token_type": "urn:ietf:params:oauth:token-type:jwt"}),
    );
    let found = findings(&sandbox, "actor");
    assert!(found.iter().any(|(l, t)| l == "problem" && t.contains("env:JOB_TOKEN")), "{found:?}");
}
