//! `configure-docker` (DESIGN.md section 5): Docker's config gets
//! `credHelpers` (or `credsStore`) for this helper and keeps every other
//! key byte for byte; each change keeps its own timestamped backup; a
//! stored `auth` that would shadow the helper is taken out (in Docker's
//! config and in containers' `auth.json`) without touching the helper's
//! login, and an ordinary registry's password is first moved into the
//! helper's store, never lost; `--remove` takes the helper out again;
//! switching `credsStore` away from a helper that holds credentials warns
//! first, and a change made to the file meanwhile is kept. (The files
//! themselves: cli_configure_docker_files.rs.)

mod support;

use serde_json::{Value, json};
use support::cmd::Sandbox;
#[cfg(unix)]
use support::docker_cfg::mode;
use support::docker_cfg::{
    HUNTER2, PLAIN, USER_HUNTER2, assert_no_secret, backups_of, docker_config, plain_sandbox, write,
};
use support::sts::{Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";

/// A file as Docker writes it, with everything a real one holds.
const FULL_DOCKER_CONFIG: &str = "{\n\t\"auths\": {\n\t\t\"https://index.docker.io/v1/\": {},\n\t\t\"ghcr.io\": {\n\t\t\t\"auth\": \"Ym9iOnBhc3M=\"\n\t\t}\n\t},\n\t\"psFormat\": \"table {{.ID}}\\t{{.Names}}\",\n\t\"credsStore\": \"desktop\",\n\t\"x-unknown\": {\"nested\": [1, 2.50, \"\\u00e9\"],   \"kept\": true},\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"proxies\": {\n\t\t\"default\": {\n\t\t\t\"httpProxy\": \"http://proxy:3128\"\n\t\t}\n\t}\n}\n";

#[test]
fn a_missing_file_and_directory_are_created_private() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"registry.example.com\": \"exchange\"\n\t}\n}\n"
    );
    assert!(backups_of(&path).is_empty(), "nothing to back up");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn every_other_key_is_kept_byte_for_byte_and_in_order_with_a_backup_and_the_mode() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, FULL_DOCKER_CONFIG);
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
    assert_eq!(std::fs::read_to_string(&backups_of(&path)[0]).unwrap(), FULL_DOCKER_CONFIG);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o640, "the file's mode is kept");
}

#[test]
fn each_change_keeps_its_own_backup_so_the_original_survives() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, r#"{"credsStore": "secretservice"}"#);
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    sandbox.cmd(&["configure-docker", "--store"]).run().success();
    let backups = backups_of(&path);
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(std::fs::read_to_string(&backups[0]).unwrap(), r#"{"credsStore": "secretservice"}"#);
}

#[test]
fn store_sets_creds_store_in_place_and_moves_every_stored_password_into_the_helper() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, FULL_DOCKER_CONFIG);
    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();
    assert!(out.stdout.contains("was \"desktop\""), "{out:?}");
    // Under credsStore Docker takes the helper's answer over the file's
    // `auths`, so ghcr.io's password (bob:pass) moves into the helper.
    let expected = FULL_DOCKER_CONFIG
        .replace("\"credsStore\": \"desktop\"", "\"credsStore\": \"exchange\"")
        .replace("{},\n\t\t\"ghcr.io\": {\n\t\t\t\"auth\": \"Ym9iOnBhc3M=\"\n\t\t}\n", "{}\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(sandbox.get("ghcr.io").quiet_success().secret(), "pass");
    assert!(
        out.stdout.contains("still holds the stored credentials"),
        "the backup's secret is not mentioned: {out:?}"
    );
}

// The other helper is a sh script.
#[cfg(unix)]
#[test]
fn switching_creds_store_away_from_a_helper_that_holds_credentials_warns() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, r#"{"credsStore": "fake"}"#);
    sandbox.add_script(
        "docker-credential-fake",
        "[ \"$1\" = list ] && echo '{\"a.example\":\"u\",\"b.example\":\"v\"}'\n",
    );

    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();

    assert!(
        out.stderr.contains(
            "docker-credential-fake holds credentials for 2 registries that docker-credential-exchange does not \
             (a.example, b.example)"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("import --from fake"), "{out:?}");
}

#[test]
fn remove_takes_the_helper_out_and_leaves_the_rest() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(
        &path,
        r#"{"credHelpers": {"a.example": "exchange", "gcr.io": "gcloud"}, "credsStore": "exchange", "x": 1}"#,
    );
    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().success();
    assert!(out.stdout.contains("removed credHelpers \"a.example\""), "{out:?}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc, json!({"credHelpers": {"gcr.io": "gcloud"}, "x": 1}));
    assert_eq!(backups_of(&path).len(), 1);
}

