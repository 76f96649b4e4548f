//! `configure-docker` reads `auths` keys the way each client reads its
//! file (DESIGN.md section 5). Docker reduces every key of its config to
//! the key's host (`https://h/v1/`, `h/team`): such a credential is the
//! host's, so it moves under the host, and two keys of one host with
//! different credentials are refused with nothing changed. containers'
//! `auth.json` keeps a key with a path and no scheme as one namespace's
//! credential (podman and skopeo use it there), but a key with a scheme is
//! its host's there too. What podman and skopeo see afterwards is said.
//! (The real Docker CLI reading such keys: e2e_configure_docker.rs.)

mod support;

use serde_json::json;
use support::docker_cfg::{
    HUNTER2, USER_HUNTER2, assert_no_secret, backups_of, containers_auth, plain_sandbox, read_json,
};

/// base64("other:other-password-1")
const OTHER_PAIR: &str = "b3RoZXI6b3RoZXItcGFzc3dvcmQtMQ==";

#[test]
fn an_api_url_key_is_moved_under_its_host_by_store() {
    let (sandbox, path) = plain_sandbox(&format!(
        r#"{{"auths": {{"https://other.example/v1/": {{"auth": "{USER_HUNTER2}"}}}}, "credsStore": "desktop"}}"#
    ));

    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();

    assert!(
        out.stdout.contains(
            "moved the stored credential of auths \"https://other.example/v1/\" (user user) into \
             docker-credential-exchange's store under other.example, the registry Docker sent it to"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("namespace"), "no namespace is claimed: {out:?}");
    assert_no_secret(&out);
    assert_eq!(read_json(&path), json!({"credsStore": "exchange"}));
    let got = sandbox.get("other.example").quiet_success().json();
    assert_eq!((got["Username"].as_str(), got["Secret"].as_str()), (Some("user"), Some(HUNTER2)));
    assert_eq!(sandbox.list().quiet_success().json(), json!({"other.example": "user"}));
}

#[test]
fn a_key_with_a_path_in_docker_config_is_moved_under_its_host_by_cred_helpers() {
    let (sandbox, path) =
        plain_sandbox(&format!(r#"{{"auths": {{"quay.io/team": {{"auth": "{USER_HUNTER2}"}}}}}}"#));

    let out = sandbox.cmd(&["configure-docker", "quay.io"]).run().quiet_success();

    assert!(out.stdout.contains("auths \"quay.io/team\" (user user) into"), "{out:?}");
    assert!(
        out.stdout.contains(
            "note: podman, skopeo and buildah read auths \"quay.io/team\" as a credential for quay.io/team/… \
             only; they now ask docker-credential-exchange for quay.io (credHelpers) and get it for all of quay.io"
        ),
        "{out:?}"
    );
    assert_eq!(read_json(&path), json!({"credHelpers": {"quay.io": "exchange"}}));
    assert_eq!(sandbox.get("quay.io").quiet_success().secret(), HUNTER2);
}

#[test]
fn two_keys_of_one_host_with_different_credentials_are_refused_and_nothing_changed() {
    let config = format!(
        r#"{{"auths": {{"quay.io/team": {{"auth": "{USER_HUNTER2}"}}, "https://quay.io": {{"auth": "{OTHER_PAIR}"}}}}}}"#
    );
    let (sandbox, path) = plain_sandbox(&config);

    let out = sandbox.cmd(&["configure-docker", "--store"]).run().failure();

    assert!(out.stderr.contains("hold different credentials for quay.io (users"), "{out:?}");
    assert!(out.stderr.contains("Docker reads both as quay.io's credential"), "{out:?}");
    assert!(out.stderr.contains("nothing was changed") && out.stderr.lines().count() == 1, "{out:?}");
    assert_no_secret(&out);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), config);
    assert!(backups_of(&path).is_empty());
    sandbox.get("quay.io").protocol_error("credentials not found in native keychain");
}

#[test]
fn two_keys_of_one_host_with_one_credential_are_moved_once() {
    let (sandbox, path) = plain_sandbox(&format!(
        r#"{{"auths": {{"quay.io/team": {{"auth": "{USER_HUNTER2}"}}, "quay.io": {{"auth": "{USER_HUNTER2}"}}}}}}"#
    ));

    sandbox.cmd(&["configure-docker", "quay.io"]).run().quiet_success();

    assert_eq!(read_json(&path), json!({"credHelpers": {"quay.io": "exchange"}}));
    assert_eq!(sandbox.list().quiet_success().json(), json!({"quay.io": "user"}));
}

#[test]
fn a_key_with_a_scheme_in_auth_json_is_its_hosts_credential_to_podman_and_moves() {
    let (mut sandbox, _) = plain_sandbox("{}");
    let auth_file = containers_auth(
        &mut sandbox,
        &format!(r#"{{"auths": {{"https://quay.io/v1/": {{"auth": "{USER_HUNTER2}"}}}}}}"#),
    );

    let out = sandbox.cmd(&["configure-docker", "quay.io"]).run().quiet_success();

    assert!(
        out.stdout.contains("auth.json: moved the stored credential of auths \"https://quay.io/v1/\""),
        "{out:?}"
    );
    assert_eq!(read_json(&auth_file), json!({}));
    assert_eq!(sandbox.get("quay.io").quiet_success().secret(), HUNTER2);
}

#[test]
fn a_namespace_key_in_auth_json_stays_and_the_warning_says_who_uses_it() {
    let (mut sandbox, _) = plain_sandbox("{}");
    let original = format!(r#"{{"auths": {{"quay.io/team": {{"auth": "{USER_HUNTER2}"}}}}}}"#);
    let auth_file = containers_auth(&mut sandbox, &original);

    let out = sandbox.cmd(&["configure-docker", "quay.io"]).run().success();

    assert!(
        out.stderr.contains(
            "auths \"quay.io/team\" is a credential for one namespace (quay.io/team/…) to podman, skopeo and \
             buildah, which use it there instead of asking docker-credential-exchange; Docker does not read this \
             file; it stays"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("credential helpers are asked per registry host"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&auth_file).unwrap(), original);
}

#[test]
fn store_says_that_podman_no_longer_finds_the_credentials_moved_out_of_docker_config() {
    let (sandbox, _) = plain_sandbox(&format!(
        r#"{{"auths": {{"a.example": {{"auth": "{USER_HUNTER2}"}}, "b.example/x": {{"auth": "{OTHER_PAIR}"}}}}}}"#
    ));

    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();

    assert!(
        out.stderr.contains(
            "podman, skopeo and buildah do not read credsStore: they found the credentials of a.example, \
             b.example in"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("`docker-credential-exchange configure-docker a.example b.example`"),
        "{out:?}"
    );
}

#[test]
fn an_identity_token_beside_a_password_is_moved_and_the_dropped_password_is_named() {
    let (sandbox, _) = plain_sandbox(&format!(
        r#"{{"auths": {{"r.example": {{"auth": "{USER_HUNTER2}", "identitytoken": "refresh-token-0123"}}}}}}"#
    ));

    let out = sandbox.cmd(&["configure-docker", "r.example"]).run().quiet_success();

    assert!(
        out.stdout.contains("its identity token, that is: the password beside it in \"auth\" is not kept"),
        "{out:?}"
    );
    assert_no_secret(&out);
    let got = sandbox.get("r.example").quiet_success().json();
    assert_eq!(
        (got["Username"].as_str(), got["Secret"].as_str()),
        (Some("<token>"), Some("refresh-token-0123"))
    );
}
