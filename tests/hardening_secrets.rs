//! Secrets never leak and bad input never panics (DESIGN.md section 4).
//!
//! One test drives every command and failure path with debug logging to
//! stderr and to a log file, then looks for each secret everywhere a person
//! or a log collector could see it. The other feeds garbage to every action
//! and every subcommand: the exit status is always 0, 1 or 2, never a panic
//! (101) or a signal.

mod support;

use std::path::Path;

use docker_credential_exchange::for_tests::cache::CachedToken;
use serde_json::json;
use support::cmd::{Output, Sandbox};
use support::sts::{ClientAuthMethod, ClientCredentials, Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const PLAIN: &str = "plain.example.com";
const PASSWORD: &str = "plain-password-Zq8vX3mK1w";
const CLIENT_SECRET: &str = "client-secret-Hn4Tr7Yp2s";
const WRONG_CLIENT_SECRET: &str = "wrong-client-secret-Gb6Ld9Qe0u";

/// Everything one step showed a person or a log collector.
struct Seen {
    step: String,
    out: Output,
    /// Whether the protocol must print a secret on stdout (`get`).
    stdout_may_hold_a_secret: bool,
    cache_names: Vec<String>,
}

fn cache_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// Exchanged tokens now in the cache, so they join the secrets searched for.
fn cached_tokens(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<CachedToken>(&b).ok())
        .map(|t| t.token.expose().to_owned())
        .collect()
}

