//! Nothing lost, nothing stale (DESIGN.md sections 2-3): the cache touches
//! only its own files in a directory the user named; a login that changes
//! while an exchange is in flight wins over it; an interrupted `login`
//! keeps the previous one; lifetimes are bounded and expired tokens are
//! never a success; the config's username and keys mean what they say;
//! a path that is not a repository never reaches the STS; a loopback
//! exchange never goes through a proxy; the config is read bounded.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cmd::{Output, Sandbox};
use support::hold::Hold;
use support::hostile::{Behaviour, Hostile};
use support::setup::{REGISTRY, exchange_sandbox_with};
use support::sts::{Sts, StsOptions};

fn setup(extra: Value) -> (Sandbox, Sts) {
    exchange_sandbox_with(StsOptions::default(), extra)
}

fn store_login(sandbox: &Sandbox, sts: &Sts, user: &str) -> String {
    let token = sts.mint_subject_token(user, 3600);
    sandbox.store(REGISTRY, user, &token).quiet_success();
    token
}

/// The `sub` claim of an exchanged token (the STS copies the login's).
fn subject_of(token: &str) -> String {
    let claims = docker_credential_exchange::for_tests::jwt::decode_unverified(token).expect("a JWT").claims;
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

fn cache_entries(sandbox: &Sandbox) -> Vec<std::path::PathBuf> {
    sandbox.cache_entries()
}

// Unix modes: the point is that a mode the user chose is kept.
#[cfg(unix)]
#[test]
fn a_cache_dir_that_is_a_project_folder_keeps_its_files_and_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let (mut sandbox, sts) = setup(json!({"default_lifetime_seconds": 1}));
    let project = sandbox.root().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();
    let theirs = ["package.json", "tsconfig.json", "yarn.lock", ".eslintrc.json"];
    for name in theirs {
        std::fs::write(project.join(name), b"{\"mine\": true}").unwrap();
    }
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR", project.to_str().unwrap());
    store_login(&sandbox, &sts, "alice");

    sandbox.get(REGISTRY).quiet_success();
    sandbox.cmd(&["get"]).stdin(format!("{REGISTRY}/team/app")).run().quiet_success();
    sandbox.cmd(&["cache", "clear"]).run().success();

    for name in theirs {
        assert_eq!(std::fs::read(project.join(name)).unwrap(), b"{\"mine\": true}", "{name}");
    }
    let mode = std::fs::metadata(&project).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "the user's directory was re-moded");
}

/// A `get` that the STS holds inside its exchange (it has sent the login
/// token and waits for the answer), and the hold: whatever the test does
/// before it releases the hold happens during that exchange, for certain.
fn get_held_in_its_exchange(sandbox: &Sandbox, sts: &Sts) -> (Hold, std::thread::JoinHandle<Output>) {
    let hold = sts.hold_exchanges();
    let in_flight = {
        let cmd = sandbox.cmd(&["get"]).stdin(REGISTRY);
        std::thread::spawn(move || cmd.run())
    };
    hold.wait_for_request();
    (hold, in_flight)
}

#[test]
fn an_erase_during_an_exchange_wins_over_it() {
    let (sandbox, sts) = setup(json!({}));
    store_login(&sandbox, &sts, "alice");
    let (hold, in_flight) = get_held_in_its_exchange(&sandbox, &sts);

    sandbox.erase(REGISTRY).quiet_success();
    hold.release();
    let raced = in_flight.join().unwrap();

    // The exchange answered, but for a login that is gone: neither cached
    // nor returned, and the `get` starts over and finds nothing stored.
    let raced = raced.protocol_error("credentials not found in native keychain");
    assert_eq!(sts.requests(), 1, "{raced:?}");
    assert!(cache_entries(&sandbox).is_empty(), "a token of the erased login was cached");
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
}

#[test]
fn a_new_login_during_an_exchange_wins_over_it() {
    let (sandbox, sts) = setup(json!({}));
    store_login(&sandbox, &sts, "alice");
    let (hold, in_flight) = get_held_in_its_exchange(&sandbox, &sts);

    store_login(&sandbox, &sts, "bob");
    hold.release();
    let raced = in_flight.join().unwrap();

    // Alice's token is thrown away and the `get` exchanges bob's login.
    assert_eq!(subject_of(&raced.quiet_success().secret()), "bob", "the racing get returned alice's token");
    assert_eq!(sts.requests(), 2, "the replaced login's exchange was not followed by one for the new login");
    let later = sandbox.get(REGISTRY).quiet_success();
    assert_eq!(subject_of(&later.secret()), "bob");
    assert_eq!(sts.requests(), 2, "the new login's token was not cached");
}

