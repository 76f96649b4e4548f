//! Set-up shared by `doctor`'s suites: a sandbox in which everything is
//! right, and readers for its findings.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::cmd::{Output, Sandbox};
use super::sts::{Sts, StsOptions};

/// The exchange registry of [`healthy`].
pub use super::setup::REGISTRY;

/// Points the sandbox's `DOCKER_CONFIG` at a directory of its own and
/// returns the `config.json` path there (which may not exist yet).
pub fn docker_config(sandbox: &mut Sandbox) -> PathBuf {
    let dir = sandbox.root().join("docker");
    sandbox.set_env("DOCKER_CONFIG", dir.to_str().unwrap());
    dir.join("config.json")
}

/// A sandbox in which everything is right: logged in, the STS answers,
/// the binary is on PATH, Docker's config sends the registry to the helper.
pub fn healthy() -> (Sandbox, Sts) {
    healthy_with(StsOptions::default(), json!({}))
}

/// The same with an STS of these options and `extra` fields in the entry.
pub fn healthy_with(options: StsOptions, extra: Value) -> (Sandbox, Sts) {
    let (mut sandbox, sts) = super::setup::exchange_sandbox_with(options, extra);
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    let bin_dir = super::cmd::bin().parent().unwrap().to_owned();
    let rest = std::env::split_paths(&sandbox.env()["PATH"]).collect::<Vec<_>>();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(rest)).unwrap();
    sandbox.set_env("PATH", &path.to_string_lossy());
    docker_config(&mut sandbox);
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    (sandbox, sts)
}

/// The first line of stdout containing `needle`.
pub fn line_with<'a>(out: &'a Output, needle: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}: {out:?}"))
}

/// The `fix:` line after the line containing `needle`.
pub fn fix_after<'a>(out: &'a Output, needle: &str) -> &'a str {
    let mut lines = out.stdout.lines().skip_while(|l| !l.contains(needle));
    lines.next();
    lines
        .next()
        .filter(|l| l.trim_start().starts_with("fix:"))
        .unwrap_or_else(|| panic!("no fix after {needle:?}: {out:?}"))
}

/// Runs `doctor`, which must exit 1 with a `✗` line containing `needle`.
pub fn doctor_fails_with(sandbox: &Sandbox, needle: &str) -> Output {
    let out = sandbox.cmd(&["doctor"]).run().failure();
    assert!(line_with(&out, needle).starts_with('✗'), "{needle}: {out:?}");
    out
}
