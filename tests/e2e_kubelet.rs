//! End to end as the kubelet's image credential provider (issue 15 part 6):
//! the built binary run exactly as the kubelet runs a provider (argv from
//! the CredentialProviderConfig, its env and nothing else, the request on
//! stdin, no TTY, no D-Bus), the pod's service account token exchanged at
//! the local STS, and the returned credentials tried against Debian's
//! `docker-registry` with token auth: they must pull the image's repository
//! and no other.

// docker-registry and skopeo, started by the Linux-only launchers.
#![cfg(target_os = "linux")]

mod support;

use std::time::Duration;

use serde_json::json;
use support::e2e::{AUDIENCE, granted, refused, require_skopeo};
use support::kubelet::{Kubelet, Outcome, ServiceAccount, parse_go_duration};
use support::kubelet_e2e::{KubeletStack, Node, SA_AUDIENCE};
use support::registry_api::Pull;

const AWAITING: &str = "awaiting integration with the new helper API";

/// `tokenAttributes` as docs/kubernetes.md recommends.
fn token_attributes(optional_keys: &[&str]) -> serde_json::Value {
    json!({
        "serviceAccountTokenAudience": SA_AUDIENCE,
        "cacheType": "ServiceAccount",
        "requireServiceAccount": true,
        "optionalServiceAccountAnnotationKeys": optional_keys,
    })
}

#[test]
fn the_registry_check_pulls_a_granted_repository_and_is_refused_another() {
    if !require_skopeo() {
        return;
    }
    let kube = KubeletStack::start();
    let token = kube.stack.sts.issue_access_token("direct", AUDIENCE, "repository:team/app:pull", 300);

    let pulled = kube.pull("team/app", "oauth2accesstoken", &token);
    assert!(pulled.is_pulled(), "{pulled:?}\n{}", kube.logs());
    let other = kube.pull("team/other", "oauth2accesstoken", &token);
    assert!(matches!(other, Pull::Refused { by: "registry", status: 401, .. }), "{other:?}");
    let wrong = kube.pull("team/app", "oauth2accesstoken", "not-a-token");
    assert!(matches!(wrong, Pull::Refused { by: "realm", status: 401, .. }), "{wrong:?}");
}

#[test]
fn an_image_no_entry_covers_fails_with_one_line_on_stderr_and_nothing_on_stdout() {
    let node = Node::new();
    node.write_helper_config(json!({}));
    let config = node.provider_config(&["registry.example.com"], None);
    let image = "registry.example.com/team/app";

    match node.kubelet(&config).provide(image, None) {
        Outcome::Failed { status: Some(1), stdout, stderr } => {
            assert_eq!(stdout, "", "a failure must not look like an answer");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(image), "the kubelet's log must name the image: {stderr}");
        }
        other => panic!("expected exit status 1: {other:#?}\n{}", node.helper_log()),
    }
}

/// The stack with a plain exchange entry, a kubelet configured as
/// docs/kubernetes.md recommends, and the service account `puller`.
fn puller_of_team_app() -> (KubeletStack, Kubelet, ServiceAccount) {
    let kube = KubeletStack::start();
    kube.node.write_helper_config(json!({ kube.stack.addr(): kube.entry(json!({})) }));
    let kubelet = kube.node.kubelet(&kube.provider_config(Some(token_attributes(&[]))));
    let account = kube.service_account("puller", &[]);
    (kube, kubelet, account)
}

#[test]
fn kubelet_credentials_pull_the_images_repository_and_no_other() {
    if !require_skopeo() {
        return;
    }
    let (kube, kubelet, account) = puller_of_team_app();
    let image = kube.image("team/app");

    let outcome = kubelet.provide(&image, Some(&account));
    let (response, creds) = outcome.credentials();
    assert!(matches!(&outcome, Outcome::Provided { stderr, .. } if stderr.is_empty()), "{outcome:#?}");
    assert_eq!(response.cache_key_type, "Image");
    assert_eq!(response.auth.keys().collect::<Vec<_>>(), [&image], "keyed by the repository it covers");
    let duration = response.cache_duration.as_deref().expect("a cacheDuration");
    let seconds = parse_go_duration(duration).expect("a Go duration").as_secs();
    assert!(seconds > 0 && seconds <= 3600, "{duration}: at most the token's remaining life");

    let pulled = kube.pull("team/app", &creds.username, &creds.password);
    assert!(pulled.is_pulled(), "{pulled:?}\n{}", kube.logs());
    let other = kube.pull("team/other", &creds.username, &creds.password);
    assert!(!other.is_pulled(), "the credentials must not pull another repository: {other:?}");

    assert_eq!(kube.stack.exchanges(), 1);
    let exchange = kube.stack.sts.last_request().expect("one exchange");
    assert_eq!(
        exchange.form_value("subject_token"),
        Some(account.token.as_str()),
        "the SA token is the subject"
    );
    assert_eq!(exchange.form_value("scope"), Some("repository:team/app:pull"));
    let grants = kube.stack.grants();
    assert!(granted(&grants, "team/app", "pull") && refused(&grants, "team/other"), "{grants:#?}");
}

