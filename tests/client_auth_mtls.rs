//! Client authentication by mutual TLS (RFC 8705): `tls_client_auth` with
//! a CA-issued certificate and `self_signed_tls_client_auth`, through the
//! real binary against the local STS behind its mutual-TLS front, which
//! refuses a handshake without an acceptable client certificate. The
//! certificates are made per test with rcgen, so their dates can be
//! anything.

mod support;

use std::path::PathBuf;

use rcgen::{CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
use serde_json::json;
use support::cmd::Sandbox;
use support::sts::{ClientCertTrust, Sts, StsOptions, TlsClient};

const REGISTRY: &str = "registry.example.com";
const CLIENT_ID: &str = "docker-mtls";

/// The server's certificate for 127.0.0.1 (trusted through ca_file).
struct Server {
    cert_pem: String,
    key_pem: String,
}

fn server() -> Server {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    Server { cert_pem: cert.cert.pem(), key_pem: cert.signing_key.serialize_pem() }
}

/// A client certificate and its key, as PEM, and the certificate's DER.
struct Client {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
}

fn client_params(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, CLIENT_ID);
    params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    params
}

const NOW_VALID: ((i32, u8, u8), (i32, u8, u8)) = ((2020, 1, 1), (2090, 1, 1));

fn self_signed(dates: ((i32, u8, u8), (i32, u8, u8))) -> Client {
    let key = KeyPair::generate().unwrap();
    let cert = client_params(dates.0, dates.1).self_signed(&key).unwrap();
    Client { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), key_pem: key.serialize_pem() }
}

/// A client CA and a certificate it issued.
fn ca_issued() -> (String, Client) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, "Test client CA");
    ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = client_params(NOW_VALID.0, NOW_VALID.1).signed_by(&key, &issuer).unwrap();
    let client = Client { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), key_pem: key.serialize_pem() };
    (ca_cert.pem(), client)
}

/// The STS behind the front, expecting `registered` for CLIENT_ID, and a
/// sandbox whose entry presents `presented` by `method`.
fn setup(trust: ClientCertTrust, registered: &Client, presented: &Client, method: &str) -> (Sandbox, Sts) {
    let server = server();
    let options = StsOptions {
        tls_client: Some(TlsClient { id: CLIENT_ID.into(), certificate_der: registered.cert_der.clone() }),
        ..StsOptions::default()
    };
    let sts = Sts::start_mtls(options, &server.cert_pem, &server.key_pem, &trust);
    let mut sandbox = Sandbox::new();
    let write = |name: &str, text: &str| -> PathBuf {
        let path = sandbox.root().join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    };
    let ca = write("sts-ca.pem", &server.cert_pem);
    let cert = write("client.pem", &presented.cert_pem);
    let key = write("client.key", &presented.key_pem);
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({
            "ca_file": ca,
            "subject_token": {"source": "env", "var": "JOB_TOKEN"},
            "client_auth": method,
            "client_id": CLIENT_ID,
            "client_certificate": cert,
            "client_key": {"source": "file", "path": key},
        }),
    );
    sandbox.set_env("JOB_TOKEN", &sts.mint_subject_token("job", 3600));
    (sandbox, sts)
}

#[test]
fn tls_client_auth_presents_the_ca_issued_certificate_and_the_client_id() {
    let (ca, client) = ca_issued();
    let (sandbox, sts) = setup(ClientCertTrust::Ca(ca), &client, &client, "tls_client_auth");
    sandbox.get(REGISTRY).quiet_success();
    let req = sts.last_request().unwrap();
    assert_eq!(req.form_value("client_id"), Some(CLIENT_ID));
    assert_eq!(req.form_value("client_secret"), None);
    assert_eq!(req.form_value("client_assertion"), None);
    assert_eq!(req.header("Authorization"), None);
}

#[test]
fn self_signed_tls_client_auth_presents_its_own_certificate() {
    let client = self_signed(NOW_VALID);
    let (sandbox, sts) =
        setup(ClientCertTrust::AnySelfSigned, &client, &client, "self_signed_tls_client_auth");
    sandbox.get(REGISTRY).quiet_success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1, "the second get is a cache hit");
}