#[test]
fn no_secret_appears_in_any_output_log_or_file_name() {
    let sts = Sts::start(StsOptions {
        client: Some(ClientCredentials {
            id: "docker".into(),
            secret: CLIENT_SECRET.into(),
            method: ClientAuthMethod::Basic,
        }),
        ..StsOptions::default()
    });
    let mut sandbox = Sandbox::new();
    let log_file = sandbox.root().join("helper.log");
    sandbox
        .set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG", "debug")
        .set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log_file.to_str().unwrap())
        .set_env("RUST_BACKTRACE", "1")
        .set_env("STS_CLIENT_SECRET", CLIENT_SECRET);
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({
            "client_id": "docker",
            "client_secret": { "source": "env", "var": "STS_CLIENT_SECRET" },
            "scope": "repository:team/app:pull",
        }),
    );
    let login_token = sts.mint_subject_token("alice", 3600);
    let expired_login_token = sts.mint_subject_token("alice", -600);
    let mut secrets: Vec<String> =
        vec![PASSWORD.into(), CLIENT_SECRET.into(), WRONG_CLIENT_SECRET.into(), login_token.clone()];
    secrets.push(expired_login_token.clone());
    let mut seen: Vec<Seen> = Vec::new();
    let mut step = |name: &str, out: Output, may_hold: bool, sandbox: &Sandbox, secrets: &mut Vec<String>| {
        secrets.extend(cached_tokens(&sandbox.cache_dir()));
        if may_hold && let Ok(v) = serde_json::from_str::<serde_json::Value>(&out.stdout) {
            secrets.extend(v["Secret"].as_str().map(str::to_owned));
        }
        seen.push(Seen {
            step: name.to_owned(),
            out,
            stdout_may_hold_a_secret: may_hold,
            cache_names: cache_names(&sandbox.cache_dir()),
        });
    };

    // Plain credentials through the protocol.
    let s = &sandbox;
    step("store plain", s.store(PLAIN, "bob", PASSWORD).success(), false, s, &mut secrets);
    step("get plain", s.get(PLAIN).success(), true, s, &mut secrets);
    step("list", s.list().success(), false, s, &mut secrets);
    // The exchange registry: login, get, and the commands for people.
    let login = s.cmd(&["login", REGISTRY, "--token-stdin"]).stdin(&login_token).run().success();
    step("login", login, false, s, &mut secrets);
    step("get exchange", s.get(REGISTRY).success(), true, s, &mut secrets);
    step("get cached", s.get(REGISTRY).success(), true, s, &mut secrets);
    step("token", s.cmd(&["token", REGISTRY]).run(), false, s, &mut secrets);
    step("token decode", s.cmd(&["token", REGISTRY, "--decode", "--refresh"]).run(), false, s, &mut secrets);
    step("status", s.cmd(&["status"]).run(), false, s, &mut secrets);
    step("status json", s.cmd(&["status", "--json"]).run(), false, s, &mut secrets);
    step("doctor", s.cmd(&["doctor"]).run(), false, s, &mut secrets);
    step("list with exchange", s.list().success(), false, s, &mut secrets);
    // Failure paths.
    for fault in [
        Fault::InvalidGrant,
        Fault::MalformedJson,
        Fault::Redirect { location: format!("{}?token={login_token}", sts.base_url()) },
        Fault::HugeBody { bytes: 2 * 1024 * 1024 },
    ] {
        sts.set_fault(fault.clone());
        // A refresh that fails inside the margin falls back to the cached
        // token; clear the cache so the failure itself is shown.
        s.cmd(&["cache", "clear"]).run().success();
        let out = s.cmd(&["token", REGISTRY, "--refresh"]).run().failure();
        step(&format!("token with {fault:?}"), out, false, s, &mut secrets);
        step(&format!("get with {fault:?}"), s.get(REGISTRY).failure(), false, s, &mut secrets);
    }
    sts.set_fault(Fault::None);
    s.cmd(&["cache", "clear"]).run().success();
    let wrong_client =
        s.cmd(&["token", REGISTRY, "--refresh"]).env("STS_CLIENT_SECRET", WRONG_CLIENT_SECRET).run();
    step("wrong client secret", wrong_client.failure(), false, s, &mut secrets);
    let bad_json = format!(r#"{{"ServerURL":"{PLAIN}","Username":"bob","Secret":"{PASSWORD}",}}"#);
    step("store bad JSON", s.cmd(&["store"]).stdin(bad_json).run().failure(), false, s, &mut secrets);
    let wrong_type = json!({"ServerURL": PLAIN, "Username": ["bob"], "Secret": PASSWORD}).to_string();
    step("store wrong type", s.cmd(&["store"]).stdin(wrong_type).run().failure(), false, s, &mut secrets);
    let no_user = json!({"ServerURL": PLAIN, "Username": "", "Secret": PASSWORD}).to_string();
    step("store no username", s.cmd(&["store"]).stdin(no_user).run().failure(), false, s, &mut secrets);
    let token_as_arg = s.cmd(&["login", REGISTRY, &login_token]).run();
    assert_ne!(token_as_arg.code, Some(0), "a token on the command line is refused: {token_as_arg:?}");
    step("login with token argument", token_as_arg, false, s, &mut secrets);
    step(
        "store expired login",
        s.store(REGISTRY, "alice", &expired_login_token).success(),
        false,
        s,
        &mut secrets,
    );
    step("get with expired login", s.get(REGISTRY).failure(), false, s, &mut secrets);
    // Removal.
    step("cache clear", s.cmd(&["cache", "clear"]).run().success(), false, s, &mut secrets);
    step("erase plain", s.erase(PLAIN).success(), false, s, &mut secrets);
    step("logout", s.cmd(&["logout", REGISTRY]).run().success(), false, s, &mut secrets);
    step("get after logout", s.get(REGISTRY).failure(), false, s, &mut secrets);

    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 7, "the run should have produced exchanged tokens: {}", secrets.len());
    let log = std::fs::read_to_string(&log_file).expect("the log file was written");
    assert!(log.contains("exchang"), "debug logging reached the file");
    for secret in &secrets {
        let short = &secret[..secret.len().min(16)];
        assert!(!log.contains(secret.as_str()), "secret {short}… in the log file");
        for s in &seen {
            assert!(
                !s.out.stderr.contains(secret.as_str()),
                "secret {short}… on stderr of {}: {:?}",
                s.step,
                s.out
            );
            assert!(!s.out.stderr.contains("panicked"), "{} panicked: {:?}", s.step, s.out);
            if !s.stdout_may_hold_a_secret {
                assert!(
                    !s.out.stdout.contains(secret.as_str()),
                    "secret {short}… on stdout of {}: {:?}",
                    s.step,
                    s.out
                );
            }
            assert!(
                s.cache_names.iter().all(|n| !n.contains(secret.as_str())),
                "secret {short}… in a cache file name after {}",
                s.step
            );
        }
    }
}