#[test]
fn a_second_request_with_the_same_token_is_served_from_the_helpers_cache() {
    if !require_skopeo() {
        return;
    }
    let (kube, kubelet, account) = puller_of_team_app();
    let image = kube.image("team/app");

    let first = kubelet.provide(&image, Some(&account));
    let second = kubelet.provide(&image, Some(&account));
    assert_eq!(first.credentials().1.password, second.credentials().1.password, "{}", kube.logs());
    assert_eq!(kube.stack.exchanges(), 1, "the same service account token must reuse the cached token");

    let other_pod = kube.service_account("puller", &[]);
    assert_ne!(other_pod.token, account.token, "ES256 signatures differ even within one second");
    kubelet.provide(&image, Some(&other_pod)).credentials();
    assert_eq!(kube.stack.exchanges(), 2, "another token is another subject: a new exchange");
}

#[test]
fn an_allowed_annotation_fills_the_template() {
    if !require_skopeo() {
        return;
    }
    let kube = KubeletStack::start();
    // A value is a word (a URL would be refused: '/' and ':' may not come
    // from an annotation), so the template supplies the scheme.
    let entry = kube.entry(json!({
        "kubelet_annotations": ["example.com/audience"],
        "audience": "https://{annotation:example.com/audience}",
    }));
    kube.node.write_helper_config(json!({ kube.stack.addr(): entry }));
    let config =
        kube.provider_config(Some(token_attributes(&["example.com/audience", "example.com/ignored"])));
    let kubelet = kube.node.kubelet(&config);
    let host = AUDIENCE.strip_prefix("https://").expect("an https audience");
    let annotations = [("example.com/audience", host), ("example.com/ignored", "x/y:z")];
    let account = kube.service_account("puller", &annotations);

    let outcome = kubelet.provide(&kube.image("team/app"), Some(&account));
    let (_, creds) = outcome.credentials();
    assert!(kube.pull("team/app", &creds.username, &creds.password).is_pulled(), "{}", kube.logs());
    let exchange = kube.stack.sts.last_request().expect("one exchange");
    assert_eq!(exchange.form_values("audience"), [AUDIENCE]);
}

#[test]
fn a_kubelet_source_without_a_service_account_token_is_a_clear_error() {
    let node = Node::new();
    let entry = json!({
        "token_endpoint": "http://127.0.0.1:9/token",
        "subject_token": {"source": "kubelet"},
        "scope": "repository:{repository}:pull",
    });
    node.write_helper_config(json!({ "registry.example.com": entry }));
    // No tokenAttributes: the kubelet sends the image alone.
    let config = node.provider_config(&["registry.example.com"], None);

    match node.kubelet(&config).provide("registry.example.com/team/app", None) {
        Outcome::Failed { status: Some(1), stdout, stderr } => {
            assert_eq!(stdout, "");
            assert!(stderr.contains("service account token"), "{stderr}");
            assert!(!stderr.contains(AWAITING), "{stderr}");
        }
        other => panic!("expected exit status 1: {other:#?}\n{}", node.helper_log()),
    }
}

#[test]
fn the_kubelets_duration_parser_reads_what_go_reads() {
    let cases = [
        ("0", Duration::ZERO),
        ("5m", Duration::from_secs(300)),
        ("1h30m", Duration::from_secs(5400)),
        ("1.5h", Duration::from_secs(5400)),
        ("4m0s", Duration::from_secs(240)),
        ("300ms", Duration::from_millis(300)),
        ("2us", Duration::from_micros(2)),
        ("7\u{b5}s", Duration::from_micros(7)),
    ];
    for (text, duration) in cases {
        assert_eq!(parse_go_duration(text), Some(duration), "{text}");
    }
    for bad in ["", "5", "-1s", "1d", "1..5s", "s"] {
        assert_eq!(parse_go_duration(bad), None, "{bad}");
    }
}
