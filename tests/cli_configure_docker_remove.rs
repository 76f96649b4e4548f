//! `configure-docker --remove` undoes what `configure-docker` did (DESIGN.md
//! section 5): the `credsStore` and `credHelpers` values it replaced come
//! back, and the stored credentials it moved out of `auths` go back into
//! the entries they came from, leaving the helper's store only when they
//! are safely back. What stays in the store that Docker no longer asks
//! for is said, with the way to copy it. (With the real Docker CLI:
//! e2e_configure_docker.rs.)

mod support;

use serde_json::json;
use support::docker_cfg::{
    HUNTER2, PLAIN, USER_HUNTER2, assert_no_secret, containers_auth, plain_sandbox, read_json,
};

#[test]
fn remove_after_store_puts_back_the_creds_store_it_replaced() {
    let (sandbox, path) = plain_sandbox(r#"{"credsStore": "secretservice", "psFormat": "x"}"#);
    sandbox.cmd(&["configure-docker", "--store"]).run().success();

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().success();

    assert!(out.stdout.contains("set \"credsStore\" back to \"secretservice\""), "{out:?}");
    assert_eq!(read_json(&path), json!({"credsStore": "secretservice", "psFormat": "x"}));
}

#[test]
fn remove_in_a_docker_config_moved_since_says_what_was_recorded_under_the_old_path() {
    let original = json!({"auths": {PLAIN: {"auth": USER_HUNTER2}}, "credsStore": "secretservice"});
    let (mut sandbox, path) = plain_sandbox(&original.to_string());
    sandbox.cmd(&["configure-docker", "--store"]).run().success();
    let moved = sandbox.root().join("docker-moved");
    std::fs::rename(path.parent().unwrap(), &moved).unwrap();
    sandbox.set_env("DOCKER_CONFIG", moved.to_str().unwrap());

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().success();

    // Nothing to put back by this path: the old one's record is named,
    // with what it holds, rather than the old values lost without a word.
    assert!(out.stdout.contains(&format!("but {}", path.display())), "{out:?}");
    assert!(out.stdout.contains("\"credsStore\": \"secretservice\""), "{out:?}");
    assert!(out.stdout.contains(&format!("auths \"{PLAIN}\"")), "{out:?}");
    assert_no_secret(&out);
    assert_eq!(read_json(&moved.join("config.json")), json!({}));
}

#[test]
fn remove_after_store_moves_the_passwords_back_into_auths_and_out_of_the_store() {
    let original =
        json!({"auths": {PLAIN: {"auth": USER_HUNTER2, "email": "u@example.com"}}, "credsStore": "desktop"});
    let (sandbox, path) = plain_sandbox(&original.to_string());
    sandbox.cmd(&["configure-docker", "--store"]).run().success();
    assert_eq!(sandbox.get(PLAIN).quiet_success().secret(), HUNTER2);

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().quiet_success();

    assert!(
        out.stdout.contains("put the credential of auths \"plain.example.com\" (user user) back"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("removed plain.example.com from docker-credential-exchange's store"),
        "{out:?}"
    );
    assert_no_secret(&out);
    assert_eq!(read_json(&path), original);
    assert_eq!(sandbox.list().quiet_success().json(), json!({}));
}

#[test]
fn remove_puts_back_the_cred_helper_it_replaced_and_the_moved_password_of_that_registry_only() {
    let (mut sandbox, path) = plain_sandbox(&format!(
        r#"{{"credHelpers": {{"{PLAIN}": "ecr-login"}}, "auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#
    ));
    let auth_file = containers_auth(
        &mut sandbox,
        &format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#),
    );
    sandbox.cmd(&["configure-docker", PLAIN, "other.example"]).run().success();
    assert_eq!(read_json(&auth_file), json!({}));

    sandbox.cmd(&["configure-docker", "--remove", PLAIN]).run().success();

    assert_eq!(
        read_json(&path),
        json!({"credHelpers": {PLAIN: "ecr-login", "other.example": "exchange"}, "auths": {PLAIN: {"auth": USER_HUNTER2}}})
    );
    assert_eq!(read_json(&auth_file), json!({"auths": {PLAIN: {"auth": USER_HUNTER2}}}));
    sandbox.get(PLAIN).protocol_error("credentials not found in native keychain");
}

#[test]
fn a_credential_the_store_held_before_stays_in_it() {
    let (sandbox, path) =
        plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#));
    sandbox.store(PLAIN, "user", HUNTER2).quiet_success();
    sandbox.cmd(&["configure-docker", PLAIN]).run().quiet_success();

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().quiet_success();

    assert_eq!(read_json(&path), json!({"auths": {PLAIN: {"auth": USER_HUNTER2}}}));
    assert_eq!(sandbox.get(PLAIN).quiet_success().secret(), HUNTER2);
    assert!(!out.stdout.contains("still holds"), "it is back where Docker looks: {out:?}");
}

#[test]
fn a_newer_password_docker_stored_through_the_helper_is_the_one_put_back() {
    let (sandbox, path) =
        plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#));
    sandbox.cmd(&["configure-docker", "--store"]).run().success();
    // `docker login` with a new password, through the helper.
    sandbox.store(PLAIN, "user", "a-newer-password-2").quiet_success();

    sandbox.cmd(&["configure-docker", "--remove"]).run().success();

    // base64("user:a-newer-password-2")
    assert_eq!(read_json(&path), json!({"auths": {PLAIN: {"auth": "dXNlcjphLW5ld2VyLXBhc3N3b3JkLTI="}}}));
    assert_eq!(sandbox.list().quiet_success().json(), json!({}));
}

#[test]
fn an_entry_that_holds_another_password_now_is_not_overwritten_and_the_store_keeps_its_copy() {
    let (sandbox, path) =
        plain_sandbox(&format!(r#"{{"auths": {{"{PLAIN}": {{"auth": "{USER_HUNTER2}"}}}}}}"#));
    sandbox.cmd(&["configure-docker", PLAIN]).run().quiet_success();
    // Another program writes a password into the file meanwhile.
    // base64("user:written-later-3")
    let later = json!({"credHelpers": {PLAIN: "exchange"}, "auths": {PLAIN: {"auth": "dXNlcjp3cml0dGVuLWxhdGVyLTM="}}});
    std::fs::write(&path, later.to_string()).unwrap();

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().success();

    assert!(out.stdout.contains("holds another credential now"), "{out:?}");
    assert_eq!(read_json(&path)["auths"], later["auths"]);
    assert_eq!(sandbox.get(PLAIN).quiet_success().secret(), HUNTER2);
}

// The helper Docker asks after the removal is a sh script.
#[cfg(unix)]
#[test]
fn remove_says_which_credentials_stay_in_the_store_and_how_to_copy_them_where_docker_asks_now() {
    let (mut sandbox, _) = plain_sandbox(r#"{"credsStore": "other"}"#);
    sandbox.add_script("docker-credential-other", "[ \"$1\" = list ] && echo '{}'\n");
    sandbox.cmd(&["configure-docker", "--store"]).run().success();
    // `docker login ghcr.io` while credsStore is this helper.
    sandbox.store("ghcr.io", "bob", "ghcr-password-4").quiet_success();

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().success();

    assert!(
        out.stdout.contains(
            "note: docker-credential-exchange's store still holds the credentials of ghcr.io, which Docker no \
             longer asks it for; Docker asks docker-credential-other for them now; to copy one there: echo ghcr.io \
             | docker-credential-exchange get | docker-credential-other store"
        ),
        "{out:?}"
    );
    assert_eq!(sandbox.get("ghcr.io").quiet_success().secret(), "ghcr-password-4");
}

#[test]
fn a_record_that_cannot_be_read_stops_remove_with_nothing_changed() {
    let (sandbox, path) = plain_sandbox(r#"{"credsStore": "secretservice"}"#);
    sandbox.cmd(&["configure-docker", "--store"]).run().success();
    let records = sandbox.data_dir().join("configure-docker");
    let record = std::fs::read_dir(&records).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&record, "{ not json").unwrap();
    let before = std::fs::read(&path).unwrap();

    let out = sandbox.cmd(&["configure-docker", "--remove"]).run().failure();

    assert!(
        out.stderr.contains("is not a record it wrote") && out.stderr.contains("nothing was changed"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
