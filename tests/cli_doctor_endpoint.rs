//! `doctor` on the token endpoint (DESIGN.md section 5): a URL that answers
//! but is not a token endpoint (a wrong path) is a problem, not "reachable";
//! and `doctor --exchange` gives the fix for the way an exchange failed,
//! against the local STS and endpoints that misbehave on purpose.

mod support;

use std::time::Duration;

use serde_json::json;
use support::cmd::{Output, Sandbox};
use support::doctor::{REGISTRY, doctor_fails_with, fix_after, healthy, healthy_with, line_with};
use support::hostile::{Behaviour, Hostile};
use support::sts::{ClientAuthMethod, ClientCredentials, Fault, StsOptions};

/// `doctor --exchange`, which must fail with a `✗ exchange:` line; its fix.
fn exchange_fix(sandbox: &Sandbox) -> (Output, String) {
    let out = sandbox.cmd(&["doctor", "--exchange"]).run().failure();
    assert!(line_with(&out, "exchange:").starts_with('✗'), "{out:?}");
    let fix = fix_after(&out, "exchange:").to_owned();
    (out, fix)
}

/// A healthy sandbox whose entry points at `endpoint` instead.
fn pointed_at(endpoint: &str, extra: serde_json::Value) -> Sandbox {
    let (sandbox, _sts) = healthy();
    sandbox.write_exchange_config(REGISTRY, endpoint, extra);
    sandbox
}

#[test]
fn a_token_endpoint_is_recognised_by_the_oauth_error_it_answers_an_empty_request_with() {
    let (sandbox, sts) = healthy();
    let out = sandbox.cmd(&["doctor"]).run().success();
    let line = line_with(&out, "endpoint:");
    assert!(line.starts_with('✓') && line.contains("is a token endpoint"), "{out:?}");
    let probe = sts.last_request().expect("the probe reached the STS");
    assert_eq!(probe.method, "POST");
    assert_eq!(probe.form_value("subject_token"), None, "the probe carries no token");
}

#[test]
fn a_wrong_endpoint_path_is_a_problem_that_asks_about_the_path() {
    let (sandbox, sts) = healthy();
    let wrong = format!("{}/tokn", sts.base_url());
    sandbox.write_exchange_config(REGISTRY, &wrong, json!({}));
    let out = doctor_fails_with(&sandbox, "endpoint:");
    let line = line_with(&out, "endpoint:");
    assert!(
        line.contains(&wrong) && line.contains("HTTP 404") && line.contains("is the path right?"),
        "{out:?}"
    );
    assert!(fix_after(&out, "endpoint:").contains("token_endpoint"), "{out:?}");
}

#[test]
fn an_endpoint_that_refuses_the_method_is_a_problem() {
    let hostile = Hostile::start(Behaviour::Answer { status: 405, body: String::new() });
    let sandbox = pointed_at(&hostile.url(), json!({}));
    let out = doctor_fails_with(&sandbox, "endpoint:");
    assert!(line_with(&out, "endpoint:").contains("HTTP 405"), "{out:?}");
}

#[test]
fn a_server_error_from_the_endpoint_is_a_problem() {
    let (sandbox, sts) = healthy();
    sts.set_fault(Fault::Status500);
    let out = doctor_fails_with(&sandbox, "endpoint:");
    assert!(line_with(&out, "endpoint:").contains("HTTP 500"), "{out:?}");
}

#[test]
fn an_untrusted_certificate_is_a_problem_whose_fix_is_ca_file() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let sts = support::sts::Sts::start_https(
        StsOptions::default(),
        &cert.cert.pem(),
        &cert.signing_key.serialize_pem(),
    );
    let sandbox = pointed_at(&sts.url(), json!({}));
    let out = doctor_fails_with(&sandbox, "endpoint:");
    assert!(line_with(&out, "endpoint:").contains("not reachable"), "{out:?}");
    assert!(fix_after(&out, "endpoint:").contains("set ca_file"), "{out:?}");
    let (_, fix) = exchange_fix(&sandbox);
    assert!(fix.contains("set ca_file"), "{fix}");
}

