//! The key forms, algorithms and refusals of client authentication, on the
//! test keys of tests/fixtures/client-keys (public, test-only keys).

use super::*;
use crate::config::KeyAlgorithm;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/client-keys/", $name))
    };
}

fn key(pem: &str) -> ClientKey {
    ClientKey::from_pem(pem.as_bytes()).unwrap()
}

/// The base64 body of a PEM key, which no message may contain any of.
fn body_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn every_supported_form_is_read_as_its_kind() {
    // A key's kind shows as the algorithm it signs with unless told.
    for (pem, natural) in [
        (fixture!("rsa-pkcs1.pem"), KeyAlgorithm::RS256),
        (fixture!("rsa-pkcs8.pem"), KeyAlgorithm::RS256),
        (fixture!("p256-sec1.pem"), KeyAlgorithm::ES256),
        (fixture!("p256-pkcs8.pem"), KeyAlgorithm::ES256),
        (fixture!("p384-sec1.pem"), KeyAlgorithm::ES384),
        (fixture!("p384-pkcs8.pem"), KeyAlgorithm::ES384),
        (fixture!("ed25519-pkcs8.pem"), KeyAlgorithm::EdDSA),
    ] {
        assert_eq!(key(pem).algorithm(None).unwrap(), natural);
    }
}

#[test]
fn a_sec1_key_is_the_same_key_as_its_pkcs8_form() {
    let sec1 = key(fixture!("p256-sec1.pem")).public_key().unwrap();
    assert_eq!(sec1, key(fixture!("p256-pkcs8.pem")).public_key().unwrap());
    let rsa = key(fixture!("rsa-pkcs1.pem")).public_key().unwrap();
    assert_eq!(rsa, key(fixture!("rsa-pkcs8.pem")).public_key().unwrap());
}

#[test]
fn the_key_decides_the_algorithm_and_rsa_may_choose_pss() {
    let rsa = key(fixture!("rsa-pkcs1.pem"));
    assert_eq!(rsa.algorithm(None).unwrap(), KeyAlgorithm::RS256);
    assert_eq!(rsa.algorithm(Some(KeyAlgorithm::PS256)).unwrap(), KeyAlgorithm::PS256);
    assert_eq!(key(fixture!("p384-sec1.pem")).algorithm(None).unwrap(), KeyAlgorithm::ES384);
    assert_eq!(key(fixture!("ed25519-pkcs8.pem")).algorithm(None).unwrap(), KeyAlgorithm::EdDSA);
    let err = key(fixture!("p256-sec1.pem")).algorithm(Some(KeyAlgorithm::ES384)).unwrap_err().to_string();
    assert!(err.contains("ES384") && err.contains("P-256") && err.contains("ES256"), "{err}");
    assert!(rsa.algorithm(Some(KeyAlgorithm::ES256)).is_err());
}

fn claims_of(token: &str) -> (serde_json::Value, serde_json::Value) {
    let decoded = crate::jwt::decode_unverified(token).unwrap();
    (decoded.header, decoded.claims)
}

#[test]
fn every_algorithm_signs_an_assertion_with_the_rfc_7523_claims() {
    for (pem, requested, alg) in [
        (fixture!("rsa-pkcs1.pem"), None, "RS256"),
        (fixture!("rsa-pkcs8.pem"), Some(KeyAlgorithm::PS256), "PS256"),
        (fixture!("p256-sec1.pem"), None, "ES256"),
        (fixture!("p384-pkcs8.pem"), None, "ES384"),
        (fixture!("ed25519-pkcs8.pem"), None, "EdDSA"),
    ] {
        let claims =
            assertion::Claims::new("docker", vec!["https://sts.example/token".into()], 1_700_000_000);
        let token = assertion::sign(&key(pem), requested, Some("k1"), &claims).unwrap();
        let (header, body) = claims_of(token.expose());
        assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some(alg), Some("k1")));
        assert_eq!(body["iss"], "docker");
        assert_eq!(body["sub"], "docker");
        assert_eq!(body["aud"], "https://sts.example/token");
        assert_eq!(body["iat"], 1_700_000_000);
        assert_eq!(body["exp"], 1_700_000_000 + 300);
        assert_eq!(body["jti"].as_str().map(str::len), Some(32));
    }
}

#[test]
fn two_assertions_never_share_a_jti() {
    let a = assertion::Claims::new("c", vec!["a".into()], 1);
    let b = assertion::Claims::new("c", vec!["a".into()], 1);
    assert_ne!(a.jti, b.jti);
}

#[test]
fn several_audiences_are_a_list_and_no_kid_is_sent_unless_configured() {
    let claims = assertion::Claims::new("c", vec!["https://a".into(), "https://b".into()], 1);
    let token = assertion::sign(&key(fixture!("p256-sec1.pem")), None, None, &claims).unwrap();
    let (header, body) = claims_of(token.expose());
    assert_eq!(body["aud"], serde_json::json!(["https://a", "https://b"]));
    assert!(header.get("kid").is_none_or(serde_json::Value::is_null), "{header}");
}

#[test]
fn a_key_is_found_beside_its_certificate() {
    let cert = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    let pem = format!("{cert}{}", fixture!("p256-sec1.pem"));
    assert_eq!(key(&pem).algorithm(None).unwrap(), KeyAlgorithm::ES256);
}

#[test]
fn unusable_keys_are_refused_in_words_without_the_key() {
    let two = format!("{}{}", fixture!("p256-sec1.pem"), fixture!("p384-sec1.pem"));
    let truncated = fixture!("rsa-pkcs1.pem").replace("-----END RSA PRIVATE KEY-----", "");
    let mangled = fixture!("p256-pkcs8.pem").replacen("MI", "MZZZ", 1);
    for (pem, words) in [
        (fixture!("encrypted.pem"), "encrypted"),
        (fixture!("p521-sec1.pem"), "P-521"),
        (two.as_str(), "more than one private key"),
        ("not a key at all", "holds no PEM private key"),
        (truncated.as_str(), "no END line"),
        (mangled.as_str(), "not a usable private key"),
    ] {
        let err = ClientKey::from_pem(pem.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(words), "{words}: {err}");
        for line in body_lines(pem) {
            assert!(line.len() < 8 || !err.contains(line), "{err} shows the key");
        }
    }
}

#[test]
fn debug_of_a_key_and_a_proof_shows_no_key_material() {
    let k = key(fixture!("p256-sec1.pem"));
    let shown = format!("{k:?}");
    assert!(shown.contains("P256") && !shown.contains("MH"), "{shown}");
    let claims = assertion::Claims::new("c", vec!["a".into()], 1);
    let proof =
        Proof { assertion: Some(assertion::sign(&k, None, None, &claims).unwrap()), ..Proof::default() };
    let shown = format!("{proof:?}");
    assert!(shown.contains("sha256:") && !shown.contains("eyJ"), "{shown}");
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused_and_a_group_readable_one_noted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    std::fs::write(&path, fixture!("p256-sec1.pem")).unwrap();
    let chmod = |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    chmod(0o600);
    assert_eq!(check_key_file(&path).unwrap(), None);
    chmod(0o640);
    assert_eq!(check_key_file(&path).unwrap(), Some(0o640));
    chmod(0o644);
    let err = check_key_file(&path).unwrap_err().to_string();
    assert!(err.contains("mode 644") && err.contains("chmod 600"), "{err}");
    let deadline = crate::deadline::Deadline::after(std::time::Duration::from_secs(5));
    assert!(read_key(&SourceSpec::File { path: path.clone() }, &deadline).is_err());
}
