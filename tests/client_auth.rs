//! Client authentication by `private_key_jwt` (RFC 7523 section 2.2) and
//! RFC 8693 actor tokens, through the real binary against the local STS,
//! which verifies every assertion as a strict server does (signature by a
//! key of the client's JWKS, `aud`, `iss`/`sub`, `exp`, a single-use
//! `jti`). Keys: tests/fixtures/client-keys (public, test-only).

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::cmd::Sandbox;
use support::sts::{ASSERTION_TYPE, AssertionClient, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const CLIENT_ID: &str = "docker-ci";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/client-keys").join(name)
}

fn jwks() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap()
}

/// Copies a fixture key into the sandbox, readable by its owner only (git
/// does not keep the mode), and returns its path.
fn key_file(sandbox: &Sandbox, name: &str) -> PathBuf {
    let path = sandbox.root().join(name);
    std::fs::copy(fixture(name), &path).unwrap();
    set_mode(&path, 0o600);
    path
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// An STS that demands private_key_jwt from CLIENT_ID, and a sandbox whose
/// entry signs with `key` (a fixture name) and a job token from the
/// environment as subject.
fn setup(key: &str, extra: Value) -> (Sandbox, Sts) {
    let sts = Sts::start(StsOptions {
        assertion_client: Some(AssertionClient::new(CLIENT_ID, jwks())),
        ..StsOptions::default()
    });
    let mut sandbox = Sandbox::new();
    let key = key_file(&sandbox, key);
    let mut entry = json!({
        "subject_token": {"source": "env", "var": "JOB_TOKEN"},
        "client_auth": "private_key_jwt",
        "client_id": CLIENT_ID,
        "client_key": {"source": "file", "path": key},
    });
    for (k, v) in extra.as_object().unwrap() {
        entry[k] = v.clone();
    }
    sandbox.write_exchange_config(REGISTRY, &sts.url(), entry);
    sandbox.set_env("JOB_TOKEN", &sts.mint_subject_token("job", 3600));
    (sandbox, sts)
}

fn decode(jwt: &str) -> (Value, Value) {
    use base64::Engine as _;
    let part = |p: &str| -> Value {
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    (part(parts[0]), part(parts[1]))
}

fn last_assertion(sts: &Sts) -> String {
    sts.last_request().unwrap().form_value("client_assertion").expect("a client_assertion").to_owned()
}

#[test]
fn every_key_form_and_algorithm_authenticates() {
    for (key, kid, algorithm, alg) in [
        ("rsa-pkcs1.pem", "rsa", None, "RS256"),
        ("rsa-pkcs8.pem", "rsa", Some("PS256"), "PS256"),
        ("p256-sec1.pem", "p256", None, "ES256"),
        ("p256-pkcs8.pem", "p256", None, "ES256"),
        ("p384-sec1.pem", "p384", None, "ES384"),
        ("ed25519-pkcs8.pem", "ed25519", None, "EdDSA"),
    ] {
        let mut extra = json!({"client_key_id": kid});
        if let Some(a) = algorithm {
            extra["client_key_algorithm"] = json!(a);
        }
        let (sandbox, sts) = setup(key, extra);
        sandbox.get(REGISTRY).quiet_success();
        let req = sts.last_request().unwrap();
        assert_eq!(req.form_value("client_assertion_type"), Some(ASSERTION_TYPE), "{key}");
        assert_eq!(req.form_value("client_id"), Some(CLIENT_ID), "{key}");
        assert_eq!(req.form_value("client_secret"), None, "{key}");
        assert_eq!(req.header("Authorization"), None, "{key}");
        let (header, claims) = decode(&last_assertion(&sts));
        assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some(alg), Some(kid)), "{key}");
        assert_eq!(claims["aud"], sts.url(), "{key}");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(lifetime > 0 && lifetime <= 300, "{key}: {claims}");
    }
}

