//! The recipes of docs/providers.md, read from the document itself and run
//! through the real binary against a local endpoint that enforces each
//! provider's documented request shape (crates/test-servers/src/sts/shapes.rs
//! holds the checks and their sources):
//!
//! - Google Cloud STS: <https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token>
//! - GitLab `id_tokens`: <https://docs.gitlab.com/ci/secrets/id_token_authentication/>
//! - Keycloak standard token exchange: <https://www.keycloak.org/securing-apps/token-exchange>
//! - Okta private_key_jwt: <https://developer.okta.com/docs/guides/build-self-signed-jwt/>
//! - Auth0 private_key_jwt: <https://auth0.com/docs/get-started/authentication-and-authorization-flow/authenticate-with-private-key-jwt>
//!
//! Only the endpoint is changed (and key files are put where the recipe
//! says): a recipe that drifts from its provider's shape fails here.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::cmd::Sandbox;
use support::sts::{AssertionClient, ClientAuthMethod, ClientCredentials, Shape, Sts, StsOptions};

const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The recipe named `name` in docs/providers.md: the JSON block after its
/// `<!-- recipe: NAME -->` marker.
fn recipe(name: &str) -> Value {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/providers.md")).unwrap();
    let marker = format!("<!-- recipe: {name} -->");
    let after = doc.split_once(&marker).unwrap_or_else(|| panic!("no recipe {name} in docs/providers.md")).1;
    let block = after.split_once("```json").unwrap().1.split_once("```").unwrap().0;
    serde_json::from_str(block).unwrap_or_else(|e| panic!("recipe {name} is not JSON: {e}"))
}

/// The recipe's only registry and its entry.
fn only_entry(config: &Value) -> (String, Value) {
    let registries = config["registries"].as_object().unwrap();
    assert_eq!(registries.len(), 1);
    let (key, entry) = registries.iter().next().unwrap();
    (key.clone(), entry.clone())
}

/// Writes the recipe with its endpoint replaced by `sts`'s.
fn install(sandbox: &Sandbox, mut config: Value, sts: &Sts) -> (String, Value) {
    let (registry, _) = only_entry(&config);
    config["registries"][&registry]["token_endpoint"] = json!(sts.url());
    sandbox.write_config(&config);
    only_entry(&config)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/client-keys").join(name)
}

/// The fixture JWKS with the RSA key registered under `kid` (None: no kid).
fn jwks_with_rsa_kid(kid: Option<&str>) -> Value {
    let mut jwks: Value = serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    let rsa = jwks["keys"].as_array_mut().unwrap().iter_mut().find(|k| k["kid"] == "rsa").unwrap();
    match kid {
        Some(kid) => rsa["kid"] = json!(kid),
        None => drop(rsa.as_object_mut().unwrap().remove("kid")),
    }
    jwks
}

fn google_sts(audience: &str) -> Sts {
    Sts::start(StsOptions {
        shape: Some(Shape::GoogleSts),
        allowed_audiences: Some(vec![audience.to_owned()]),
        ..StsOptions::default()
    })
}

fn assert_google_form(sts: &Sts) {
    let req = sts.last_request().unwrap();
    let mut names: Vec<&str> = req.form.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["audience", "grant_type", "requested_token_type", "scope", "subject_token", "subject_token_type"]
    );
    assert_eq!(req.header("Authorization"), None);
}

#[test]
fn google_sts_from_github_actions_gets_an_artifact_registry_token() {
    let config = recipe("google-sts-github");
    let (_, entry) = only_entry(&config);
    let audience = entry["audience"].as_str().unwrap();
    let sts = google_sts(audience);
    let mut sandbox = Sandbox::new();
    let (registry, entry) = install(&sandbox, config, &sts);
    sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_URL", &sts.oidc_url());
    sandbox.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &sts.oidc_request_token());
    let out = sandbox.get(&registry).quiet_success();
    assert_eq!(out.json()["Username"], "oauth2accesstoken");
    assert_google_form(&sts);
    // The job's OIDC token was asked for with the provider's own audience.
    let oidc = sts.all_requests().into_iter().find(|r| r.path == "/github-oidc").unwrap();
    let asked: Vec<&str> =
        oidc.query.iter().filter(|(k, _)| k == "audience").map(|(_, v)| v.as_str()).collect();
    assert_eq!(asked, [entry["subject_token"]["audience"].as_str().unwrap()]);
}

#[test]
fn google_sts_from_gitlab_id_tokens_reads_the_job_variable() {
    let config = recipe("google-sts-gitlab");
    let (_, entry) = only_entry(&config);
    let sts = google_sts(entry["audience"].as_str().unwrap());
    let mut sandbox = Sandbox::new();
    let (registry, _) = install(&sandbox, config, &sts);
    // Outside a job: nothing to exchange, and no request.
    sandbox.get(&registry).protocol_error("credentials not found in native keychain");
    assert_eq!(sts.requests(), 0);
    sandbox.set_env(
        "GCP_ID_TOKEN",
        &sts.mint_subject_token("project_path:team/app:ref_type:branch:ref:main", 300),
    );
    sandbox.get(&registry).quiet_success();
    assert_google_form(&sts);
}

