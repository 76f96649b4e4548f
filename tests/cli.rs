//! The subcommands people run by hand (DESIGN.md sections 5 and 6), through
//! the real binary in a sandbox: `login`/`logout`, `status`, `token`,
//! `configure-docker`, `doctor`, the log file, and `install/install.sh`.

mod support;

use std::path::{Path, PathBuf};

use docker_credential_exchange::secret::fingerprint;
use serde_json::{Value, json};
use support::cmd::{Output, Sandbox};
use support::sts::{Fault, Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";

/// A sandbox with one exchange registry (keyring source, i.e. the file
/// store here) talking to a local STS.
fn setup() -> (Sandbox, Sts) {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    write_exchange_config(&sandbox, &sts, json!({}));
    (sandbox, sts)
}

fn write_exchange_config(sandbox: &Sandbox, sts: &Sts, extra: Value) {
    sandbox.write_exchange_config(REGISTRY, &sts.url(), extra);
}

fn login(sandbox: &Sandbox, token: &str) -> Output {
    sandbox.cmd(&["login", REGISTRY, "--username", "alice", "--token-stdin"]).stdin(token).run()
}

/// Logs in and returns the login token.
fn logged_in(sandbox: &Sandbox, sts: &Sts) -> String {
    let subject = sts.mint_subject_token("alice", 3600);
    login(sandbox, &subject).success();
    subject
}

fn assert_no_secret(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(!out.stdout.contains(s) && !out.stderr.contains(s), "a secret leaked: {out:?}");
    }
}

// ---- login and logout ----

#[test]
fn login_verifies_the_token_with_one_exchange() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let out = login(&sandbox, &subject).success();
    assert!(out.stderr.contains("logged in to registry.example.com"), "{out:?}");
    assert_no_secret(&out, &[&subject]);
    assert_eq!(sts.requests(), 1);
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
    // The verifying exchange filled the cache.
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1);
}

