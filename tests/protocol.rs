//! Docker's credential-helper protocol through the real binary, on the
//! file store: every action, every error string, and bad input that must
//! leave the store exactly as it was (DESIGN.md section 1).

mod support;

use serde_json::json;
use support::cmd::Sandbox;

const NOT_FOUND: &str = "credentials not found in native keychain";

#[test]
fn store_then_get_returns_the_credentials() {
    let sandbox = Sandbox::new();
    sandbox.store("registry.example.com", "alice", "s3cret").quiet_success();
    let out = sandbox.get("registry.example.com").quiet_success();
    assert_eq!(
        out.stdout,
        "{\"ServerURL\":\"registry.example.com\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}\n"
    );
}

#[test]
fn store_prints_nothing() {
    let sandbox = Sandbox::new();
    let out = sandbox.store("r.example", "u", "p").quiet_success();
    assert_eq!(out.stdout, "");
}

#[test]
fn get_trims_surrounding_whitespace() {
    let sandbox = Sandbox::new();
    sandbox.store("r.example", "u", "p").quiet_success();
    let out = sandbox.get("  r.example\n").quiet_success();
    assert_eq!(out.json()["ServerURL"], "r.example");
}

#[test]
fn get_of_an_unknown_registry_is_not_found() {
    Sandbox::new().get("nothing.example").protocol_error(NOT_FOUND);
}

#[test]
fn get_of_an_empty_url_is_no_server_url() {
    Sandbox::new().get("").protocol_error("no credentials server URL");
    Sandbox::new().get(" \n").protocol_error("no credentials server URL");
}

#[test]
fn store_with_an_empty_server_url_is_no_server_url() {
    Sandbox::new().store("", "u", "p").protocol_error("no credentials server URL");
}

#[test]
fn store_with_an_empty_username_is_no_username() {
    Sandbox::new().store("r.example", "", "p").protocol_error("no credentials username");
}

#[test]
fn store_without_a_username_field_is_no_username() {
    let sandbox = Sandbox::new();
    sandbox
        .cmd(&["store"])
        .stdin(r#"{"ServerURL":"r.example","Secret":"p"}"#)
        .run()
        .protocol_error("no credentials username");
}

#[test]
fn scheme_trailing_slash_and_case_find_the_same_entry() {
    let sandbox = Sandbox::new();
    sandbox.store("https://Registry.Example.com/", "u", "p").quiet_success();
    for form in ["registry.example.com", "http://registry.example.com", "REGISTRY.example.com/"] {
        assert_eq!(sandbox.get(form).quiet_success().secret(), "p", "{form}");
    }
}

#[test]
fn docker_hub_aliases_are_one_registry() {
    let sandbox = Sandbox::new();
    sandbox.store("https://index.docker.io/v1/", "u", "hub").quiet_success();
    for alias in ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"] {
        assert_eq!(sandbox.get(alias).quiet_success().secret(), "hub", "{alias}");
    }
}

#[test]
fn logout_erases_every_form_of_one_url_silently() {
    // `docker logout h` erases h, h again, http://h and https://h in turn.
    let sandbox = Sandbox::new();
    sandbox.store("h.example", "u", "p").quiet_success();
    for form in ["h.example", "h.example", "http://h.example", "https://h.example"] {
        let out = sandbox.erase(form).quiet_success();
        assert_eq!(out.stdout, "", "{form}");
    }
    sandbox.get("h.example").protocol_error(NOT_FOUND);
    assert_eq!(sandbox.list().quiet_success().json(), json!({}));
}

/// The keys the file store holds, whatever `list` adds from the config.
fn stored_keys(sandbox: &Sandbox) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(sandbox.data_dir().join("credentials.json")) else {
        return Vec::new();
    };
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["entries"].as_object().expect("credentials.json has entries").keys().cloned().collect()
}

/// A plain credential for `reg.example/team`, stored before `reg.example`
/// was configured for exchange, and then `reg.example`'s login token.
fn a_plain_credential_under_an_exchange_registry() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.store("reg.example/team", "bob", "bobs-team-password").quiet_success();
    sandbox.write_exchange_config("reg.example", "https://sts.invalid/token", json!({}));
    sandbox.store("reg.example", "alice", "alices-login-token").quiet_success();
    assert_eq!(stored_keys(&sandbox), ["reg.example", "reg.example/team"]);
    sandbox
}

