//! One deadline for the whole `get` (DESIGN.md section 3): whatever the
//! endpoint does (a body that trickles, a connection that is never
//! answered, a late 503 asking to retry in 10 s, a backlog that is never
//! drained, a command that leaves a child behind), a `get` ends by its
//! deadline, and helpers queued behind a failing exchange reuse its failure
//! (or the stale token) instead of repeating it, so N helpers in an outage
//! cost one deadline. Wall-clock bounds have generous slack: they catch a
//! `get` that runs ten times too long, not a slow machine.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::cmd::{Output, Sandbox, TestCommand};
#[cfg(target_os = "linux")]
use support::hostile::FullBacklog;
use support::hostile::{Behaviour, Hostile};
use support::sts::{Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const TIMEOUT_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS";
/// The deadline the tests set, in seconds.
const DEADLINE: u64 = 3;
/// Slack for process start-up on a loaded machine.
const SLACK: Duration = Duration::from_secs(7);

/// A sandbox whose one exchange registry points at `endpoint`, with a
/// valid login token stored and the deadline set.
fn sandbox_for(endpoint: &str) -> Sandbox {
    let idp = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, endpoint, json!({}));
    sandbox.store(REGISTRY, "alice", &idp.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.set_env(TIMEOUT_ENV, &DEADLINE.to_string());
    sandbox
}

fn within_the_deadline(elapsed: Duration) -> bool {
    elapsed < Duration::from_secs(DEADLINE) + SLACK
}

/// Runs each command on its own thread at once; outputs and durations.
fn all_at_once(commands: Vec<TestCommand>) -> Vec<(Output, Duration)> {
    let threads: Vec<_> = commands
        .into_iter()
        .map(|cmd| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let out = cmd.run();
                (out, start.elapsed())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// A `get`, killed if it runs a minute past any deadline these tests set,
/// so that a regression fails rather than hangs the suite.
fn get(sandbox: &Sandbox) -> TestCommand {
    sandbox.cmd(&["get"]).stdin(REGISTRY).kill_after(Duration::from_secs(75))
}

fn timed_get(sandbox: &Sandbox) -> (Output, Duration) {
    let start = Instant::now();
    let out = get(sandbox).run();
    (out, start.elapsed())
}

#[test]
fn a_body_that_trickles_one_byte_a_second_ends_by_the_deadline() {
    let endpoint = Hostile::start(Behaviour::SlowBody);
    let sandbox = sandbox_for(&endpoint.url());
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("timed out") && out.stdout.contains(TIMEOUT_ENV), "{out:?}");
    assert!(within_the_deadline(elapsed), "took {elapsed:?}: {out:?}");
}

#[test]
fn a_helper_queued_behind_a_trickling_body_ends_by_its_own_deadline() {
    let endpoint = Hostile::start(Behaviour::SlowBody);
    let sandbox = sandbox_for(&endpoint.url());
    let results = all_at_once(vec![get(&sandbox), get(&sandbox)]);
    for (out, elapsed) in &results {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(within_the_deadline(*elapsed), "took {elapsed:?}: {out:?}");
    }
    assert_eq!(endpoint.connections(), 1, "the queued helper repeated the exchange");
}

#[test]
fn a_late_503_asking_to_retry_in_ten_seconds_is_not_waited_for_past_the_deadline() {
    let endpoint = Hostile::start(Behaviour::LateUnavailable { after: Duration::from_secs(2) });
    let sandbox = sandbox_for(&endpoint.url());
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("HTTP 503"), "{out:?}");
    assert!(within_the_deadline(elapsed), "took {elapsed:?}: {out:?}");
    assert_eq!(endpoint.connections(), 1, "a retry that could not finish in time was started");
}

// The full backlog is a Linux socket (see support::hostile::FullBacklog).
#[cfg(target_os = "linux")]
#[test]
fn a_listener_whose_backlog_is_full_ends_by_the_deadline_not_after_four_connects() {
    let endpoint = FullBacklog::start();
    let mut sandbox = sandbox_for(&endpoint.url());
    // Longer than one 10 s connect, so a retry starts: all of it must
    // still end by the one deadline.
    sandbox.set_env(TIMEOUT_ENV, "12");
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(elapsed < Duration::from_secs(12) + SLACK, "took {elapsed:?}: {out:?}");
}

#[test]
fn six_helpers_against_a_hanging_endpoint_cost_one_deadline_and_one_request() {
    let endpoint = Hostile::start(Behaviour::Hang);
    let sandbox = sandbox_for(&endpoint.url());
    let results = all_at_once((0..6).map(|_| get(&sandbox)).collect());
    for (out, elapsed) in &results {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
        assert!(within_the_deadline(*elapsed), "took {elapsed:?}: {out:?}");
    }
    assert_eq!(endpoint.connections(), 1, "helpers queued behind the failure repeated it");
}

#[test]
fn six_helpers_share_the_stale_token_while_the_refresh_hangs() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    let cached = sandbox.get(REGISTRY).quiet_success().secret();
    // Move the entry inside its margin: still valid, but due for a refresh.
    sandbox.edit_cache_entry(|entry| entry["refresh_at"] = json!(0));
    sts.set_fault(Fault::Hang { secs: 60 });
    sandbox.set_env(TIMEOUT_ENV, &DEADLINE.to_string());

    let results = all_at_once((0..6).map(|_| get(&sandbox)).collect());

    for (out, elapsed) in &results {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.secret(), cached, "every helper gets the stale token");
        assert!(within_the_deadline(*elapsed), "took {elapsed:?}: {out:?}");
    }
    assert_eq!(sts.requests(), 2, "one login exchange, then one hanging refresh");
}

