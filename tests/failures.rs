//! Failed `get`s through the real binary against the local STS (DESIGN.md
//! sections 3 and 5): a failed exchange is remembered per cache key and
//! subject for a short window, so that clients that ask again after each
//! failure (BuildKit's session) pay one deadline, not one per call; what
//! ends the window; and the newest outcome of each request, a missing
//! subject token included, as `status`, `doctor` and the log file show it.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cmd::{Output, Sandbox};
use support::hostile::{Behaviour, Hostile};
use support::sts::{ClientAuthMethod, ClientCredentials, Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const TIMEOUT: &str = "DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS";
const CLOCK: &str = "DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET";

/// A sandbox whose one exchange registry has `extra` fields, its STS, and
/// a login (keyring source: the file store here).
fn logged_in(extra: Value) -> (Sandbox, Sts) {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), extra);
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    (sandbox, sts)
}

/// The same with the subject in the environment variable `CI_JOB_JWT`.
fn env_subject() -> (Sandbox, Sts) {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "env", "var": "CI_JOB_JWT"}}),
    );
    sandbox.set_env("CI_JOB_JWT", &sts.mint_subject_token("ci", 3600));
    (sandbox, sts)
}

/// A `get` that fails and says it answers from memory.
#[track_caller]
fn assert_remembered(out: &Output) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(
        out.stdout.contains("remembered from a failure at ") && out.stdout.contains(" until "),
        "{out:?}"
    );
    assert!(out.stdout.contains(&format!("token {REGISTRY} --refresh")), "{out:?}");
}

/// Fails one exchange with `invalid_grant` and checks that the next `get`
/// is answered from memory; the STS has seen one request.
fn fail_once_and_remember(sandbox: &Sandbox, sts: &Sts) {
    sts.set_fault(Fault::InvalidGrant);
    sandbox.get(REGISTRY).failure();
    assert_remembered(&sandbox.get(REGISTRY));
    assert_eq!(sts.requests(), 1, "the remembered failure was retried");
}

// ---- remembered for a short window ----

#[test]
fn a_get_after_a_timed_out_exchange_answers_at_once_from_memory() {
    let (mut sandbox, sts) = logged_in(json!({}));
    sandbox.set_env(TIMEOUT, "6");
    sts.set_fault(Fault::Hang { secs: 60 });
    let first = sandbox.get(REGISTRY).failure();
    assert!(first.stdout.contains("timed out"), "{first:?}");

    let started = Instant::now();
    let second = sandbox.get(REGISTRY);
    let took = started.elapsed();

    assert_remembered(&second);
    assert!(second.stdout.contains("timed out"), "the same failure: {second:?}");
    assert_eq!(sts.requests(), 1, "the second get asked the hanging endpoint again");
    assert!(took < Duration::from_secs(3), "took {took:?}, half the 6 s deadline or more");
}

#[test]
fn the_window_ends_after_fifteen_seconds() {
    let (sandbox, sts) = logged_in(json!({}));
    fail_once_and_remember(&sandbox, &sts);
    sts.set_fault(Fault::None);
    sandbox.cmd(&["get"]).stdin(REGISTRY).env(CLOCK, "16").run().quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn the_window_never_outlasts_the_endpoints_retry_after() {
    let (mut sandbox, sts) = logged_in(json!({}));
    // Too short to wait out the 10 s: the 429 itself is the answer.
    sandbox.set_env(TIMEOUT, "1");
    sts.set_fault(Fault::TooMany { retry_after_secs: 10 });
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("HTTP 429") && out.stdout.contains("retried in 10s"), "{out:?}");
    assert_remembered(&sandbox.cmd(&["get"]).stdin(REGISTRY).env(CLOCK, "5").run());
    assert_eq!(sts.requests(), 1);
    sts.set_fault(Fault::None);
    // Past what the endpoint named, though inside the usual 15 s.
    sandbox.cmd(&["get"]).stdin(REGISTRY).env(CLOCK, "11").run().quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn the_window_never_outlasts_a_retry_after_given_as_a_date() {
    // 10 s after the answer's own Date, in the HTTP-date form servers
    // send as often as the number of seconds.
    let endpoint = Hostile::start(Behaviour::AnswerWithHeaders {
        status: 429,
        headers: vec![
            ("Date", "Wed, 21 Oct 2015 07:28:00 GMT".into()),
            ("Retry-After", "Wed, 21 Oct 2015 07:28:10 GMT".into()),
        ],
        body: r#"{"error":"slow_down"}"#.into(),
    });
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &endpoint.url(), json!({}));
    sandbox.store(REGISTRY, "alice", "an-opaque-login-token-4471").quiet_success();
    // Too short to wait out the 10 s: the 429 itself is the answer.
    sandbox.set_env(TIMEOUT, "1");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("HTTP 429") && out.stdout.contains("retried in 10s"), "{out:?}");
    let asked = endpoint.connections();
    assert_remembered(&sandbox.cmd(&["get"]).stdin(REGISTRY).env(CLOCK, "5").run());
    assert_eq!(endpoint.connections(), asked);
    // Past the date the endpoint named, though inside the usual 15 s.
    sandbox.cmd(&["get"]).stdin(REGISTRY).env(CLOCK, "11").run().failure();
    assert!(endpoint.connections() > asked, "the failure was answered from memory past its Retry-After");
}

