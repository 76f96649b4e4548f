//! What Windows does differently, through the real binary (DESIGN.md
//! section 9): a file another program holds open is replaced once it lets
//! go, or not at all, and the keyring and the index never disagree; a
//! `command` subject runs in a Job Object, so that nothing it leaves behind
//! holds Docker's pipe or outlives its timeout; `az` finds `az.cmd`; and
//! `doctor` reads the cache directory's access list.
//!
//! Runs on a Windows runner and, from Linux, under Wine (.ci/wine.sh);
//! docs/platforms.md says what Wine cannot show.

#![cfg(windows)]

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::cmd::{Output, Sandbox, finish_within};
use support::native_keyring::Session;
use support::sts::{Sts, StsOptions};
use support::windows::{ends_within, hold_without_share_delete, let_everyone_read};

const REGISTRY: &str = "registry.example.com";
const TIMEOUT_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS";
/// Long enough for any run of the helper here, Wine's slow starts included.
const PATIENCE: Duration = Duration::from_secs(60);

// ---- a file held open by another program ----

/// Closes `held` once the helper is waiting to replace a file in `dir`
/// (its temporary file is there), plus a moment for its first attempt to
/// be refused; the test's verdict never depends on that moment.
fn release_once_waiting(dir: &Path, held: std::fs::File) {
    let started = Instant::now();
    let waiting = || {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".dce-tmp"))
    };
    while !waiting() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    drop(held);
}

fn store_body(registry: &str, username: &str, secret: &str) -> String {
    json!({"ServerURL": registry, "Username": username, "Secret": secret}).to_string()
}

fn username_and_secret(out: &Output) -> (String, String) {
    (out.json()["Username"].as_str().unwrap_or_default().to_owned(), out.secret())
}

#[test]
fn a_store_while_a_reader_holds_the_index_waits_for_it_and_keeps_each_username_with_its_secret() {
    let session = Session::new();
    let registry = session.registry("held-index");
    session.store(&registry, "alice", "alice-secret").quiet_success();
    let held = hold_without_share_delete(&session.sandbox.data_dir().join("index.json"));

    let (child, stdin) =
        session.sandbox.cmd(&["store"]).stdin(store_body(&registry, "bob", "bob-secret")).spawn();
    drop(stdin);
    release_once_waiting(&session.sandbox.data_dir(), held);
    let (code, out) = finish_within(child, PATIENCE);

    assert_eq!(code, Some(0), "{out:?}");
    let got = session.sandbox.get(&registry).quiet_success();
    assert_eq!(username_and_secret(&got), ("bob".into(), "bob-secret".into()));
}

#[test]
fn a_store_refused_by_a_reader_until_the_deadline_changes_nothing() {
    let session = Session::new();
    let registry = session.registry("held-store");
    session.store(&registry, "alice", "alice-secret").quiet_success();
    let held = hold_without_share_delete(&session.sandbox.data_dir().join("index.json"));

    let out = session
        .sandbox
        .cmd(&["store"])
        .env(TIMEOUT_ENV, "3")
        .stdin(store_body(&registry, "bob", "bob-secret"))
        .run()
        .failure();
    drop(held);

    let got = session.sandbox.get(&registry).quiet_success();
    assert_eq!(username_and_secret(&got), ("alice".into(), "alice-secret".into()), "a mixed pair");
    assert!(out.stdout.contains("held open by another program"), "{out:?}");
    assert!(!out.stdout.contains("bob-secret") && !out.stderr.contains("bob-secret"), "{out:?}");
}

#[test]
fn an_erase_refused_by_a_reader_until_the_deadline_keeps_the_credential() {
    let session = Session::new();
    let registry = session.registry("held-erase");
    session.store(&registry, "alice", "alice-secret").quiet_success();
    let held = hold_without_share_delete(&session.sandbox.data_dir().join("index.json"));

    let out = session.sandbox.cmd(&["erase"]).env(TIMEOUT_ENV, "3").stdin(&registry).run().failure();
    drop(held);

    let got = session.sandbox.get(&registry).quiet_success();
    assert_eq!(username_and_secret(&got), ("alice".into(), "alice-secret".into()), "erased all the same");
    assert!(out.stdout.contains("held open by another program"), "{out:?}");
}

#[test]
fn a_store_to_the_file_store_waits_for_a_reader_of_credentials_json() {
    let sandbox = Sandbox::new();
    sandbox.store(REGISTRY, "alice", "alice-secret").quiet_success();
    let held = hold_without_share_delete(&sandbox.data_dir().join("credentials.json"));

    let (child, stdin) = sandbox.cmd(&["store"]).stdin(store_body(REGISTRY, "bob", "bob-secret")).spawn();
    drop(stdin);
    release_once_waiting(&sandbox.data_dir(), held);
    let (code, out) = finish_within(child, PATIENCE);

    assert_eq!(code, Some(0), "{out:?}");
    let got = sandbox.get(REGISTRY).quiet_success();
    assert_eq!(username_and_secret(&got), ("bob".into(), "bob-secret".into()));
}