#[test]
fn a_command_subject_that_leaves_a_child_holding_stdout_ends_at_its_timeout() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.set_env("SUBJECT", &sts.mint_subject_token("ci", 3600));
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "command", "argv": ["sh", "-c", "echo \"$SUBJECT\"; sleep 30 &"], "timeout_seconds": 2}}),
    );
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(elapsed < Duration::from_secs(2) + SLACK, "took {elapsed:?}");
}

#[test]
fn a_fifo_as_the_subject_token_file_is_refused_at_once() {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    let fifo = sandbox.root().join("token.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "file", "path": fifo}}),
    );
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("not a regular file"), "{out:?}");
    assert!(elapsed < SLACK, "took {elapsed:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn an_enormous_timeout_setting_is_clamped_rather_than_a_panic() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.set_env("SUBJECT", &sts.mint_subject_token("ci", 3600));
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "command", "argv": ["sh", "-c", "echo \"$SUBJECT\""], "timeout_seconds": u64::MAX}}),
    );
    sandbox.set_env(TIMEOUT_ENV, "9223372036854775807");
    sandbox.get(REGISTRY).quiet_success();
}

#[test]
fn a_timeout_setting_that_is_not_a_positive_number_is_an_error_naming_it() {
    for bad in ["abc", "0", "-5"] {
        let sts = Sts::start(StsOptions::default());
        let mut sandbox = sandbox_for(&sts.url());
        sandbox.set_env(TIMEOUT_ENV, bad);
        let out = sandbox.get(REGISTRY).failure();
        assert!(
            out.stdout.contains(TIMEOUT_ENV) && out.stdout.contains("positive number of seconds"),
            "{out:?}"
        );
        assert_eq!(sts.requests(), 0, "{bad}");
    }
}

#[test]
fn an_error_of_a_megabyte_of_at_signs_is_reported_by_the_deadline() {
    // The redaction of URL credentials once scanned back from every `@`.
    let description = "@".repeat(900_000);
    let body = json!({"error": "invalid_request", "error_description": description}).to_string();
    let endpoint = Hostile::start(Behaviour::Answer { status: 400, body });
    let sandbox = sandbox_for(&endpoint.url());
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("invalid_request") && out.stdout.len() < 2000, "{out:?}");
    assert!(within_the_deadline(elapsed), "took {elapsed:?}");
}

