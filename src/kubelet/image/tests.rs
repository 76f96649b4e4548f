//! Image references: what the kubelet passes, what a pod spec says, and
//! what neither may.

use super::*;

fn parse(image: &str) -> ImageRef {
    ImageRef::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"))
}

fn refused(image: &str) -> &'static str {
    match ImageRef::parse(image) {
        Err(ImageError::Invalid { reason, .. }) => reason,
        other => panic!("{image}: expected Invalid, got {other:?}"),
    }
}

#[test]
fn the_kubelets_form_is_registry_and_repository() {
    let image = parse("registry.example.com/team/app");
    assert_eq!(image.registry(), "registry.example.com");
    assert_eq!(image.repository(), "team/app");
    assert_eq!((image.tag(), image.digest()), (None, None));
}

#[test]
fn a_port_stays_with_the_registry() {
    let image = parse("registry.example.com:5000/team/app");
    assert_eq!(image.registry(), "registry.example.com:5000");
    assert_eq!(image.repository(), "team/app");
}

#[test]
fn a_tag_is_split_off() {
    let image = parse("registry.example.com:5000/team/app:1.2-rc_3");
    assert_eq!(image.tag(), Some("1.2-rc_3"));
    assert_eq!(image.repository(), "team/app");
}

#[test]
fn a_digest_is_split_off() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let image = parse(&format!("r.example/team/app@{digest}"));
    assert_eq!(image.digest(), Some(digest.as_str()));
    assert_eq!(image.name(), "r.example/team/app");
}

#[test]
fn a_tag_and_a_digest_may_both_be_given() {
    let image = parse(&format!("r.example:5000/app:1@sha256:{}", "0".repeat(64)));
    assert_eq!((image.registry(), image.repository(), image.tag()), ("r.example:5000", "app", Some("1")));
    assert!(image.digest().is_some());
}

#[test]
fn a_bare_name_is_docker_hubs_library() {
    let image = parse("nginx:1.25");
    assert_eq!(image.name(), "docker.io/library/nginx");
    assert_eq!(image.tag(), Some("1.25"));
}

#[test]
fn a_docker_hub_user_repository_gets_no_library_prefix() {
    assert_eq!(parse("bitnami/redis").name(), "docker.io/bitnami/redis");
}

#[test]
fn docker_hubs_legacy_name_is_folded_as_distribution_does() {
    assert_eq!(parse("index.docker.io/nginx").name(), "docker.io/library/nginx");
}

#[test]
fn docker_hubs_explicit_name_still_gets_library() {
    assert_eq!(parse("docker.io/nginx").name(), "docker.io/library/nginx");
}

#[test]
fn a_first_component_without_dot_or_colon_is_a_docker_hub_path() {
    assert_eq!(parse("team/app/tool").name(), "docker.io/team/app/tool");
}

#[test]
fn localhost_is_a_registry() {
    assert_eq!(parse("localhost/app").registry(), "localhost");
    assert_eq!(parse("localhost:5000/app").registry(), "localhost:5000");
}

#[test]
fn an_ipv6_registry_in_brackets_is_accepted() {
    let image = parse("[::1]:5000/team/app");
    assert_eq!(image.registry(), "[::1]:5000");
    assert_eq!(image.repository(), "team/app");
}

#[test]
fn the_registry_keeps_its_case_for_the_kubelets_keys() {
    let image = parse("Registry.Example.com/team/app");
    assert_eq!(image.auth_key(Coverage::Repository), "Registry.Example.com/team/app");
}

#[test]
fn a_name_that_is_only_a_host_and_port_reads_as_a_docker_hub_tag() {
    // distribution's reading too: no slash, so the colon starts a tag.
    let image = parse("registry.example.com:5000");
    assert_eq!(
        (image.name().as_str(), image.tag()),
        ("docker.io/library/registry.example.com", Some("5000"))
    );
}

#[test]
fn the_repository_must_be_lower_case() {
    assert_eq!(refused("registry.example.com/Team/app"), "a repository name must be lower case");
    assert_eq!(refused("NGINX"), "a repository name must be lower case");
}

#[test]
fn the_repository_follows_the_oci_grammar() {
    for bad in ["r.example/team/../etc", "r.example/a//b", "r.example/a_", "r.example/-a", "r.example/a*"] {
        assert!(refused(bad).starts_with("the repository is not"), "{bad}");
    }
}