#[test]
fn configure_docker_waits_for_a_reader_of_dockers_config_json() {
    use support::docker_cfg::{PLAIN, USER_HUNTER2, plain_sandbox, read_json};
    let original = json!({"auths": {PLAIN: {"auth": USER_HUNTER2}}});
    let (sandbox, path) = plain_sandbox(&original.to_string());
    let held = hold_without_share_delete(&path);

    let (child, stdin) = sandbox.cmd(&["configure-docker", "--store"]).spawn();
    drop(stdin);
    release_once_waiting(path.parent().unwrap(), held);
    let (code, out) = finish_within(child, PATIENCE);

    assert_eq!(code, Some(0), "{out:?}");
    assert_eq!(read_json(&path)["credsStore"], "exchange", "{out:?}");
}

#[test]
fn a_refresh_while_a_reader_holds_the_cache_entry_waits_for_it_and_keeps_the_new_token() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "env", "var": "JOB"}}),
    );
    sandbox.set_env("JOB", &sts.mint_subject_token("job", 3600));
    let first = sandbox.get(REGISTRY).quiet_success().secret();
    let entries = sandbox.cache_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let held = hold_without_share_delete(&entries[0]);

    let (child, stdin) = sandbox.cmd(&["token", REGISTRY, "--refresh", "--raw"]).spawn();
    drop(stdin);
    release_once_waiting(entries[0].parent().unwrap(), held);
    let (code, out) = finish_within(child, PATIENCE);

    assert_eq!(code, Some(0), "{out:?}");
    let now = sandbox.get(REGISTRY).quiet_success().secret();
    assert_ne!(now, first, "the refreshed token replaced the cached one");
    assert_eq!(sts.requests_to("/token"), 2, "one exchange each, no more");
}

// ---- command subjects in a Job Object ----

/// The variable that tells this test binary, started as a `command`
/// subject, which program to play.
const ROLE_ENV: &str = "DCE_TEST_ROLE";
/// Where a role writes the process id of the child it leaves behind.
const PID_FILE_ENV: &str = "DCE_TEST_PID_FILE";

/// argv that starts this test binary playing `role` (one of the ignored
/// `role_…` functions below).
fn role_argv(role: &str) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary");
    [exe.to_string_lossy().as_ref(), "--ignored", "--exact", role, "--test-threads=1"]
        .map(str::to_owned)
        .to_vec()
}

fn playing(role: &str) -> bool {
    std::env::var(ROLE_ENV).is_ok_and(|r| r == role)
}

/// Starts `role_sleeps` as a background child that inherits every
/// inheritable handle of this process, as `start /b` or a daemonizing
/// tool's child does, and records its id.
fn leave_a_sleeper() {
    let mut argv = role_argv("role_sleeps");
    let child = std::process::Command::new(argv.remove(0))
        .args(argv)
        .env(ROLE_ENV, "role_sleeps")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the sleeper starts");
    if let Some(file) = std::env::var_os(PID_FILE_ENV) {
        std::fs::write(file, child.id().to_string()).expect("the pid file");
    }
    // Left running on purpose: the test checks who ends it.
    std::mem::forget(child);
}

#[test]
#[ignore = "not a test: a `command` subject that prints a token and leaves a child behind"]
fn role_prints_a_token_and_leaves_a_sleeper() {
    if playing("role_prints_a_token_and_leaves_a_sleeper") {
        leave_a_sleeper();
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(b"\ntoken-from-the-command\n");
        let _ = stdout.flush();
        std::process::exit(0);
    }
}

#[test]
#[ignore = "not a test: a `command` subject that starts a child and never finishes"]
fn role_hangs_with_a_sleeper() {
    if playing("role_hangs_with_a_sleeper") {
        leave_a_sleeper();
        std::thread::sleep(Duration::from_secs(120));
    }
}

#[test]
#[ignore = "not a test: the child the other roles leave behind"]
fn role_sleeps() {
    if playing("role_sleeps") {
        std::thread::sleep(Duration::from_secs(120));
    }
}

/// A sandbox whose exchange registry takes its subject token from this
/// test binary playing `role`, with `timeout_seconds` for the command.
fn command_sandbox(sts: &Sts, role: &str, timeout_seconds: u64) -> (Sandbox, PathBuf) {
    let mut sandbox = Sandbox::new();
    let subject = json!({"source": "command", "argv": role_argv(role), "timeout_seconds": timeout_seconds});
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({ "subject_token": subject }));
    let pid_file = sandbox.root().join("sleeper.pid");
    sandbox.set_env(ROLE_ENV, role);
    sandbox.set_env(PID_FILE_ENV, pid_file.to_str().unwrap());
    (sandbox, pid_file)
}

