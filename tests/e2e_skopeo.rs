//! End to end with skopeo (containers/image): it reads `credHelpers` from
//! its auth file, runs this helper, and authenticates at the token-auth
//! registry's realm with the exchanged token, by HTTP Basic or, for the
//! `"<token>"` username, by the identity-token (refresh-token) flow. Also
//! the repository-scoped entry, whose token is driven with `--dest-creds`
//! (issue 6).

// skopeo and docker-registry, started by the Linux-only service launchers.
#![cfg(target_os = "linux")]

mod support;

use serde_json::json;
use support::cmd::Output;
use support::e2e::{Client, TokenStack, granted, refused, require_skopeo, write_oci_image};

/// A client whose auth file sends `stack`'s registry to the helper, with a
/// login token stored (unverified, so the first exchange is skopeo's).
fn skopeo_client(stack: &TokenStack, extra: serde_json::Value) -> Client {
    let client = Client::new();
    client.write_helper_config(json!({ stack.addr(): stack.entry(extra) }));
    client.write_docker_config(json!({ "credHelpers": { stack.addr(): "exchange" } }));
    client.login(&stack.addr(), &stack.login_token(), &["--no-verify"]).success();
    client
}

/// `skopeo copy` of a fresh OCI image to `docker://DEST`, credentials from
/// the auth file.
fn copy(client: &Client, dest: &str) -> Output {
    let layout = tempfile::tempdir().unwrap();
    let source = write_oci_image(layout.path());
    let dest = format!("docker://{dest}");
    client.skopeo(&["copy", "--authfile", &client.authfile(), "--dest-tls-verify=false", &source, &dest])
}

/// `skopeo inspect` of `docker://IMAGE`, credentials from the auth file.
fn inspect(client: &Client, image: &str) -> Output {
    let image = format!("docker://{image}");
    client.skopeo(&["inspect", "--authfile", &client.authfile(), "--tls-verify=false", &image])
}

#[test]
fn copy_and_inspect_through_cred_helpers_and_a_second_copy_makes_no_new_exchange() {
    if !require_skopeo() {
        return;
    }
    let stack = TokenStack::start();
    let client = skopeo_client(&stack, json!({}));
    let image = stack.image("team/app:1");

    copy(&client, &image).success();
    assert_eq!(stack.exchanges(), 1);
    let grants = stack.grants();
    assert!(granted(&grants, "team/app", "push"), "{grants:#?}");
    assert!(grants.iter().all(|g| g.method == "GET" && g.subject.as_deref() == Some("alice")), "{grants:#?}");

    let inspected = inspect(&client, &image).success().json();
    assert!(inspected["Digest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{inspected}");
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(1), "{inspected}");

    let realm_before = stack.realm.requests();
    copy(&client, &image).success();
    assert!(stack.realm.requests() > realm_before, "the second copy did not authenticate");
    assert_eq!(stack.exchanges(), 1, "copies within the token's life must reuse the cached token");
    assert!(client.helper_calls().iter().all(|c| c == "get"), "{:?}", client.helper_calls());
}

#[test]
fn token_username_makes_skopeo_use_the_identity_token_flow() {
    if !require_skopeo() {
        return;
    }
    let stack = TokenStack::start();
    let client = skopeo_client(&stack, json!({"username": "<token>"}));
    let image = stack.image("team/app:1");

    copy(&client, &image).success();
    inspect(&client, &image).success();
    copy(&client, &image).success();
    assert_eq!(stack.exchanges(), 1);
    let grants = stack.grants();
    assert!(!grants.is_empty());
    for grant in &grants {
        assert_eq!(
            (grant.method.as_str(), grant.grant_type.as_deref()),
            ("POST", Some("refresh_token")),
            "{grant:#?}"
        );
    }
    assert!(granted(&grants, "team/app", "push") && granted(&grants, "team/app", "pull"), "{grants:#?}");
}

#[test]
fn repository_scoped_entry_gets_a_token_the_realm_admits_for_its_repository_only() {
    if !require_skopeo() {
        return;
    }
    let stack = TokenStack::start();
    let client = Client::new();
    let key = stack.image("team/app");
    client.write_helper_config(json!({
        &key: stack.entry(json!({"scope": "repository:{repository}:pull,push"})),
    }));
    client.write_docker_config(json!({}));
    client.login(&key, &stack.login_token(), &["--no-verify"]).success();

    let token = client.sandbox.get(&key).quiet_success().secret();
    let request = stack.sts.last_request().expect("an exchange");
    assert_eq!(request.form_value("scope"), Some("repository:team/app:pull,push"));

    let creds = format!("oauth2accesstoken:{token}");
    let layout = tempfile::tempdir().unwrap();
    let source = write_oci_image(layout.path());
    let push = |repository: &str| {
        let dest = format!("docker://{}", stack.image(repository));
        let authfile = client.authfile();
        let args = [
            "copy",
            "--authfile",
            &authfile,
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &source,
            &dest,
        ];
        client.skopeo(&args)
    };
    push("team/app:1").success();
    let out = push("team/other:1").failure();
    assert!(out.stderr.contains("denied") || out.stderr.contains("unauthorized"), "{out:?}");

    let grants = stack.grants();
    assert!(granted(&grants, "team/app", "push"), "{grants:#?}");
    assert!(refused(&grants, "team/other"), "{grants:#?}");
    assert!(!granted(&grants, "team/other", "pull"), "{grants:#?}");
    assert_eq!(stack.exchanges(), 1);
}
