//! The config's unit tests: the file's shape, defaults, errors in the
//! user's words, keys, lookups and relative paths.

use super::*;

fn parse(json: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/dce/config.json"), json.as_bytes().to_vec())
}

/// The only entry's settings.
fn only(json: &str) -> Result<RegistryConfig, ConfigError> {
    let config = parse(json)?;
    let id = config.ids().next().expect("one entry");
    config.registry(id).cloned()
}

const MINIMAL: &str = r#"{"registries": {"r.example": {"token_endpoint": "https://sts.example/token"}}}"#;

#[test]
fn minimal_entry_gets_the_documented_defaults() {
    let reg = only(MINIMAL).unwrap();
    assert_eq!(reg.subject_token, SourceSpec::Keyring);
    assert_eq!(reg.subject_token_type(), schema::TOKEN_TYPE_ACCESS_TOKEN);
    assert_eq!(reg.safety_margin(), 60);
    assert_eq!(reg.default_lifetime(), 60);
    assert_eq!(reg.client_auth, ClientAuth::Basic);
}

#[test]
fn the_design_example_parses() {
    let json = r#"{"registries": {"registry.example.com": {
        "token_endpoint": "https://sts.example.com/oauth2/token",
        "subject_token": { "source": "keyring" },
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "audience": "https://registry.example.com",
        "resource": ["https://registry.example.com/{repository}", "urn:x"],
        "scope": "repository:{repository}:pull,push",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "client_id": "docker",
        "client_secret": { "source": "env", "var": "STS_CLIENT_SECRET" },
        "username": "oauth2accesstoken",
        "safety_margin_seconds": 60
    }}}"#;
    let reg = only(json).unwrap();
    assert_eq!(reg.resource.as_ref().unwrap().values().len(), 2);
    assert_eq!(reg.client_secret, Some(SourceSpec::Env { var: "STS_CLIENT_SECRET".into() }));
}

#[test]
fn unknown_field_is_an_error_naming_file_field_line_and_column() {
    let json = "{\"registries\": {\"r\": {\n \"token_endpoint\": \"https://s/t\",\n \"scopes\": \"x\"}}}";
    let err = only(json).unwrap_err().to_string();
    assert!(err.contains("/etc/dce/config.json"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("column"), "{err}");
    assert!(err.contains("scopes"), "{err}");
}

#[test]
fn unknown_field_inside_a_source_is_an_error() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t",
        "subject_token": {"source": "env", "var": "X", "path": "/y"}}}}"#;
    assert!(only(json).unwrap_err().to_string().contains("path"));
}

#[test]
fn unknown_source_is_an_error() {
    let json =
        r#"{"registries": {"r": {"token_endpoint": "https://s/t", "subject_token": {"source": "vault"}}}}"#;
    assert!(only(json).unwrap_err().to_string().contains("vault"));
}

#[test]
fn a_wrongly_typed_source_is_explained_in_the_users_words() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "subject_token": "env"}}}"#;
    let err = only(json).unwrap_err().to_string();
    assert!(err.contains("registries.\"r\".subject_token"), "{err}");
    assert!(err.contains("{\"source\": \"env\", \"var\": \"NAME\"}"), "{err}");
    assert!(!err.contains("SourceSpec") && !err.contains("enum"), "{err}");
}

#[test]
fn a_wrongly_typed_number_of_seconds_is_explained_in_the_users_words() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "safety_margin_seconds": "60"}}}"#;
    let err = only(json).unwrap_err().to_string();
    assert!(err.contains("safety_margin_seconds") && err.contains("whole number of seconds"), "{err}");
    assert!(!err.contains("u64"), "{err}");
}

#[test]
fn a_trailing_comma_is_reported_on_its_own_line() {
    let json = "{\"registries\": {\n  \"r\": {\"token_endpoint\": \"https://s/t\"},\n}\n}";
    let err = parse(json).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err}");
}

