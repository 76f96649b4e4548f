//! Docker's `config.json` and containers' `auth.json` in a sandbox, for the
//! `configure-docker` suites: where they are, writing them, their backups
//! and modes, and the stored password the suites move around.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::cmd::Sandbox;

/// An ordinary registry (not configured for exchange).
pub const PLAIN: &str = "plain.example.com";
/// base64("user:hunter2-plain"), as `docker login` without a helper stores it.
pub const USER_HUNTER2: &str = "dXNlcjpodW50ZXIyLXBsYWlu";
/// The password in [`USER_HUNTER2`].
pub const HUNTER2: &str = "hunter2-plain";

/// Points DOCKER_CONFIG into the sandbox; returns config.json's path.
pub fn docker_config(sandbox: &mut Sandbox) -> PathBuf {
    let dir = sandbox.root().join("docker");
    sandbox.set_env("DOCKER_CONFIG", dir.to_str().unwrap());
    dir.join("config.json")
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The file at `path` as JSON.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The backups of `path`, oldest first.
pub fn backups_of(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("{name}.bak.")))
        .collect();
    found.sort_by_key(|p| (std::fs::metadata(p).unwrap().modified().unwrap(), p.clone()));
    found
}

/// A file's permission bits (Unix; on Windows a file inherits its
/// directory's ACL).
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A sandbox with no exchange registries and Docker's config at `config`.
pub fn plain_sandbox(config: &str) -> (Sandbox, PathBuf) {
    let mut sandbox = Sandbox::new();
    sandbox.write_config(&json!({"registries": {}}));
    let path = docker_config(&mut sandbox);
    write(&path, config);
    (sandbox, path)
}

/// Points REGISTRY_AUTH_FILE at an `auth.json` in the sandbox holding
/// `text`; returns its path.
pub fn containers_auth(sandbox: &mut Sandbox, text: &str) -> PathBuf {
    let path = sandbox.root().join("auth.json");
    std::fs::write(&path, text).unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", path.to_str().unwrap());
    path
}

/// Fails if `out` shows the stored password, plain or encoded.
#[track_caller]
pub fn assert_no_secret(out: &super::cmd::Output) {
    for secret in [HUNTER2, USER_HUNTER2] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "a secret is shown: {out:?}");
    }
}