#[test]
fn a_get_allowed_more_time_than_ran_out_asks_again() {
    let (mut sandbox, sts) = logged_in(json!({}));
    sandbox.set_env(TIMEOUT, "2");
    sts.set_fault(Fault::Hang { secs: 60 });
    sandbox.get(REGISTRY).failure();
    sts.set_fault(Fault::None);
    sandbox.cmd(&["get"]).stdin(REGISTRY).env(TIMEOUT, "10").run().quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_stale_token_is_still_served_while_its_refresh_failure_is_remembered() {
    let (sandbox, sts) = logged_in(json!({}));
    let cached = sandbox.get(REGISTRY).quiet_success().secret();
    // Into its margin, not expired.
    let entry = std::fs::read_dir(sandbox.cache_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let mut value: Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
    value["refresh_at"] = json!(0);
    std::fs::write(&entry, serde_json::to_vec(&value).unwrap()).unwrap();
    sts.set_fault(Fault::InvalidGrant);
    for _ in 0..2 {
        let out = sandbox.get(REGISTRY).success();
        assert_eq!(out.secret(), cached);
        assert!(out.stderr.contains("warning") && out.stderr.contains("invalid_grant"), "{out:?}");
    }
    assert_eq!(sts.requests(), 2, "the refresh was tried once");
}

#[test]
fn a_failure_of_this_process_own_is_not_remembered() {
    // A client secret that cannot be read is fixed by setting it: the next
    // get must see the fix.
    let (mut sandbox, sts) =
        logged_in(json!({"client_id": "docker", "client_secret": {"source": "env", "var": "STS_SECRET"}}));
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("client secret"), "{out:?}");
    sandbox.set_env("STS_SECRET", "s3cret");
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1);
}

// ---- what ends it ----

