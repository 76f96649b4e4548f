//! The exchange through the real binary against the local RFC 8693 STS:
//! every subject source, every parameter on the wire, the cache, the
//! margin, single flight, and every fault mode (DESIGN.md sections 2-3).

mod support;

use std::time::Duration;

use serde_json::json;
use support::cmd::Sandbox;
use support::setup::{REGISTRY, exchange_sandbox_with as setup};
use support::sts::{Sts, StsOptions};

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

fn cache_files(sandbox: &Sandbox) -> Vec<std::path::PathBuf> {
    sandbox.cache_entries()
}

fn only_cache_entry(sandbox: &Sandbox) -> serde_json::Value {
    let files = cache_files(sandbox);
    assert_eq!(files.len(), 1, "expected one cache entry: {files:?}");
    serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap()
}

// ---- subject sources ----

#[test]
fn env_subject_is_exchanged() {
    let (mut sandbox, sts) =
        setup(StsOptions::default(), json!({"subject_token": {"source": "env", "var": "CI_JOB_JWT"}}));
    let subject = sts.mint_subject_token("ci", 3600);
    sandbox.set_env("CI_JOB_JWT", &subject);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn changed_env_subject_is_a_cache_miss() {
    let (mut sandbox, sts) =
        setup(StsOptions::default(), json!({"subject_token": {"source": "env", "var": "TOK"}}));
    sandbox.set_env("TOK", &sts.mint_subject_token("a", 3600));
    sandbox.get(REGISTRY).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1);
    sandbox.set_env("TOK", &sts.mint_subject_token("b", 3600));
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn file_subject_is_reread_every_time() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    let path = sandbox.root().join("k8s-token");
    sandbox.write_config(&json!({"registries": {REGISTRY: {
        "token_endpoint": sts.url(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "subject_token": {"source": "file", "path": path},
    }}}));
    let first = sts.mint_subject_token("pod", 3600);
    std::fs::write(&path, format!("{first}\n")).unwrap();
    sandbox.get(REGISTRY).quiet_success();
    let rotated = sts.mint_subject_token("pod-rotated", 3600);
    std::fs::write(&path, &rotated).unwrap();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(rotated.as_str()));
}

// Runs sh, which Windows does not have.
#[cfg(unix)]
#[test]
fn command_subject_is_its_trimmed_stdout() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    let subject = sts.mint_subject_token("cmd", 3600);
    sandbox.write_config(&json!({"registries": {REGISTRY: {
        "token_endpoint": sts.url(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "subject_token": {"source": "command", "argv": ["sh", "-c", format!("printf '  {subject}\\n'")]},
    }}}));
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn failing_command_subject_is_a_one_line_error() {
    let (sandbox, sts) =
        setup(StsOptions::default(), json!({"subject_token": {"source": "command", "argv": ["false"]}}));
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("subject token command false") && out.stdout.lines().count() == 1, "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn github_actions_subject_is_fetched_with_the_actions_request_shape() {
    let (mut sandbox, sts) = setup(
        StsOptions::default(),
        json!({"subject_token": {"source": "github-actions", "audience": "sts.example"}}),
    );
    sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_URL", &sts.oidc_url_with_query());
    sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &sts.oidc_request_token());
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.oidc_requests(), 1);
    assert_eq!(sts.requests(), 1);
    let oidc = sts.all_requests().into_iter().find(|r| r.path.starts_with("/github-oidc")).unwrap();
    assert!(oidc.query.contains(&("audience".into(), "sts.example".into())), "{:?}", oidc.query);
    assert_eq!(oidc.header("user-agent"), Some("actions/oidc-client"));
    // A cache hit fetches no new ID token.
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.oidc_requests(), 1);
}

#[test]
fn github_actions_outside_a_job_is_not_found_without_a_request() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({"subject_token": {"source": "github-actions"}}));
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
    assert_eq!(sts.requests() + sts.oidc_requests(), 0);
}