#[test]
fn a_certificate_the_server_does_not_know_is_invalid_client() {
    let registered = self_signed(NOW_VALID);
    let other = self_signed(NOW_VALID);
    let (sandbox, sts) =
        setup(ClientCertTrust::AnySelfSigned, &registered, &other, "self_signed_tls_client_auth");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("invalid_client") && out.stdout.contains(&sts.url()), "{out:?}");
    assert!(out.stdout.contains("client_certificate"), "{out:?}");
}

#[test]
fn an_expired_client_certificate_is_refused_before_connecting() {
    let client = self_signed(((2020, 1, 1), (2021, 1, 1)));
    let (sandbox, sts) =
        setup(ClientCertTrust::AnySelfSigned, &client, &client, "self_signed_tls_client_auth");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("client.pem expired at 2021-01-01T00:00:00Z; renew it"), "{out:?}");
    assert!(out.stdout.contains(REGISTRY), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_client_certificate_not_yet_valid_is_refused_before_connecting() {
    let client = self_signed(((2090, 1, 1), (2091, 1, 1)));
    let (sandbox, sts) =
        setup(ClientCertTrust::AnySelfSigned, &client, &client, "self_signed_tls_client_auth");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("is not valid before 2090-01-01T00:00:00Z"), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_certificate_for_another_key_is_refused_before_connecting() {
    let client = self_signed(NOW_VALID);
    let mut mismatched = self_signed(NOW_VALID);
    mismatched.cert_pem = client.cert_pem.clone();
    let (sandbox, sts) =
        setup(ClientCertTrust::AnySelfSigned, &client, &mismatched, "self_signed_tls_client_auth");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("is not for the client key"), "{out:?}");
    assert!(!out.stdout.contains("PRIVATE KEY"), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_chain_with_the_issuer_before_the_clients_certificate_is_refused_saying_so() {
    let (ca, client) = ca_issued();
    let reordered = Client {
        cert_pem: format!("{ca}{}", client.cert_pem),
        cert_der: client.cert_der.clone(),
        key_pem: client.key_pem.clone(),
    };
    let (sandbox, sts) = setup(ClientCertTrust::Ca(ca), &client, &reordered, "tls_client_auth");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("client.pem has the client key's certificate in place 2 of 2"), "{out:?}");
    assert!(out.stdout.contains("put the client's own certificate first"), "{out:?}");
    assert!(!out.stdout.contains("configure the key it was issued for"), "misdirected: {out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn the_front_refuses_a_client_without_a_certificate() {
    // The control that makes the tests above mean something: the same
    // endpoint without a client certificate never reaches the STS.
    let (ca, client) = ca_issued();
    let (sandbox, sts) = setup(ClientCertTrust::Ca(ca), &client, &client, "tls_client_auth");
    let config = std::fs::read_to_string(sandbox.config_path()).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let entry = config["registries"][REGISTRY].as_object_mut().unwrap();
    for field in ["client_auth", "client_certificate", "client_key"] {
        entry.remove(field);
    }
    sandbox.write_config(&config);
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains(REGISTRY), "{out:?}");
    assert!(out.stdout.contains("client_auth to tls_client_auth"), "{out:?}");
    assert_eq!(sts.requests(), 0, "{out:?}");
}

#[test]
fn mutual_tls_to_a_plain_http_endpoint_is_refused_naming_the_entry() {
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config(
        REGISTRY,
        "http://127.0.0.1:9/token",
        json!({
            "subject_token": {"source": "env", "var": "JOB_TOKEN"},
            "client_auth": "tls_client_auth",
            "client_id": CLIENT_ID,
            "client_certificate": "client.pem",
            "client_key": {"source": "file", "path": "client.key"},
        }),
    );
    sandbox.set_env("JOB_TOKEN", "token");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains(&format!("registries.\"{REGISTRY}\".token_endpoint")), "{out:?}");
    assert!(out.stdout.contains("https://"), "{out:?}");
}

#[test]
fn a_certificate_from_an_untrusted_ca_is_refused_by_the_endpoint_with_a_hint() {
    let (trusted_ca, _) = ca_issued();
    let (_, stranger) = ca_issued();
    let (sandbox, sts) = setup(ClientCertTrust::Ca(trusted_ca), &stranger, &stranger, "tls_client_auth");
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("the endpoint refused client_certificate"), "{out:?}");
    assert_eq!(sts.requests(), 0, "{out:?}");
}
