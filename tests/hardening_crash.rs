//! Crash safety (DESIGN.md sections 3-4): helpers killed with SIGKILL at
//! random points while they write the token cache or the file store leave
//! every file either as it was or as the killed writer meant it, never
//! torn; the temporary files they leave (which hold secrets) are gone after
//! the next whole write; and the next helper works.
#![cfg(unix)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use docker_credential_exchange::for_tests::TMP_SUFFIX;
use docker_credential_exchange::for_tests::cache::CachedToken;
use serde_json::json;
use support::cmd::{Sandbox, TestCommand};
use support::sts::{Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const ITERATIONS: usize = 200;
/// Stops early rather than run long on a slow machine.
const TIME_BUDGET: Duration = Duration::from_secs(25);
/// Replays a run: the kill points come from this seed when it is set.
const SEED_ENV: &str = "HARDENING_CRASH_SEED";

/// A small deterministic generator (xorshift64*) for the kill points. Its
/// seed comes from [`SEED_ENV`] or the clock, and is printed when the test
/// fails, with the command that replays the same kill points (what the
/// helper had reached by each still varies with the machine's load).
struct Rng {
    state: u64,
    seed: u64,
    test: &'static str,
}

impl Rng {
    fn new(test: &'static str) -> Rng {
        let seed = match std::env::var(SEED_ENV) {
            Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{SEED_ENV}={text:?} is not a u64")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        Rng { state: seed | 1, seed, test }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "replay these kill points with: {SEED_ENV}={} cargo test --test hardening_crash {}",
                self.seed, self.test
            );
        }
    }
}

fn spawn(cmd: TestCommand) -> Child {
    let (mut cmd, stdin) = cmd.into_command();
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn helper");
    // A helper killed before it reads stdin gives a broken pipe; that is fine.
    let mut pipe = child.stdin.take().unwrap();
    let _ = std::io::Write::write_all(&mut pipe, &stdin);
    drop(pipe);
    child
}

/// Lets `child` run for a random time, then SIGKILLs it (if still alive).
/// The sleep is the point: real time decides where in its work the helper
/// dies.
fn kill_at_random(mut child: Child, rng: &mut Rng, window_micros: u64) {
    std::thread::sleep(Duration::from_micros(rng.below(window_micros)));
    let _ = child.kill();
    let _ = child.wait();
}

/// A directory as a killed writer left it: its files by name and content,
/// and apart from them the temporary files of writes that never finished
/// (named as the helper names them, `.<target>.<random>` + [`TMP_SUFFIX`]).
#[derive(Default)]
struct Left {
    files: Vec<(String, Vec<u8>)>,
    temporaries: Vec<String>,
}

fn left_in(dir: &Path) -> Left {
    let mut left = Left::default();
    let Ok(entries) = std::fs::read_dir(dir) else { return left };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(TMP_SUFFIX) {
            left.temporaries.push(name);
        } else {
            left.files.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
    left
}

#[test]
fn killed_cache_writers_leave_only_whole_entries() {
    let sts = Sts::start(StsOptions::default());
    // A short delay widens the window between the request and the write.
    sts.set_fault(Fault::Delay { millis: 5 });
    let mut sandbox = Sandbox::new();
    sandbox.remove_env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE");
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    let mut rng = Rng::new("killed_cache_writers_leave_only_whole_entries");
    let started = Instant::now();
    let (mut rounds, mut orphaned) = (0, 0);

    while rounds < ITERATIONS && started.elapsed() < TIME_BUDGET {
        rounds += 1;
        // `token --refresh` exchanges and rewrites the entry every time.
        let child = spawn(sandbox.cmd(&["token", REGISTRY, "--refresh"]));
        kill_at_random(child, &mut rng, 40_000);
        let left = left_in(&sandbox.cache_dir());
        orphaned += usize::from(!left.temporaries.is_empty());
        for (name, bytes) in left.files {
            if name.ends_with(".json") {
                let parsed = serde_json::from_slice::<CachedToken>(&bytes);
                assert!(
                    parsed.is_ok(),
                    "round {rounds}: torn cache entry {name}: {:?}",
                    String::from_utf8_lossy(&bytes)
                );
                assert!(!parsed.unwrap().token.is_empty());
            }
        }
    }

    eprintln!("{rounds} rounds, {orphaned} left a temporary file, {} exchanges", sts.requests());
    assert!(rounds >= 50, "too few rounds ran: {rounds}");
    assert!(orphaned > 0, "no writer was killed mid-write, so the check below would check nothing");
    sts.set_fault(Fault::None);
    // One whole write of the entry removes what the killed writers left.
    sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().success();
    let left = left_in(&sandbox.cache_dir());
    assert!(
        left.temporaries.is_empty(),
        "killed writers' files outlived the next write: {:?}",
        left.temporaries
    );
    let out = sandbox.get(REGISTRY).success();
    assert!(!out.secret().is_empty());
}

/// The file store as the test reads it: registry key to secret.
fn stored_secrets(data_dir: &Path) -> BTreeMap<String, String> {
    let Ok(bytes) = std::fs::read(data_dir.join("credentials.json")) else { return BTreeMap::new() };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("torn store file ({e}): {:?}", String::from_utf8_lossy(&bytes)));
    assert_eq!(value["version"], 1);
    value["entries"]
        .as_object()
        .expect("entries")
        .iter()
        .map(|(k, v)| (k.clone(), v["secret"].as_str().expect("secret").to_owned()))
        .collect()
}

#[test]
fn killed_store_writers_leave_the_old_or_the_new_file() {
    let sandbox = Sandbox::new();
    let mut rng = Rng::new("killed_store_writers_leave_the_old_or_the_new_file");
    // Every secret each registry was ever sent, and the ones whose store
    // completed: those must survive every later kill.
    let mut sent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut completed: BTreeMap<String, String> = BTreeMap::new();
    let started = Instant::now();
    let (mut rounds, mut orphaned) = (0, 0);

    while rounds < ITERATIONS && started.elapsed() < TIME_BUDGET {
        rounds += 1;
        let registry = format!("r{}.example.com", rounds % 7);
        let secret = format!("password-{rounds}");
        sent.entry(registry.clone()).or_default().insert(secret.clone());
        let body = json!({"ServerURL": registry, "Username": "u", "Secret": secret}).to_string();
        if rounds % 5 == 0 {
            sandbox.cmd(&["store"]).stdin(body).run().quiet_success();
            completed.insert(registry, secret);
            // A whole write removes what the writers killed before it left.
            let left = left_in(&sandbox.data_dir()).temporaries;
            assert!(left.is_empty(), "round {rounds}: killed writers' files outlived a store: {left:?}");
        } else {
            let child = spawn(sandbox.cmd(&["store"]).stdin(body));
            kill_at_random(child, &mut rng, 15_000);
            orphaned += usize::from(!left_in(&sandbox.data_dir()).temporaries.is_empty());
        }
        let now = stored_secrets(&sandbox.data_dir());
        for (registry, secret) in &now {
            assert!(sent[registry].contains(secret), "round {rounds}: {registry} holds an unknown secret");
        }
        for registry in completed.keys() {
            assert!(now.contains_key(registry), "round {rounds}: a completed store of {registry} was lost");
        }
    }

    eprintln!("{rounds} rounds, {orphaned} left a temporary file");
    assert!(rounds >= 50, "too few rounds ran: {rounds}");
    assert!(orphaned > 0, "no writer was killed mid-write, so the checks after each store checked nothing");
    let listed = sandbox.list().quiet_success().json();
    for registry in completed.keys() {
        assert!(listed.get(registry).is_some(), "{registry} missing from list: {listed}");
    }
}
