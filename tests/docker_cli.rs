//! Docker's own CLI logs in and out through the helper (`credsStore`)
//! against Debian's docker-registry with htpasswd auth. `docker login`
//! needs no engine: it checks the password against the registry itself,
//! then calls the helper's `store`; `docker logout` calls `erase`.

// Debian's docker-registry and Docker's CLI, started by the Linux-only
// service launchers.
#![cfg(target_os = "linux")]

mod support;

use std::path::Path;
use std::process::Command;

use support::cmd::{Sandbox, bin};
use support::services::{Registry, require_tools};

/// A `docker` command whose config dir says `credsStore: exchange` and
/// whose PATH finds this helper as `docker-credential-exchange`.
fn docker(sandbox: &Sandbox, docker_config: &Path) -> Command {
    let bindir = sandbox.root().join("bin");
    if !bindir.exists() {
        std::fs::create_dir_all(&bindir).unwrap();
        std::os::unix::fs::symlink(bin(), bindir.join("docker-credential-exchange")).unwrap();
    }
    let mut cmd = Command::new("docker");
    cmd.env_clear().envs(sandbox.env());
    cmd.env("PATH", format!("{}:{}", bindir.display(), sandbox.env()["PATH"]));
    cmd.env("DOCKER_CONFIG", docker_config);
    cmd
}

fn setup() -> Option<(Sandbox, Registry, std::path::PathBuf)> {
    if !require_tools(&["docker", "docker-registry", "htpasswd"]) {
        return None;
    }
    let sandbox = Sandbox::new();
    let registry = Registry::start_htpasswd("alice", "wonderland");
    let docker_config = sandbox.root().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    std::fs::write(docker_config.join("config.json"), r#"{"credsStore": "exchange"}"#).unwrap();
    Some((sandbox, registry, docker_config))
}

fn run(cmd: &mut Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run docker");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn docker_login_stores_through_the_helper() {
    let Some((sandbox, registry, docker_config)) = setup() else { return };
    let out = run(
        docker(&sandbox, &docker_config).args([
            "login",
            "--username",
            "alice",
            "--password-stdin",
            &registry.addr(),
        ]),
        "wonderland",
    );
    assert!(
        out.status.success(),
        "docker login failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        registry.log()
    );
    let answer = sandbox.get(&registry.addr()).quiet_success().json();
    assert_eq!(answer["Username"], "alice");
    assert_eq!(answer["Secret"], "wonderland");
    let config = std::fs::read_to_string(docker_config.join("config.json")).unwrap();
    assert!(!config.contains("wonderland") && !config.contains("\"auth\""), "Docker kept a copy: {config}");
}

#[test]
fn docker_logout_erases_through_the_helper() {
    let Some((sandbox, registry, docker_config)) = setup() else { return };
    let login = run(
        docker(&sandbox, &docker_config).args(["login", "-u", "alice", "--password-stdin", &registry.addr()]),
        "wonderland",
    );
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    let out = run(docker(&sandbox, &docker_config).args(["logout", &registry.addr()]), "");
    assert!(out.status.success(), "docker logout failed: {}", String::from_utf8_lossy(&out.stderr));
    sandbox.get(&registry.addr()).protocol_error("credentials not found in native keychain");
    assert_eq!(sandbox.list().quiet_success().json(), serde_json::json!({}));
}

#[test]
fn docker_login_with_a_wrong_password_stores_nothing() {
    let Some((sandbox, registry, docker_config)) = setup() else { return };
    let out = run(
        docker(&sandbox, &docker_config).args(["login", "-u", "alice", "--password-stdin", &registry.addr()]),
        "wrong",
    );
    assert!(!out.status.success());
    sandbox.get(&registry.addr()).protocol_error("credentials not found in native keychain");
}

#[test]
fn a_typo_in_the_config_does_not_stop_docker_login_for_a_plain_registry() {
    let Some((sandbox, registry, docker_config)) = setup() else { return };
    // A trailing comma: the exchange registries cannot be used, plain ones can.
    std::fs::write(
        sandbox.config_path(),
        "{\"registries\": {\"sts.example\": {\"token_endpoint\": \"https://sts.example/token\"},}}",
    )
    .unwrap();
    let out = run(
        docker(&sandbox, &docker_config).args(["login", "-u", "alice", "--password-stdin", &registry.addr()]),
        "wonderland",
    );
    assert!(out.status.success(), "docker login failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sandbox.get(&registry.addr()).quiet_success().secret(), "wonderland");
    let exchange = sandbox.get("sts.example").failure();
    assert!(
        exchange.stdout.contains("line 1"),
        "the exchange registry gets the config's error: {exchange:?}"
    );
}

#[test]
fn docker_login_without_new_credentials_keeps_the_exchange_login() {
    let Some((sandbox, registry, docker_config)) = setup() else { return };
    let sts = support::sts::Sts::start(support::sts::StsOptions::default());
    sandbox.write_exchange_config(&registry.addr(), &sts.url(), serde_json::json!({}));
    let login = sts.mint_subject_token("alice", 3600);
    sandbox.cmd(&["login", &registry.addr(), "--token-stdin"]).stdin(&login).run().success();
    // `docker login HOST` with nothing new: Docker runs `get`, tries what it
    // got, and stores it back whatever the registry said.
    let _ = run(docker(&sandbox, &docker_config).args(["login", &registry.addr()]), "");
    let stored = std::fs::read_to_string(sandbox.data_dir().join("credentials.json")).unwrap();
    assert!(stored.contains(&login), "docker login replaced the login token: {stored}");
}
