//! The CI image (`install/Dockerfile`), built and used: a private dockerd
//! imports a Debian bookworm base made here with debootstrap (no registry
//! image can be pulled), builds the Dockerfile's `prebuilt` target around
//! the binary under test, and a container from the image runs the helper
//! against the local STS and registry, the way a CI job does: subject token
//! from the job's environment, no keyring, config mounted at the path the
//! image names.

// dockerd, docker-registry and debootstrap: the Linux-only launchers.
#![cfg(target_os = "linux")]

mod support;

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use support::cmd::bin;
use support::e2e::{Client, TokenStack, require_engine};
use support::services::{Dockerd, docker_import_bookworm, mirror_in, require_debootstrap};

const BASE: &str = "dce-test-base:bookworm";
const IMAGE: &str = "dce-test-ci:latest";

/// Builds the CI image in `engine` from the local base, with `REGISTRY`
/// preconfigured, as `docker build --target prebuilt` documents it.
fn build_image(client: &Client, engine: &Dockerd, registry: &str) {
    docker_import_bookworm(engine, BASE);
    let context = tempfile::tempdir().unwrap();
    fs::copy(bin(), context.path().join("docker-credential-exchange")).unwrap();
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("install").join("Dockerfile");
    let (dockerfile, context) = (dockerfile.display().to_string(), context.path().display().to_string());
    let base_arg = format!("BASE={BASE}");
    let registry_arg = format!("REGISTRY={registry}");
    // The classic builder: BuildKit would want its frontend image from a
    // registry. Its RUN steps need no network (the base has the TLS roots),
    // and this dockerd has no bridge, so they get none.
    let args = [
        "build",
        "--network",
        "none",
        "-f",
        &dockerfile,
        "--target",
        "prebuilt",
        "--build-arg",
        &base_arg,
        "--build-arg",
        &registry_arg,
        "-t",
        IMAGE,
        &context,
    ];
    client.docker_with(engine, &args, &[("DOCKER_BUILDKIT", "0")], None).success();
}

/// A CI job's client: its subject token in `REGISTRY_ID_TOKEN`, and an
/// exchange entry for `stack` that reads it.
fn ci_client(stack: &TokenStack) -> (Client, String, tempfile::TempDir) {
    let mut client = Client::ci();
    let subject = stack.sts.mint_subject_token("ci-job", 600);
    client.sandbox.set_env("REGISTRY_ID_TOKEN", &subject);
    let config = tempfile::tempdir().unwrap();
    let entry = stack.entry(json!({"subject_token": {"source": "env", "var": "REGISTRY_ID_TOKEN"}}));
    fs::write(config.path().join("config.json"), json!({"registries": {stack.addr(): entry}}).to_string())
        .unwrap();
    (client, subject, config)
}

#[test]
fn mirror_comes_from_one_line_apt_sources() {
    let text = "deb http://deb.debian.org/debian-security bookworm-security main\n\
                deb [arch=amd64] http://deb.debian.org/debian bookworm main\n";
    assert_eq!(mirror_in(text, "bookworm").as_deref(), Some("http://deb.debian.org/debian"));
}

#[test]
fn mirror_comes_from_deb822_apt_sources() {
    let text = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n\
                Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n";
    assert_eq!(mirror_in(text, "bookworm").as_deref(), Some("http://deb.debian.org/debian"));
}

#[test]
fn container_from_the_ci_image_gets_a_token_from_the_local_sts() {
    if !require_engine() || !require_debootstrap() {
        return;
    }
    let stack = TokenStack::start();
    let engine = Dockerd::start();
    let (client, subject, config) = ci_client(&stack);
    build_image(&client, &engine, &stack.addr());

    // Host networking: this dockerd has no bridge, and the STS listens on
    // the host's 127.0.0.1.
    let mount = format!("{}:/etc/docker-credential-exchange:ro", config.path().display());
    let run = [
        "run",
        "--rm",
        "-i",
        "--network",
        "host",
        "-e",
        "REGISTRY_ID_TOKEN",
        "-v",
        &mount,
        IMAGE,
        "docker-credential-exchange",
        "get",
    ];
    let out = client.docker_with(&engine, &run, &[], Some(&stack.addr())).success();

    let answer: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    assert_eq!(answer["ServerURL"], stack.addr());
    assert_eq!(answer["Username"], "oauth2accesstoken");
    let token = answer["Secret"].as_str().expect("a Secret");
    let mut validation = jsonwebtoken::Validation::new(stack.sts.access_token_algorithm());
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &stack.sts.access_token_decoding_key(), &validation)
        .unwrap_or_else(|e| panic!("the Secret is not a token the STS issued: {e}"));
    assert_eq!(stack.exchanges(), 1);
    let request = stack.sts.last_request().expect("an exchange");
    assert!(request.form_value("subject_token") == Some(subject.as_str()), "not the job's subject token");
}

#[test]
fn ci_image_sends_its_registry_to_the_helper_and_names_its_config() {
    if !require_engine() || !require_debootstrap() {
        return;
    }
    let engine = Dockerd::start();
    let client = Client::ci();
    build_image(&client, &engine, "registry.example.com");

    let out = client
        .docker(&engine, &["run", "--rm", "--network", "none", IMAGE, "cat", "/root/.docker/config.json"]);
    let docker_config: Value = serde_json::from_str(&out.success().stdout).expect("Docker's config is JSON");
    assert_eq!(docker_config["credHelpers"], json!({"registry.example.com": "exchange"}));
    let env = client
        .docker(&engine, &["image", "inspect", "--format", "{{json .Config.Env}}", IMAGE])
        .success()
        .stdout;
    assert!(
        env.contains("DOCKER_CREDENTIAL_EXCHANGE_CONFIG=/etc/docker-credential-exchange/config.json"),
        "{env}"
    );
}
