//! End to end with the real Docker engine: a private dockerd pushes to and
//! pulls from Debian's docker-registry with token auth, the Docker CLI
//! running this helper from `credHelpers` or `credsStore`, the helper
//! exchanging its login token at the local STS, and the realm turning the
//! exchanged token into registry tokens (issue 6).
//!
//! Each test starts its own engine and registries, so the tests share
//! nothing and may run in parallel (see `support::e2e::start_engine`).

// dockerd and docker-registry, started by the Linux-only service launchers.
#![cfg(target_os = "linux")]

mod support;

use serde_json::json;
use support::e2e::{
    Client, SCOPE_TEAM_APP, TINY, TokenStack, granted, refused, require_engine, start_engine,
};
use support::services::{Dockerd, Registry, require_tool};
use support::sts::Fault;

/// The token stack, an engine, and a client whose Docker config sends the
/// stack's registry to the helper through `credHelpers`, and whose helper
/// holds a login token for it (stored without the verifying exchange, so
/// the first exchange is Docker's). `None` after a loud skip when the
/// engine is not installed.
fn through_cred_helpers() -> Option<(TokenStack, Dockerd, Client)> {
    if !require_engine() {
        return None;
    }
    let stack = TokenStack::start();
    let engine = start_engine();
    let client = Client::new();
    client.write_helper_config(json!({ stack.addr(): stack.entry(json!({})) }));
    client.write_docker_config(json!({ "credHelpers": { stack.addr(): "exchange" } }));
    client.login(&stack.addr(), &stack.login_token(), &["--no-verify"]).success();
    assert_eq!(stack.exchanges(), 0);
    Some((stack, engine, client))
}

#[test]
fn push_rmi_pull_through_cred_helpers_exchanges_once_for_the_token_life() {
    let Some((stack, engine, client)) = through_cred_helpers() else { return };
    let image = stack.image("team/app:1");

    client.push_tiny_as(&engine, &image).success();
    assert_eq!(stack.exchanges(), 1, "the push must exchange the login token once");
    let grants = stack.grants();
    assert!(granted(&grants, "team/app", "push"), "the realm granted no push: {grants:#?}");
    assert!(grants.iter().all(|g| g.subject.as_deref() == Some("alice")), "{grants:#?}");

    client.docker(&engine, &["rmi", &image, TINY]).success();
    let realm_before = stack.realm.requests();
    client.docker(&engine, &["pull", &image]).success();
    assert!(stack.realm.requests() > realm_before, "the pull did not authenticate at the realm");
    client.docker(&engine, &["rmi", &image]).success();
    client.docker(&engine, &["pull", &image]).success();
    assert_eq!(stack.exchanges(), 1, "pulls within the token's life must reuse the cached token");
    assert!(granted(&stack.grants(), "team/app", "pull"));
    assert!(client.helper_calls().iter().all(|call| call == "get"), "{:?}", client.helper_calls());
}

#[test]
fn classic_builder_lists_then_gets_and_builds_from_the_exchange_registry() {
    if !require_engine() {
        return;
    }
    let stack = TokenStack::start();
    let engine = start_engine();
    let client = Client::new();
    client.write_helper_config(json!({ stack.addr(): stack.entry(json!({})) }));
    // The builder asks the default store for every credential (`list`, then
    // `get` for each); `credHelpers` entries are only ever `get`.
    client.write_docker_config(json!({ "credsStore": "exchange" }));
    // A person's login: stored and proved with one exchange.
    client.login(&stack.addr(), &stack.login_token(), &[]).success();
    assert_eq!(stack.exchanges(), 1);
    let base = stack.image("team/app:base");
    client.push_tiny_as(&engine, &base).success();
    client.docker(&engine, &["rmi", &base, TINY]).success();

    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("Dockerfile"), format!("FROM {base}\nCOPY extra.txt /extra.txt\n"))
        .unwrap();
    std::fs::write(context.path().join("extra.txt"), "built\n").unwrap();
    client.clear_helper_calls();
    let realm_before = stack.realm.requests();
    let context_arg = context.path().display().to_string();
    client
        .docker_with(&engine, &["build", "-t", "built:1", &context_arg], &[("DOCKER_BUILDKIT", "0")], None)
        .success();

    let calls = client.helper_calls();
    let list = calls.iter().position(|c| c == "list");
    let get = calls.iter().rposition(|c| c == "get");
    assert!(matches!((list, get), (Some(l), Some(g)) if l < g), "expected list, then get: {calls:?}");
    assert!(calls.iter().all(|c| c == "list" || c == "get"), "{calls:?}");
    assert!(stack.realm.requests() > realm_before, "the FROM pull did not authenticate");
    assert_eq!(stack.exchanges(), 1, "the build must use the cached token");
    client.docker(&engine, &["image", "inspect", "built:1"]).success();
}