#[test]
fn login_that_fails_verification_keeps_the_previous_token() {
    let (sandbox, sts) = setup();
    let old = logged_in(&sandbox, &sts);
    sts.set_fault(Fault::InvalidGrant);
    let new = sts.mint_subject_token("mallory", 3600);
    let out = login(&sandbox, &new).failure();
    assert!(out.stderr.contains("was not stored"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_no_secret(&out, &[&new, &old]);
    sts.set_fault(Fault::None);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(old.as_str()));
}

#[test]
fn login_no_verify_stores_without_an_exchange() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    sandbox.cmd(&["login", REGISTRY, "--token-stdin", "--no-verify"]).stdin(&subject).run().success();
    assert_eq!(sts.requests(), 0);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn login_reads_the_token_from_a_file() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let file = sandbox.root().join("token");
    std::fs::write(&file, format!("{subject}\n")).unwrap();
    sandbox.cmd(&["login", REGISTRY, "--token-file", file.to_str().unwrap()]).run().success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn login_refuses_a_token_given_as_an_argument() {
    let (sandbox, sts) = setup();
    let out = sandbox.cmd(&["login", REGISTRY, "argument-token-value"]).run().failure();
    assert!(out.stderr.contains("--token-stdin") && out.stderr.contains("--token-file"), "{out:?}");
    assert_no_secret(&out, &["argument-token-value"]);
    assert_eq!(sts.requests(), 0);
    assert_eq!(sandbox.list().success().stdout.trim(), format!(r#"{{"{REGISTRY}":"oauth2accesstoken"}}"#));
    assert!(!sandbox.data_dir().join("credentials.json").exists());
}

#[test]
fn login_with_an_empty_token_is_refused() {
    let (sandbox, _sts) = setup();
    let out = login(&sandbox, "  \n").failure();
    assert!(out.stderr.contains("no login token"), "{out:?}");
}

#[test]
fn logout_removes_the_login_token_and_cached_tokens() {
    let (sandbox, sts) = setup();
    logged_in(&sandbox, &sts);
    sandbox.cmd(&["logout", REGISTRY]).run().success();
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
    assert_eq!(sts.requests(), 1, "logout must leave nothing to serve from the cache");
}

// ---- status ----

/// The registry's object in `status --json`.
fn status_entry<'a>(status: &'a Value, registry: &str) -> &'a Value {
    status["registries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["registry"] == registry)
        .unwrap_or_else(|| panic!("{registry} missing from {status:#}"))
}

#[test]
fn status_json_carries_the_tables_fields() {
    let (sandbox, sts) = setup();
    let subject = logged_in(&sandbox, &sts);
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    sandbox.store("ghcr.io", "bob", "plain-password").quiet_success();
    let out = sandbox.cmd(&["status", "--json"]).run().quiet_success();
    assert_no_secret(&out, &[&subject, &secret, "plain-password"]);
    let status = out.json();
    assert!(status["now"].as_i64().is_some());

    let exchange = status_entry(&status, REGISTRY);
    assert_eq!(exchange["kind"], "exchange");
    assert_eq!(exchange["stored"], true);
    assert_eq!(exchange["username"], "alice");
    assert_eq!(exchange["subject_source"], "keyring");
    assert_eq!(exchange["token_endpoint"], sts.url());
    let login_token = &exchange["login_token"];
    assert_eq!(login_token["state"], "valid");
    assert_eq!(login_token["fingerprint"], fingerprint(subject.as_bytes()));
    let left = login_token["remaining_seconds"].as_i64().unwrap();
    assert!((3500..=3600).contains(&left), "{login_token}");
    assert!(login_token["expires_at_rfc3339"].as_str().unwrap().ends_with('Z'));
    let cached = exchange["cached_tokens"].as_array().unwrap();
    assert_eq!(cached.len(), 1, "{exchange:#}");
    assert_eq!(cached[0]["fingerprint"], fingerprint(secret.as_bytes()));
    assert_eq!(cached[0]["state"], "fresh");
    assert_eq!(cached[0]["request"], REGISTRY);
    let remaining = cached[0]["remaining_seconds"].as_i64().unwrap();
    assert!((3500..=3600).contains(&remaining), "{cached:?}");
    assert!(cached[0]["remaining"].as_str().unwrap().contains('m'), "{cached:?}");
    assert_eq!(cached[0]["expires_at"].as_i64().unwrap() - status["now"].as_i64().unwrap(), remaining);

    let plain = status_entry(&status, "ghcr.io");
    assert_eq!(plain["kind"], "plain");
    assert_eq!(plain["username"], "bob");
    assert_eq!(plain["login_token"], Value::Null);
}

#[test]
fn status_table_shows_life_left_and_fingerprints_but_no_secrets() {
    let (sandbox, sts) = setup();
    let subject = logged_in(&sandbox, &sts);
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    let out = sandbox.cmd(&["status"]).run().quiet_success();
    assert_no_secret(&out, &[&subject, &secret]);
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    for column in ["REGISTRY", "KIND", "SUBJECT", "LOGIN TOKEN", "CACHED TOKEN"] {
        assert!(header.contains(column), "{out:?}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with(REGISTRY) && row.contains("exchange") && row.contains("keyring"), "{out:?}");
    assert!(row.contains(&fingerprint(secret.as_bytes())), "{out:?}");
    assert!(row.contains("left"), "{out:?}");
    // Columns line up: every row's second column starts where KIND does.
    let kind_at = header.find("KIND").unwrap();
    assert_eq!(row.find("exchange"), Some(kind_at), "{out:?}");
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
fn status_with_a_bad_config_names_the_file_and_line() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.config_path(),
        "{\n  \"registries\": {\n    \"r\": {\"token_endpoint\": 5}\n  }\n}",
    )
    .unwrap();
    let out = sandbox.cmd(&["status"]).run().failure();
    assert!(out.stderr.contains(&sandbox.config_path().display().to_string()), "{out:?}");
    assert!(out.stderr.contains("line 3"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

// ---- token ----

#[test]
fn token_shows_origin_expiry_and_fingerprint_but_not_the_secret() {
    let (sandbox, sts) = setup();
    let subject = logged_in(&sandbox, &sts);
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
    logged_in(&sandbox, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--refresh"]).run().quiet_success();
    assert!(out.stdout.contains("origin:      exchange"), "{out:?}");
    assert_eq!(sts.requests(), 2);
}

#[test]
fn token_decode_shows_header_and_claims_but_not_the_secret() {
    let (sandbox, sts) = setup();
    let subject = logged_in(&sandbox, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--decode"]).run().quiet_success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    assert_no_secret(&out, &[&secret, &subject]);
    assert!(out.stdout.contains("header:") && out.stdout.contains("\"alg\": \"ES256\""), "{out:?}");
    assert!(out.stdout.contains("claims") && out.stdout.contains("\"iss\": \"local-sts\""), "{out:?}");
    let exp_line = out.stdout.lines().find(|l| l.trim_start().starts_with("exp: ")).expect("exp line");
    assert!(exp_line.contains("Z (in "), "{out:?}");
}

#[test]
fn token_show_secret_prints_the_secret() {
    let (sandbox, sts) = setup();
    logged_in(&sandbox, &sts);
    let out = sandbox.cmd(&["token", REGISTRY, "--show-secret"]).run().quiet_success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    assert!(out.stdout.contains(&format!("secret:      {secret}\n")), "{out:?}");
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

// ---- configure-docker ----

/// Points DOCKER_CONFIG into the sandbox; returns config.json's path.
fn docker_config(sandbox: &mut Sandbox) -> PathBuf {
    let dir = sandbox.root().join("docker");
    sandbox.set_env("DOCKER_CONFIG", dir.to_str().unwrap());
    dir.join("config.json")
}

fn backup_of(path: &Path) -> PathBuf {
    path.with_file_name("config.json.bak")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn configure_docker_creates_a_missing_file_and_directory() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"registry.example.com\": \"exchange\"\n\t}\n}\n"
    );
    assert!(!backup_of(&path).exists(), "nothing to back up");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn configure_docker_fills_an_empty_object_and_backs_it_up() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "{}").unwrap();
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"registry.example.com\": \"exchange\"\n\t}\n}"
    );
    assert_eq!(std::fs::read_to_string(backup_of(&path)).unwrap(), "{}");
}

/// A file as Docker writes it, with everything a real one holds.
const FULL_DOCKER_CONFIG: &str = "{\n\t\"auths\": {\n\t\t\"https://index.docker.io/v1/\": {},\n\t\t\"ghcr.io\": {\n\t\t\t\"auth\": \"Ym9iOnBhc3M=\"\n\t\t}\n\t},\n\t\"psFormat\": \"table {{.ID}}\\t{{.Names}}\",\n\t\"credsStore\": \"desktop\",\n\t\"x-unknown\": {\"nested\": [1, 2.50, \"\\u00e9\"],   \"kept\": true},\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"proxies\": {\n\t\t\"default\": {\n\t\t\t\"httpProxy\": \"http://proxy:3128\"\n\t\t}\n\t}\n}\n";

#[test]
fn configure_docker_keeps_every_other_key_byte_for_byte_and_in_order() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, FULL_DOCKER_CONFIG).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    let expected = FULL_DOCKER_CONFIG.replace(
        "\t\t\"gcr.io\": \"gcloud\"\n",
        "\t\t\"gcr.io\": \"gcloud\",\n\t\t\"registry.example.com\": \"exchange\"\n",
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(std::fs::read_to_string(backup_of(&path)).unwrap(), FULL_DOCKER_CONFIG);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o640, "the file's mode is kept");
}

#[test]
fn configure_docker_store_sets_creds_store_in_place() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, FULL_DOCKER_CONFIG).unwrap();
    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();
    assert!(out.stdout.contains("was \"desktop\""), "{out:?}");
    let expected = FULL_DOCKER_CONFIG.replace("\"credsStore\": \"desktop\"", "\"credsStore\": \"exchange\"");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
}

#[test]
fn configure_docker_refuses_invalid_json_and_leaves_the_file_alone() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let broken = "{\n\t\"auths\": {\n\t\t\"ghcr.io\": {\"auth\": \"x\"}\n\t,\n}";
    std::fs::write(&path, broken).unwrap();
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().failure();
    assert!(out.stderr.contains("not a valid JSON object") && out.stderr.contains("line "), "{out:?}");
    assert!(out.stderr.contains("was not changed"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(!backup_of(&path).exists());
}

#[test]
fn configure_docker_refuses_cred_helpers_that_is_not_an_object() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, r#"{"credHelpers": ["gcr.io"]}"#).unwrap();
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().failure();
    assert!(out.stderr.contains("\"credHelpers\" is not a JSON object"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"credHelpers": ["gcr.io"]}"#);
    assert!(!backup_of(&path).exists());
}

#[test]
fn configure_docker_twice_changes_nothing_the_second_time() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, FULL_DOCKER_CONFIG).unwrap();
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    let after_first = std::fs::read(&path).unwrap();
    std::fs::remove_file(backup_of(&path)).unwrap();
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert!(out.stdout.contains("already configured"), "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), after_first);
    assert!(!backup_of(&path).exists(), "no new backup when nothing changed");
}

#[test]
fn configure_docker_without_arguments_adds_every_exchange_registry_host() {
    let (mut sandbox, sts) = setup();
    sandbox.write_config(&json!({"registries": {
        "registry.example.com/team/app": {"token_endpoint": sts.url()},
        "other.example:5000": {"token_endpoint": sts.url()},
        "registry.example.com": {"token_endpoint": sts.url()},
    }}));
    let path = docker_config(&mut sandbox);
    sandbox.cmd(&["configure-docker"]).run().success();
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        doc,
        json!({"credHelpers": {"other.example:5000": "exchange", "registry.example.com": "exchange"}})
    );
}

#[test]
fn configure_docker_without_arguments_or_exchange_registries_fails() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    let out = sandbox.cmd(&["configure-docker"]).run().failure();
    assert!(out.stderr.contains("--store"), "{out:?}");
    assert!(!path.exists());
}