#[test]
fn erasing_an_entry_as_list_shows_it_removes_that_entry_and_no_other() {
    let sandbox = a_plain_credential_under_an_exchange_registry();
    let listed = sandbox.list().quiet_success().json();
    let listed: Vec<&String> = listed.as_object().unwrap().keys().collect();
    assert_eq!(listed, ["reg.example", "reg.example/team"]);

    sandbox.erase("reg.example/team").quiet_success();
    assert_eq!(stored_keys(&sandbox), ["reg.example"], "the wrong entry was erased");
    sandbox.erase("reg.example").quiet_success();
    assert_eq!(stored_keys(&sandbox), Vec::<String>::new(), "a listed entry could not be erased");
}

#[test]
fn erasing_a_longer_url_than_any_entry_removes_the_login_token_store_filed_it_under() {
    // `store` files a URL under its exchange entry; `erase` of the same
    // URL must find it there.
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config("reg.example", "https://sts.invalid/token", json!({}));
    sandbox.store("reg.example/team/app", "alice", "alices-login-token").quiet_success();
    assert_eq!(stored_keys(&sandbox), ["reg.example"]);
    sandbox.erase("reg.example/team/app").quiet_success();
    assert_eq!(stored_keys(&sandbox), Vec::<String>::new());
}

#[test]
fn a_login_token_stored_through_a_longer_url_is_listed_under_its_registry() {
    // Listed as `reg.example/team`, it would hide the plain credential of
    // that name (list is a map) and erasing that name would remove only one.
    let sandbox = a_plain_credential_under_an_exchange_registry();
    sandbox.store("reg.example/team", "alice", "a-newer-login-token").quiet_success();
    let listed = sandbox.list().quiet_success().json();
    let listed: Vec<&String> = listed.as_object().unwrap().keys().collect();
    assert_eq!(listed, ["reg.example", "reg.example/team"]);
}

#[test]
fn list_maps_server_urls_to_usernames_and_never_secrets() {
    let sandbox = Sandbox::new();
    sandbox.store("https://index.docker.io/v1/", "hubuser", "hub-secret").quiet_success();
    sandbox.store("r.example:5000", "alice", "r-secret").quiet_success();
    let out = sandbox.list().quiet_success();
    assert_eq!(out.json(), json!({"https://index.docker.io/v1/": "hubuser", "r.example:5000": "alice"}));
    assert!(!out.stdout.contains("secret"));
}

#[test]
fn list_of_an_empty_store_is_an_empty_object() {
    assert_eq!(Sandbox::new().list().quiet_success().stdout, "{}\n");
}

#[test]
fn store_replaces_previous_credentials() {
    let sandbox = Sandbox::new();
    sandbox.store("r.example", "u1", "p1").quiet_success();
    sandbox.store("r.example", "u2", "p2").quiet_success();
    let answer = sandbox.get("r.example").quiet_success().json();
    assert_eq!((answer["Username"].as_str(), answer["Secret"].as_str()), (Some("u2"), Some("p2")));
}

#[test]
fn sixteen_kib_secrets_are_kept_whole() {
    let sandbox = Sandbox::new();
    let long = "e".repeat(16 * 1024);
    sandbox.store("r.example", "u", &long).quiet_success();
    assert_eq!(sandbox.get("r.example").quiet_success().secret(), long);
}

#[test]
fn version_prints_the_version() {
    let out = Sandbox::new().cmd(&["version"]).run().quiet_success();
    assert_eq!(out.stdout, format!("docker-credential-exchange {}\n", env!("CARGO_PKG_VERSION")));
}

// Unix modes; on Windows the file inherits its directory's ACL.
#[cfg(unix)]
#[test]
fn store_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    sandbox.store("r.example", "u", "p").quiet_success();
    let mode = std::fs::metadata(sandbox.data_dir().join("credentials.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(sandbox.data_dir()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
}

/// Each bad input gets one line on stdout, exit 1, and leaves every file
/// exactly as it was.
fn assert_refused_without_change(sandbox: &Sandbox, action: &str, stdin: &[u8], needle: &str) {
    let before = sandbox.snapshot();
    let out = sandbox.cmd(&[action]).stdin(stdin).run().failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains(needle), "expected {needle:?}: {out:?}");
    assert_eq!(sandbox.snapshot(), before, "{action} with bad input changed files");
}

fn sandbox_with_one_entry() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.store("r.example", "u", "p").quiet_success();
    sandbox
}

