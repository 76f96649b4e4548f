//! The README's first command, `cargo run --release --example demo`, must
//! run to the end: this runs the same example (built by `cargo test` in the
//! test profile) and checks that every step it narrates happened.

use std::path::PathBuf;
use std::process::Command;

/// target/<profile>/deps/demo-<hash> → target/<profile>/examples/demo
fn demo_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    profile_dir.join("examples").join(format!("demo{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn demo_runs_to_the_end() {
    let demo = demo_example();
    if !demo.exists() {
        // `cargo test` builds examples; `cargo test --test demo` does not.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "demo"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example demo failed");
    }
    let out = Command::new(&demo).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "credentials not found in native keychain",
        "logged in to registry.example.com",
        "The second `get` came from the cache",
        "the STS saw 1 new request",
        "claims (signature not verified)",
        "== Done",
    ] {
        assert!(stdout.contains(step), "missing step {step:?} in:\n{stdout}");
    }
}
