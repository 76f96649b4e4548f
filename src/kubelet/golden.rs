//! Golden request/response pairs of the kubelet's exec API, byte for byte.
//!
//! The requests are what the kubelet writes: apimachinery's JSON serializer
//! on the v1 Go types (`kind` before `apiVersion`, fields in declaration
//! order, map keys sorted, `&` `<` `>` escaped as `\u0026`…, a final newline,
//! `omitempty` fields left out). The responses are what this helper must
//! write for the kubelet's strict decoder.

use std::time::Duration;

use super::image::{Coverage, ImageRef};
use super::wire::{CacheKeyType, CredentialProviderRequest, GoDuration, RequestError};
use super::{Issued, KubeletError, respond, serve};
use crate::secret::Secret;

/// A 1.33+ kubelet with `tokenAttributes` and two annotation keys.
const REQUEST_WITH_TOKEN: &str = concat!(
    r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","#,
    r#""image":"registry.example.com:5000/team/app","serviceAccountToken":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln","#,
    r#""serviceAccountAnnotations":{"example.com/audience":"https://sts.example.com/?a=1\u0026b=2","#,
    r#""example.com/role":"puller"}}"#,
    "\n"
);

/// A kubelet without `tokenAttributes`: the image alone.
const REQUEST_IMAGE_ONLY: &str = concat!(
    r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","#,
    r#""image":"docker.io/library/nginx"}"#,
    "\n"
);

/// A response for a repository-scoped token with four minutes left.
const RESPONSE_IMAGE: &str = concat!(
    r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","#,
    r#""cacheKeyType":"Image","cacheDuration":"4m0s","#,
    r#""auth":{"registry.example.com:5000/team/app":{"username":"oauth2accesstoken","password":"tok.en"}}}"#,
    "\n"
);

/// A response for a registry-wide token, the kubelet's default duration.
const RESPONSE_REGISTRY: &str = concat!(
    r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","#,
    r#""cacheKeyType":"Registry","auth":{"docker.io":{"username":"<token>","password":"p\"w"}}}"#,
    "\n"
);

fn request(text: &str) -> CredentialProviderRequest {
    CredentialProviderRequest::parse(text.as_bytes()).unwrap()
}

fn issued(coverage: Coverage, cache_for: Option<Duration>, username: &str, password: &str) -> Issued {
    Issued { username: username.into(), password: Secret::new(password.into()), coverage, cache_for }
}