#[test]
fn a_key_without_kid_is_found_by_the_server_among_its_keys() {
    let (sandbox, sts) = setup("p384-pkcs8.pem", json!({}));
    sandbox.get(REGISTRY).quiet_success();
    let (header, _) = decode(&last_assertion(&sts));
    assert!(header.get("kid").is_none(), "{header}");
}

#[test]
fn a_wrong_key_is_invalid_client_named_with_the_registry_and_the_endpoint() {
    // Signed by another key than the one registered under its kid.
    let (sandbox, sts) = setup("other-p256-sec1.pem", json!({"client_key_id": "p256"}));
    let out = sandbox.get(REGISTRY).failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    for words in ["invalid_client", REGISTRY, &sts.url(), "client_key"] {
        assert!(out.stdout.contains(words), "{words}: {out:?}");
    }
    let assertion = last_assertion(&sts);
    assert!(!out.stdout.contains(&assertion) && !out.stderr.contains(&assertion), "{out:?}");
    assert!(!sandbox.files_containing(&assertion).iter().any(|p| p.starts_with(sandbox.cache_dir())));
}

#[test]
fn each_exchange_signs_a_fresh_assertion_and_a_replayed_one_is_refused() {
    let (sandbox, sts) = setup("p256-sec1.pem", json!({}));
    sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().success();
    let first = sts.last_request().unwrap();
    sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().success();
    let (_, a) = decode(first.form_value("client_assertion").unwrap());
    let (_, b) = decode(&last_assertion(&sts));
    assert_ne!(a["jti"], b["jti"]);
    assert_eq!(sts.requests(), 2);
    // The first request again, byte for byte: the server has seen its jti.
    let (status, body) = post_form(&sts.url(), &first.form);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_client") && body.contains("already used"), "{body}");
}

#[test]
fn a_cache_hit_after_a_signed_exchange_reads_no_key_and_sends_nothing() {
    let (sandbox, sts) = setup("rsa-pkcs1.pem", json!({"client_key_id": "rsa"}));
    let first = sandbox.get(REGISTRY).quiet_success().secret();
    // No key at all: a hit must not need it.
    std::fs::remove_file(sandbox.root().join("rsa-pkcs1.pem")).unwrap();
    let second = sandbox.get(REGISTRY).quiet_success().secret();
    assert_eq!(first, second);
    assert_eq!(sts.requests(), 1);
}

#[test]
fn client_assertion_audience_replaces_the_endpoint_as_aud() {
    let (sandbox, sts) = setup("p256-sec1.pem", json!({"client_assertion_audience": "https://idp.example/"}));
    sts.update_options(|o| {
        o.assertion_client.as_mut().unwrap().audiences = vec!["https://idp.example/".into()]
    });
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(decode(&last_assertion(&sts)).1["aud"], "https://idp.example/");
}