#[test]
fn a_name_lookup_that_never_returns_ends_by_the_deadline() {
    // glibc reads $HOSTALIASES for a one-label name; a FIFO with no writer
    // blocks that lookup for ever, on a thread the deadline cannot stop.
    let mut sandbox = Sandbox::new();
    let aliases = sandbox.root().join("aliases");
    assert!(std::process::Command::new("mkfifo").arg(&aliases).status().unwrap().success());
    sandbox.set_env("HOSTALIASES", aliases.to_str().unwrap());
    sandbox.set_env("SUBJECT", "some-subject-token");
    sandbox.set_env(TIMEOUT_ENV, &DEADLINE.to_string());
    sandbox.write_exchange_config(
        REGISTRY,
        "https://stshost/token",
        json!({"subject_token": {"source": "env", "var": "SUBJECT"}}),
    );
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("timed out"), "{out:?}");
    assert!(within_the_deadline(elapsed), "took {elapsed:?}");
}

/// A session bus that accepts connections and never says a word: a hung
/// gnome-keyring, or a keyring waiting for an unlock prompt nobody sees.
#[cfg(target_os = "linux")]
fn silent_bus(sandbox: &mut Sandbox) -> std::os::unix::net::UnixListener {
    let socket = sandbox.root().join("bus");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let address = format!("unix:path={}", socket.display());
    sandbox.use_keyring(&[("DBUS_SESSION_BUS_ADDRESS".into(), address)]);
    sandbox.set_env(TIMEOUT_ENV, &DEADLINE.to_string());
    listener
}

#[cfg(target_os = "linux")]
#[test]
fn a_keyring_that_never_answers_a_get_ends_by_the_deadline() {
    let mut sandbox = Sandbox::new();
    let _bus = silent_bus(&mut sandbox);
    let (out, elapsed) = timed_get(&sandbox);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("keyring") && out.stdout.contains("did not answer"), "{out:?}");
    assert!(within_the_deadline(elapsed), "took {elapsed:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_keyring_that_never_answers_a_store_ends_by_the_deadline_and_claims_nothing() {
    let mut sandbox = Sandbox::new();
    let _bus = silent_bus(&mut sandbox);
    let start = Instant::now();
    let out = sandbox
        .cmd(&["store"])
        .stdin(json!({"ServerURL": REGISTRY, "Username": "alice", "Secret": "s3cret-value"}).to_string())
        .kill_after(Duration::from_secs(75))
        .run();
    let elapsed = start.elapsed();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("did not answer"), "{out:?}");
    assert!(within_the_deadline(elapsed), "took {elapsed:?}");
    assert!(
        !sandbox.list().success().stdout.contains(REGISTRY),
        "the index claims an entry the keyring refused"
    );
}

#[cfg(unix)]
#[test]
fn a_login_store_that_fails_part_way_still_retires_the_tokens_of_the_old_login() {
    // A write that timed out may land later (a hung keyring that recovers),
    // so a failed store of a login must not leave the old login's exchanged
    // tokens to be served after it.
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.logged_in(REGISTRY, &sts);
    get(&sandbox).run().success();
    assert_eq!(sts.requests(), 1);
    std::fs::create_dir_all(sandbox.data_dir()).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(sandbox.data_dir().join("credentials.json.lock"))
        .unwrap();
    lock.lock().unwrap();
    sandbox.set_env(TIMEOUT_ENV, "1");
    let token = sts.mint_subject_token("alice", 3600);
    sandbox.store(REGISTRY, "alice", &token).failure();
    drop(lock);
    get(&sandbox).run().success();
    assert_eq!(sts.requests(), 2, "the old login's token was served after a failed store");
}
