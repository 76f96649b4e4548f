//! The kubelet provider's edges, without servers: what an operator reads in
//! the kubelet's log (whole words, each cause once) and a request whose
//! stdin is never closed. The end-to-end pulls are in e2e_kubelet.rs.

mod support;

use serde_json::json;
use support::cmd::Sandbox;
use support::sts::{Sts, StsOptions};

const KUBELET_V1: &str = "credentialprovider.kubelet.k8s.io/v1";

fn request(image: &str) -> String {
    let r = json!({"kind": "CredentialProviderRequest", "apiVersion": KUBELET_V1, "image": image,
                   "serviceAccountToken": "sa-token"});
    format!("{r}\n")
}

#[test]
fn a_request_the_config_does_not_cover_is_reported_in_whole_words() {
    let sandbox = Sandbox::new();
    sandbox.write_config(&json!({"registries": {}}));
    let out = sandbox
        .cmd(&["kubelet-credential-provider"])
        .stdin(request("other.example.com/team/app"))
        .run()
        .failure();
    assert!(!out.stderr.contains("[REDACTED]"), "nothing secret here: {out:?}");
    assert!(out.stderr.contains("no credentials for other.example.com/team/app"), "{out:?}");
}

#[test]
fn a_request_that_is_not_json_names_the_kind_it_expected() {
    let sandbox = Sandbox::new();
    let out = sandbox.cmd(&["kubelet-credential-provider"]).stdin("not json").run().failure();
    assert!(out.stderr.contains("CredentialProviderRequest"), "{out:?}");
}

#[test]
fn a_malformed_request_states_its_cause_once() {
    let sandbox = Sandbox::new();
    let out = sandbox.cmd(&["kubelet-credential-provider"]).stdin("[1]").run().failure();
    assert_eq!(out.stderr.matches("expected a JSON object").count(), 1, "{out:?}");
}

#[test]
fn an_oversized_request_states_its_cause_once() {
    let sandbox = Sandbox::new();
    let big = format!(
        "{{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"{KUBELET_V1}\",\"image\":\"a/b\",\"pad\":\"{}\"}}",
        "x".repeat(2 << 20)
    );
    let out = sandbox.cmd(&["kubelet-credential-provider"]).stdin(big).run().failure();
    assert_eq!(out.stderr.matches("larger than 1048576 bytes").count(), 1, "{out:?}");
}

#[cfg(unix)]
#[test]
fn a_request_whose_stdin_is_never_closed_ends_by_the_deadline() {
    use std::time::Duration;
    let sandbox = Sandbox::new();
    let (child, _open) = sandbox
        .cmd(&["kubelet-credential-provider"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2")
        .spawn();
    let (ended, out) = support::cmd::finish_within(child, Duration::from_secs(20));
    assert_eq!(ended, Some(1), "still running 20 s after a 2 s deadline: {out:?}");
    assert!(out.stderr.contains("stdin was not closed within 2s"), "{out:?}");
}

/// A sandbox whose one entry takes its subject from the kubelet and puts
/// the annotation `example.com/role` into its resource and scope.
fn annotated_entry(sts: &Sts) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        "registry.example.com",
        &sts.url(),
        json!({
            "subject_token": {"source": "kubelet"},
            "resource": "https://sts.example.com/roles/{annotation:example.com/role}",
            "scope": "repository:{repository}:pull role:{annotation:example.com/role}",
            "kubelet_annotations": ["example.com/role"],
        }),
    );
    sandbox
}

fn annotated_request(sts: &Sts, role: &str) -> String {
    let r = json!({"kind": "CredentialProviderRequest", "apiVersion": KUBELET_V1,
                   "image": "registry.example.com/team/app",
                   "serviceAccountToken": sts.mint_subject_token("system:serviceaccount:team:puller", 3600),
                   "serviceAccountAnnotations": {"example.com/role": role}});
    format!("{r}\n")
}

#[test]
fn an_annotation_value_that_could_reshape_the_request_is_refused_before_any_request() {
    let sts = Sts::start(StsOptions::default());
    let sandbox = annotated_entry(&sts);
    for role in ["../../admin", "*", "p,push", "x%2F..%2Fy", "..", ".hidden", "-x", "a b", ""] {
        let out = sandbox
            .cmd(&["kubelet-credential-provider"])
            .stdin(annotated_request(&sts, role))
            .run()
            .failure();
        assert!(out.stderr.contains("annotation example.com/role"), "{role:?}: {out:?}");
        assert!(out.stderr.contains("\"registry.example.com\""), "{role:?}: {out:?}");
        assert!(out.stderr.contains("letters, digits"), "{role:?}: {out:?}");
        assert_eq!(out.stdout, "", "{role:?}: {out:?}");
    }
    assert_eq!(sts.requests(), 0, "a refused annotation reached the STS");
}

#[test]
fn an_annotation_value_of_the_conservative_set_reaches_the_templates() {
    let sts = Sts::start(StsOptions::default());
    let sandbox = annotated_entry(&sts);
    sandbox
        .cmd(&["kubelet-credential-provider"])
        .stdin(annotated_request(&sts, "team-a_puller.v2"))
        .run()
        .success();
    let sent = sts.last_request().expect("one exchange");
    assert_eq!(sent.form_value("resource"), Some("https://sts.example.com/roles/team-a_puller.v2"));
    assert_eq!(sent.form_value("scope"), Some("repository:team/app:pull role:team-a_puller.v2"));
}
