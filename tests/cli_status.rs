//! `status` and `token`, the commands a person runs when a pull fails
//! (DESIGN.md section 5): who `get` answers as, where the login token
//! comes from and when it expires, the life left in cached tokens, and the
//! last failure of a `get`, which Docker never shows; `token` runs `get`
//! as Docker would and shows what came back, the token itself only when
//! asked.

mod support;

use docker_credential_exchange::for_tests::fingerprint;
use serde_json::{Value, json};
use support::cmd::Sandbox;
use support::setup::{REGISTRY, assert_no_secret, exchange_sandbox as setup};
use support::sts::{Fault, Sts, StsOptions};

/// The registry's object in `status --json`.
fn status_entry<'a>(status: &'a Value, registry: &str) -> &'a Value {
    status["registries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["registry"] == registry)
        .unwrap_or_else(|| panic!("{registry} missing from {status:#}"))
}

// ---- status ----

#[test]
fn status_json_carries_the_tables_fields() {
    let (sandbox, sts) = setup();
    let subject = sandbox.logged_in(REGISTRY, &sts);
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    sandbox.store("ghcr.io", "bob", "plain-password").quiet_success();
    let out = sandbox.cmd(&["status", "--json"]).run().quiet_success();
    assert_no_secret(&out, &[&subject, &secret, "plain-password"]);
    let status = out.json();
    assert!(status["now"].as_i64().is_some());
    assert_eq!(status["config_error"], Value::Null);

    let exchange = status_entry(&status, REGISTRY);
    assert_eq!(exchange["kind"], "exchange");
    assert_eq!(exchange["stored"], true);
    assert_eq!(exchange["username"], "alice");
    assert_eq!(exchange["subject_source"], "keyring");
    assert_eq!(exchange["token_endpoint"], sts.url());
    assert_eq!(exchange["last_failure"], Value::Null);
    let login_token = &exchange["login_token"];
    assert_eq!(login_token["state"], "valid");
    assert_eq!(login_token["fingerprint"], fingerprint(subject.as_bytes()));
    let left = login_token["remaining_seconds"].as_i64().unwrap();
    assert!((3500..=3600).contains(&left), "{login_token}");
    let cached = exchange["cached_tokens"].as_array().unwrap();
    assert_eq!(cached.len(), 1, "{exchange:#}");
    assert_eq!(cached[0]["fingerprint"], fingerprint(secret.as_bytes()));
    assert_eq!(cached[0]["state"], "fresh");
    assert_eq!(cached[0]["request"], REGISTRY);
    let remaining = cached[0]["remaining_seconds"].as_i64().unwrap();
    assert_eq!(cached[0]["expires_at"].as_i64().unwrap() - status["now"].as_i64().unwrap(), remaining);

    let plain = status_entry(&status, "ghcr.io");
    assert_eq!(plain["kind"], "plain");
    assert_eq!(plain["username"], "bob");
    assert_eq!(plain["login_token"], Value::Null);
}

