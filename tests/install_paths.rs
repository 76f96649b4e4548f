//! The ways people install the helper (README, "Install"), each used the
//! way a person would: the .deb that `.ci/run` builds with
//! `install/build-deb.sh` and installs with `dpkg -i` serves a real Docker
//! as its `credsStore` from `/usr/bin`, and `cargo install --locked --git`
//! builds a working binary from the repository. (`install/install.sh` is
//! tested in cli.rs, the CI image in ci_image.rs.)
//!
//! The .deb tests need the package installed: they skip loudly without it,
//! and fail under CI, where `.ci/run` installs it first.

// dockerd and docker-registry come from the Linux-only service launchers;
// the .deb is Debian's.
#![cfg(target_os = "linux")]

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::e2e::{Client, TINY, require_engine, start_engine};
use support::services::{Registry, require_tool, require_tools};

/// Where the .deb puts the binary.
const INSTALLED: &str = "/usr/bin/docker-credential-exchange";

fn deb_installed() -> bool {
    require_tool(INSTALLED)
}

#[test]
fn deb_installed_helper_serves_docker_login_and_pull_as_creds_store() {
    if !deb_installed() || !require_engine() || !require_tool("htpasswd") {
        return;
    }
    let registry = Registry::start_htpasswd("alice", "deb-password");
    let engine = start_engine();
    // PATH is /usr/bin alone: Docker runs the packaged binary, not the one
    // cargo built for this test run.
    let client = Client::installed_in(Path::new("/usr/bin"));
    client.write_docker_config(json!({ "credsStore": "exchange" }));

    client
        .docker_with(
            &engine,
            &["login", "-u", "alice", "--password-stdin", &registry.addr()],
            &[],
            Some("deb-password"),
        )
        .success();
    let config = client.docker_config().to_string();
    assert!(!config.contains("deb-password") && !config.contains("\"auth\""), "Docker kept a copy: {config}");

    let image = format!("{}/team/app:1", registry.addr());
    client.push_tiny_as(&engine, &image).success();
    client.docker(&engine, &["rmi", &image, TINY]).success();
    client.docker(&engine, &["pull", &image]).success();

    // What Docker stored went through the packaged helper into its store.
    let mut list = Command::new(INSTALLED);
    list.arg("list").env_clear().envs(client.client_env());
    let listed = list.output().expect("run the installed helper");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stdout));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("list is JSON");
    assert_eq!(listed, json!({ registry.addr(): "alice" }));
}

#[test]
fn deb_installs_the_man_page_completions_readme_and_licences() {
    if !deb_installed() {
        return;
    }
    for path in [
        "/usr/share/man/man1/docker-credential-exchange.1.gz",
        "/usr/share/bash-completion/completions/docker-credential-exchange",
        "/usr/share/zsh/vendor-completions/_docker-credential-exchange",
        "/usr/share/fish/vendor_completions.d/docker-credential-exchange.fish",
        "/usr/share/doc/docker-credential-exchange/README.md",
        "/usr/share/doc/docker-credential-exchange/LICENSE-MIT",
        "/usr/share/doc/docker-credential-exchange/LICENSE-APACHE",
        "/usr/share/doc/docker-credential-exchange/copyright",
    ] {
        let owner = Command::new("dpkg").args(["-S", path]).output().expect("run dpkg -S");
        assert!(
            String::from_utf8_lossy(&owner.stdout).starts_with("docker-credential-exchange:"),
            "{path} is not the package's: {}",
            String::from_utf8_lossy(&owner.stderr)
        );
    }
}

#[test]
fn deb_installs_the_version_of_this_checkout() {
    if !deb_installed() {
        return;
    }
    let out = Command::new(INSTALLED).arg("version").output().expect("run the installed helper");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        concat!("docker-credential-exchange ", env!("CARGO_PKG_VERSION"), "\n"),
        "the installed package is not this checkout's; rebuild it with install/build-deb.sh"
    );
}

#[test]
fn deb_man_page_renders_and_documents_every_command() {
    if !deb_installed() || !require_tool("man") {
        return;
    }
    let out = Command::new("man")
        .args(["-P", "cat", "docker-credential-exchange"])
        .env("MANWIDTH", "100")
        .env_remove("MAN_KEEP_FORMATTING")
        .output()
        .expect("run man");
    let page = plain_text(&String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "man failed: {}", String::from_utf8_lossy(&out.stderr));
    for command in ["login", "logout", "status", "token", "cache clear", "configure-docker", "doctor"] {
        assert!(
            page.contains(&format!("docker-credential-exchange {command}")),
            "{command} missing:\n{page}"
        );
    }
}

/// `man`'s output without the overstrikes (`c\bc` for bold) that some
/// set-ups keep even when writing to a pipe.
fn plain_text(page: &str) -> String {
    let mut plain = String::with_capacity(page.len());
    for c in page.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Slow: a release build of the crate from a git checkout (dependencies
/// come from the shared target directory).
#[test]
fn cargo_install_from_git_builds_a_working_binary() {
    if !require_tools(&["git"]) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(repo).output().expect("run git");
    if !head.status.success() {
        support::skip::skip("the source is not a git checkout, so there is nothing to install from");
        return;
    }
    let rev = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let root = tempfile::Builder::new().prefix("dce-git-install-").tempdir().unwrap();
    let target_dir = support::cmd::bin().parent().and_then(Path::parent).unwrap().to_owned();
    // The README's command, with this repository as a file:// URL and the
    // checked-out commit, since the machine reaches no git host.
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", "--locked", "--git"])
        .arg(format!("file://{}", repo.display()))
        .args(["--rev", &rev, "--root"])
        .arg(root.path())
        .arg("docker-credential-exchange")
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("run cargo install");
    assert!(out.status.success(), "cargo install --git failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let installed = root.path().join("bin").join("docker-credential-exchange");
    let version = Command::new(&installed).arg("version").output().expect("run the installed helper");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        concat!("docker-credential-exchange ", env!("CARGO_PKG_VERSION"), "\n")
    );
}