#[test]
fn docker_login_and_logout_use_the_creds_store_that_also_serves_an_exchange_registry() {
    if !require_engine() || !require_tool("htpasswd") {
        return;
    }
    let stack = TokenStack::start();
    let plain = Registry::start_htpasswd("alice", "s3cret-password");
    let engine = start_engine();
    let client = Client::new();
    client.write_helper_config(json!({ stack.addr(): stack.entry(json!({"username": "robot"})) }));
    client.write_docker_config(json!({ "credsStore": "exchange" }));
    client.login(&stack.addr(), &stack.login_token(), &["--no-verify"]).success();

    client
        .docker_with(
            &engine,
            &["login", "-u", "alice", "--password-stdin", &plain.addr()],
            &[],
            Some("s3cret-password\n"),
        )
        .success();
    assert!(client.helper_calls().contains(&"store".to_string()), "{:?}", client.helper_calls());
    let listed = client.sandbox.list().quiet_success().json();
    assert_eq!(listed, json!({ plain.addr(): "alice", stack.addr(): "robot" }));
    let stored = client.sandbox.get(&plain.addr()).quiet_success().json();
    assert_eq!(
        (stored["Username"].as_str(), stored["Secret"].as_str()),
        (Some("alice"), Some("s3cret-password"))
    );

    // One helper serves both: the stored password and the exchange.
    let plain_image = format!("{}/team/app:1", plain.addr());
    let token_image = stack.image("team/app:1");
    for image in [&plain_image, &token_image] {
        client.push_tiny_as(&engine, image).success();
    }
    assert_eq!(stack.exchanges(), 1);
    assert!(granted(&stack.grants(), "team/app", "push"));

    client.docker(&engine, &["logout", &plain.addr()]).success();
    assert!(client.helper_calls().contains(&"erase".to_string()), "{:?}", client.helper_calls());
    let listed = client.sandbox.list().quiet_success().json();
    assert_eq!(listed, json!({ stack.addr(): "robot" }));
    client.sandbox.get(&plain.addr()).protocol_error("credentials not found in native keychain");
    client.docker(&engine, &["rmi", &plain_image]).success();
    let out = client.docker(&engine, &["pull", &plain_image]).failure();
    assert!(
        out.stderr.contains("no basic auth credentials") || out.stderr.contains("unauthorized"),
        "{out:?}"
    );
    // The exchange registry is untouched by the other registry's logout.
    client.docker(&engine, &["rmi", &token_image]).success();
    client.docker(&engine, &["pull", &token_image]).success();
}

#[test]
fn fixed_scope_host_entry_pushes_team_app_and_is_denied_team_other() {
    let Some((stack, engine, client)) = through_cred_helpers() else { return };
    let (app, other) = (stack.image("team/app:1"), stack.image("team/other:1"));
    client.push_tiny_as(&engine, &app).success();
    let out = client.push_tiny_as(&engine, &other).failure();
    assert!(out.stderr.contains("denied") || out.stderr.contains("unauthorized"), "{out:?}");

    let request = stack.sts.last_request().expect("an exchange");
    assert_eq!(request.form_value("scope"), Some(SCOPE_TEAM_APP));
    let grants = stack.grants();
    assert!(granted(&grants, "team/app", "push"), "{grants:#?}");
    assert!(refused(&grants, "team/other"), "{grants:#?}");
    assert!(!granted(&grants, "team/other", "push"), "{grants:#?}");
}

#[test]
fn a_pull_inside_the_refresh_margin_makes_exactly_one_new_exchange() {
    if !require_engine() {
        return;
    }
    // One-hour tokens and a ten-minute margin: the cached token serves for
    // 50 minutes, then the next `get` exchanges again.
    let stack = TokenStack::start();
    let engine = start_engine();
    let client = Client::new();
    client.write_helper_config(json!({ stack.addr(): stack.entry(json!({"safety_margin_seconds": 600})) }));
    client.write_docker_config(json!({ "credHelpers": { stack.addr(): "exchange" } }));
    client.login(&stack.addr(), &stack.login_token(), &[]).success();
    assert_eq!(stack.exchanges(), 1, "login proves the token with one exchange");

    let image = stack.image("team/app:1");
    client.push_tiny_as(&engine, &image).success();
    client.docker(&engine, &["rmi", &image, TINY]).success();
    assert_eq!(stack.exchanges(), 1, "inside the token's first 50 minutes the cached token serves");

    // 55 minutes later by the helper's clock (the test clock seam, which
    // Docker passes on to the helper it runs): inside the margin, with
    // five minutes of real time to spare before the token expires.
    let later = [("DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET", "3300")];
    client.docker_with(&engine, &["pull", &image], &later, None).success();
    assert_eq!(stack.exchanges(), 2, "the pull inside the margin must make exactly one new exchange");
    client.docker(&engine, &["rmi", &image]).success();
    client.docker_with(&engine, &["pull", &image], &later, None).success();
    assert_eq!(stack.exchanges(), 2, "the refreshed token must serve the next pull");
}

#[test]
fn invalid_grant_fails_docker_pull_and_the_log_file_names_the_cause() {
    let Some((stack, engine, client)) = through_cred_helpers() else { return };
    let image = stack.image("team/app:1");
    client.push_tiny_as(&engine, &image).success();
    client.docker(&engine, &["rmi", &image, TINY]).success();
    // The image is there and the login token was good; now the STS refuses
    // it, and no cached token hides that.
    client.sandbox.cmd(&["cache", "clear"]).run().success();
    stack.sts.set_fault(Fault::InvalidGrant);

    let out = client.docker(&engine, &["pull", &image]).failure();
    assert_eq!(stack.exchanges(), 2, "invalid_grant is not retried");
    // Docker CLI 28 goes on without credentials when the helper fails, so
    // the user sees the registry's refusal; the log file has the cause.
    assert!(out.stderr.contains("unauthorized"), "{out:?}");
    let log = client.helper_log();
    let line = log
        .lines()
        .find(|l| l.contains("error: get:"))
        .unwrap_or_else(|| panic!("no error in the log:\n{log}"));
    for part in ["invalid_grant", &stack.addr(), &stack.sts.url()] {
        assert!(line.contains(part), "the log's error line does not name {part}: {line}");
    }
}