#[test]
fn a_shadowing_stored_auth_is_removed_and_the_helpers_login_kept() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    let login = sts.mint_subject_token("alice", 3600);
    sandbox.store(REGISTRY, "alice", &login).quiet_success();
    let path = docker_config(&mut sandbox);
    write(
        &path,
        r#"{"auths": {"https://registry.example.com": {"auth": "YWxpY2U6b2xk"}, "quay.io": {"auth": "eDp5"}}}"#,
    );
    let auth_file = sandbox.root().join("auth.json");
    std::fs::write(&auth_file, r#"{"auths": {"registry.example.com": {"auth": "YWxpY2U6b2xk"}}}"#).unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap());

    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().success();

    assert!(
        out.stdout.contains("removed the stored credential of auths \"https://registry.example.com\""),
        "{out:?}"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["auths"], json!({"quay.io": {"auth": "eDp5"}}));
    assert_eq!(doc["credHelpers"][REGISTRY], "exchange");
    let containers: Value = serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert_eq!(containers["auths"], Value::Null, "{containers}");
    assert_eq!(backups_of(&auth_file).len(), 1);
    assert!(std::fs::read_to_string(sandbox.data_dir().join("credentials.json")).unwrap().contains(&login));
}

#[test]
fn invalid_json_is_refused_and_the_file_left_alone() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    let broken = "{\n\t\"auths\": {\n\t\t\"ghcr.io\": {\"auth\": \"x\"}\n\t,\n}";
    write(&path, broken);
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().failure();
    assert!(out.stderr.contains("not a valid JSON object") && out.stderr.contains("line "), "{out:?}");
    assert!(out.stderr.contains("was not changed"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(backups_of(&path).is_empty());
}

#[test]
fn cred_helpers_that_is_not_an_object_is_refused() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, r#"{"credHelpers": ["gcr.io"]}"#);
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().failure();
    assert!(out.stderr.contains("\"credHelpers\" is not a JSON object"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"credHelpers": ["gcr.io"]}"#);
}

#[test]
fn a_second_identical_run_changes_nothing() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, FULL_DOCKER_CONFIG);
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    let after_first = std::fs::read(&path).unwrap();
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert!(out.stdout.contains("nothing changed"), "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), after_first);
    assert_eq!(backups_of(&path).len(), 1, "no new backup when nothing changed");
}

#[test]
fn without_arguments_every_exchange_registry_host_is_added() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
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
fn without_arguments_or_exchange_registries_it_fails() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    let out = sandbox.cmd(&["configure-docker"]).run().failure();
    assert!(out.stderr.contains("--store"), "{out:?}");
    assert!(!path.exists());
}

#[test]
fn registries_are_named_as_docker_looks_them_up() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    sandbox
        .cmd(&["configure-docker", "https://Registry.Example.com:5000/team/app", "docker.io"])
        .run()
        .success();
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
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
fn another_helper_for_the_registry_is_replaced() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, r#"{"credHelpers": {"registry.example.com": "ecr-login"}}"#);
    let out = sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    assert!(out.stdout.contains("replaced \"ecr-login\""), "{out:?}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["credHelpers"][REGISTRY], "exchange");
}

// ---------------------------------------------------------------------------
// An ordinary registry's stored password is moved, never lost

#[test]
fn a_plain_registrys_only_stored_password_is_moved_into_the_helper_before_it_is_removed() {
    let (sandbox, path) =
        plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#));

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().quiet_success();

    assert!(
        out.stdout.contains(
            "moved the stored credential of auths \"plain.example.com\" (user user) into docker-credential-exchange's store"
        ),
        "{out:?}"
    );
    assert_no_secret(&out);
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc, json!({"credHelpers": {PLAIN: "exchange"}}));
    let got = sandbox.get(PLAIN).quiet_success().json();
    assert_eq!((got["Username"].as_str(), got["Secret"].as_str()), (Some("user"), Some(HUNTER2)));
}

#[test]
fn a_plain_registrys_password_in_containers_auth_json_is_moved_too() {
    let (mut sandbox, _) = plain_sandbox("{}");
    let auth_file = sandbox.root().join("auth.json");
    std::fs::write(&auth_file, format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#))
        .unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap());

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().quiet_success();

    assert!(
        out.stdout.contains("auth.json: moved the stored credential of auths \"plain.example.com\""),
        "{out:?}"
    );
    let containers: Value = serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert_eq!(containers, json!({}));
    assert_eq!(sandbox.get(PLAIN).quiet_success().secret(), HUNTER2);
}

#[test]
fn a_credential_for_one_namespace_stays_in_the_file_as_no_helper_is_asked_for_it() {
    let (mut sandbox, _) = plain_sandbox("{}");
    let auth_file = sandbox.root().join("auth.json");
    let original = format!(
        r#"{{"auths": {{"{PLAIN}/team-a": {{"auth": "{USER_HUNTER2}"}}, "{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#
    );
    std::fs::write(&auth_file, &original).unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap());

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().success();

    // The host's own entry moves; the namespace's stays where podman finds it.
    let containers: Value = serde_json::from_slice(&std::fs::read(&auth_file).unwrap()).unwrap();
    assert_eq!(containers, json!({"auths": {"plain.example.com/team-a": {"auth": USER_HUNTER2}}}), "{out:?}");
    assert!(out.stderr.contains("credential for one namespace"), "{out:?}");
    assert_eq!(sandbox.get(PLAIN).quiet_success().secret(), HUNTER2);
    assert!(sandbox.list().success().json().get("plain.example.com/team-a").is_none());
    assert_no_secret(&out);
}