#[test]
fn oversized_stdin_is_refused_and_nothing_changes() {
    let sandbox = sandbox_with_one_entry();
    let big = format!(r#"{{"ServerURL":"x","Username":"u","Secret":"{}"}}"#, "a".repeat(1024 * 1024));
    assert_refused_without_change(&sandbox, "store", big.as_bytes(), "larger than 1048576 bytes");
    assert_refused_without_change(&sandbox, "get", &vec![b'a'; 2 * 1024 * 1024], "larger than");
    assert_refused_without_change(&sandbox, "erase", &vec![b'a'; 1024 * 1024 + 1], "larger than");
}

#[test]
fn invalid_json_is_refused_and_nothing_changes() {
    let sandbox = sandbox_with_one_entry();
    assert_refused_without_change(&sandbox, "store", b"{not json", "invalid credentials JSON");
    assert_refused_without_change(&sandbox, "store", b"[]", "invalid credentials JSON");
    assert_refused_without_change(&sandbox, "store", b"", "invalid credentials JSON");
}

#[test]
fn invalid_utf8_is_refused_and_nothing_changes() {
    let sandbox = sandbox_with_one_entry();
    assert_refused_without_change(&sandbox, "store", b"{\"ServerURL\":\"\xff\"}", "not valid UTF-8");
    assert_refused_without_change(&sandbox, "erase", b"r.example\xfe", "not valid UTF-8");
}

#[test]
fn missing_secret_field_is_refused_and_nothing_changes() {
    let sandbox = sandbox_with_one_entry();
    assert_refused_without_change(
        &sandbox,
        "store",
        br#"{"ServerURL":"r.example","Username":"u"}"#,
        "Secret",
    );
}

#[test]
fn wrong_field_types_are_refused_without_echoing_values() {
    let sandbox = sandbox_with_one_entry();
    let before = sandbox.snapshot();
    let out = sandbox
        .cmd(&["store"])
        .stdin(r#"{"ServerURL":"r","Username":"u","Secret":12345678}"#)
        .run()
        .failure();
    assert!(!out.stdout.contains("12345678"), "{out:?}");
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn a_server_url_with_spaces_is_refused() {
    let sandbox = sandbox_with_one_entry();
    assert_refused_without_change(&sandbox, "erase", b"r.example evil", "invalid server URL");
}

#[test]
fn a_bad_config_entry_fails_its_registry_naming_file_line_and_field_and_touches_nothing() {
    let sandbox = sandbox_with_one_entry();
    std::fs::write(sandbox.config_path(), "{\n  \"registries\": {\n    \"r\": {\"tokn_endpoint\": 1}}}")
        .unwrap();
    let before = sandbox.snapshot();
    let out = sandbox.get("r").failure();
    assert!(out.stdout.contains(&sandbox.config_path().display().to_string()), "{out:?}");
    assert!(out.stdout.contains("line 3") && out.stdout.contains("tokn_endpoint"), "{out:?}");
    let written: Vec<_> = sandbox.snapshot().into_keys().filter(|p| !before.contains_key(p)).collect();
    assert!(written.iter().all(|p| p.extension().is_some_and(|e| e == "failure")), "{written:?}");
}

#[test]
fn plain_credentials_keep_working_when_the_config_is_broken() {
    let sandbox = sandbox_with_one_entry();
    std::fs::write(
        sandbox.config_path(),
        "{\"registries\": {\"x.example\": {\"token_endpoint\": \"https://s/t\"},}}",
    )
    .unwrap();
    sandbox.store("other.example", "u", "p").quiet_success();
    assert_eq!(sandbox.get("other.example").secret(), "p");
    sandbox.get("x.example").failure();
}

#[test]
fn a_login_token_whose_entry_a_cut_short_config_hides_gets_the_configs_own_error() {
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config("people.example.test", "https://sts.example/token", json!({}));
    sandbox.store("people.example.test", "alice", "login-token").quiet_success();
    sandbox.store("plain.example", "u", "p").quiet_success();
    // Cut short before the entry that made it a login token.
    std::fs::write(sandbox.config_path(), "{\"registries\": {\"x\": {\"token_endpoint\": 5}}").unwrap();

    let out = sandbox.get("people.example.test").failure();
    assert!(out.stdout.contains(&sandbox.config_path().display().to_string()), "{out:?}");
    assert!(out.stdout.contains("line 1"), "{out:?}");
    assert!(!out.stdout.contains("logout") && !out.stdout.contains("not configured"), "{out:?}");
    assert_eq!(sandbox.get("plain.example").secret(), "p");
}

#[test]
fn protocol_errors_go_to_stdout_with_an_empty_stderr() {
    let out = Sandbox::new().get("nothing.example").failure();
    assert_eq!(out.stderr, "");
}

#[test]
fn an_unknown_store_choice_is_a_clear_error() {
    let mut sandbox = Sandbox::new();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_STORE", "vault");
    let out = sandbox.get("r.example").failure();
    assert!(out.stdout.contains("DOCKER_CREDENTIAL_EXCHANGE_STORE=\"vault\""), "{out:?}");
}

// A Secret Service that is not there is Linux's way for the keyring to be
// missing; the login Keychain and Credential Manager are always there.
#[cfg(target_os = "linux")]
#[test]
fn keyring_without_a_secret_service_names_the_ways_out() {
    let mut sandbox = Sandbox::new();
    sandbox.remove_env("DOCKER_CREDENTIAL_EXCHANGE_STORE");
    sandbox.set_env(
        "DBUS_SESSION_BUS_ADDRESS",
        &format!("unix:path={}", sandbox.root().join("no-bus").display()),
    );
    let out = sandbox.store("r.example", "u", "p").failure();
    assert!(out.stdout.contains("no OS keyring is reachable"), "{out:?}");
    assert!(out.stdout.contains("DOCKER_CREDENTIAL_EXCHANGE_STORE=file"), "{out:?}");
    assert!(!sandbox.data_dir().join("index.json").exists(), "nothing indexed when the keyring failed");
}

#[test]
fn get_with_a_repository_path_falls_back_to_the_hosts_entry() {
    let sandbox = Sandbox::new();
    sandbox.store("ghcr.io", "u", "p").quiet_success();
    let out = sandbox.get("ghcr.io/team/app").quiet_success();
    assert_eq!(out.json()["ServerURL"], "ghcr.io/team/app");
    assert_eq!(out.secret(), "p");
}

#[test]
fn an_unknown_action_is_one_line_on_stdout_and_exit_1() {
    let out = Sandbox::new().cmd(&["frobnicate"]).stdin("registry.example.com").run().failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains("unknown action \"frobnicate\""), "{out:?}");
    assert_eq!(out.stderr, "");
}

#[test]
fn every_command_ends_quietly_when_its_reader_goes_away() {
    let sandbox = Sandbox::new();
    sandbox.store("r.example", "u", "p").quiet_success();
    for args in [&["doctor"][..], &["status"], &["status", "--json"], &["list"], &["version"]] {
        let (mut command, _) = sandbox.cmd(args).into_command();
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -0`: the reader is gone before the first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("Broken pipe") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_protocol_word_with_arguments_says_the_request_goes_on_stdin() {
    let out = Sandbox::new().cmd(&["get", "registry.example.com"]).run().failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains("takes no arguments: the request goes on stdin"), "{out:?}");
}

#[test]
fn an_empty_timeout_variable_is_unset() {
    let mut sandbox = Sandbox::new();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "");
    sandbox.store("r.example", "u", "p").quiet_success();
    assert_eq!(sandbox.get("r.example").quiet_success().secret(), "p");
}

#[test]
fn a_get_whose_stdin_is_never_closed_ends_by_the_deadline_naming_stdin() {
    // A script's `cmd | helper get` where `cmd` hangs: the helper must not
    // wait longer than its deadline (3 s here) to say so.
    let sandbox = Sandbox::new();
    let (child, _held_open) = sandbox
        .cmd(&["get"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "3")
        .stdin("registry.example.com")
        .spawn();
    let (ended, out) = support::cmd::finish_within(child, std::time::Duration::from_secs(20));
    assert_eq!(ended, Some(1), "still waiting for stdin past the deadline: {out:?}");
    assert!(out.stdout.contains("stdin was not closed within 3s"), "{out:?}");
}

#[test]
fn a_data_directory_that_is_a_file_is_an_error_not_an_empty_store() {
    let mut sandbox = Sandbox::new();
    let blocked = sandbox.root().join("not-a-directory");
    std::fs::write(&blocked, "x").unwrap();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR", blocked.to_str().unwrap());
    let out = sandbox.get("registry.example.com").failure();
    assert_ne!(out.stdout, format!("{NOT_FOUND}\n"), "read as an empty store: {out:?}");
    assert!(out.stdout.contains("not-a-directory"), "{out:?}");
}