#[test]
fn keycloak_standard_token_exchange_with_a_confidential_client() {
    let config = recipe("keycloak");
    let sts = Sts::start(StsOptions {
        shape: Some(Shape::Keycloak),
        subject_token_type: ACCESS_TOKEN.into(),
        client: Some(ClientCredentials {
            id: "docker-helper".into(),
            secret: "kc-secret".into(),
            method: ClientAuthMethod::Either,
        }),
        ..StsOptions::default()
    });
    let mut sandbox = Sandbox::new();
    let (registry, _) = install(&sandbox, config, &sts);
    sandbox.set_env("KEYCLOAK_CLIENT_SECRET", "kc-secret");
    sandbox.store(&registry, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(&registry).quiet_success();
    let req = sts.last_request().unwrap();
    assert_eq!(req.form_values("audience"), ["registry"]);
    assert!(req.header("Authorization").is_some_and(|h| h.starts_with("Basic ")));
}

/// An Okta-shaped endpoint demanding private_key_jwt from the recipe's
/// client, with the fixture RSA key registered under `kid`.
fn assertion_sts(entry: &Value, audiences: Vec<String>, max_lifetime_secs: i64, kid: Option<&str>) -> Sts {
    Sts::start(StsOptions {
        shape: Some(Shape::OktaPrivateKeyJwt),
        subject_token_type: ACCESS_TOKEN.into(),
        assertion_client: Some(AssertionClient {
            id: entry["client_id"].as_str().unwrap().to_owned(),
            jwks: jwks_with_rsa_kid(kid),
            audiences,
            max_lifetime_secs,
        }),
        ..StsOptions::default()
    })
}

#[test]
fn okta_private_key_jwt_client_signs_for_the_token_endpoint() {
    let config = recipe("okta-private-key-jwt");
    let (_, entry) = only_entry(&config);
    let sts = assertion_sts(&entry, Vec::new(), 3600, entry["client_key_id"].as_str());
    let sandbox = Sandbox::new();
    let (registry, entry) = install(&sandbox, config, &sts);
    // The recipe's relative key path is beside the config file.
    let key = sandbox.config_path().parent().unwrap().join(entry["client_key"]["path"].as_str().unwrap());
    std::fs::copy(fixture("rsa-pkcs8.pem"), &key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    sandbox.store(&registry, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(&registry).quiet_success();
    let req = sts.last_request().unwrap();
    assert!(req.form_value("client_assertion").is_some());
    assert_eq!(req.form_value("scope"), entry["scope"].as_str());
}

#[test]
fn auth0_private_key_jwt_client_names_the_tenant_as_audience() {
    let config = recipe("auth0-private-key-jwt");
    let (_, entry) = only_entry(&config);
    let tenant = entry["client_assertion_audience"].as_str().unwrap().to_owned();
    let sts = assertion_sts(&entry, vec![tenant], 300, None);
    let mut sandbox = Sandbox::new();
    let (registry, _) = install(&sandbox, config, &sts);
    sandbox.set_env("AUTH0_CLIENT_KEY", &std::fs::read_to_string(fixture("rsa-pkcs1.pem")).unwrap());
    sandbox.store(&registry, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.get(&registry).quiet_success();
}

#[test]
fn the_provider_shapes_refuse_what_their_providers_refuse() {
    // The control that makes the recipes' passes mean something.
    let config = recipe("google-sts-gitlab");
    let (_, entry) = only_entry(&config);
    let sts = google_sts(entry["audience"].as_str().unwrap());
    let mut sandbox = Sandbox::new();
    let (registry, _) = install(&sandbox, config.clone(), &sts);
    let mut with_client = config;
    with_client["registries"][&registry]["token_endpoint"] = json!(sts.url());
    with_client["registries"][&registry]["client_id"] = json!("c");
    with_client["registries"][&registry]["client_secret"] = json!({"source": "env", "var": "S"});
    sandbox.write_config(&with_client);
    sandbox.set_env("S", "s");
    sandbox.set_env("GCP_ID_TOKEN", &sts.mint_subject_token("job", 300));
    let out = sandbox.get(&registry).failure();
    assert!(out.stdout.contains("Authorization header"), "{out:?}");

    let sts = Sts::start(StsOptions { shape: Some(Shape::Keycloak), ..StsOptions::default() });
    let sandbox = Sandbox::new();
    let (registry, _) = install(&sandbox, recipe("keycloak"), &sts);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.config_path()).unwrap()).unwrap();
    config["registries"][&registry]["subject_token_type"] = json!("urn:ietf:params:oauth:token-type:jwt");
    config["registries"][&registry].as_object_mut().unwrap().remove("client_secret");
    config["registries"][&registry].as_object_mut().unwrap().remove("client_id");
    sandbox.write_config(&config);
    sandbox.store(&registry, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    let out = sandbox.get(&registry).failure();
    assert!(out.stdout.contains("public clients may not exchange tokens"), "{out:?}");
}