// Interrupted with SIGINT, as Ctrl-C does on unix.
#[cfg(unix)]
#[test]
fn a_login_interrupted_during_its_check_keeps_the_previous_login() {
    let (sandbox, sts) = setup(json!({}));
    let previous = store_login(&sandbox, &sts, "alice");
    let hold = sts.hold_exchanges();
    let (mut command, _) = sandbox.cmd(&["login", REGISTRY, "--token-stdin"]).into_command();
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let new_token = sts.mint_subject_token("bob", 3600);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), new_token.as_bytes()).unwrap();
    // The check's exchange has reached the STS: the login is proving bob's
    // token and has not yet been told it works.
    hold.wait_for_request();
    // SAFETY: signals the child this test started, which is not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    hold.release();

    assert!(!status.success(), "the interrupted login reported success");
    let stored = std::fs::read_to_string(sandbox.data_dir().join("credentials.json")).unwrap();
    assert!(stored.contains(&previous), "the previous login was lost");
    assert!(!stored.contains(&new_token), "the unproven token was stored");
}

#[test]
fn an_entry_written_under_a_clock_a_day_ahead_is_not_a_hit() {
    let (sandbox, sts) = setup(json!({}));
    store_login(&sandbox, &sts, "alice");
    sandbox.get(REGISTRY).quiet_success();
    let day = 86_400;
    sandbox.edit_cache_entry(|e| {
        for field in ["obtained_at", "refresh_at", "expires_at"] {
            e[field] = json!(e[field].as_i64().unwrap() + day);
        }
    });
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 2, "the entry from the future was served");
}

fn lifetime_of_answer(body: &str) -> i64 {
    let endpoint = Hostile::start(Behaviour::Answer { status: 200, body: body.to_owned() });
    let idp = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &endpoint.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &idp.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    let entry: Value = serde_json::from_slice(&std::fs::read(&cache_entries(&sandbox)[0]).unwrap()).unwrap();
    entry["expires_at"].as_i64().unwrap() - entry["obtained_at"].as_i64().unwrap()
}