#[test]
fn missing_subject_is_not_found_without_a_request() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
    let (sandbox2, sts2) =
        setup(StsOptions::default(), json!({"subject_token": {"source": "env", "var": "UNSET_VAR"}}));
    sandbox2.get(REGISTRY).protocol_error("credentials not found in native keychain");
    assert_eq!(sts.requests() + sts2.requests(), 0);
}

#[test]
fn expired_login_token_fails_fast_and_says_to_log_in() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", -60)).quiet_success();
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.starts_with(&format!("the login token for {REGISTRY} expired at ")), "{out:?}");
    assert!(out.stdout.contains(&format!("run `docker-credential-exchange login {REGISTRY}`")), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

// ---- the wire ----

#[test]
fn every_parameter_reaches_the_server_as_sent() {
    let (sandbox, sts) = setup(
        StsOptions::default(),
        json!({
            "audience": ["https://{registry}", "urn:second"],
            "resource": ["https://{registry}/{repository}", "https://mirror.example/res"],
            "scope": "repository:{repository}:pull,push",
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }),
    );
    login(&sandbox, &sts);
    sandbox.get(&format!("{REGISTRY}/team/app")).quiet_success();
    let req = sts.last_request().unwrap();
    assert_eq!(req.form_value("grant_type"), Some("urn:ietf:params:oauth:grant-type:token-exchange"));
    assert_eq!(req.form_value("subject_token_type"), Some("urn:ietf:params:oauth:token-type:jwt"));
    assert_eq!(req.form_values("audience"), [&format!("https://{REGISTRY}"), "urn:second"]);
    assert_eq!(
        req.form_values("resource"),
        [&format!("https://{REGISTRY}/team/app"), "https://mirror.example/res"]
    );
    assert_eq!(req.form_value("scope"), Some("repository:team/app:pull,push"));
    assert_eq!(req.form_value("requested_token_type"), Some("urn:ietf:params:oauth:token-type:access_token"));
}

#[test]
fn unset_parameters_are_not_sent() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let names: Vec<String> = sts.last_request().unwrap().form.into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["grant_type", "subject_token", "subject_token_type"]);
}

#[test]
fn client_secret_basic_is_sent_as_http_basic() {
    use support::sts::{ClientAuthMethod, ClientCredentials};
    let options = StsOptions {
        client: Some(ClientCredentials {
            id: "docker".into(),
            secret: "s3:cret".into(),
            method: ClientAuthMethod::Basic,
        }),
        ..StsOptions::default()
    };
    let (mut sandbox, sts) = setup(
        options,
        json!({"client_id": "docker", "client_secret": {"source": "env", "var": "STS_SECRET"}}),
    );
    sandbox.set_env("STS_SECRET", "s3:cret");
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let req = sts.last_request().unwrap();
    assert!(req.header("authorization").is_some_and(|h| h.starts_with("Basic ")));
    assert_eq!(req.form_value("client_secret"), None);
}

#[test]
fn client_secret_post_is_sent_in_the_form() {
    use support::sts::{ClientAuthMethod, ClientCredentials};
    let options = StsOptions {
        client: Some(ClientCredentials {
            id: "docker".into(),
            secret: "pw".into(),
            method: ClientAuthMethod::Post,
        }),
        ..StsOptions::default()
    };
    let (mut sandbox, sts) = setup(
        options,
        json!({"client_id": "docker", "client_auth": "post", "client_secret": {"source": "env", "var": "STS_SECRET"}}),
    );
    sandbox.set_env("STS_SECRET", "pw");
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let req = sts.last_request().unwrap();
    assert_eq!((req.form_value("client_id"), req.form_value("client_secret")), (Some("docker"), Some("pw")));
    assert!(req.header("authorization").is_none());
}

#[test]
fn host_only_request_with_a_repository_template_is_a_clear_error() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({"scope": "repository:{repository}:pull"}));
    login(&sandbox, &sts);
    let out = sandbox.get(REGISTRY).failure();
    assert!(
        out.stdout.contains(&format!("registry entry \"{REGISTRY}\" uses {{repository}} in scope")),
        "{out:?}"
    );
    assert_eq!(sts.requests(), 0);
}