#[test]
fn a_request_with_a_service_account_token_reads_every_field() {
    let r = request(REQUEST_WITH_TOKEN);
    assert_eq!(r.api_version, "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(r.image, "registry.example.com:5000/team/app");
    assert_eq!(r.service_account_token().map(Secret::expose), Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
    let annotations = r.service_account_annotations.unwrap();
    assert_eq!(annotations["example.com/role"], "puller");
    assert_eq!(annotations["example.com/audience"], "https://sts.example.com/?a=1&b=2");
}

#[test]
fn a_request_without_token_attributes_has_no_token_and_no_annotations() {
    let r = request(REQUEST_IMAGE_ONLY);
    assert!(r.service_account_token().is_none());
    assert!(r.service_account_annotations.is_none());
}

#[test]
fn an_empty_token_is_no_token() {
    let text = REQUEST_IMAGE_ONLY.replace(r#""}"#, r#"","serviceAccountToken":""}"#);
    assert!(request(&text).service_account_token().is_none());
}

#[test]
fn fields_a_later_kubelet_adds_are_ignored() {
    let text = REQUEST_IMAGE_ONLY.replace(r#""}"#, r#"","podNamespace":"default"}"#);
    assert_eq!(request(&text).image, "docker.io/library/nginx");
}

#[test]
fn an_unknown_api_version_is_refused_naming_the_one_to_configure() {
    let text = REQUEST_IMAGE_ONLY.replace("/v1\"", "/v2\"");
    let err = CredentialProviderRequest::parse(text.as_bytes()).unwrap_err();
    assert!(matches!(err, RequestError::ApiVersion(_)), "{err}");
    assert!(err.to_string().contains("apiVersion: credentialprovider.kubelet.k8s.io/v1"), "{err}");
}

#[test]
fn another_kind_is_refused() {
    let text = REQUEST_IMAGE_ONLY.replace("CredentialProviderRequest", "CredentialProviderResponse");
    assert!(matches!(CredentialProviderRequest::parse(text.as_bytes()), Err(RequestError::Kind(_))));
}

#[test]
fn a_malformed_request_is_refused_without_quoting_the_token() {
    let text = REQUEST_WITH_TOKEN.replace(r#""image":"registry.example.com:5000/team/app""#, r#""image":7"#);
    let err = CredentialProviderRequest::parse(text.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("not a CredentialProviderRequest"), "{err}");
    assert!(!err.contains("eyJhbGci"), "{err}");
}

#[test]
fn a_request_in_debug_shows_the_token_only_as_a_fingerprint() {
    let shown = format!("{:?}", request(REQUEST_WITH_TOKEN));
    assert!(!shown.contains("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), "{shown}");
    assert!(shown.contains("sha256:"), "{shown}");
}

#[test]
fn a_repository_scoped_token_is_keyed_by_image() {
    let r = request(REQUEST_WITH_TOKEN);
    let image = ImageRef::parse(&r.image).unwrap();
    let four_minutes = Some(Duration::from_secs(240));
    let response =
        respond(&r, &image, issued(Coverage::Repository, four_minutes, "oauth2accesstoken", "tok.en"));
    assert_eq!(response.cache_key_type(), CacheKeyType::Image);
    assert_eq!(response.to_json_line(), RESPONSE_IMAGE);
}

#[test]
fn a_registry_wide_token_is_keyed_by_registry_and_leaves_the_duration_to_the_kubelet() {
    let r = request(REQUEST_IMAGE_ONLY);
    let image = ImageRef::parse(&r.image).unwrap();
    let response = respond(&r, &image, issued(Coverage::Registry, None, "<token>", "p\"w"));
    assert_eq!(response.to_json_line(), RESPONSE_REGISTRY);
}

#[test]
fn the_response_echoes_the_requests_api_version() {
    let text = REQUEST_IMAGE_ONLY.replace("/v1\"", "/v1beta1\"");
    let r = request(&text);
    let image = ImageRef::parse(&r.image).unwrap();
    let line = respond(&r, &image, issued(Coverage::Registry, None, "u", "p")).to_json_line();
    assert!(line.starts_with(r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","#), "{line}");
}

#[test]
fn a_response_in_debug_never_shows_the_password() {
    let r = request(REQUEST_IMAGE_ONLY);
    let image = ImageRef::parse(&r.image).unwrap();
    let response = respond(&r, &image, issued(Coverage::Registry, None, "u", "very-secret-token"));
    assert!(!format!("{response:?}").contains("very-secret-token"));
}

#[test]
fn durations_are_written_as_go_writes_them() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_secs(59), "59s"),
        (Duration::from_secs(60), "1m0s"),
        (Duration::from_secs(3599), "59m59s"),
        (Duration::from_secs(3600), "1h0m0s"),
        (Duration::from_secs(3601), "1h0m1s"),
        (Duration::from_secs(86_400), "24h0m0s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_millis(300), "300ms"),
        (Duration::from_micros(1500), "1.5ms"),
        (Duration::from_micros(1), "1\u{b5}s"),
        (Duration::from_nanos(999), "999ns"),
        (Duration::from_nanos(61_000_000_001), "1m1.000000001s"),
    ];
    for (duration, go) in cases {
        assert_eq!(GoDuration(duration).to_go_string(), go, "{duration:?}");
    }
}

#[test]
fn a_request_on_stdin_gets_its_response_on_stdout() {
    let mut stdout = Vec::new();
    serve(REQUEST_WITH_TOKEN.as_bytes(), &mut stdout, |r, image| {
        assert_eq!(r.service_account_token().map(Secret::expose), Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
        assert_eq!(image.repository(), "team/app");
        Ok(issued(Coverage::Repository, Some(Duration::from_secs(240)), "oauth2accesstoken", "tok.en"))
    })
    .unwrap();
    assert_eq!(String::from_utf8(stdout).unwrap(), RESPONSE_IMAGE);
}

#[test]
fn a_failure_writes_nothing_to_stdout() {
    let mut stdout = Vec::new();
    let err = serve(REQUEST_IMAGE_ONLY.as_bytes(), &mut stdout, |_, image| {
        Err(KubeletError::Helper { image: image.name(), reason: "no registry entry covers it".into() })
    })
    .unwrap_err();
    assert!(err.to_string().contains("docker.io/library/nginx"), "{err}");
    assert!(stdout.is_empty());
}

#[test]
fn stdin_over_one_mib_is_refused_before_parsing() {
    let huge = vec![b' '; 1024 * 1024 + 1];
    let err = serve(&huge[..], Vec::new(), |_, _| unreachable!("no request")).unwrap_err();
    assert!(matches!(err, KubeletError::Stdin(_)), "{err}");
}

#[test]
fn a_stale_token_is_not_cached_by_the_kubelet() {
    assert_eq!(Issued::cache_until(1_000, 1_010), Duration::ZERO);
    assert_eq!(Issued::cache_until(1_240, 1_000), Duration::from_secs(240));
}

/// The helper config docs/kubernetes.md shows must be one this helper
/// reads, and must cover the image of its example request.
#[test]
fn the_documented_helper_config_is_valid_and_covers_the_documented_image() {
    let doc = include_str!("../../docs/kubernetes.md");
    let start =
        doc.find("```json\n{\n  \"registries\"").expect("the helper config block") + "```json\n".len();
    let block = &doc[start..start + doc[start..].find("```").expect("its end")];
    let config =
        crate::config::Config::parse(std::path::Path::new("docs/kubernetes.md"), block.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("{e}"));
    let url = ImageRef::parse("registry.example.com/team/app").unwrap().server_url().unwrap();
    let id = config.lookup(&url).expect("an entry covers the image");
    // Entries are checked when first used (a bad one must not break the rest).
    config.registry(id).unwrap_or_else(|e| panic!("{e}"));
}
