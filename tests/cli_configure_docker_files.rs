//! `configure-docker` and the files it edits (DESIGN.md section 5): a file
//! that cannot be edited safely (read-only, a directory, a link to one) is
//! refused with nothing changed; a symlinked directory is edited where it
//! points; and a file keeps its owner, group and mode, its backup too, when
//! root edits a user's config (`sudo` keeping `HOME`).

mod support;

use support::cmd::Sandbox;
use support::docker_cfg::docker_config;
// The tests of modes and owners are Unix's.
#[cfg(unix)]
use support::docker_cfg::{PLAIN, USER_HUNTER2, backups_of, mode, plain_sandbox};

const REGISTRY: &str = "registry.example.com";

// Windows needs a privilege to make symlinks.
#[cfg(unix)]
#[test]
fn a_docker_config_directory_that_is_a_symlink_is_used_where_it_points() {
    let mut sandbox = Sandbox::new();
    let real = sandbox.root().join("dotfiles").join("docker");
    std::fs::create_dir_all(&real).unwrap();
    let link = sandbox.root().join("docker");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    sandbox.set_env("DOCKER_CONFIG", link.to_str().unwrap());
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert!(std::fs::read_to_string(real.join("config.json")).unwrap().contains(REGISTRY));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
}

// Unix modes; Windows has a read-only attribute instead.
#[cfg(unix)]
#[test]
fn a_read_only_config_json_is_refused_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let config = format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#);
    let (sandbox, path) = plain_sandbox(&config);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().failure();

    assert!(out.stderr.contains("is read-only") && out.stderr.contains("chmod u+w"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
    assert_eq!(mode(&path), 0o444);
    assert!(backups_of(&path).is_empty());
    // Nothing was moved either: the refusal comes first.
    sandbox.get(PLAIN).protocol_error("credentials not found in native keychain");
}

#[test]
fn a_config_json_that_is_a_directory_is_refused_without_suggesting_removal() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.join("keep")).unwrap();

    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().failure();

    assert!(out.stderr.contains("is a directory, not a file"), "{out:?}");
    assert!(!out.stderr.contains("remove"), "the user's data is not to be removed: {out:?}");
    assert!(path.join("keep").is_dir());
}

// Windows needs a privilege to make symlinks.
#[cfg(unix)]
#[test]
fn a_config_json_that_links_to_a_directory_is_refused_without_suggesting_removal() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    let target = sandbox.root().join("dotfiles");
    std::fs::create_dir_all(target.join("keep")).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();

    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().failure();

    assert!(out.stderr.contains("is a symbolic link to the directory"), "{out:?}");
    assert!(out.stderr.contains("point the link at a file"), "{out:?}");
    assert!(!out.stderr.contains("remove"), "the user's data is not to be removed: {out:?}");
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert!(target.join("keep").is_dir());
}

// ---------------------------------------------------------------------------
// Owner, group and mode

/// The owner, group and permission bits of `path`.
#[cfg(target_os = "linux")]
fn ownership(path: &std::path::Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// `nobody` and `nogroup` on Debian: a user that is not the test's.
#[cfg(target_os = "linux")]
const NOBODY: u32 = 65534;

#[cfg(target_os = "linux")]
#[test]
fn root_editing_a_users_config_keeps_its_owner_group_and_mode_and_the_backups() {
    if !support::services::require_root() {
        return;
    }
    let config = format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#);
    let (sandbox, path) = plain_sandbox(&config);
    std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    sandbox.cmd(&["configure-docker", "--remove"]).run().success();

    assert_eq!(ownership(&path), (NOBODY, NOBODY, 0o640), "config.json");
    let backups = backups_of(&path);
    assert_eq!(backups.len(), 2, "{backups:?}");
    for backup in &backups {
        assert_eq!(ownership(backup), (NOBODY, NOBODY, 0o640), "{}", backup.display());
    }
}

#[cfg(target_os = "linux")]
#[test]
fn root_creating_a_config_in_a_users_directory_gives_it_to_that_user() {
    if !support::services::require_root() {
        return;
    }
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    let home = path.parent().unwrap().parent().unwrap().join("home-of-nobody");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let docker_dir = home.join(".docker");
    sandbox.set_env("DOCKER_CONFIG", docker_dir.to_str().unwrap());

    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();

    assert_eq!(ownership(&docker_dir), (NOBODY, NOBODY, 0o700));
    assert_eq!(ownership(&docker_dir.join("config.json")), (NOBODY, NOBODY, 0o600));
}