#[test]
fn a_garbled_key_is_one_line_naming_the_entry_and_never_the_key() {
    let (sandbox, sts) = setup("rsa-pkcs1.pem", json!({}));
    let path = sandbox.root().join("rsa-pkcs1.pem");
    let pem = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, pem.replace("-----END RSA PRIVATE KEY-----", "")).unwrap();
    let out = sandbox.get(REGISTRY).failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains(REGISTRY) && out.stdout.contains("client key"), "{out:?}");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!out.stdout.contains(line) && !out.stderr.contains(line), "the key leaked: {out:?}");
    }
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_file_without_a_key_says_which_sections_it_expected_in_full() {
    // A certificate where the key belongs, the usual mix-up.
    let (sandbox, sts) = setup("rsa-pkcs1.pem", json!({}));
    let path = sandbox.root().join("rsa-pkcs1.pem");
    let pem = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, pem.replace("RSA PRIVATE KEY", "CERTIFICATE")).unwrap();
    let out = sandbox.get(REGISTRY).failure();
    // The PEM labels are not the key: redacting the key must leave them.
    assert!(
        out.stdout.contains("holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY"),
        "{out:?}"
    );
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!out.stdout.contains(line) && !out.stderr.contains(line), "the key leaked: {out:?}");
    }
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_missing_key_is_a_clear_error_and_no_request() {
    let (sandbox, sts) = setup("p256-sec1.pem", json!({}));
    std::fs::remove_file(sandbox.root().join("p256-sec1.pem")).unwrap();
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("client key") && out.stdout.contains("not available"), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_before_it_is_used() {
    let (sandbox, sts) = setup("p256-sec1.pem", json!({}));
    let path = sandbox.root().join("p256-sec1.pem");
    set_mode(&path, 0o644);
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("other users") && out.stdout.contains("chmod 600"), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_key_from_the_environment_signs_too() {
    let (mut sandbox, sts) =
        setup("p256-sec1.pem", json!({"client_key": {"source": "env", "var": "CLIENT_KEY"}}));
    sandbox.set_env("CLIENT_KEY", &std::fs::read_to_string(fixture("p256-sec1.pem")).unwrap());
    sandbox.get(REGISTRY).quiet_success();
    assert!(sts.last_request().unwrap().form_value("client_assertion").is_some());
}

// ---- actor tokens (RFC 8693 section 2.1) ----

fn actor_setup() -> (Sandbox, Sts) {
    let sts = Sts::start(StsOptions { require_actor: true, ..StsOptions::default() });
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({
            "subject_token": {"source": "env", "var": "USER_TOKEN"},
            "actor_token": {"source": "env", "var": "JOB_TOKEN"},
            "actor_token_type": JWT_TYPE,
        }),
    );
    sandbox.set_env("USER_TOKEN", &sts.mint_subject_token("alice", 3600));
    sandbox.set_env("JOB_TOKEN", &sts.mint_subject_token("ci-job-1", 3600));
    (sandbox, sts)
}

#[test]
fn an_actor_token_is_sent_with_its_type_and_the_token_names_the_actor() {
    let (sandbox, sts) = actor_setup();
    let token = sandbox.get(REGISTRY).quiet_success().secret();
    let req = sts.last_request().unwrap();
    assert_eq!(req.form_value("actor_token_type"), Some(JWT_TYPE));
    assert_eq!(req.form_value("actor_token"), sandbox.env().get("JOB_TOKEN").map(String::as_str));
    let (_, claims) = decode(&token);
    assert_eq!((claims["sub"].as_str(), claims["act"]["sub"].as_str()), (Some("alice"), Some("ci-job-1")));
}

#[test]
fn another_actor_gets_its_own_token_not_the_cached_one() {
    let (mut sandbox, sts) = actor_setup();
    sandbox.get(REGISTRY).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1);
    sandbox.set_env("JOB_TOKEN", &sts.mint_subject_token("ci-job-2", 3600));
    let token = sandbox.get(REGISTRY).quiet_success().secret();
    assert_eq!(sts.requests(), 2);
    assert_eq!(decode(&token).1["act"]["sub"], "ci-job-2");
}

#[test]
fn a_missing_actor_token_is_an_error_not_an_exchange_without_it() {
    let (mut sandbox, sts) = actor_setup();
    sandbox.remove_env("JOB_TOKEN");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("actor token") && out.stdout.contains("env:JOB_TOKEN"), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

/// POSTs `form` to `url` (plain HTTP, loopback) and returns the status
/// and body: a client that is not the helper, for replaying a request.
fn post_form(url: &str, form: &[(String, String)]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            format!("{}={}", test_servers::codec::form_encode(k), test_servers::codec::form_encode(v))
        })
        .collect();
    let body = body.join("&");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn debug_logs_show_neither_the_key_nor_the_assertion() {
    let (mut sandbox, sts) = setup("rsa-pkcs8.pem", json!({"client_key_id": "rsa"}));
    let log = sandbox.root().join("helper.log");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG", "debug");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log.to_str().unwrap());
    let out = sandbox.get(REGISTRY).success();
    let assertion = last_assertion(&sts);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!out.stderr.is_empty() || !logged.is_empty(), "no debug output at all: {out:?}");
    let pem = std::fs::read_to_string(fixture("rsa-pkcs8.pem")).unwrap();
    for text in [&out.stdout, &out.stderr, &logged] {
        assert!(!text.contains(&assertion), "the assertion leaked: {text}");
        assert!(!text.contains(assertion.split('.').nth(2).unwrap()), "the signature leaked: {text}");
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "the key leaked: {text}");
        }
    }
}