#[test]
fn the_status_table_has_a_username_column_and_says_where_the_login_token_is() {
    let (sandbox, sts) = setup();
    let subject = sandbox.logged_in(REGISTRY, &sts);
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    // Through a pipe no cell is cut (fitting a terminal is its own test).
    let out = sandbox.cmd(&["status"]).run().quiet_success();
    assert_no_secret(&out, &[&subject, &secret]);
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    for column in ["REGISTRY", "KIND", "USERNAME", "LOGIN TOKEN", "CACHED TOKEN"] {
        assert!(header.contains(column), "{out:?}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with(REGISTRY) && row.contains("exchange") && row.contains("alice"), "{out:?}");
    // The sandbox keeps secrets in the file store, so that is where it is.
    // The state first ("valid 59m 59s" or "valid 1h 0m", by the second).
    assert!(row.contains("  valid ") && row.contains("(file store)"), "{out:?}");
    assert!(row.contains("left"), "{out:?}");
    let kind_at = header.find("KIND").unwrap();
    assert_eq!(row.find("exchange"), Some(kind_at), "columns do not line up: {out:?}");
}

/// A sandbox whose table is wider than 80 columns: a long registry key and
/// a long username, logged in, with a cached token.
fn a_wide_table() -> (Sandbox, Sts) {
    let (sandbox, sts) = setup();
    sandbox.write_config(&json!({"registries": {
        LONG_KEY: {"token_endpoint": sts.url()},
        REGISTRY: {"token_endpoint": sts.url(), "username": LONG_USER,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"},
    }}));
    sandbox.logged_in(REGISTRY, &sts);
    sandbox.get(REGISTRY).quiet_success();
    (sandbox, sts)
}

const LONG_KEY: &str = "a-rather-long-registry-hostname.internal.example.com:5000/team/application";
const LONG_USER: &str = "a-service-account-with-a-long-name";

#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_the_status_table_fits_its_width() {
    let (sandbox, _sts) = a_wide_table();
    let (mut command, _) = sandbox.cmd(&["status"]).into_command();
    command.env("TERM", "dumb");
    let mut terminal = support::pty::Pty::spawn_with_width(command, 80);
    assert_eq!(terminal.wait(std::time::Duration::from_secs(20)), Some(0), "{}", terminal.screen());
    let screen = terminal.screen();
    let table: Vec<&str> = screen.lines().take_while(|l| !l.trim().is_empty()).collect();
    assert!(table.len() >= 3, "{screen}");
    for line in &table {
        let line = line.trim_end_matches('\r');
        assert!(line.chars().count() <= 80, "{} columns: {line:?}\n{screen}", line.chars().count());
    }
    assert!(screen.contains('…'), "a table this wide is cut to fit: {screen}");
}

#[test]
fn in_a_pipe_the_status_table_keeps_every_cell_whole() {
    let (sandbox, _sts) = a_wide_table();
    // COLUMNS is a shell's variable for its terminal; a pipe has no width.
    let out = sandbox.cmd(&["status"]).env("COLUMNS", "80").run().quiet_success();
    assert!(!out.stdout.contains('…'), "a cell was cut: {out:?}");
    assert!(out.stdout.contains(LONG_KEY) && out.stdout.contains(LONG_USER), "{out:?}");
    assert!(out.stdout.contains("(file store)"), "{out:?}");
}

#[test]
fn status_names_the_config_file_it_read_and_where_that_came_from() {
    let (mut sandbox, sts) = setup();
    let out = sandbox.cmd(&["status"]).run().quiet_success();
    let named =
        format!("config: {} (from $DOCKER_CREDENTIAL_EXCHANGE_CONFIG)", sandbox.config_path().display());
    assert!(out.stdout.contains(&named), "{out:?}");

    let other = sandbox.root().join("other.json");
    std::fs::write(
        &other,
        json!({"registries": {"other.example": {"token_endpoint": sts.url()}}}).to_string(),
    )
    .unwrap();
    let out = sandbox.cmd(&["--config", other.to_str().unwrap(), "status"]).run().quiet_success();
    assert!(out.stdout.contains(&format!("config: {} (from --config)", other.display())), "{out:?}");

    // Without either, the platform's own place, named even when it does
    // not exist: a config written elsewhere is silently not read.
    sandbox.remove_env("DOCKER_CREDENTIAL_EXCHANGE_CONFIG");
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    assert_eq!(status["config_source"], "default");
    assert_eq!(status["config_file"], Value::Null);
    #[cfg(target_os = "linux")]
    {
        let default = sandbox.home().join(".config/docker-credential-exchange/config.json");
        assert_eq!(status["config_path"], default.display().to_string());
        let out = sandbox.cmd(&["status"]).run().quiet_success();
        let named = format!("{} (the default on Linux; it does not exist)", default.display());
        assert!(out.stdout.contains(&named), "{out:?}");
    }
}

#[test]
fn the_last_failure_of_a_get_is_shown_until_a_get_succeeds() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    sandbox.cmd(&["cache", "clear"]).run().success();
    sts.set_fault(Fault::InvalidGrant);
    sandbox.get(REGISTRY).failure();

    let table = sandbox.cmd(&["status"]).run().quiet_success();
    assert!(
        table.stdout.contains("the last get failed") && table.stdout.contains("invalid_grant"),
        "{table:?}"
    );
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    let failure = &status_entry(&status, REGISTRY)["last_failure"];
    assert!(failure["message"].as_str().unwrap().contains("invalid_grant"), "{failure}");
    assert!(failure["at_rfc3339"].as_str().unwrap().ends_with('Z'));

    sts.set_fault(Fault::None);
    // Once the seconds in which the failure is answered from memory are over.
    let later =
        sandbox.cmd(&["get"]).stdin(REGISTRY).env("DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET", "16");
    later.run().quiet_success();
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    assert_eq!(status_entry(&status, REGISTRY)["last_failure"], Value::Null);
}

#[test]
fn a_failure_for_a_registry_neither_configured_nor_stored_gets_its_own_row() {
    let mut sandbox = Sandbox::new();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_STORE", "vault");
    sandbox.get("ghcr.io").failure();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_STORE", "file");
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    let row = status_entry(&status, "ghcr.io");
    assert_eq!(row["kind"], "unknown");
    assert!(row["last_failure"]["message"].as_str().unwrap().contains("vault"), "{row}");
}

#[test]
fn status_reads_env_subjects_but_never_runs_commands() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    let marker = sandbox.root().join("ran");
    sandbox.write_config(&json!({"registries": {
        "env.example": {"token_endpoint": sts.url(), "subject_token": {"source": "env", "var": "CI_TOKEN"}},
        "cmd.example": {"token_endpoint": sts.url(), "subject_token": {"source": "command",
            "argv": ["sh", "-c", format!("touch {}; echo tok", marker.display())]}},
    }}));
    sandbox.set_env("CI_TOKEN", &sts.mint_subject_token("ci", -30));
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    assert_eq!(status_entry(&status, "env.example")["login_token"]["state"], "expired");
    assert_eq!(status_entry(&status, "env.example")["subject_source"], "env:CI_TOKEN");
    assert_eq!(status_entry(&status, "cmd.example")["login_token"]["state"], "not-checked");
    assert!(!marker.exists(), "status ran the subject command");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn status_with_nothing_configured_says_so() {
    let sandbox = Sandbox::new();
    let out = sandbox.cmd(&["status"]).run().quiet_success();
    assert!(out.stdout.starts_with("no registries"), "{out:?}");
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    assert_eq!(status["registries"], json!([]));
}

#[test]
fn status_with_a_bad_config_names_the_file_and_line_and_still_shows_plain_credentials() {
    let sandbox = Sandbox::new();
    sandbox.store("ghcr.io", "bob", "pw").quiet_success();
    std::fs::write(
        sandbox.config_path(),
        "{\n  \"registries\": {\n    \"r\": {\"token_endpoint\": 5}\n  },\n}",
    )
    .unwrap();
    let out = sandbox.cmd(&["status"]).run().quiet_success();
    assert!(out.stdout.contains(&sandbox.config_path().display().to_string()), "{out:?}");
    assert!(out.stdout.contains("line 4"), "the trailing comma is on line 4: {out:?}");
    assert!(out.stdout.contains("ghcr.io") && out.stdout.contains("bob"), "{out:?}");
}

#[test]
fn an_invalid_entry_is_shown_on_its_row_with_the_field() {
    let (sandbox, sts) = setup();
    sandbox.write_config(&json!({"registries": {
        REGISTRY: {"token_endpoint": sts.url()},
        "bad.example": {"token_endpoint": sts.url(), "safety_margin_seconds": "60"},
    }}));
    let status = sandbox.cmd(&["status", "--json"]).run().quiet_success().json();
    let error = status_entry(&status, "bad.example")["entry_error"].as_str().unwrap().to_owned();
    assert!(error.contains("safety_margin_seconds") && error.contains("whole number of seconds"), "{error}");
    assert_eq!(status_entry(&status, REGISTRY)["entry_error"], Value::Null);
}

// ---- token ----

#[test]
fn token_shows_origin_expiry_and_fingerprint_but_not_the_secret() {
    let (sandbox, sts) = setup();
    let subject = sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["token", REGISTRY]).run().quiet_success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    assert_no_secret(&out, &[&secret, &subject]);
    assert!(out.stdout.contains("username:    alice"), "{out:?}");
    assert!(out.stdout.contains("origin:      cache"), "{out:?}");
    assert!(out.stdout.contains(&format!("fingerprint: {}", fingerprint(secret.as_bytes()))), "{out:?}");
    assert!(out.stdout.contains("expires:") && out.stdout.contains("Z (in "), "{out:?}");
}