#[test]
fn configure_docker_names_registries_as_docker_looks_them_up() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    sandbox
        .cmd(&["configure-docker", "https://Registry.Example.com:5000/team/app", "docker.io"])
        .run()
        .success();
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["credHelpers"],
        json!({
            "registry.example.com:5000": "exchange",
            "https://index.docker.io/v1/": "exchange",
            "docker.io": "exchange",
        })
    );
}

#[test]
fn configure_docker_replaces_another_helper_for_the_registry() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, r#"{"credHelpers": {"registry.example.com": "ecr-login"}}"#).unwrap();
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert!(out.stdout.contains("replaced \"ecr-login\""), "{out:?}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["credHelpers"][REGISTRY], "exchange");
}

// ---- doctor ----

/// A sandbox in which everything is right: the STS answers, the binary is
/// on PATH, Docker's config sends the registry to the helper.
fn healthy() -> (Sandbox, Sts) {
    let (mut sandbox, sts) = setup();
    let bin_dir = support::cmd::bin().parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), sandbox.env()["PATH"]);
    sandbox.set_env("PATH", &path);
    docker_config(&mut sandbox);
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    (sandbox, sts)
}

fn line_with<'a>(out: &'a Output, needle: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}: {out:?}"))
}

#[test]
fn doctor_passes_on_a_healthy_setup() {
    let (sandbox, sts) = healthy();
    let out = sandbox.cmd(&["doctor"]).run().success();
    for check in ["config:", "store:", "cache:", "is reachable", "clock:", "PATH:", "docker:", "shadowing:"] {
        assert!(line_with(&out, check).starts_with('✓'), "{check}: {out:?}");
    }
    assert!(!out.stdout.contains('✗'), "{out:?}");
    assert_eq!(sts.requests_to("/token"), 1, "one probe of the endpoint");
}

