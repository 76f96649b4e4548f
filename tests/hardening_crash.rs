//! Crash safety (DESIGN.md sections 3-4): helpers killed with SIGKILL at
//! random points while they write the token cache or the file store leave
//! every file either as it was or as the killed writer meant it, never
//! torn, and the next helper works.
#![cfg(unix)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use docker_credential_exchange::cache::CachedToken;
use serde_json::json;
use support::cmd::{Sandbox, TestCommand};
use support::sts::{Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const ITERATIONS: usize = 200;
/// Stops early rather than run long on a slow machine.
const TIME_BUDGET: Duration = Duration::from_secs(25);

/// A small deterministic generator (xorshift64*); the seed is printed so a
/// failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Rng {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        eprintln!("seed: {seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
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
fn kill_at_random(mut child: Child, rng: &mut Rng, window_micros: u64) {
    std::thread::sleep(Duration::from_micros(rng.below(window_micros)));
    let _ = child.kill();
    let _ = child.wait();
}

/// Every non-temporary file in `dir`, for inspection.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .filter(|(name, _)| !name.starts_with(".tmp-"))
        .collect()
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
    let mut rng = Rng::from_clock();
    let started = Instant::now();
    let mut rounds = 0;

    while rounds < ITERATIONS && started.elapsed() < TIME_BUDGET {
        rounds += 1;
        // `token --refresh` exchanges and rewrites the entry every time.
        let child = spawn(sandbox.cmd(&["token", REGISTRY, "--refresh"]));
        kill_at_random(child, &mut rng, 40_000);
        for (name, bytes) in files(&sandbox.cache_dir()) {
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

    eprintln!("{rounds} rounds, {} exchanges", sts.requests());
    assert!(rounds >= 50, "too few rounds ran: {rounds}");
    sts.set_fault(Fault::None);
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
    let mut rng = Rng::from_clock();
    // Every secret each registry was ever sent, and the ones whose store
    // completed: those must survive every later kill.
    let mut sent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut completed: BTreeMap<String, String> = BTreeMap::new();
    let started = Instant::now();
    let mut rounds = 0;

    while rounds < ITERATIONS && started.elapsed() < TIME_BUDGET {
        rounds += 1;
        let registry = format!("r{}.example.com", rounds % 7);
        let secret = format!("password-{rounds}");
        sent.entry(registry.clone()).or_default().insert(secret.clone());
        let body = json!({"ServerURL": registry, "Username": "u", "Secret": secret}).to_string();
        if rounds % 5 == 0 {
            sandbox.cmd(&["store"]).stdin(body).run().quiet_success();
            completed.insert(registry, secret);
        } else {
            let child = spawn(sandbox.cmd(&["store"]).stdin(body));
            kill_at_random(child, &mut rng, 15_000);
        }
        let now = stored_secrets(&sandbox.data_dir());
        for (registry, secret) in &now {
            assert!(sent[registry].contains(secret), "round {rounds}: {registry} holds an unknown secret");
        }
        for registry in completed.keys() {
            assert!(now.contains_key(registry), "round {rounds}: a completed store of {registry} was lost");
        }
    }

    eprintln!("{rounds} rounds");
    assert!(rounds >= 50, "too few rounds ran: {rounds}");
    let listed = sandbox.list().quiet_success().json();
    for registry in completed.keys() {
        assert!(listed.get(registry).is_some(), "{registry} missing from list: {listed}");
    }
}