#[test]
fn an_expires_in_of_1e30_is_cached_for_a_day_at_most() {
    assert!(lifetime_of_answer(r#"{"access_token": "opaque-token", "expires_in": 1e30}"#) <= 86_400);
}

#[test]
fn a_jwt_exp_of_2_to_the_63_is_cached_for_a_day_at_most() {
    // {"alg":"ES256","typ":"JWT"} . {"exp":9223372036854775807} . a signature
    // nobody checks: the helper reads `exp` without verifying.
    let jwt = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjkyMjMzNzIwMzY4NTQ3NzU4MDd9.c2ln";
    let body = json!({"access_token": jwt}).to_string();
    assert!(lifetime_of_answer(&body) <= 86_400);
}

#[test]
fn a_token_issued_already_expired_is_never_a_success() {
    // Zero, and negative ones, which must not be read as "no expires_in"
    // and served for default_lifetime_seconds, however they are spelt (a
    // server that sends a string may send it with a fraction or exponent).
    for expires_in in ["0", "-5", "-1e30", "\"-5\"", "\"-5.5\"", "\"-1e3\"", "\"0.0\""] {
        let endpoint = Hostile::start(Behaviour::Answer {
            status: 200,
            body: format!(r#"{{"access_token": "opaque-token", "expires_in": {expires_in}}}"#),
        });
        let idp = Sts::start(StsOptions::default());
        let sandbox = Sandbox::new();
        sandbox.write_exchange_config(REGISTRY, &endpoint.url(), json!({"default_lifetime_seconds": 600}));
        sandbox.store(REGISTRY, "alice", &idp.mint_subject_token("alice", 3600)).quiet_success();
        let out = sandbox.get(REGISTRY).failure();
        assert!(out.stdout.contains("already expired"), "{expires_in}: {out:?}");
        assert!(!out.stdout.contains("opaque-token"));
        assert!(cache_entries(&sandbox).is_empty(), "{expires_in}: an expired token was cached");
    }
}

#[test]
fn changing_the_configured_username_changes_what_a_cached_get_returns() {
    let (sandbox, sts) = setup(json!({"username": "first"}));
    store_login(&sandbox, &sts, "alice");
    assert_eq!(sandbox.get(REGISTRY).quiet_success().json()["Username"], "first");
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({"username": "second"}));
    assert_eq!(sandbox.get(REGISTRY).quiet_success().json()["Username"], "second");
}

#[test]
fn a_registry_key_given_twice_is_an_error_not_the_last_one_winning() {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    let entry = format!(r#"{{"token_endpoint": "{}"}}"#, sts.url());
    let config = format!(r#"{{"registries": {{"{REGISTRY}": {entry}, "{REGISTRY}": {entry}}}}}"#);
    std::fs::write(sandbox.config_path(), config).unwrap();
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("appears twice") && out.stdout.contains("line 1"), "{out:?}");
}

#[test]
fn a_path_that_is_not_a_repository_never_reaches_the_sts() {
    let (sandbox, sts) = setup(json!({"scope": "repository:{repository}:pull"}));
    store_login(&sandbox, &sts, "alice");
    for path in ["team/../../etc", "team/app:latest", "Team/App", "team/*"] {
        let out = sandbox.cmd(&["get"]).stdin(format!("{REGISTRY}/{path}")).run().failure();
        assert!(out.stdout.contains("not a repository name"), "{path}: {out:?}");
    }
    assert_eq!(sts.requests(), 0);
}

#[test]
fn the_registry_api_root_is_the_registry_not_a_repository_named_v2() {
    let (sandbox, sts) = setup(json!({"scope": "repository:team/app:pull"}));
    store_login(&sandbox, &sts, "alice");
    let out = sandbox.get(&format!("https://{REGISTRY}/v2/")).quiet_success();
    assert_eq!(out.json()["ServerURL"], format!("https://{REGISTRY}/v2/"));
    let again = sandbox.get(REGISTRY).quiet_success();
    assert_eq!(out.secret(), again.secret(), "/v2/ was cached under another key");
    assert_eq!(sts.requests(), 1);
}

#[test]
fn a_loopback_exchange_never_goes_through_a_proxy() {
    let proxy = Hostile::start(Behaviour::Proxy);
    let (mut sandbox, sts) = setup(json!({}));
    store_login(&sandbox, &sts, "alice");
    for var in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
        sandbox.set_env(var, &proxy.proxy_url());
    }
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(proxy.connections(), 0, "the plain-http exchange went through the proxy");
    assert_eq!(sts.requests(), 1);
}

#[test]
fn a_config_that_is_dev_zero_is_refused_at_once() {
    let mut sandbox = Sandbox::new();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_CONFIG", "/dev/zero");
    let start = Instant::now();
    let out = sandbox.cmd(&["status"]).run();
    assert!(
        out.stdout.contains("not a regular file") || out.stderr.contains("not a regular file"),
        "{out:?}"
    );
    sandbox.get(REGISTRY).failure();
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn storing_back_a_token_the_helper_issued_keeps_the_login() {
    // `docker login HOST` without new credentials stores what `get` gave it.
    let (sandbox, sts) = setup(json!({}));
    let login = store_login(&sandbox, &sts, "alice");
    let issued = sandbox.get(REGISTRY).quiet_success();
    sandbox.store(REGISTRY, issued.json()["Username"].as_str().unwrap(), &issued.secret()).quiet_success();
    let stored = std::fs::read_to_string(sandbox.data_dir().join("credentials.json")).unwrap();
    assert!(stored.contains(&login), "the login token was replaced by an issued token");
    sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(login.as_str()));
}

// Windows needs a privilege to make symlinks.
#[cfg(unix)]
#[test]
fn a_cache_directory_that_is_a_symlink_to_a_directory_of_ours_caches() {
    let (mut sandbox, sts) = setup(json!({}));
    let real = sandbox.root().join("elsewhere");
    std::fs::create_dir(&real).unwrap();
    let link = sandbox.root().join("linked-cache");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR", link.to_str().unwrap());
    store_login(&sandbox, &sts, "alice");
    sandbox.get(REGISTRY).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1, "caching was off behind the link");
}