#[test]
fn doctor_fails_on_an_unreachable_endpoint() {
    let (sandbox, _sts) = healthy();
    sandbox.write_config(&json!({"registries": {REGISTRY: {"token_endpoint": "http://127.0.0.1:9/token"}}}));
    let out = sandbox.cmd(&["doctor"]).run().failure();
    let line = line_with(&out, "http://127.0.0.1:9/token");
    assert!(line.starts_with('✗') && line.contains("not reachable"), "{out:?}");
}

#[test]
fn doctor_fails_on_a_bad_config() {
    let (sandbox, _sts) = healthy();
    std::fs::write(sandbox.config_path(), "{ not json").unwrap();
    let out = sandbox.cmd(&["doctor"]).run().failure();
    assert!(line_with(&out, "config:").starts_with("✗"), "{out:?}");
}

#[test]
fn doctor_names_a_stored_auth_in_dockers_config_that_shadows_the_helper() {
    let (mut sandbox, _sts) = healthy();
    let path = docker_config(&mut sandbox);
    std::fs::write(
        &path,
        r#"{"auths": {"https://registry.example.com": {"auth": "YWxpY2U6b2xk"}, "quay.io": {"auth": "eDp5"}},
            "credHelpers": {"registry.example.com": "exchange"}}"#,
    )
    .unwrap();
    let out = sandbox.cmd(&["doctor"]).run().failure();
    let line = line_with(&out, "shadowed:");
    assert!(line.starts_with('✗'), "{out:?}");
    assert!(line.contains(&path.display().to_string()), "{out:?}");
    assert!(line.contains(r#"auths."https://registry.example.com""#), "{out:?}");
    assert!(out.stdout.contains("docker logout https://registry.example.com"), "{out:?}");
    assert!(!out.stdout.contains("quay.io"), "only registries this helper serves: {out:?}");
    assert!(!out.stdout.contains("YWxpY2U6b2xk"), "{out:?}");
}

#[test]
fn doctor_names_a_shadowing_entry_in_containers_auth_json() {
    let (mut sandbox, _sts) = healthy();
    let auth_file = sandbox.root().join("auth.json");
    std::fs::write(&auth_file, r#"{"auths": {"registry.example.com/team": {"auth": "YWxpY2U6b2xk"}}}"#)
        .unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap());
    let out = sandbox.cmd(&["doctor"]).run().failure();
    let line = line_with(&out, "shadowed:");
    assert!(line.contains(&auth_file.display().to_string()), "{out:?}");
    assert!(line.contains(r#"auths."registry.example.com/team""#), "{out:?}");
    assert!(out.stdout.contains("podman logout registry.example.com/team"), "{out:?}");
}

#[test]
fn doctor_says_when_docker_sends_the_registry_to_another_helper() {
    let (mut sandbox, _sts) = healthy();
    let path = docker_config(&mut sandbox);
    std::fs::write(&path, r#"{"credHelpers": {"registry.example.com": "ecr-login"}}"#).unwrap();
    let out = sandbox.cmd(&["doctor"]).run().failure();
    let line = line_with(&out, "docker-credential-ecr-login");
    assert!(line.starts_with('✗'), "{out:?}");
    assert!(out.stdout.contains("configure-docker registry.example.com"), "{out:?}");
}

#[test]
fn doctor_fails_when_the_binary_is_not_on_path() {
    let (mut sandbox, _sts) = healthy();
    let empty = sandbox.root().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    sandbox.set_env("PATH", empty.to_str().unwrap());
    let out = sandbox.cmd(&["doctor"]).run().failure();
    assert!(line_with(&out, "PATH:").starts_with('✗'), "{out:?}");
}

#[cfg(unix)]
#[test]
fn doctor_warns_about_a_cache_directory_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let (sandbox, _sts) = healthy();
    std::fs::create_dir_all(sandbox.cache_dir()).unwrap();
    std::fs::set_permissions(sandbox.cache_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sandbox.cmd(&["doctor"]).run().success();
    let line = line_with(&out, "cache:");
    assert!(line.starts_with('!') && line.contains("755"), "{out:?}");
}

#[test]
fn doctor_warns_when_the_endpoints_clock_disagrees() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let date = tiny_http::Header::from_bytes("Date", "Thu, 01 Jan 2015 00:00:00 GMT").unwrap();
            let _ = request
                .respond(tiny_http::Response::from_string("no").with_status_code(405).with_header(date));
        }
    });
    let (sandbox, _sts) = healthy();
    let endpoint = format!("http://127.0.0.1:{port}/token");
    sandbox.write_config(&json!({"registries": {REGISTRY: {"token_endpoint": endpoint}}}));
    let out = sandbox.cmd(&["doctor"]).run().success();
    assert!(line_with(&out, "is reachable (HTTP 405)").starts_with('✓'), "{out:?}");
    let clock = line_with(&out, "clock:");
    assert!(clock.starts_with('!') && clock.contains("ahead of"), "{out:?}");
}

