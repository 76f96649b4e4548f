//! Pulling a manifest by hand through distribution's token authentication,
//! the way a container runtime does with the username and password a
//! credential provider gave the kubelet: ask the registry, follow its
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge to the
//! realm with those credentials as HTTP Basic, and ask again with the
//! bearer token. Plain HTTP/1.0 on 127.0.0.1, so the answer is never
//! chunked and the connection closes when it is complete.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use test_servers::codec::{base64_encode, form_encode};

/// The manifest types a runtime accepts; distribution 2.8 refuses to serve
/// an OCI manifest to a client that does not list it.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// What a pull of one manifest came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pull {
    /// The registry served the manifest.
    Pulled {
        /// Its `Docker-Content-Digest`.
        digest: String,
    },
    /// A step refused: which one, its status and body.
    Refused {
        /// `realm` or `registry`.
        by: &'static str,
        status: u16,
        body: String,
    },
}

impl Pull {
    pub fn is_pulled(&self) -> bool {
        matches!(self, Pull::Pulled { .. })
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// `GET http://127.0.0.1:PORT/…` with `headers`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not a plain http URL: {url}"));
    let (authority, target) = rest.find('/').map_or((rest, "/"), |at| (&rest[..at], &rest[at..]));
    let mut stream = TcpStream::connect(authority).unwrap_or_else(|e| panic!("connect {authority}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("set a read timeout");
    let mut request = format!("GET {target} HTTP/1.0\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("send to {authority}: {e}"));
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap_or_else(|e| panic!("read from {authority}: {e}"));
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok());
    let status = status.unwrap_or_else(|| panic!("no HTTP status from {url}: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer { status, headers, body: body.to_owned() }
}

/// The parameters of a `Bearer` challenge: `realm`, `service`, `scope`.
pub fn bearer_challenge(header: &str) -> Option<BTreeMap<String, String>> {
    let params = header.strip_prefix("Bearer ")?;
    let mut out = BTreeMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        out.insert(key.trim().to_owned(), value.to_owned());
        rest = after.trim_start_matches(',').trim();
    }
    Some(out)
}

/// Pulls `repository:reference`'s manifest from `registry` (`127.0.0.1:PORT`)
/// with `username`/`password` as the realm's Basic credentials.
pub fn pull_manifest(
    registry: &str,
    repository: &str,
    reference: &str,
    username: &str,
    password: &str,
) -> Pull {
    let manifest = format!("http://{registry}/v2/{repository}/manifests/{reference}");
    let first = get(&manifest, &[("Accept", ACCEPT)]);
    if first.status != 401 {
        return Pull::Refused { by: "registry", status: first.status, body: first.body };
    }
    let challenge = first.headers.get("www-authenticate").and_then(|h| bearer_challenge(h));
    let challenge = challenge.unwrap_or_else(|| panic!("no Bearer challenge from {manifest}: {first:?}"));
    let query: Vec<String> = ["service", "scope"]
        .iter()
        .filter_map(|k| challenge.get(*k).map(|v| format!("{k}={}", form_encode(v))))
        .collect();
    let realm = format!("{}?{}", challenge["realm"], query.join("&"));
    let basic = format!("Basic {}", base64_encode(format!("{username}:{password}").as_bytes()));
    let grant = get(&realm, &[("Authorization", &basic)]);
    if grant.status != 200 {
        return Pull::Refused { by: "realm", status: grant.status, body: grant.body };
    }
    let token: serde_json::Value = serde_json::from_str(&grant.body).expect("the realm answers JSON");
    let token = token["token"].as_str().expect("the realm's answer has a token");
    let bearer = format!("Bearer {token}");
    let second = get(&manifest, &[("Accept", ACCEPT), ("Authorization", &bearer)]);
    match (second.status, second.headers.get("docker-content-digest")) {
        (200, Some(digest)) => Pull::Pulled { digest: digest.clone() },
        _ => Pull::Refused { by: "registry", status: second.status, body: second.body },
    }
}
