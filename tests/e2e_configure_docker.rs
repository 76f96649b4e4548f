//! `configure-docker` as Docker's own CLI sees the result: a private
//! dockerd and Debian's docker-registry with htpasswd auth, and `docker
//! login REGISTRY` without a username, which authenticates with whatever
//! credential Docker finds for the registry (and fails without a
//! terminal when it finds none). So a login that succeeds proves that
//! Docker sends a working credential for that host.
//!
//! Docker reduces every `auths` key to its host before it looks a registry
//! up (docker/cli `cli/config/credentials/file_store.go`: `fileStore.Get`
//! compares the registry with `ConvertToHostname(key)`), so a credential
//! under `http://HOST/v1/` or `HOST/team` is HOST's. Once a helper serves
//! HOST (`credsStore` or `credHelpers`), Docker asks only the helper
//! (`nativeStore.Get` takes nothing but the e-mail from the file).

// dockerd and docker-registry, started by the Linux-only service launchers.
#![cfg(target_os = "linux")]

mod support;

use serde_json::{Value, json};
use support::cmd::Output;
use support::e2e::{Client, require_engine, start_engine};
use support::services::{Dockerd, Registry, require_tool};

/// base64("alice:wonderland"), as `docker login` without a helper stores it.
const ALICE: &str = "YWxpY2U6d29uZGVybGFuZA==";

/// An engine, a registry that takes alice's password, and a client whose
/// helper has no exchange registries and whose Docker config is `config`.
fn setup(config: &Value) -> Option<(Dockerd, Registry, Client)> {
    if !require_engine() || !require_tool("htpasswd") {
        return None;
    }
    let engine = start_engine();
    let registry = Registry::start_htpasswd("alice", "wonderland");
    let client = Client::new();
    client.write_helper_config(json!({}));
    let config = serde_json::to_string(config).unwrap().replace("ADDR", &registry.addr());
    client.write_docker_config(serde_json::from_str(&config).unwrap());
    Some((engine, registry, client))
}

/// `docker-credential-exchange configure-docker ARGS` on the client's
/// Docker config.
fn configure(client: &Client, args: &[&str]) -> Output {
    let mut all = vec!["configure-docker"];
    all.extend_from_slice(args);
    client.sandbox.cmd(&all).env("DOCKER_CONFIG", client.docker_config_dir()).run()
}

/// `docker login ADDR` with what Docker finds stored: succeeds only if
/// Docker sends alice's password for the registry.
fn login_with_what_docker_finds(client: &Client, engine: &Dockerd, registry: &Registry) -> Output {
    client.docker(engine, &["login", &registry.addr()])
}

#[test]
fn docker_still_sends_a_credential_stored_under_an_api_url_after_configure_docker_store() {
    let config = json!({"auths": {"http://ADDR/v1/": {"auth": ALICE}}});
    let Some((engine, registry, client)) = setup(&config) else { return };
    // The premise: Docker reads the key as the registry's credential.
    let before = login_with_what_docker_finds(&client, &engine, &registry).success();
    assert!(format!("{}{}", before.stdout, before.stderr).contains("[Username: alice]"), "{before:?}");
    client.write_docker_config(
        serde_json::from_str(&config.to_string().replace("ADDR", &registry.addr())).unwrap(),
    );

    configure(&client, &["--store"]).success();

    login_with_what_docker_finds(&client, &engine, &registry).success();
    assert!(client.helper_calls().contains(&"get".to_owned()), "{:?}", client.helper_calls());
    assert!(!client.docker_config().to_string().contains(ALICE), "{}", client.docker_config());
}

#[test]
fn docker_still_sends_a_credential_stored_under_a_namespace_after_configure_docker_host() {
    let Some((engine, registry, client)) = setup(&json!({"auths": {"ADDR/team": {"auth": ALICE}}})) else {
        return;
    };

    configure(&client, &[&registry.addr()]).success();

    login_with_what_docker_finds(&client, &engine, &registry).success();
    assert_eq!(client.docker_config()["credHelpers"][registry.addr()], "exchange");
}

#[test]
fn docker_finds_the_password_in_its_file_again_after_store_then_remove() {
    let Some((engine, registry, client)) = setup(&json!({"auths": {"ADDR": {"auth": ALICE}}})) else {
        return;
    };
    configure(&client, &["--store"]).success();
    login_with_what_docker_finds(&client, &engine, &registry).success();

    configure(&client, &["--remove"]).success();

    assert_eq!(client.docker_config()["credsStore"], Value::Null, "{}", client.docker_config());
    client.clear_helper_calls();
    login_with_what_docker_finds(&client, &engine, &registry).success();
    assert!(client.helper_calls().is_empty(), "Docker still asked the helper: {:?}", client.helper_calls());
    assert_eq!(client.sandbox.list().quiet_success().json(), json!({}), "the helper's copy is gone");
}