#[test]
fn an_endpoint_that_never_answers_is_a_problem_whose_fix_names_the_time_limit() {
    let hostile = Hostile::start(Behaviour::Hang);
    let mut sandbox = pointed_at(&hostile.url(), json!({}));
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2");
    let out = sandbox.cmd(&["doctor", "--exchange"]).kill_after(Duration::from_secs(60)).run().failure();
    assert!(line_with(&out, "endpoint:").contains("timed out"), "{out:?}");
    assert!(fix_after(&out, "endpoint:").contains("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS"), "{out:?}");
    assert!(fix_after(&out, "exchange:").contains("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS"), "{out:?}");
}

// ---- doctor --exchange: the fix for each way an exchange fails ----

#[test]
fn an_unknown_client_is_told_to_check_its_credentials() {
    let client =
        ClientCredentials { id: "docker".into(), secret: "right".into(), method: ClientAuthMethod::Basic };
    let options = StsOptions { client: Some(client), ..StsOptions::default() };
    let extra = json!({"client_id": "docker", "client_secret": {"source": "env", "var": "STS_SECRET"}});
    let (mut sandbox, _sts) = healthy_with(options, extra);
    sandbox.set_env("STS_SECRET", "wrong");
    let (out, fix) = exchange_fix(&sandbox);
    assert!(line_with(&out, "exchange:").contains("invalid_client"), "{out:?}");
    assert!(fix.contains("check client_id (docker), client_secret and client_auth"), "{fix}");
}

#[test]
fn a_refused_login_token_is_told_to_log_in_again() {
    let (sandbox, sts) = healthy();
    sts.set_fault(Fault::InvalidGrant);
    let (out, fix) = exchange_fix(&sandbox);
    assert!(!out.stdout.contains("last get:"), "its own failure is said once: {out:?}");
    assert!(
        fix.contains(&format!("run `docker-credential-exchange login {REGISTRY}` with a fresh token")),
        "{fix}"
    );
}

#[test]
fn an_audience_the_sts_does_not_serve_is_named_in_the_fix() {
    let options = StsOptions {
        allowed_audiences: Some(vec!["https://served.example".into()]),
        ..StsOptions::default()
    };
    let (sandbox, _sts) = healthy_with(options, json!({"audience": "https://elsewhere.example"}));
    let (out, fix) = exchange_fix(&sandbox);
    assert!(line_with(&out, "exchange:").contains("invalid_target"), "{out:?}");
    assert!(fix.contains("check audience (\"https://elsewhere.example\")"), "{fix}");
}

#[test]
fn a_client_not_allowed_to_exchange_is_told_to_ask_for_the_grant() {
    let body = json!({"error": "unauthorized_client", "error_description": "no token exchange for you"});
    let hostile = Hostile::start(Behaviour::Answer { status: 400, body: body.to_string() });
    let sandbox = pointed_at(&hostile.url(), json!({"client_id": "docker"}));
    let (_, fix) = exchange_fix(&sandbox);
    assert!(fix.contains("does not let it exchange tokens"), "{fix}");
    assert!(fix.contains("urn:ietf:params:oauth:grant-type:token-exchange"), "{fix}");
}

#[test]
fn a_bare_401_is_told_about_client_authentication() {
    let hostile = Hostile::start(Behaviour::Answer { status: 401, body: String::new() });
    let sandbox = pointed_at(&hostile.url(), json!({}));
    let out = sandbox.cmd(&["doctor", "--exchange"]).run().failure();
    let endpoint = line_with(&out, "endpoint:");
    assert!(endpoint.starts_with('!') && endpoint.contains("HTTP 401"), "{out:?}");
    let fix = fix_after(&out, "exchange:");
    assert!(fix.contains("set client_id and client_secret"), "{out:?}");
}
