//! The OS keyring for real: gnome-keyring's Secret Service on a private
//! D-Bus session, unlocked, started by the test support. Proves the secret
//! lives in the keyring and in no file, and that the index file lets `list`
//! work without it.

// gnome-keyring's Secret Service on a private D-Bus session: Linux's keyring.
// macOS and Windows have their own suites (keyring_macos.rs, keyring_windows.rs).
#![cfg(target_os = "linux")]

mod support;

use serde_json::json;
use support::cmd::Sandbox;
use support::services::{SecretService, require_tools};
use support::sts::{Sts, StsOptions};

fn keyring_sandbox() -> Option<(Sandbox, SecretService)> {
    if !require_tools(&["dbus-daemon", "gnome-keyring-daemon", "secret-tool"]) {
        return None;
    }
    let mut sandbox = Sandbox::new();
    let service = SecretService::start(&sandbox.home());
    sandbox.use_keyring(&service.env());
    Some((sandbox, service))
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
    assert_eq!(sandbox.files_containing(secret), Vec::<std::path::PathBuf>::new(), "secret found in a file");
}

#[test]
fn on_this_users_own_bus_the_secret_travels_in_a_plain_session() {
    let Some((mut sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.store("registry.example.com", "alice", "s3cret-value").quiet_success();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG", "debug");
    // The bus daemon and gnome-keyring run as this user: the read takes
    // the plain session, after checking both.
    let read = sandbox.get("registry.example.com").success();
    assert!(read.stderr.contains("over a plain session"), "{read:?}");
    let write = sandbox.store("other.example.com", "bob", "another-s3cret").success();
    assert!(write.stderr.contains("opening a plain Secret Service session"), "{write:?}");
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
fn erasing_an_entry_as_list_shows_it_removes_that_keyring_item_and_no_other() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    // A plain credential stored before reg.example was configured for
    // exchange, then reg.example's login token.
    sandbox.store("reg.example/team", "bob", "bobs-team-password").quiet_success();
    sandbox.write_exchange_config("reg.example", "https://sts.invalid/token", json!({}));
    sandbox.store("reg.example", "alice", "alices-login-token").quiet_success();
    let item = |name: &str| {
        service.secret_tool_lookup(&[("service", "docker-credential-exchange"), ("username", name)])
    };

    sandbox.erase("reg.example/team").quiet_success();

    assert_eq!(item("reg.example/team"), None, "the listed entry is still there");
    assert_eq!(item("reg.example").as_deref(), Some("alices-login-token"), "another entry was erased");
    let listed = sandbox.list().quiet_success().json();
    assert_eq!(listed.as_object().unwrap().keys().collect::<Vec<_>>(), ["reg.example"]);
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
fn doctor_names_an_entry_whose_keyring_item_another_tool_deleted() {
    let Some((sandbox, service)) = keyring_sandbox() else { return };
    sandbox.store("registry.example.com", "alice", "pw-then-deleted").quiet_success();
    service.secret_tool_clear(&[
        ("service", "docker-credential-exchange"),
        ("username", "registry.example.com"),
    ]);

    let out = sandbox.cmd(&["doctor"]).run().failure();

    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("registry.example.com is listed"))
        .unwrap_or_else(|| panic!("no finding for the orphaned entry: {out:?}"));
    assert!(line.starts_with('✗') && line.contains("gone from the keyring"), "{out:?}");
    assert!(out.stdout.contains("docker-credential-exchange logout registry.example.com"), "{out:?}");
}

#[test]
fn doctor_reports_a_locked_keyring_as_a_problem_with_ways_out_that_need_no_desktop() {
    let Some((sandbox, mut service)) = keyring_sandbox() else { return };
    sandbox.write_exchange_config("registry.example.com", "https://sts.invalid/token", json!({}));
    sandbox
        .cmd(&["login", "registry.example.com", "--token-stdin", "--no-verify"])
        .stdin("opaque-login-token-0123456789abcdef")
        .run()
        .success();
    service.lock();

    let out = sandbox.cmd(&["doctor"]).run().failure();

    let store = out.stdout.lines().find(|l| l.contains(" store: ")).expect("a store finding");
    assert!(store.starts_with('✗') && store.contains("locked"), "{out:?}");
    let fix = out.stdout.lines().skip_while(|l| *l != store).nth(1).unwrap_or_default();
    assert!(fix.contains("| gnome-keyring-daemon --replace --unlock`"), "{out:?}");
    assert!(fix.contains("DOCKER_CREDENTIAL_EXCHANGE_STORE=file"), "{out:?}");
    assert!(fix.contains("non-keyring subject_token source"), "{out:?}");
    assert!(service.is_locked(), "doctor unlocked the keyring");
}

#[test]
fn import_copies_every_credential_from_docker_credential_secretservice() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    if !require_tools(&["docker-credential-secretservice"]) {
        return;
    }
    let other = |action: &str, input: &str| {
        let mut child = std::process::Command::new("docker-credential-secretservice")
            .arg(action)
            .env_clear()
            .envs(sandbox.env())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "secretservice {action}: {}", String::from_utf8_lossy(&out.stdout));
    };
    other("store", r#"{"ServerURL":"https://ghcr.io","Username":"bob","Secret":"ghp_from_secretservice"}"#);
    other("store", r#"{"ServerURL":"quay.io","Username":"carol","Secret":"quay-password"}"#);

    let out = sandbox.cmd(&["import", "--from", "secretservice"]).run().success();

    assert!(out.stdout.contains("copied 2 credential(s) from docker-credential-secretservice"), "{out:?}");
    assert!(
        !out.stdout.contains("ghp_from_secretservice") && !out.stderr.contains("quay-password"),
        "{out:?}"
    );
    let ghcr = sandbox.get("ghcr.io").quiet_success().json();
    assert_eq!(
        (ghcr["Username"].as_str(), ghcr["Secret"].as_str()),
        (Some("bob"), Some("ghp_from_secretservice"))
    );
    assert_eq!(sandbox.get("quay.io").quiet_success().secret(), "quay-password");
}

#[test]
fn sixteen_kib_login_token_is_kept_in_the_keyring_and_sent_whole() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    let sts = Sts::start(StsOptions::default());
    sandbox.write_exchange_config("a.example", &sts.url(), json!({}));
    let token = sts.mint_subject_token(&"s".repeat(12 * 1024), 3600);
    assert!(token.len() > 16 * 1024, "{}", token.len());

    sandbox.cmd(&["login", "a.example", "--token-stdin"]).stdin(&token).run().success();
    // Without the cache this `get` must read the login token back from the
    // keyring and exchange it.
    sandbox
        .cmd(&["get"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE", "1")
        .stdin("a.example")
        .run()
        .quiet_success();
    let request = sts.last_request().expect("an exchange");
    assert!(request.form_value("subject_token") == Some(token.as_str()), "the STS got a different token");
    assert!(sandbox.files_containing(&token).is_empty(), "the login token is in a file");
}

/// Holds the keyring index's writer lock, as a concurrent helper would.
fn hold_index_lock(sandbox: &Sandbox) -> std::fs::File {
    std::fs::create_dir_all(sandbox.data_dir()).unwrap();
    let lock = sandbox.data_dir().join("index.json.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock).unwrap();
    file.lock().unwrap();
    file
}

#[test]
fn a_store_that_reports_failure_leaves_the_previous_credential_whole() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.store("plain.example.com", "bob", "bobs-password-1").quiet_success();
    let held = hold_index_lock(&sandbox);
    let out = sandbox
        .cmd(&["store"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2")
        .stdin(
            json!({"ServerURL": "plain.example.com", "Username": "carol", "Secret": "carols-password-2"})
                .to_string(),
        )
        .run();
    drop(held);
    assert_eq!(out.code, Some(1), "the store is reported as failed: {out:?}");
    // Told "failed", Docker still believes bob is logged in: the helper must
    // answer bob's pair, never bob's name with carol's password.
    let got = sandbox.get("plain.example.com").success().json();
    assert_eq!((got["Username"].as_str(), got["Secret"].as_str()), (Some("bob"), Some("bobs-password-1")));
}

#[test]
fn an_erase_that_reports_failure_leaves_the_credential_in_place() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.store("plain.example.com", "bob", "bobs-password-1").quiet_success();
    let held = hold_index_lock(&sandbox);
    let out = sandbox
        .cmd(&["erase"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2")
        .stdin("plain.example.com")
        .run();
    drop(held);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(sandbox.list().success().json()["plain.example.com"], "bob");
    assert_eq!(sandbox.get("plain.example.com").success().json()["Secret"], "bobs-password-1");
}

#[test]
fn time_spent_waiting_for_the_login_token_is_not_counted_against_the_keyring() {
    let Some((sandbox, _service)) = keyring_sandbox() else { return };
    sandbox.write_exchange_config("registry.example.com", "https://sts.invalid/token", json!({}));
    let (child, mut stdin) = sandbox
        .cmd(&["login", "registry.example.com", "--token-stdin", "--no-verify"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2")
        .spawn();
    // A person pasting at the prompt, or a slow token producer: 3 s. A
    // real sleep, because real time is what is under test: the deadline is
    // monotonic, and the wait must outlast it (2 s) before the keyring work
    // begins.
    std::thread::sleep(std::time::Duration::from_secs(3));
    std::io::Write::write_all(&mut stdin, b"opaque-login-token-0123456789abcdef\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the keyring answers at once: {}", String::from_utf8_lossy(&out.stderr));
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

#[test]
fn the_unlock_doctor_advises_for_a_session_without_a_desktop_unlocks_the_keyring() {
    let Some((sandbox, mut service)) = keyring_sandbox() else { return };
    sandbox.store("registry.example.com", "alice", "pw-behind-a-lock").quiet_success();
    service.lock();
    let advice = sandbox.cmd(&["doctor"]).run().failure();
    assert!(advice.stdout.contains("| gnome-keyring-daemon --replace --unlock`"), "{advice:?}");

    service.replace_keyring_unlocking_it();

    let out = sandbox.cmd(&["doctor"]).run();
    assert!(out.stdout.contains("✓ store: the OS keyring is reachable"), "{out:?}");
    assert_eq!(sandbox.get("registry.example.com").quiet_success().secret(), "pw-behind-a-lock");
}