#[test]
fn token_refresh_exchanges_anew() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().quiet_success();
    assert!(out.stdout.contains("origin:      exchange"), "{out:?}");
    assert_eq!(sts.requests(), 2);
}

#[test]
fn token_decode_shows_header_and_claims_but_not_the_secret() {
    let (sandbox, sts) = setup();
    let subject = sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--decode"]).run().quiet_success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    assert_no_secret(&out, &[&secret, &subject]);
    assert!(out.stdout.contains("header:") && out.stdout.contains("\"alg\": \"ES256\""), "{out:?}");
    assert!(out.stdout.contains("claims") && out.stdout.contains("\"iss\": \"local-sts\""), "{out:?}");
}

#[test]
fn token_show_secret_prints_the_secret() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--show-secret"]).run().quiet_success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    assert!(out.stdout.contains(&format!("secret:      {secret}\n")), "{out:?}");
}

#[test]
fn token_raw_prints_the_bare_token_for_scripts() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--raw"]).run().quiet_success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    assert_eq!(out.stdout, format!("{secret}\n"));
}

#[test]
fn token_json_describes_the_answer_without_the_secret_unless_asked() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    let out =
        sandbox.cmd(&["token", "registry.example.com/team/app", "--json", "--decode"]).run().quiet_success();
    let report = out.json();
    assert_eq!(report["request"], "registry.example.com/team/app");
    assert_eq!(report["entry"], REGISTRY);
    assert_eq!(report["origin"], "exchange");
    assert_eq!(report["username"], "alice");
    assert_eq!(report["token"], Value::Null);
    assert_eq!(report["claims"]["sub"], "alice");
    assert!(report["expires_at"].as_i64().unwrap() > report["refresh_at"].as_i64().unwrap());
}

#[test]
fn token_for_an_unknown_registry_is_a_one_line_not_found_with_a_hint() {
    let (sandbox, _sts) = setup();
    let out = sandbox.cmd(&["token", "unknown.example"]).run().failure();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("credentials not found in native keychain"), "{out:?}");
    assert!(out.stderr.contains("neither configured for exchange"), "{out:?}");
}

#[test]
fn token_for_an_exchange_registry_without_login_says_to_log_in() {
    let (sandbox, sts) = setup();
    let out = sandbox.cmd(&["token", REGISTRY]).run().failure();
    assert!(out.stderr.contains(&format!("docker-credential-exchange login {REGISTRY}")), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn token_for_a_plain_registry_shows_the_stored_credential() {
    let sandbox = Sandbox::new();
    sandbox.store("ghcr.io", "bob", "plain-password").quiet_success();
    let out = sandbox.cmd(&["token", "ghcr.io", "--decode"]).run().quiet_success();
    assert_no_secret(&out, &["plain-password"]);
    assert!(out.stdout.contains("origin:      stored"), "{out:?}");
    assert!(out.stdout.contains("not a JWT"), "{out:?}");
}