/// Inputs no client should send, each a different way to be wrong.
fn garbage() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"\0".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        b"   \n\t ".to_vec(),
        vec![b'a'; 2 * 1024 * 1024],
        "[".repeat(100_000).into_bytes(),
        b"{\"ServerURL\":".to_vec(),
        br#"{"ServerURL":1,"Username":[],"Secret":{}}"#.to_vec(),
        br#"{"ServerURL":"h","Username":"u","Secret":"s","Extra":true}"#.to_vec(),
        "https://\u{5d6}ndex.docker.io/v1/".into(),
        "http://[::1".into(),
        "user:pw@registry.example.com".into(),
        "\u{202e}\u{1F4A5}/\u{1F4A5}//x?y#z".into(),
        "registry.example.com/".repeat(10_000).into_bytes(),
    ]
}

#[track_caller]
fn assert_clean_exit(what: &str, out: &Output) {
    assert!(matches!(out.code, Some(0..=2)), "{what}: exit status must be 0, 1 or 2: {out:?}");
    assert!(!out.stderr.contains("panicked"), "{what} panicked: {out:?}");
}

#[test]
fn garbage_never_panics_any_action() {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    let inputs = garbage();

    for action in ["get", "store", "erase", "list", "version"] {
        for input in &inputs {
            let out = sandbox.cmd(&[action]).stdin(input).run();
            assert_clean_exit(
                &format!("{action} with {:?}", String::from_utf8_lossy(&input[..input.len().min(40)])),
                &out,
            );
        }
    }
    let weird = ["", "\u{202e}", "https://\u{5d6}x", "a/../../b", "-", "--", "h:99999999999"];
    for arg in weird {
        for args in [
            vec!["token", arg],
            vec!["token", arg, "--decode"],
            vec!["logout", arg],
            vec!["cache", "clear", arg],
            vec!["configure-docker", arg],
            vec!["login", arg, "--no-verify", "--token-stdin"],
            vec![arg],
            vec!["status", arg],
        ] {
            let out = sandbox.cmd(&args).stdin("garbage\u{0}token").run();
            assert_clean_exit(&format!("{args:?}"), &out);
        }
    }
}

#[test]
fn garbage_on_disk_never_panics_any_action() {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    let cache_files: Vec<_> =
        std::fs::read_dir(sandbox.cache_dir()).unwrap().flatten().map(|e| e.path()).collect();
    let config = std::fs::read(sandbox.config_path()).unwrap();

    for input in garbage().iter().filter(|g| g.len() < 64 * 1024) {
        for path in &cache_files {
            std::fs::write(path, input).unwrap();
        }
        std::fs::write(sandbox.data_dir().join("credentials.json"), input).unwrap();
        for (args, stdin) in [
            (vec!["get"], REGISTRY),
            (vec!["get"], PLAIN),
            (vec!["list"], ""),
            (vec!["erase"], PLAIN),
            (vec!["status", "--json"], ""),
            (vec!["token", REGISTRY], ""),
        ] {
            let out = sandbox.cmd(&args).stdin(stdin).run();
            assert_clean_exit(&format!("{args:?} over a garbage store and cache"), &out);
        }
        std::fs::write(sandbox.config_path(), input).unwrap();
        for action in ["get", "list", "erase"] {
            let out = sandbox.cmd(&[action]).stdin(REGISTRY).run();
            assert_clean_exit(&format!("{action} with a garbage config"), &out);
        }
        std::fs::write(sandbox.config_path(), &config).unwrap();
    }
}
