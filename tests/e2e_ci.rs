//! End to end as in a CI job: no D-Bus, no keyring and no file store in the
//! environment at all; the login (subject) token is the job's identity
//! token, from a variable (GitLab `id_tokens`) or from the GitHub Actions
//! OIDC endpoint, served here on loopback by the local STS. The real engine
//! still pushes and pulls through the helper (issue 6).

// dockerd and docker-registry, started by the Linux-only service launchers.
#![cfg(target_os = "linux")]

mod support;

use serde_json::json;
use support::e2e::{Client, TINY, TokenStack, granted, require_engine, start_engine};
use support::sts::GITHUB_OIDC_USER_AGENT;

/// Tags, pushes, removes and pulls `team/app:1`: the job's round trip.
fn push_and_pull(client: &Client, stack: &TokenStack) {
    let engine = start_engine();
    let image = stack.image("team/app:1");
    client.push_tiny_as(&engine, &image).success();
    client.docker(&engine, &["rmi", &image, TINY]).success();
    client.docker(&engine, &["pull", &image]).success();
    let grants = stack.grants();
    assert!(granted(&grants, "team/app", "push") && granted(&grants, "team/app", "pull"), "{grants:#?}");
}

#[test]
fn env_subject_without_any_keyring_pushes_and_pulls() {
    if !require_engine() {
        return;
    }
    let stack = TokenStack::start();
    let mut client = Client::ci();
    let subject = stack.sts.mint_subject_token("gitlab-job", 600);
    client.sandbox.set_env("REGISTRY_ID_TOKEN", &subject);
    client.write_helper_config(json!({
        stack.addr(): stack.entry(json!({"subject_token": {"source": "env", "var": "REGISTRY_ID_TOKEN"}})),
    }));
    client.write_docker_config(json!({ "credHelpers": { stack.addr(): "exchange" } }));

    push_and_pull(&client, &stack);
    assert_eq!(stack.exchanges(), 1);
    let request = stack.sts.last_request().expect("an exchange");
    assert_eq!(request.form_value("subject_token"), Some(subject.as_str()));
    assert!(stack.grants().iter().all(|g| g.subject.as_deref() == Some("gitlab-job")));
}

#[test]
fn github_actions_subject_without_any_keyring_pushes_and_pulls() {
    if !require_engine() {
        return;
    }
    let stack = TokenStack::start();
    let mut client = Client::ci();
    client.sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_URL", &stack.sts.oidc_url_with_query());
    client.sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &stack.sts.oidc_request_token());
    client.write_helper_config(json!({
        stack.addr(): stack.entry(json!({"subject_token": {"source": "github-actions", "audience": "local-sts"}})),
    }));
    client.write_docker_config(json!({ "credHelpers": { stack.addr(): "exchange" } }));

    push_and_pull(&client, &stack);
    assert_eq!(stack.exchanges(), 1);
    assert_eq!(stack.sts.oidc_requests(), 1, "a cache hit must not fetch a new ID token");
    let oidc = stack.sts.all_requests().into_iter().find(|r| r.path.starts_with("/github-oidc")).unwrap();
    assert!(oidc.query.contains(&("audience".into(), "local-sts".into())), "{:?}", oidc.query);
    assert_eq!(oidc.header("user-agent"), Some(GITHUB_OIDC_USER_AGENT));
    let job = "repo:octo/app:ref:refs/heads/main";
    assert!(stack.grants().iter().all(|g| g.subject.as_deref() == Some(job)), "{:#?}", stack.grants());
}