// ---- logging ----

fn is_timestamped(line: &str) -> bool {
    // 2026-11-25T09:00:00Z [1234] debug: …
    let b = line.as_bytes();
    b.len() > 22
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && line[20..].starts_with(" [")
}

#[test]
fn log_file_gets_timestamped_lines() {
    let (mut sandbox, sts) = setup();
    let log = sandbox.root().join("helper.log");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log.to_str().unwrap());
    logged_in(&sandbox, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() >= 2, "{text}");
    for line in text.lines() {
        assert!(is_timestamped(line), "not timestamped: {line:?}");
    }
}

#[test]
fn log_file_and_verbose_stderr_show_tokens_only_as_fingerprints() {
    let (mut sandbox, sts) = setup();
    let log = sandbox.root().join("helper.log");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log.to_str().unwrap());
    let subject = logged_in(&sandbox, &sts);
    let verbose = sandbox.cmd(&["-v", "token", REGISTRY, "--refresh", "--decode"]).run().success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    sts.set_fault(Fault::InvalidGrant);
    sandbox.cmd(&["-v", "token", REGISTRY, "--refresh"]).run();
    let text = std::fs::read_to_string(&log).unwrap();
    for token in [&subject, &secret] {
        assert!(!text.contains(token.as_str()), "a token in the log file:\n{text}");
        assert!(!verbose.stderr.contains(token.as_str()), "a token on stderr: {verbose:?}");
    }
    assert!(text.contains(&fingerprint(secret.as_bytes())), "the fingerprint is what identifies it:\n{text}");
}

// ---- help ----

#[test]
fn every_subcommand_help_shows_an_example() {
    let sandbox = Sandbox::new();
    for sub in ["login", "logout", "status", "token", "cache", "configure-docker", "doctor"] {
        let out = sandbox.cmd(&[sub, "--help"]).run().success();
        assert!(out.stdout.contains("Example:"), "{sub}: {out:?}");
    }
}

// ---- install ----

/// Slow: a release build. It reuses the target directory the tests were
/// built in, so only this crate is compiled.
#[test]
fn install_script_installs_a_working_binary_into_a_prefix() {
    let prefix = tempfile::Builder::new().prefix("dce-install-").tempdir().unwrap();
    let bin = support::cmd::bin();
    let target_dir = bin.parent().and_then(Path::parent).unwrap().to_owned();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install").join("install.sh");
    let out = std::process::Command::new("sh")
        .arg(&script)
        .arg("--prefix")
        .arg(prefix.path())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO", std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("credHelpers"), "it says how to configure Docker:\n{stdout}");
    let installed = prefix.path().join("bin").join("docker-credential-exchange");
    let version = std::process::Command::new(&installed).arg("version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("docker-credential-exchange ", env!("CARGO_PKG_VERSION"))
    );
}
