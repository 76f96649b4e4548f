//! Secrets never echoed, never left behind (DESIGN.md sections 1 and 4):
//! a password in a server URL is refused without repeating it; an endpoint
//! that echoes the login token, whole or in part, does not get it into a
//! message; killed writers' temporary files (holding every stored secret)
//! are removed by a later write; children of the helper inherit no core
//! dumps; the log file is never followed through a symlink nor appended to
//! when others could write it.
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use docker_credential_exchange::for_tests::TMP_SUFFIX;
use serde_json::json;
use support::cmd::Sandbox;
use support::hostile::{Behaviour, Hostile};
use support::sts::{Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const LOG_FILE_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE";

#[test]
fn a_password_in_the_server_url_is_refused_without_repeating_it() {
    let mut sandbox = Sandbox::new();
    let log = sandbox.root().join("helper.log");
    sandbox.set_env(LOG_FILE_ENV, log.to_str().unwrap());
    for action in ["get", "erase"] {
        let out = sandbox.cmd(&[action]).stdin("alice:hunter2@registry.example.com").run().failure();
        assert!(out.stdout.contains("credentials"), "{out:?}");
        assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"), "{out:?}");
    }
    let out = sandbox.store("https://alice:hunter2@registry.example.com", "alice", "pw").failure();
    assert!(!out.stdout.contains("hunter2"), "{out:?}");
    assert!(!std::fs::read_to_string(&log).unwrap_or_default().contains("hunter2"));
}

#[test]
fn an_endpoint_that_echoes_the_login_token_whole_or_in_part_gets_none_of_it_into_a_message() {
    let idp = Sts::start(StsOptions::default());
    let subject = idp.mint_subject_token("alice", 3600);
    let partial = &subject[10..40];
    let description = format!("bad subject_token {subject}; it began {partial}; {}", "x".repeat(400));
    let body = json!({"error": "invalid_grant", "error_description": description}).to_string();
    let endpoint = Hostile::start(Behaviour::Answer { status: 400, body });
    let mut sandbox = Sandbox::new();
    let log = sandbox.root().join("helper.log");
    sandbox.set_env(LOG_FILE_ENV, log.to_str().unwrap());
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG", "debug");
    sandbox.write_exchange_config(REGISTRY, &endpoint.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &subject).quiet_success();

    let out = sandbox.get(REGISTRY).failure();
    let status = sandbox.cmd(&["status", "--json"]).run();

    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    for (place, text) in
        [("stdout", &out.stdout), ("stderr", &out.stderr), ("log", &logged), ("status", &status.stdout)]
    {
        for window in subject.as_bytes().windows(12).step_by(3) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "{place} holds {window:?} of the login token: {text}");
        }
    }
    assert!(out.stdout.contains("invalid_grant") && out.stdout.contains("[REDACTED]"), "{out:?}");
}

fn temporary_files(sandbox: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sandbox.data_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(TMP_SUFFIX))
        .collect()
}

#[test]
fn temporary_files_of_killed_stores_are_removed_by_the_next_write() {
    let sandbox = Sandbox::new();
    // A large store makes each write take long enough to be killed in.
    let big = "s".repeat(900_000);
    for i in 0..10 {
        sandbox.store(&format!("big{i}.example"), "u", &format!("{big}{i}")).quiet_success();
    }
    sandbox.store("erased.example", "u", "erase-me-0123456789").quiet_success();
    // Kill a store the moment its temporary file appears, as a client that
    // gives up would, until one dies holding it.
    let mut orphans_seen = 0;
    for i in 0..20 {
        let (mut command, _) = sandbox.cmd(&["store"]).into_command();
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let body = json!({"ServerURL": format!("r{i}.example"), "Username": "u", "Secret": "p"});
        let _ = std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.to_string().as_bytes());
        let started = std::time::Instant::now();
        while temporary_files(&sandbox).is_empty() && started.elapsed() < Duration::from_secs(10) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        orphans_seen = temporary_files(&sandbox).len();
        if orphans_seen > 0 {
            break;
        }
    }
    assert!(orphans_seen > 0, "no store was killed mid-write; the test did not reproduce anything");

    sandbox.erase("erased.example").quiet_success();

    assert!(temporary_files(&sandbox).is_empty(), "left behind: {:?}", temporary_files(&sandbox));
    for file in std::fs::read_dir(sandbox.data_dir()).unwrap().flatten() {
        let bytes = std::fs::read(file.path()).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("erase-me-0123456789"), "{:?}", file.path());
    }
}