#[test]
fn plain_http_endpoint_is_refused_except_on_loopback() {
    let remote = r#"{"registries": {"r": {"token_endpoint": "http://sts.invalid/token"}}}"#;
    let err = only(remote).unwrap_err().to_string();
    assert!(err.contains("registries.\"r\".token_endpoint"), "{err}");
    for ok in ["http://127.0.0.1:8080/t", "http://localhost/t", "http://[::1]:9/t"] {
        let json = format!(r#"{{"registries": {{"r": {{"token_endpoint": "{ok}"}}}}}}"#);
        assert!(only(&json).is_ok(), "{ok}");
    }
}

#[test]
fn unknown_placeholder_is_an_error() {
    let json =
        r#"{"registries": {"r": {"token_endpoint": "https://s/t", "scope": "repository:{repo}:pull"}}}"#;
    let err = only(json).unwrap_err().to_string();
    assert!(err.contains("scope") && err.contains("{repo}"), "{err}");
}

#[test]
fn keys_are_normalized() {
    let config = parse(r#"{"registries": {"HTTPS://R.Example/team/": {"token_endpoint": "https://s/t"}}}"#);
    let config = config.unwrap();
    assert_eq!(config.key(config.ids().next().unwrap()).as_str(), "r.example/team");
}

#[test]
fn two_keys_for_one_registry_are_an_error() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t"}, "https://r/": {"token_endpoint": "https://s/t"}}}"#;
    let config = parse(json).unwrap();
    let id = config.lookup(&ServerUrl::parse("r").unwrap()).unwrap();
    assert!(config.registry(id).unwrap_err().to_string().contains("names the same registry"));
    assert!(config.registries().any(|(_, r)| r.is_err()));
}

#[test]
fn the_same_key_twice_is_an_error_not_the_last_one_winning() {
    let json =
        r#"{"registries": {"r": {"token_endpoint": "https://s/a"}, "r": {"token_endpoint": "https://s/b"}}}"#;
    let config = parse(json).unwrap();
    let id = config.lookup(&ServerUrl::parse("r").unwrap()).unwrap();
    let err = config.registry(id).unwrap_err().to_string();
    assert!(err.contains("\"r\" appears twice"), "{err}");
}

#[test]
fn a_key_with_escapes_is_read_unescaped() {
    let config = parse(r#"{"registries": {"r\u002eexample": {"token_endpoint": "https://s/t"}}}"#).unwrap();
    let id = config.lookup(&ServerUrl::parse("r.example").unwrap()).unwrap();
    assert_eq!(config.name(id), "r.example");
    assert!(config.registry(id).is_ok());
}

#[test]
fn a_field_twice_in_an_entry_is_an_error() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/a", "token_endpoint": "https://s/b"}}}"#;
    assert!(only(json).unwrap_err().to_string().contains("duplicate field"));
}

#[test]
fn a_key_with_a_path_that_is_not_a_repository_name_is_an_error() {
    let json = r#"{"registries": {"r/Team/App": {"token_endpoint": "https://s/t"}}}"#;
    assert!(only(json).unwrap_err().to_string().contains("not a repository name"));
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(MINIMAL.as_bytes());
    assert!(Config::parse(Path::new("/etc/dce/config.json"), bytes).is_ok());
}

#[test]
fn a_json_array_is_not_a_config() {
    let err = parse("[]").unwrap_err().to_string();
    assert!(err.contains("expected a JSON object"), "{err}");
}

#[test]
fn lookup_takes_the_longest_whole_segment_prefix() {
    let json = r#"{"registries": {
        "r": {"token_endpoint": "https://s/host"},
        "r/team/app": {"token_endpoint": "https://s/app"}}}"#;
    let config = parse(json).unwrap();
    let find = |u: &str| {
        config
            .lookup(&ServerUrl::parse(u).unwrap())
            .map(|id| config.registry(id).unwrap().token_endpoint.clone())
    };
    assert_eq!(find("r/team/app/sub").as_deref(), Some("https://s/app"));
    assert_eq!(find("r/team/application").as_deref(), Some("https://s/host"));
    assert_eq!(find("https://r/").as_deref(), Some("https://s/host"));
    assert_eq!(find("other"), None);
    assert_eq!(find("rx"), None);
}

#[test]
fn one_bad_entry_does_not_stop_another_from_being_used() {
    let json = r#"{"registries": {
        "good": {"token_endpoint": "https://s/t"},
        "bad": {"token_endpoint": "https://s/t", "scopes": "x"}}}"#;
    let config = parse(json).unwrap();
    let good = config.lookup(&ServerUrl::parse("good").unwrap()).unwrap();
    let bad = config.lookup(&ServerUrl::parse("bad").unwrap()).unwrap();
    assert!(config.registry(good).is_ok());
    assert!(config.registry(bad).is_err());
    assert!(config.registries().any(|(_, r)| r.is_err()));
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "ca_file": "ca.pem",
        "subject_token": {"source": "file", "path": "token"}}}}"#;
    let reg = only(json).unwrap();
    assert_eq!(reg.ca_file.as_deref(), Some(Path::new("/etc/dce/ca.pem")));
    assert_eq!(reg.subject_token, SourceSpec::File { path: "/etc/dce/token".into() });
}

#[test]
fn client_secret_from_the_keyring_is_refused() {
    let json = r#"{"registries": {"r": {"token_endpoint": "https://s/t", "client_id": "c",
        "client_secret": {"source": "keyring"}}}}"#;
    assert!(only(json).unwrap_err().to_string().contains("client_secret"));
}

#[test]
fn the_store_choice_survives_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, "{\"store\": \"file\", \"registries\": {,}}").unwrap();
    assert!(Config::load(&path).is_err());
    assert_eq!(salvage_store_choice(&path), Some(StoreKind::File));
}

#[test]
fn missing_file_is_an_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(&dir.path().join("none.json")).unwrap();
    assert_eq!(config.ids().len(), 0);
}