#[test]
fn every_accepted_repository_satisfies_the_oci_grammar() {
    for image in ["nginx", "r.example/a.b_c__d---e/f1", "r.example:1/x-y/z.w", "localhost/a__b"] {
        assert!(is_repository_name(parse(image).repository()), "{image}");
    }
}

#[test]
fn a_scheme_is_refused() {
    assert!(refused("https://registry.example.com/team/app").contains("no scheme"));
}

#[test]
fn whitespace_is_refused() {
    assert!(refused("registry.example.com/team app").contains("whitespace"));
    assert!(refused(" nginx").contains("whitespace"));
}

#[test]
fn an_empty_image_is_its_own_error() {
    assert_eq!(ImageRef::parse(""), Err(ImageError::Empty));
}

#[test]
fn a_bad_tag_is_refused() {
    assert!(refused("r.example/app:-1").starts_with("the tag"));
    assert!(refused(&format!("r.example/app:{}", "t".repeat(129))).starts_with("the tag"));
}

#[test]
fn a_digest_needs_a_known_algorithm_and_the_right_length() {
    assert!(refused(&format!("r.example/app@md5:{}", "0".repeat(32))).starts_with("the digest"));
    assert!(refused(&format!("r.example/app@sha256:{}", "0".repeat(63))).starts_with("the digest"));
    assert!(refused(&format!("r.example/app@sha256:{}", "A".repeat(64))).starts_with("the digest"));
}

#[test]
fn a_bad_port_is_refused() {
    assert!(refused("r.example:50x0/app").starts_with("the registry"));
    assert!(refused("r.example:/app").starts_with("the registry"));
}

#[test]
fn a_bad_host_label_is_refused() {
    assert!(refused("r-.example/app").starts_with("the registry"));
    assert!(refused("r..example/app").starts_with("the registry"));
}

#[test]
fn an_image_id_is_not_a_name() {
    assert!(refused(&"a".repeat(64)).contains("image ID"));
}

#[test]
fn a_name_over_255_characters_is_refused() {
    let long = format!("r.example/{}", "a".repeat(250));
    assert!(refused(&long).contains("255"));
}

#[test]
fn a_docker_hub_name_is_measured_with_its_registry_and_library() {
    let short = format!("r{}", "a".repeat(240));
    assert!(refused(&short).contains("255"));
}

#[test]
fn the_error_shows_the_image_but_bounded() {
    let long = format!("r.example/{}", "A".repeat(500));
    let err = ImageRef::parse(&long).unwrap_err().to_string();
    assert!(err.chars().count() < 300, "{err}");
}

#[test]
fn the_config_lookup_is_the_docker_get_of_host_and_repository() {
    let url = parse("registry.example.com:5000/team/app").server_url().unwrap();
    assert_eq!(url.as_str(), "registry.example.com:5000/team/app");
    assert_eq!((url.registry(), url.repository()), ("registry.example.com:5000", Some("team/app")));
}

#[test]
fn the_config_lookup_lower_cases_the_host() {
    assert_eq!(parse("Registry.Example.com/app").server_url().unwrap().registry(), "registry.example.com");
}

#[test]
fn the_config_lookup_folds_docker_hub_aliases() {
    for image in ["nginx", "docker.io/library/nginx", "registry-1.docker.io/library/nginx"] {
        assert_eq!(parse(image).server_url().unwrap().as_str(), "docker.io/library/nginx", "{image}");
    }
}

#[test]
fn a_repository_named_v2_is_a_repository_not_the_api_root() {
    // Found by the kubelet_request fuzz target: `T/v2`.
    for image in ["T/v2", "registry.example.com/v2", "registry.example.com:5000/v2:1.0"] {
        let parsed = parse(image);
        let url = parsed.server_url().unwrap();
        assert_eq!(url.repository(), Some("v2"), "{image}");
        assert_eq!(url.repository(), Some(parsed.repository()), "{image}");
    }
}

#[test]
fn the_repository_key_is_the_name_the_kubelet_passed() {
    // The kubelet passes `docker.io/library/nginx` for `nginx`; its
    // matcher needs the same number of host labels, so the key must not
    // be `index.docker.io/…`.
    assert_eq!(parse("nginx").auth_key(Coverage::Repository), "docker.io/library/nginx");
    assert_eq!(parse("r.example:5000/team/app:1").auth_key(Coverage::Repository), "r.example:5000/team/app");
}

#[test]
fn the_registry_key_is_host_and_port() {
    assert_eq!(parse("r.example:5000/team/app").auth_key(Coverage::Registry), "r.example:5000");
    assert_eq!(parse("nginx").auth_key(Coverage::Registry), "docker.io");
}