#[test]
fn repository_request_under_a_host_entry_is_cached_under_its_own_key() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({"scope": "repository:team/app:pull"}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    sandbox.get(&format!("{REGISTRY}/team/app")).quiet_success();
    sandbox.get(&format!("{REGISTRY}/team/app")).quiet_success();
    assert_eq!(sts.requests(), 2);
    assert_eq!(cache_files(&sandbox).len(), 2);
}

#[test]
fn username_defaults_to_oauth2accesstoken_and_config_overrides_it() {
    let (mut sandbox, sts) =
        setup(StsOptions::default(), json!({"subject_token": {"source": "env", "var": "T"}}));
    sandbox.set_env("T", &sts.mint_subject_token("x", 3600));
    assert_eq!(sandbox.get(REGISTRY).quiet_success().json()["Username"], "oauth2accesstoken");
    let (mut sandbox, sts) = setup(
        StsOptions::default(),
        json!({"subject_token": {"source": "env", "var": "T"}, "username": "<token>"}),
    );
    sandbox.set_env("T", &sts.mint_subject_token("x", 3600));
    assert_eq!(sandbox.get(REGISTRY).quiet_success().json()["Username"], "<token>");
}

// ---- cache and margins ----

#[test]
fn crossing_the_margin_makes_one_new_exchange() {
    let (sandbox, sts) = setup(StsOptions { lifetime_secs: 120, ..StsOptions::default() }, json!({}));
    login(&sandbox, &sts);
    let first = sandbox.get(REGISTRY).quiet_success().secret();
    // Lifetime 120 s: the margin is min(60, 120/2) = 60 s, so the token is
    // reused for 60 s (far longer than a slow machine, or Wine, takes to
    // start the helper twice) and refreshed after.
    assert_eq!(sandbox.get(REGISTRY).quiet_success().secret(), first);
    assert_eq!(sts.requests(), 1);
    // 61 seconds later, by the helper's clock (no sleeping).
    let later =
        sandbox.cmd(&["get"]).stdin(REGISTRY).env("DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET", "61");
    let refreshed = later.run().quiet_success().secret();
    assert_ne!(refreshed, first);
    assert_eq!(sts.requests(), 2);
}

#[test]
fn short_lifetime_margin_is_half_the_lifetime() {
    let (sandbox, sts) = setup(StsOptions { lifetime_secs: 10, ..StsOptions::default() }, json!({}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let entry = only_cache_entry(&sandbox);
    let (obtained, expires, refresh) = (
        entry["obtained_at"].as_i64().unwrap(),
        entry["expires_at"].as_i64().unwrap(),
        entry["refresh_at"].as_i64().unwrap(),
    );
    assert!((expires - obtained - 10).abs() <= 1, "{entry}");
    assert_eq!(expires - refresh, 5, "{entry}");
}

#[test]
fn jwt_exp_earlier_than_expires_in_sets_the_expiry() {
    let options = StsOptions { lifetime_secs: 3600, jwt_lifetime_secs: Some(300), ..StsOptions::default() };
    let (sandbox, sts) = setup(options, json!({}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let entry = only_cache_entry(&sandbox);
    let life = entry["expires_at"].as_i64().unwrap() - entry["obtained_at"].as_i64().unwrap();
    assert!((299..=301).contains(&life), "{entry}");
}

#[test]
fn default_lifetime_applies_to_opaque_tokens_without_expires_in() {
    let options = StsOptions { send_expires_in: false, opaque_tokens: true, ..StsOptions::default() };
    let (sandbox, sts) = setup(options, json!({"default_lifetime_seconds": 120}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let entry = only_cache_entry(&sandbox);
    let life = entry["expires_at"].as_i64().unwrap() - entry["obtained_at"].as_i64().unwrap();
    assert_eq!(life, 120, "{entry}");
}

#[test]
fn a_negative_expires_in_is_an_expired_token_never_a_success() {
    let options = StsOptions { opaque_tokens: true, lifetime_secs: -5, ..StsOptions::default() };
    let (sandbox, sts) = setup(options, json!({"default_lifetime_seconds": 600}));
    login(&sandbox, &sts);
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("already expired (expires_in -5)"), "{out:?}");
    assert!(cache_files(&sandbox).is_empty(), "an expired token was cached");
}

#[test]
fn store_and_erase_drop_the_registrys_cached_tokens() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    login(&sandbox, &sts);
    assert!(cache_files(&sandbox).is_empty());
    sandbox.get(REGISTRY).quiet_success();
    sandbox.erase(REGISTRY).quiet_success();
    assert!(cache_files(&sandbox).is_empty());
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
}

#[test]
fn no_cache_variable_exchanges_every_time_and_writes_nothing() {
    let (mut sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE", "1");
    sandbox.get(REGISTRY).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2);
    assert!(cache_files(&sandbox).is_empty());
}

#[test]
fn corrupt_truncated_and_symlinked_cache_files_are_misses() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let path = cache_files(&sandbox).remove(0);
    let full = std::fs::read(&path).unwrap();
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut damage: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| std::fs::write(&path, &full[..full.len() / 3]).unwrap()),
        Box::new(|| std::fs::write(&path, b"{\"version\": 99}").unwrap()),
        Box::new(|| std::fs::write(&path, [0xff, 0x00, 0x13]).unwrap()),
    ];
    // Windows needs a privilege to make symlinks.
    #[cfg(unix)]
    damage.push(Box::new(|| {
        let target = sandbox.root().join("planted.json");
        std::fs::write(&target, &full).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
    }));
    for (i, damage) in damage.iter().enumerate() {
        damage();
        let out = sandbox.get(REGISTRY).success();
        assert_eq!(sts.requests(), i + 2, "damage {i} must be a miss: {out:?}");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink(), "the link is replaced");
    }
}