#[test]
fn the_helper_runs_with_core_dumps_off_even_when_its_caller_allows_them() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    let seen = sandbox.root().join("core-limit");
    sandbox.set_env("SUBJECT", &sts.mint_subject_token("ci", 3600));
    sandbox.set_env("SEEN", seen.to_str().unwrap());
    // The command inherits the helper's limits, so it reports them.
    let script = "ulimit -c > \"$SEEN\"; echo \"$SUBJECT\"";
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "command", "argv": ["sh", "-c", script]}}),
    );
    let helper = support::cmd::bin();
    let status = std::process::Command::new("sh")
        .env_clear()
        .envs(sandbox.env())
        .arg("-c")
        .arg(format!("ulimit -c unlimited && printf %s {REGISTRY} | '{}' get >/dev/null", helper.display()))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), "0");
}

#[test]
fn a_symlink_at_the_log_file_path_is_not_followed() {
    let mut sandbox = Sandbox::new();
    let victim = sandbox.root().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = sandbox.root().join("helper.log");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    sandbox.set_env(LOG_FILE_ENV, link.to_str().unwrap());
    let out = sandbox.get("nothing.example").failure();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(out.stderr.contains("symbolic link"), "{out:?}");
}

#[test]
fn a_log_file_others_may_write_is_refused() {
    let mut sandbox = Sandbox::new();
    let log = sandbox.root().join("shared.log");
    std::fs::write(&log, b"").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    sandbox.set_env(LOG_FILE_ENV, log.to_str().unwrap());
    let out = sandbox.get("nothing.example").failure();
    assert_eq!(std::fs::read(&log).unwrap(), b"", "appended to a file others may write");
    assert!(out.stderr.contains("chmod 600"), "{out:?}");
}

#[test]
fn a_log_file_another_user_owns_is_refused() {
    if !support::skip::require_root("to make a file another user owns") {
        return;
    }
    let mut sandbox = Sandbox::new();
    let log = sandbox.root().join("theirs.log");
    std::fs::write(&log, b"").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&log, Some(65534), Some(65534)).unwrap();
    sandbox.set_env(LOG_FILE_ENV, log.to_str().unwrap());
    let out = sandbox.get("nothing.example").failure();
    assert_eq!(std::fs::read(&log).unwrap(), b"");
    assert!(out.stderr.contains("belongs to uid 65534"), "{out:?}");
}

#[test]
fn a_new_log_file_is_created_private() {
    let mut sandbox = Sandbox::new();
    let log = sandbox.root().join("new.log");
    sandbox.set_env(LOG_FILE_ENV, log.to_str().unwrap());
    sandbox.get("nothing.example").failure();
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn an_endpoint_that_echoes_the_token_base64_encoded_or_the_authorization_header_gets_neither_out() {
    use base64::Engine as _;
    let idp = Sts::start(StsOptions::default());
    let subject = idp.mint_subject_token("alice", 3600);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&subject);
    let header = base64::engine::general_purpose::STANDARD.encode("docker:client-secret-value-0123");
    let description = format!("bad subject {encoded}; you sent Authorization: Basic {header}");
    let body = json!({"error": "invalid_grant", "error_description": description}).to_string();
    let endpoint = Hostile::start(Behaviour::Answer { status: 400, body });
    let mut sandbox = Sandbox::new();
    sandbox.set_env("CLIENT_SECRET", "client-secret-value-0123");
    sandbox.write_exchange_config(
        REGISTRY,
        &endpoint.url(),
        json!({"client_id": "docker", "client_secret": {"source": "env", "var": "CLIENT_SECRET"}}),
    );
    sandbox.store(REGISTRY, "alice", &subject).quiet_success();
    let out = sandbox.get(REGISTRY).failure();
    assert!(!out.stdout.contains(&encoded[..40]), "{out:?}");
    assert!(!out.stdout.contains(&header[..20]), "{out:?}");
}