/// Runs `get` the way Docker does, reading the helper's stdout to its end:
/// the exit code, and how long after the helper exited its stdout ended
/// (`None`: still open 20 s later).
fn get_and_time_the_end_of_stdout(sandbox: &Sandbox) -> (Option<i32>, Option<Duration>) {
    let (mut child, stdin) = sandbox.cmd(&["get"]).stdin(REGISTRY).spawn();
    drop(stdin);
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sender, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = stdout.read_to_end(&mut Vec::new());
        let _ = sender.send(Instant::now());
    });
    // stderr is drained too, on its own, so the helper never blocks on it.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || stderr.read_to_end(&mut Vec::new()));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("the helper can be waited for") {
            Some(status) => break Some(status),
            None if started.elapsed() > PATIENCE => break None,
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let exited = Instant::now();
    let _ = child.kill();
    let eof = ended.recv_timeout(Duration::from_secs(20)).ok().map(|at| at.saturating_duration_since(exited));
    (status.and_then(|s| s.code()), eof)
}

fn sleeper_pid(pid_file: &Path) -> u32 {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the command left no sleeper (no pid in {})", pid_file.display()))
}

#[test]
fn a_child_left_by_a_command_subject_never_holds_the_helpers_stdout() {
    let sts = Sts::start(StsOptions::default());
    let (sandbox, pid_file) = command_sandbox(&sts, "role_prints_a_token_and_leaves_a_sleeper", 20);

    let (code, eof) = get_and_time_the_end_of_stdout(&sandbox);

    assert!(code.is_some(), "the helper did not exit");
    let pid = sleeper_pid(&pid_file);
    let ended = ends_within(pid, Duration::from_secs(10));
    assert!(
        eof.is_some_and(|after| after < Duration::from_secs(10)),
        "Docker would wait for the command's child: stdout ended {eof:?} after the helper exited"
    );
    assert!(ended, "the command's child (pid {pid}) outlived the helper");
}

#[test]
fn a_command_subject_past_its_timeout_is_ended_with_its_children() {
    let sts = Sts::start(StsOptions::default());
    let (sandbox, pid_file) = command_sandbox(&sts, "role_hangs_with_a_sleeper", 3);

    let started = Instant::now();
    let (code, eof) = get_and_time_the_end_of_stdout(&sandbox);

    assert_eq!(code, Some(1), "the helper did not fail the get");
    assert!(started.elapsed() < Duration::from_secs(30), "the timeout of 3 s took {:?}", started.elapsed());
    let pid = sleeper_pid(&pid_file);
    let ended = ends_within(pid, Duration::from_secs(10));
    assert!(eof.is_some_and(|after| after < Duration::from_secs(10)), "stdout ended {eof:?} after exit");
    assert!(ended, "the command's child (pid {pid}) outlived its timeout");
}

#[test]
fn a_command_named_without_its_extension_is_found_through_pathext() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    let bin = sandbox.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // `az` is az.cmd; here a script that prints the token.
    std::fs::write(bin.join("issue-token.cmd"), "@echo token-from-a-cmd-script\r\n").unwrap();
    let path = format!("{};{}", bin.display(), sandbox.env()["PATH"]);
    sandbox.set_env("PATH", &path);
    let subject = json!({"source": "command", "argv": ["issue-token"]});
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({ "subject_token": subject }));

    let out = sandbox.get(REGISTRY);

    let sent = sts.last_request().and_then(|r| r.form_value("subject_token").map(str::to_owned));
    assert_eq!(sent.as_deref(), Some("token-from-a-cmd-script"), "{out:?}");
}

// ---- doctor and the cache directory's access list ----

fn doctor_cache_line(sandbox: &Sandbox) -> String {
    let out = sandbox.cmd(&["doctor"]).run();
    out.stdout
        .lines()
        .find(|l| l.contains("cache:"))
        .unwrap_or_else(|| panic!("no cache line: {out:?}"))
        .to_owned()
}

#[test]
fn doctor_calls_the_cache_directory_the_helper_made_private() {
    // The helper makes its cache directory as it makes every directory:
    // with an access list of its own that only this user is on (mode 0700's
    // counterpart), here at the first exchange.
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.logged_in(REGISTRY, &sts);
    sandbox.get(REGISTRY).quiet_success();
    assert!(sandbox.cache_dir().is_dir(), "the exchange made no cache directory");

    let line = doctor_cache_line(&sandbox);

    assert!(line.starts_with('✓') && line.contains("is private"), "{line}");
}

#[test]
fn doctor_flags_a_cache_directory_everyone_can_read() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.cache_dir()).unwrap();
    let_everyone_read(&sandbox.cache_dir());

    let line = doctor_cache_line(&sandbox);

    assert!(line.starts_with('✗') && line.contains("can be read by Everyone"), "{line}");
}