// Unix modes; on Windows the files inherit the directory's ACL.
#[cfg(unix)]
#[test]
fn cache_directory_is_0700_and_files_0600() {
    use std::os::unix::fs::PermissionsExt;
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sandbox.cache_dir()), 0o700);
    for f in std::fs::read_dir(sandbox.cache_dir()).unwrap().flatten() {
        assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
    }
}

#[test]
fn list_shows_exchange_registries_without_exchanging() {
    let (sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.store("plain.example", "bob", "pw").quiet_success();
    let listed = sandbox.list().quiet_success().json();
    assert_eq!(listed, json!({REGISTRY: "alice", "plain.example": "bob"}));
    assert_eq!(sts.requests(), 0);
}

// ---- single flight ----

#[test]
fn sixty_four_concurrent_cold_gets_make_one_exchange() {
    let (mut sandbox, sts) = setup(StsOptions::default(), json!({}));
    login(&sandbox, &sts);
    sandbox.log_to_file();
    // Starting 64 processes takes a while on a loaded machine (and under
    // Wine, seconds each), all of it inside the first helper's deadline.
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "300");
    // The first exchange is held at the STS until the 63 other helpers all
    // say they wait for its lock: each of them came while it was in flight.
    let hold = sts.hold_exchanges();
    let children: Vec<_> = (0..64)
        .map(|_| {
            let (child, _closed_when_dropped) = sandbox.cmd(&["get"]).stdin(REGISTRY).spawn();
            child
        })
        .collect();
    hold.wait_for_request();
    // A helper that did not wait but exchanged too fails the test at once.
    let more_than_one =
        || (hold.arrived() > 1).then(|| format!("{} exchanges reached the STS", hold.arrived()));
    sandbox.wait_for_log_lines("which another helper holds", 63, Duration::from_secs(240), more_than_one);
    hold.release();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        assert!(o.stderr.is_empty(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let first = &outputs[0].stdout;
    assert!(
        outputs.iter().all(|o| &o.stdout == first),
        "all answers identical ({} exchanges)",
        sts.requests()
    );
    assert_eq!(sts.requests(), 1);
}

// ---- faults ----

/// Logs in, caches a token, and expires the cache entry's refresh time so
/// the next `get` must go to the STS.
fn with_entry_inside_margin(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.edit_cache_entry(|entry| entry["refresh_at"] = json!(0))
}

fn fault_setup() -> (Sandbox, Sts) {
    let (mut sandbox, sts) = setup(StsOptions::default(), json!({}));
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2");
    login(&sandbox, &sts);
    (sandbox, sts)
}

fn assert_one_line_error(out: &support::cmd::Output, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    for n in needles {
        assert!(out.stdout.contains(n), "missing {n:?}: {out:?}");
    }
}

#[test]
fn server_errors_are_retried_three_times_then_reported() {
    use support::sts::Fault;
    let (mut sandbox, sts) = fault_setup();
    // Room for all three back-offs (0.25 + 0.5 + 1 s, plus jitter) within
    // the one deadline.
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "10");
    sts.set_fault(Fault::Status500);
    let out = sandbox.get(REGISTRY);
    assert_one_line_error(&out, &[REGISTRY, &sts.url(), "HTTP 500"]);
    assert_eq!(sts.requests(), 4);
}

#[test]
fn a_transient_server_error_is_retried_into_success() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sts.set_fault_times(Fault::Status500, 2);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 3);
}