#[test]
fn token_refresh_ignores_the_remembered_failure() {
    let (sandbox, sts) = logged_in(json!({}));
    fail_once_and_remember(&sandbox, &sts);
    sts.set_fault(Fault::None);
    sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_new_login_ends_it() {
    let (sandbox, sts) = logged_in(json!({}));
    fail_once_and_remember(&sandbox, &sts);
    sts.set_fault(Fault::None);
    let token = sts.mint_subject_token("alice", 3600);
    sandbox.cmd(&["login", REGISTRY, "--token-stdin", "--no-verify"]).stdin(&token).run().success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_store_ends_it() {
    let (sandbox, sts) = logged_in(json!({}));
    fail_once_and_remember(&sandbox, &sts);
    sts.set_fault(Fault::None);
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn cache_clear_ends_it() {
    for args in [&["cache", "clear"][..], &["cache", "clear", REGISTRY]] {
        let (sandbox, sts) = logged_in(json!({}));
        fail_once_and_remember(&sandbox, &sts);
        sts.set_fault(Fault::None);
        sandbox.cmd(args).run().success();
        sandbox.get(REGISTRY).quiet_success();
        assert_eq!(sts.requests(), 2, "{args:?}");
    }
}

#[test]
fn an_erase_or_logout_ends_it() {
    // With the subject in the environment, the same subject asks again
    // after the registry's stored entry is erased.
    for args in [&["erase"][..], &["logout", REGISTRY]] {
        let (sandbox, sts) = env_subject();
        fail_once_and_remember(&sandbox, &sts);
        sts.set_fault(Fault::None);
        sandbox.cmd(args).stdin(REGISTRY).run().success();
        sandbox.get(REGISTRY).quiet_success();
        assert_eq!(sts.requests(), 2, "{args:?}");
    }
}

#[test]
fn another_subject_is_not_answered_from_memory() {
    let (mut sandbox, sts) = env_subject();
    fail_once_and_remember(&sandbox, &sts);
    sts.set_fault(Fault::None);
    sandbox.set_env("CI_JOB_JWT", &sts.mint_subject_token("ci-next-job", 3600));
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_corrected_client_secret_is_not_answered_the_wrong_ones_failure() {
    let sts = Sts::start(StsOptions {
        client: Some(ClientCredentials {
            id: "docker".into(),
            secret: "the-right-client-secret".into(),
            method: ClientAuthMethod::Basic,
        }),
        ..StsOptions::default()
    });
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"client_id": "docker", "client_secret": {"source": "env", "var": "STS_CLIENT_SECRET"}}),
    );
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.set_env("STS_CLIENT_SECRET", "a-mistyped-client-secret");
    let wrong = sandbox.get(REGISTRY).failure();
    assert!(wrong.stdout.contains("invalid_client"), "{wrong:?}");
    // The same mistake again is answered from memory ...
    assert_remembered(&sandbox.get(REGISTRY));
    assert_eq!(sts.requests(), 1);

    // ... the fix is not: it is another exchange, whose answer is unknown.
    sandbox.set_env("STS_CLIENT_SECRET", "the-right-client-secret");
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_success_under_another_subject_leaves_the_first_subjects_failure_remembered() {
    let (mut sandbox, sts) = env_subject();
    let first = sandbox.env()["CI_JOB_JWT"].clone();
    let other = sts.mint_subject_token("other-job", 3600);
    // The other subject's token is cached first; its hits come later.
    sandbox.set_env("CI_JOB_JWT", &other);
    sandbox.get(REGISTRY).quiet_success();
    sandbox.set_env("CI_JOB_JWT", &first);
    sts.set_fault(Fault::InvalidGrant);
    sandbox.get(REGISTRY).failure();
    // A hit for the same request under the other subject...
    sandbox.cmd(&["get"]).stdin(REGISTRY).env("CI_JOB_JWT", &other).run().quiet_success();
    // ...is no news about this one's exchange.
    assert_remembered(&sandbox.get(REGISTRY));
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_missing_subject_is_never_remembered() {
    let (mut sandbox, sts) = env_subject();
    let token = sandbox.env()["CI_JOB_JWT"].clone();
    sandbox.remove_env("CI_JOB_JWT");
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
    sandbox.set_env("CI_JOB_JWT", &token);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1);
}

// ---- what people see ----

fn status_row(sandbox: &Sandbox) -> Value {
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    status["registries"].as_array().unwrap().iter().find(|r| r["registry"] == REGISTRY).unwrap().clone()
}

#[test]
fn status_and_doctor_say_until_when_a_failure_is_remembered() {
    let (sandbox, sts) = logged_in(json!({}));
    fail_once_and_remember(&sandbox, &sts);
    let failure = &status_row(&sandbox)["last_failure"];
    assert!(failure["remembered_until"].as_i64().is_some(), "{failure}");
    // The failure as the endpoint caused it, not as memory repeated it.
    let message = failure["message"].as_str().unwrap();
    assert!(message.contains("invalid_grant") && !message.contains("remembered"), "{failure}");
    let table = sandbox.cmd(&["status"]).run().quiet_success();
    assert!(table.stdout.contains("remembered until"), "{table:?}");
    let doctor = sandbox.cmd(&["doctor"]).run();
    assert!(doctor.stdout.contains("remembered until") && doctor.stdout.contains("--refresh"), "{doctor:?}");
}

#[test]
fn status_shows_the_newest_outcome_a_missing_subject_token_included() {
    // A failure, fixed, then another cause: the GitHub Actions source
    // outside a job.
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "github-actions"},
               "client_id": "docker", "client_secret": {"source": "env", "var": "STS_SECRET"}}),
    );
    sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_URL", &sts.oidc_url());
    sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &sts.oidc_request_token());
    sandbox.get(REGISTRY).failure();
    let first = status_row(&sandbox)["last_failure"]["message"].as_str().unwrap().to_owned();
    assert!(first.contains("client secret"), "{first}");

    sandbox.set_env("STS_SECRET", "s3cret");
    sandbox.remove_env("ACTIONS_ID_TOKEN_REQUEST_URL");
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");

    let newest = status_row(&sandbox)["last_failure"]["message"].as_str().unwrap().to_owned();
    assert!(newest.contains("ACTIONS_ID_TOKEN_REQUEST_URL is not set"), "{newest}");
    assert!(newest.contains("id-token: write"), "{newest}");
}

#[test]
fn the_log_files_error_line_says_why_the_subject_token_is_missing() {
    let (mut sandbox, _sts) = env_subject();
    sandbox.remove_env("CI_JOB_JWT");
    let log = sandbox.root().join("helper.log");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log.to_str().unwrap());
    // Docker still gets its exact words, and stderr stays empty.
    let out = sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
    assert_eq!(out.stderr, "");
    let text = std::fs::read_to_string(&log).unwrap();
    let error = text.lines().find(|l| l.contains("error: get:")).unwrap_or_else(|| panic!("{text}"));
    assert!(error.contains("the environment variable CI_JOB_JWT is not set"), "{error}");
    assert!(!error.contains("native keychain"), "{error}");
}
