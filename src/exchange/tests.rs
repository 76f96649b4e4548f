use super::*;

fn request<'a>(subject: &'a Secret, auth: ClientAuth) -> ExchangeRequest<'a> {
    ExchangeRequest {
        registry: "r.example",
        endpoint: "https://sts.example/token",
        subject_token: subject,
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
        audience: vec!["a1".into(), "a2".into()],
        resource: vec!["res".into()],
        scope: Some("repository:team/app:pull".into()),
        requested_token_type: Some("urn:ietf:params:oauth:token-type:access_token"),
        client_id: Some("docker"),
        client_secret: None,
        client_auth: auth,
        client_key: None,
        actor: None,
        ca_file: None,
        subject_rejected: "",
    }
}

#[test]
fn form_carries_every_set_parameter_with_repeated_lists() {
    let subject = Secret::new("subj".into());
    let req = request(&subject, ClientAuth::Basic);
    let form = req.form(None);
    let names: Vec<&str> = form.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "audience",
            "audience",
            "resource",
            "scope",
            "requested_token_type",
            "client_id"
        ]
    );
    assert_eq!(form[0].1, GRANT_TYPE);
}

#[test]
fn basic_auth_keeps_the_secret_out_of_the_body() {
    let subject = Secret::new("subj".into());
    let cs = Secret::new("c:s%".into());
    let req = request(&subject, ClientAuth::Basic);
    assert!(req.form(Some(&cs)).iter().all(|(k, _)| *k != "client_secret" && *k != "client_id"));
    assert_eq!(req.basic_auth(Some(&cs)), Some(("docker".into(), "c%3As%25".into())));
}

#[test]
fn post_auth_puts_id_and_secret_in_the_body() {
    let subject = Secret::new("subj".into());
    let cs = Secret::new("cs".into());
    let req = request(&subject, ClientAuth::Post);
    assert!(req.form(Some(&cs)).contains(&("client_secret", "cs")));
    assert!(req.basic_auth(Some(&cs)).is_none());
}

#[test]
fn debug_of_a_request_shows_no_secret() {
    let subject = Secret::new("the-subject-token".into());
    let shown = format!("{:?}", request(&subject, ClientAuth::Basic));
    assert!(!shown.contains("the-subject-token"));
}

#[test]
fn expires_in_as_string_is_accepted() {
    let r: TokenResponse = serde_json::from_str(r#"{"access_token":"t","expires_in":"300"}"#).unwrap();
    assert_eq!(r.expires_in, Some(300));
}

#[test]
fn an_absurd_expires_in_saturates_instead_of_failing() {
    let r: TokenResponse = serde_json::from_str(r#"{"access_token":"t","expires_in":1e30}"#).unwrap();
    assert_eq!(r.expires_in, Some(i64::MAX));
    let r: TokenResponse = serde_json::from_str(r#"{"access_token":"t","expires_in":1e19}"#).unwrap();
    assert_eq!(r.expires_in, Some(i64::MAX));
}

#[test]
fn a_negative_expires_in_is_kept_not_read_as_absent() {
    for (raw, read) in [("-5", -5), ("-1e30", i64::MIN), ("\"-5\"", -5), ("0", 0)] {
        let body = format!(r#"{{"access_token":"t","expires_in":{raw}}}"#);
        let r: TokenResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(r.expires_in, Some(read), "{raw}");
    }
}

#[test]
fn an_expires_in_string_is_read_in_every_number_form() {
    for (raw, read) in [
        ("\"-5.5\"", Some(-5)),
        ("\"-1e3\"", Some(-1000)),
        ("\"0.0\"", Some(0)),
        ("\"3e2\"", Some(300)),
        ("\" 299.9 \"", Some(299)),
        ("\"-1e30\"", Some(i64::MIN)),
        ("\"inf\"", Some(i64::MAX)),
        ("\"NaN\"", None),
        ("\"soon\"", None),
    ] {
        let body = format!(r#"{{"access_token":"t","expires_in":{raw}}}"#);
        let r: TokenResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(r.expires_in, read, "{raw}");
    }
}

#[test]
fn an_array_is_not_a_token_response() {
    assert!(crate::json::from_object_slice::<TokenResponse>(br#"["tok"]"#).is_err());
}

/// The STS's `invalid_grant` for a subject token read from `source`.
fn invalid_grant_for(source: crate::config::SourceSpec) -> ExchangeError {
    ExchangeError::Refused {
        registry: "r".into(),
        endpoint: "https://s/t".into(),
        status: 400,
        error: "invalid_grant".into(),
        description: None,
        rejected: source.when_rejected(),
        client_auth: ClientAuth::Basic,
    }
}

#[test]
fn invalid_grant_of_a_service_account_token_points_at_the_cluster_not_at_login() {
    let e = invalid_grant_for(crate::config::SourceSpec::Kubelet);
    let text = e.to_string();
    assert!(!text.contains("log in"), "{text}");
    assert!(text.contains("service account token") && text.contains("serviceAccountTokenAudience"), "{text}");
}

#[test]
fn invalid_grant_says_to_log_in_again() {
    let e = invalid_grant_for(crate::config::SourceSpec::Keyring);
    assert!(e.to_string().contains("the STS rejected the login token: log in again"), "{e}");
}