#[test]
fn too_many_requests_honours_retry_after() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sts.set_fault_times(Fault::TooMany { retry_after_secs: 1 }, 1);
    let start = std::time::Instant::now();
    sandbox.get(REGISTRY).quiet_success();
    assert!(start.elapsed() >= std::time::Duration::from_millis(950), "waited {:?}", start.elapsed());
    assert_eq!(sts.requests(), 2);
}

#[test]
fn a_hanging_endpoint_times_out_without_retry() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sts.set_fault(Fault::Hang { secs: 30 });
    let out = sandbox.get(REGISTRY);
    assert_one_line_error(&out, &[REGISTRY, "timed out"]);
    assert_eq!(sts.requests(), 1);
}

#[test]
fn malformed_json_is_a_clear_error() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sts.set_fault(Fault::MalformedJson);
    let out = sandbox.get(REGISTRY);
    assert_one_line_error(&out, &[REGISTRY, "not a token response"]);
    assert_eq!(sts.requests(), 1);
}

#[test]
fn invalid_grant_names_registry_endpoint_and_the_servers_words() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sts.set_fault(Fault::InvalidGrant);
    let out = sandbox.get(REGISTRY);
    assert_one_line_error(&out, &[REGISTRY, &sts.url(), "invalid_grant", "HTTP 400"]);
    assert_eq!(sts.requests(), 1, "4xx is not retried");
}

#[test]
fn invalid_target_is_not_retried() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sts.set_fault(Fault::InvalidTarget);
    assert_one_line_error(&sandbox.get(REGISTRY), &["invalid_target"]);
    assert_eq!(sts.requests(), 1);
}

#[test]
fn failed_refresh_inside_the_margin_returns_the_cached_token_with_a_warning() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    let cached = sandbox.get(REGISTRY).quiet_success().secret();
    with_entry_inside_margin(&sandbox);
    sts.set_fault(Fault::InvalidGrant);
    let out = sandbox.get(REGISTRY).success();
    assert_eq!(out.secret(), cached);
    assert!(out.stderr.contains("warning") && out.stderr.contains("invalid_grant"), "{out:?}");
}

#[test]
fn every_fault_leaves_an_existing_cache_file_valid() {
    use support::sts::Fault;
    let (sandbox, sts) = fault_setup();
    sandbox.get(REGISTRY).quiet_success();
    for fault in [
        Fault::Status500,
        Fault::MalformedJson,
        Fault::InvalidGrant,
        Fault::InvalidTarget,
        Fault::Hang { secs: 30 },
        Fault::TooMany { retry_after_secs: 0 },
    ] {
        let path = with_entry_inside_margin(&sandbox);
        let before = std::fs::read(&path).unwrap();
        sts.set_fault(fault.clone());
        sandbox.get(REGISTRY).success();
        assert_eq!(std::fs::read(&path).unwrap(), before, "{fault:?} changed the cache file");
    }
}
