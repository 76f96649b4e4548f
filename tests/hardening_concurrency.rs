//! Concurrency (DESIGN.md sections 3-4): Docker and BuildKit run many
//! helpers at once. 200 overlapping processes mixing `get`, `store`,
//! `erase` and `list` on the file store and the token cache lose no update,
//! leave no torn file, and fail with nothing but the protocol's not-found.

mod support;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use docker_credential_exchange::for_tests::cache::CachedToken;
use serde_json::json;
use support::cmd::{Output, Sandbox};
use support::sts::{Fault, Sts, StsOptions};

const EXCHANGE: &str = "registry.example.com";
const PROCESSES: usize = 200;
const PARALLELISM: usize = 32;
/// Registries stored before the storm; every fourth job erases one.
const PRESTORED: usize = PROCESSES / 4;

/// What job `i` does.
enum Job {
    /// Store a registry nobody else touches.
    Store(String),
    /// Erase a pre-stored registry.
    Erase(String),
    /// `get` the exchange registry (through the cache) or a pre-stored one.
    Get(String),
    List,
}

fn job(i: usize) -> Job {
    match i % 4 {
        0 => Job::Store(format!("new-{i}.example.com")),
        1 => Job::Erase(format!("old-{}.example.com", i / 4)),
        2 if i % 8 == 2 => Job::Get(EXCHANGE.to_owned()),
        2 => Job::Get(format!("old-{}.example.com", (i / 4 + 7) % PRESTORED)),
        _ => Job::List,
    }
}

fn run(sandbox: &Sandbox, job: &Job) -> Output {
    match job {
        Job::Store(r) => sandbox.store(r, "u", &format!("secret-for-{r}")),
        Job::Erase(r) => sandbox.erase(r),
        Job::Get(r) => sandbox.get(r),
        Job::List => sandbox.list(),
    }
}

#[test]
fn two_hundred_concurrent_helpers_lose_nothing_and_tear_nothing() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.remove_env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE");
    sandbox.write_exchange_config(EXCHANGE, &sts.url(), json!({}));
    sandbox.store(EXCHANGE, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    for k in 0..PRESTORED {
        sandbox.store(&format!("old-{k}.example.com"), "u", "old-secret").quiet_success();
    }
    // Slow exchanges keep the cold `get`s waiting on the cache lock while
    // the others run.
    sts.set_fault(Fault::Delay { millis: 200 });

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLELISM {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= PROCESSES {
                        break;
                    }
                    let out = run(&sandbox, &job(i));
                    let not_found =
                        out.code == Some(1) && out.stdout == "credentials not found in native keychain\n";
                    if out.code != Some(0) && !not_found {
                        failures.lock().unwrap().push(out);
                    }
                }
            });
        }
    });

    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} helpers failed: {failures:?}", failures.len());
    let listed = sandbox.list().quiet_success().json();
    let listed: BTreeSet<&str> = listed.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected: BTreeSet<String> = [EXCHANGE.to_owned()].into();
    for i in 0..PROCESSES {
        if let Job::Store(r) = job(i) {
            expected.insert(r);
        }
    }
    let erased: BTreeSet<String> =
        (0..PROCESSES).filter_map(|i| if let Job::Erase(r) = job(i) { Some(r) } else { None }).collect();
    assert_eq!(erased.len(), PRESTORED, "every pre-stored registry is erased once");
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(listed, expected, "lost or resurrected entries");
    for r in expected.iter().filter(|r| r.starts_with("new-")) {
        assert_eq!(sandbox.get(r).success().secret(), format!("secret-for-{r}"));
    }
    for entry in std::fs::read_dir(sandbox.cache_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(serde_json::from_slice::<CachedToken>(&bytes).is_ok(), "torn cache entry {name}");
        }
    }
    assert_eq!(sts.requests(), 1, "single flight: one exchange serves every concurrent get");
}
