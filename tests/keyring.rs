//! The OS keyring for real: gnome-keyring's Secret Service on a private
//! D-Bus session, unlocked, started by the test support. Proves the secret
//! lives in the keyring and in no file, and that the index file lets `list`
//! work without it.

mod support;

use support::cmd::Sandbox;
use support::services::{SecretService, require_tools};

fn keyring_sandbox() -> Option<(Sandbox, SecretService)> {
    if !require_tools(&["dbus-daemon", "gnome-keyring-daemon", "secret-tool"]) {
        return None;
    }
    let mut sandbox = Sandbox::new();
    let service = SecretService::start(&sandbox.home());
    sandbox.use_keyring(&service.env());
    Some((sandbox, service))
}

fn files_containing(root: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                hits.push(p);
            }
        }
    }
    hits
}

#[test]
fn stored_secret_is_in_the_keyring_and_in_no_file() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    let secret = "keyring-only-secret-4f1b9c";
    sandbox.store("registry.example.com", "alice", secret).quiet_success();
    let found = service.secret_tool_search(&[
        ("service", "docker-credential-exchange"),
        ("username", "registry.example.com"),
    ]);
    assert!(found.contains(secret), "secret-tool does not see it:\n{found}");
    assert!(files_containing(sandbox.root(), secret).is_empty(), "secret found in a file");
}

#[test]
fn get_reads_the_secret_back_from_the_keyring() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.store("registry.example.com", "alice", "pw-from-keyring").quiet_success();
    let out = sandbox.get("https://registry.example.com/").quiet_success();
    assert_eq!(out.json()["Username"], "alice");
    assert_eq!(out.secret(), "pw-from-keyring");
}

#[test]
fn erase_removes_the_keyring_item() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    sandbox.store("registry.example.com", "alice", "to-be-erased").quiet_success();
    sandbox.erase("registry.example.com").quiet_success();
    let found = service.secret_tool_search(&[("service", "docker-credential-exchange")]);
    assert!(!found.contains("to-be-erased"), "{found}");
    sandbox.get("registry.example.com").protocol_error("credentials not found in native keychain");
}

#[test]
fn list_comes_from_the_index_without_secrets() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.store("a.example", "alice", "secret-a").quiet_success();
    sandbox.store("https://index.docker.io/v1/", "bob", "secret-b").quiet_success();
    let out = sandbox.list().quiet_success();
    assert_eq!(out.json(), serde_json::json!({"a.example": "alice", "https://index.docker.io/v1/": "bob"}));
    let index = std::fs::read_to_string(sandbox.data_dir().join("index.json")).unwrap();
    assert!(!index.contains("secret-"), "{index}");
}

#[test]
fn index_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.store("a.example", "alice", "p").quiet_success();
    let mode = std::fs::metadata(sandbox.data_dir().join("index.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn sixteen_kib_login_token_round_trips_through_the_keyring() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    let long = "j".repeat(16 * 1024);
    sandbox.store("a.example", "alice", &long).quiet_success();
    assert_eq!(sandbox.get("a.example").quiet_success().secret(), long);
}

#[test]
fn keyring_items_have_a_readable_label() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    sandbox.store("a.example", "alice", "p").quiet_success();
    let found = service.secret_tool_search(&[("username", "a.example")]);
    assert!(found.contains("label = Docker credentials for a.example"), "{found}");
}

#[test]
fn an_item_with_the_helpers_attributes_made_elsewhere_is_read() {
    // The shape earlier releases wrote through zbus-secret-service-keyring-store,
    // or a person restores by hand: any label, and extra attributes (here
    // the store crate's optional `target`) do not hide it.
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    service.secret_tool_store(
        "keyring:registry.example.com@docker-credential-exchange",
        &[
            ("service", "docker-credential-exchange"),
            ("username", "registry.example.com"),
            ("target", "default"),
        ],
        "made-elsewhere",
    );
    assert_eq!(sandbox.get("registry.example.com").quiet_success().secret(), "made-elsewhere");
}

#[test]
fn storing_again_replaces_the_item_instead_of_adding_one() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    sandbox.store("a.example", "alice", "first-secret").quiet_success();
    sandbox.store("a.example", "alice", "second-secret").quiet_success();
    let found = service.secret_tool_search(&[("username", "a.example")]);
    assert_eq!(found.matches("secret = ").count(), 1, "{found}");
    assert!(found.contains("second-secret"), "{found}");
    assert_eq!(sandbox.get("a.example").quiet_success().secret(), "second-secret");
}

#[test]
fn two_items_for_one_registry_are_an_error_not_a_guess() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    for (target, secret) in [("one", "first-copy"), ("two", "second-copy")] {
        service.secret_tool_store(
            "duplicate",
            &[("service", "docker-credential-exchange"), ("username", "dup.example"), ("target", target)],
            secret,
        );
    }
    let out = sandbox.get("dup.example").failure();
    assert!(out.stdout.contains("2 keyring items match dup.example"), "{out:?}");
    assert!(!out.stdout.contains("-copy"), "a secret leaked into the message: {out:?}");
}