#[test]
fn status_and_doctor_show_neither_the_key_nor_an_assertion() {
    let (sandbox, sts) = setup("p256-sec1.pem", json!({"client_key_id": "p256"}));
    sandbox.get(REGISTRY).success();
    let outputs = [
        sandbox.cmd(&["status"]).run(),
        sandbox.cmd(&["status", "--json"]).run(),
        sandbox.cmd(&["doctor"]).run(),
        // Signs a new assertion of its own and shows what the server said.
        sandbox.cmd(&["doctor", "--exchange"]).run(),
    ];
    let assertions: Vec<String> = sts
        .all_requests()
        .iter()
        .filter_map(|r| r.form_value("client_assertion").map(str::to_owned))
        .collect();
    assert!(assertions.len() >= 2, "get and doctor --exchange each sign one: {assertions:?}");
    let pem = std::fs::read_to_string(fixture("p256-sec1.pem")).unwrap();
    for out in &outputs {
        assert!(out.stdout.contains(REGISTRY), "the registry is shown: {out:?}");
        for text in [&out.stdout, &out.stderr] {
            for assertion in &assertions {
                for part in assertion.split('.') {
                    assert!(!text.contains(part), "part of an assertion leaked: {text}");
                }
            }
            for line in pem.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!text.contains(line), "the key leaked: {text}");
            }
        }
    }
}

#[test]
fn a_retried_request_carries_a_fresh_assertion() {
    let (sandbox, sts) = setup("p256-sec1.pem", json!({}));
    sts.set_fault_times(support::sts::Fault::Status500, 1);
    sandbox.get(REGISTRY).quiet_success();
    let requests: Vec<_> = sts.all_requests().into_iter().filter(|r| r.path == "/token").collect();
    assert_eq!(requests.len(), 2);
    let jti = |i: usize| decode(requests[i].form_value("client_assertion").unwrap()).1["jti"].clone();
    assert_ne!(jti(0), jti(1));
}

// Runs sh, which Windows does not have.
#[cfg(unix)]
#[test]
fn a_key_command_that_fails_is_one_line_naming_the_entry_and_not_its_output() {
    let (sandbox, sts) = setup(
        "p256-sec1.pem",
        json!({"client_key": {"source": "command", "argv": ["sh", "-c", "echo partial-key-output; exit 3"]}}),
    );
    let out = sandbox.get(REGISTRY).failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(
        out.stdout.contains(REGISTRY) && out.stdout.contains("the client key (command:sh) cannot be read"),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains("partial-key-output") && !out.stderr.contains("partial-key-output"),
        "{out:?}"
    );
    assert_eq!(sts.requests(), 0);
}

#[test]
fn login_proves_the_login_token_with_a_signed_exchange() {
    let (sandbox, sts) = setup("p256-pkcs8.pem", json!({"subject_token": {"source": "keyring"}}));
    sandbox.logged_in(REGISTRY, &sts);
    assert_eq!(sts.requests(), 1);
    assert!(sts.last_request().unwrap().form_value("client_assertion").is_some());
    // The proving exchange's token serves the next get.
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1);
}

#[test]
fn a_login_with_delegation_caches_its_token_under_the_actors_key() {
    let (mut sandbox, sts) = actor_setup();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.config_path()).unwrap()).unwrap();
    config["registries"][REGISTRY]["subject_token"] = json!({"source": "keyring"});
    sandbox.write_config(&config);
    sandbox.remove_env("USER_TOKEN");
    sandbox.logged_in(REGISTRY, &sts);
    assert_eq!(sts.last_request().unwrap().form_value("actor_token_type"), Some(JWT_TYPE));
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1, "the get after login must be the proving exchange's token");
}