#[test]
fn the_store_a_moved_password_went_to_is_named() {
    let (sandbox, _) = plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#));
    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().quiet_success();
    // The sandbox uses the file store; Docker's environment may not.
    assert!(out.stdout.contains("docker-credential-exchange's store (file store"), "{out:?}");
}

#[test]
fn a_password_the_helper_already_holds_is_removed_without_storing_it_again() {
    let (sandbox, path) =
        plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#));
    sandbox.store(PLAIN, "user", HUNTER2).quiet_success();

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().quiet_success();

    assert!(
        out.stdout.contains("docker-credential-exchange's store already holds it (user user)"),
        "{out:?}"
    );
    assert!(!std::fs::read_to_string(&path).unwrap().contains(USER_HUNTER2));
}

#[test]
fn a_stored_password_that_differs_from_the_helpers_is_refused_and_nothing_changed() {
    let config = format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#);
    let (sandbox, path) = plain_sandbox(&config);
    sandbox.store(PLAIN, "user", "the-helpers-own-password").quiet_success();

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().failure();

    assert!(out.stderr.contains("holds a different credential for plain.example.com"), "{out:?}");
    assert!(out.stderr.contains("nothing was changed") && out.stderr.lines().count() == 1, "{out:?}");
    assert_no_secret(&out);
    assert!(!out.stderr.contains("the-helpers-own-password"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
    assert!(backups_of(&path).is_empty());
    assert_eq!(sandbox.get(PLAIN).quiet_success().secret(), "the-helpers-own-password");
}

#[test]
fn two_files_with_different_passwords_for_one_registry_are_refused_and_nothing_changed() {
    let config = format!(r#"{{"auths": {{"https://{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#);
    let (mut sandbox, path) = plain_sandbox(&config);
    let auth_file = sandbox.root().join("auth.json");
    // base64("user:other")
    let containers = format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "dXNlcjpvdGhlcg=="}}}}}}"#);
    std::fs::write(&auth_file, &containers).unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap());

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().failure();

    assert!(out.stderr.contains("hold different credentials for plain.example.com"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
    assert_eq!(std::fs::read_to_string(&auth_file).unwrap(), containers);
    sandbox.get(PLAIN).protocol_error("credentials not found in native keychain");
}

#[test]
fn a_stored_password_the_helpers_store_cannot_take_is_kept_and_nothing_changed() {
    let config = format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#);
    let (mut sandbox, path) = plain_sandbox(&config);
    // A file where the store's directory should be: the store cannot open.
    let blocked = sandbox.root().join("not-a-directory");
    std::fs::write(&blocked, "x").unwrap();
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR", blocked.to_str().unwrap());

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().failure();

    assert!(out.stderr.contains("docker-credential-exchange's store"), "{out:?}");
    assert!(out.stderr.contains("nothing was changed") && out.stderr.lines().count() == 1, "{out:?}");
    assert_no_secret(&out);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
    assert!(backups_of(&path).is_empty());
}

#[test]
fn a_stored_auth_that_is_not_user_and_password_is_refused_and_nothing_changed() {
    let config = format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "not base64!"}}}}}}"#);
    let (sandbox, path) = plain_sandbox(&config);

    let out = sandbox.cmd(&["configure-docker", PLAIN]).run().failure();

    assert!(out.stderr.contains("is not base64 of user:password"), "{out:?}");
    assert!(!out.stderr.contains("not base64!"), "the value is not echoed: {out:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
}

#[test]
fn an_entry_without_a_stored_secret_is_left_alone() {
    let (sandbox, path) = plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{}}}}}}"#));
    sandbox.cmd(&["configure-docker", PLAIN]).run().success();
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["auths"], json!({PLAIN: {}}));
    sandbox.get(PLAIN).protocol_error("credentials not found in native keychain");
}

// ---------------------------------------------------------------------------
// --store: the old helper first, the edit last

// The old helper is a sh script.
#[cfg(unix)]
#[test]
fn a_change_made_to_config_json_while_the_old_helper_is_asked_is_kept() {
    let mut sandbox = Sandbox::new();
    let path = docker_config(&mut sandbox);
    write(&path, "{\"credsStore\": \"desktop\"}\n");
    // While configure-docker waits for the old helper's `list`, another
    // program (`docker login`, Docker Desktop) rewrites config.json.
    sandbox.add_script(
        "docker-credential-desktop",
        &format!(
            "printf '{{\"credsStore\": \"desktop\", \"auths\": {{\"new.example.com\": {{}}}}}}\\n' > '{}'\n\
             echo '{{\"https://index.docker.io/v1/\":\"bob\"}}'\n",
            path.display()
        ),
    );

    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();

    assert!(out.stderr.contains("docker-credential-desktop holds credentials for 1 registry"), "{out:?}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc, json!({"credsStore": "exchange", "auths": {"new.example.com": {}}}));
}
