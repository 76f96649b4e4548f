//! The network policy of the exchange (DESIGN.md sections 2-3) against a
//! hostile or misconfigured endpoint: TLS trust, clear text to a remote
//! host, redirects and oversized answers. Traffic goes to loopback only.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::cmd::Sandbox;
use support::hostile::{Behaviour, Hostile};
use support::sts::{Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";

/// A sandbox with one exchange registry at `endpoint` and a stored login
/// token minted by `idp`.
fn sandbox_for(endpoint: &str, idp: &Sts, extra: serde_json::Value) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, endpoint, extra);
    sandbox.store(REGISTRY, "alice", &idp.mint_subject_token("alice", 3600)).quiet_success();
    sandbox
}

/// An HTTPS STS on 127.0.0.1 with a fresh self-signed certificate, and
/// that certificate in PEM.
fn https_sts() -> (Sts, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("self-signed certificate");
    let cert_pem = cert.cert.pem();
    let sts = Sts::start_https(StsOptions::default(), &cert_pem, &cert.signing_key.serialize_pem());
    (sts, cert_pem)
}

#[test]
fn untrusted_certificate_fails_clearly_without_a_request() {
    let (sts, _) = https_sts();
    assert!(sts.url().starts_with("https://127.0.0.1:"));
    let sandbox = sandbox_for(&sts.url(), &sts, json!({}));

    let out = sandbox.get(REGISTRY).failure();

    assert!(out.stdout.contains(&sts.url()), "the error should name the endpoint: {out:?}");
    assert!(out.stdout.to_lowercase().contains("certificate"), "the error should say why: {out:?}");
    assert_eq!(sts.requests(), 0, "no request may pass an untrusted handshake");
}

#[test]
fn certificate_trusted_through_ca_file_works() {
    let (sts, cert_pem) = https_sts();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), cert_pem).unwrap();
    let sandbox = sandbox_for(&sts.url(), &sts, json!({ "ca_file": ca.path() }));

    let out = sandbox.get(REGISTRY).quiet_success();

    assert!(!out.secret().is_empty());
    assert_eq!(sts.requests(), 1);
}

#[test]
fn clear_text_to_a_remote_host_is_refused_before_any_request() {
    // `.invalid` never resolves (RFC 6761). To see that not even a
    // connection is attempted, every proxy variable points at a loopback
    // listener: a client that tried to send would connect there first.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let proxy = format!("http://{}", trap.local_addr().unwrap());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, "http://sts.invalid/token", json!({}));

    let out = sandbox
        .cmd(&["get"])
        .stdin(REGISTRY)
        .env("http_proxy", &proxy)
        .env("HTTP_PROXY", &proxy)
        .env("ALL_PROXY", &proxy)
        .run()
        .failure();

    assert!(out.stdout.contains("http://sts.invalid/token"), "the error should name the endpoint: {out:?}");
    assert!(out.stdout.contains("non-loopback") && out.stdout.contains("https://"), "{out:?}");
    let attempt = trap.accept();
    assert!(
        matches!(&attempt, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the helper connected: {attempt:?}"
    );
}

#[test]
fn redirect_is_not_followed_and_the_token_goes_nowhere_else() {
    let sts = Sts::start(StsOptions::default());
    let elsewhere = Sts::start(StsOptions::default());
    sts.set_fault(Fault::Redirect { location: elsewhere.url() });
    let sandbox = sandbox_for(&sts.url(), &sts, json!({}));

    let out = sandbox.get(REGISTRY).failure();

    assert!(out.stdout.contains("redirect") && out.stdout.contains(&elsewhere.url()), "{out:?}");
    assert_eq!(sts.requests(), 1, "a redirect is not retried");
    assert_eq!(elsewhere.requests(), 0, "the redirect was followed");
}

/// Runs `get` against an STS answering `fault` and checks it is refused at
/// the 1 MiB limit, well before 100 MiB could matter.
fn assert_huge_body_is_refused(fault: Fault) {
    let sts = Sts::start(StsOptions::default());
    sts.set_fault(fault);
    let sandbox = sandbox_for(&sts.url(), &sts, json!({}));

    let started = Instant::now();
    let out = sandbox.get(REGISTRY).failure();

    assert!(out.stdout.contains("larger than 1048576 bytes"), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn hundred_mib_answer_with_a_length_is_refused_at_the_limit() {
    assert_huge_body_is_refused(Fault::HugeBody { bytes: 100 * 1024 * 1024 });
}

#[test]
fn hundred_mib_chunked_answer_is_cut_at_the_limit() {
    assert_huge_body_is_refused(Fault::HugeChunkedBody { bytes: 100 * 1024 * 1024 });
}

const TOKEN_ANSWER: &str = r#"{"access_token": "opaque-token", "token_type": "Bearer", "expires_in": 300}"#;

/// An endpoint that drops its first `drops` connections after reading the
/// request, with a reset or a plain close, then answers with a token.
fn dropping(drops: usize, reset: bool) -> Hostile {
    let answer = Behaviour::Answer { status: 200, body: TOKEN_ANSWER.to_owned() };
    Hostile::start(Behaviour::DropFirst { times: drops, reset, then: Box::new(answer) })
}

#[test]
fn a_connection_reset_before_any_answer_is_retried() {
    let idp = Sts::start(StsOptions::default());
    let endpoint = dropping(2, true);
    let sandbox = sandbox_for(&endpoint.url(), &idp, json!({}));

    let out = sandbox.get(REGISTRY).quiet_success();

    assert_eq!(out.secret(), "opaque-token");
    assert_eq!(endpoint.connections(), 3, "two resets, then the answer");
}

#[test]
fn a_connection_closed_before_any_answer_is_retried() {
    let idp = Sts::start(StsOptions::default());
    let endpoint = dropping(1, false);
    let sandbox = sandbox_for(&endpoint.url(), &idp, json!({}));

    assert_eq!(sandbox.get(REGISTRY).quiet_success().secret(), "opaque-token");
    assert_eq!(endpoint.connections(), 2, "one close, then the answer");
}

#[test]
fn an_endpoint_that_resets_every_connection_is_tried_four_times_then_reported() {
    let idp = Sts::start(StsOptions::default());
    let endpoint = dropping(usize::MAX, true);
    let sandbox = sandbox_for(&endpoint.url(), &idp, json!({}));

    let out = sandbox.get(REGISTRY).failure();

    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains(&endpoint.url()) && out.stdout.contains("reset"), "{out:?}");
    assert_eq!(endpoint.connections(), 4, "the first attempt and three retries");
}
