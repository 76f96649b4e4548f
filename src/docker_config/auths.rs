//! The credentials stored in a client config's `auths`: which entries hold
//! one, what it is, and taking it out again.
//!
//! `docker login` without a helper (and podman's `login`, in `auth.json`)
//! stores the password itself as `"auth": base64(user:password)`, or an
//! `identitytoken`. Such an entry shadows this helper, but it may also be
//! the only copy of the password, so it is read the way Docker's own
//! config loader reads it and handed over as Docker's native store would
//! hand it to a helper, before anything removes it.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Document, raw};

use crate::secret::Secret;
use crate::server_url::ServerUrl;

/// `auths` fields that hold a credential, which clients use before asking
/// any helper.
const STORED_FIELDS: [&str; 3] = ["auth", "identitytoken", "password"];

/// The username Docker's native store files an identity token under.
const IDENTITY_TOKEN_USERNAME: &str = "<token>";

/// A username and secret, as a helper's `store` takes them. `Debug`
/// shows the secret as `Secret(REDACTED)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credential {
    /// The username (`<token>` for an identity token, as Docker files it).
    pub username: String,
    /// The password or identity token.
    pub secret: Secret,
}

/// Why an `auths` entry's credential cannot be read. None of these says
/// anything of the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// `auth` is not base64 of `user:password`; Docker refuses it too.
    #[error("its \"auth\" is not base64 of user:password (Docker cannot read it either)")]
    Malformed,
    /// A password without a username; no helper can store that.
    #[error("it has a password but no username")]
    NoUsername,
}

/// An `auths` entry that holds a credential.
#[derive(Debug)]
pub(crate) struct StoredAuth {
    /// The entry's key as the file spells it.
    pub key: String,
    /// The registry it names, with the path the key has, if any.
    pub url: ServerUrl,
    /// The credential, or why it cannot be read.
    pub credential: Result<Credential, AuthError>,
    /// Whether the entry holds a password (`auth`) beside the identity
    /// token that [`StoredAuth::credential`] is: a helper keeps one secret.
    pub password_beside_token: bool,
}

impl StoredAuth {
    /// The registry host whose credential the entry is to Docker. Docker's
    /// CLI reduces every `auths` key to its host before it compares it
    /// with the registry it looks up (docker/cli
    /// `cli/config/credentials/file_store.go`, `fileStore.Get` and
    /// `ConvertToHostname`): `https://h/v1/`, `h/team` and `h` all hold
    /// `h`'s credential.
    pub fn docker_host(&self) -> ServerUrl {
        self.url.host_only()
    }

    /// The namespace (`host/path`) the entry is a credential for to
    /// containers/image (podman, skopeo, buildah), if it is one: a key
    /// without a scheme but with a path is matched only for images under
    /// that path, while a key with a scheme is reduced to its host as
    /// Docker does (containers/image `pkg/docker/config`,
    /// `normalizeAuthFileKey` and `authKeysForKey`).
    pub fn containers_namespace(&self) -> Option<&ServerUrl> {
        let has_scheme = ["http://", "https://"]
            .iter()
            .any(|s| self.key.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
        (!has_scheme && self.url.repository().is_some()).then_some(&self.url)
    }
}

impl Document {
    /// `auths` entries holding a stored credential for a registry host in
    /// `hosts`: (the entry's key, the field that holds it).
    pub fn stored_auths(&self, hosts: &BTreeSet<String>) -> Vec<(String, &'static str)> {
        self.auths_for(hosts)
            .into_iter()
            .filter_map(|(key, _, entry)| stored_field(&entry).map(|field| (key, field)))
            .collect()
    }

    /// The registry host of every `auths` entry that holds a credential.
    pub fn stored_hosts(&self) -> BTreeSet<String> {
        let Ok(auths) = self.object("auths") else { return BTreeSet::new() };
        auths
            .iter()
            .filter(|(_, entry)| {
                matches!(serde_json::from_str::<Value>(entry.get()), Ok(Value::Object(e)) if stored_field(&e).is_some())
            })
            .filter_map(|(key, _)| Some(ServerUrl::parse(key).ok()?.registry().to_owned()))
            .collect()
    }

    /// The credentials stored in `auths` entries for a registry host in
    /// `hosts`, read as Docker reads them.
    pub fn stored_credentials(&self, hosts: &BTreeSet<String>) -> Vec<StoredAuth> {
        self.auths_for(hosts)
            .into_iter()
            .filter(|(_, _, entry)| stored_field(entry).is_some())
            .map(|(key, url, entry)| StoredAuth {
                key,
                url,
                credential: credential_of(&entry),
                password_beside_token: non_empty(&entry, "identitytoken").is_some()
                    && non_empty(&entry, "auth").is_some(),
            })
            .collect()
    }

    /// The credential the `auths` entry `key` (spelled exactly so) holds
    /// now, if it holds one.
    pub fn auths_credential(&self, key: &str) -> Option<Result<Credential, AuthError>> {
        let auths = self.object("auths").ok()?;
        let (_, value) = auths.iter().rev().find(|(k, _)| k == key)?;
        match serde_json::from_str::<Value>(value.get()) {
            Ok(Value::Object(entry)) if stored_field(&entry).is_some() => Some(credential_of(&entry)),
            _ => None,
        }
    }

    /// Stores `credential` in the `auths` entry `key` as Docker's own
    /// config loader writes it (`auth`: base64 of `user:password`, or an
    /// `identitytoken` for the `<token>` username), keeping the entry's
    /// other fields (`email`).
    ///
    /// # Errors
    /// `auths` or the entry is not a JSON object.
    pub fn put_auths_credential(&mut self, key: &str, credential: &Credential) -> anyhow::Result<()> {
        use base64::Engine as _;
        let mut auths = self.object("auths")?;
        let mut entry = match auths.iter().rev().find(|(k, _)| k == key) {
            None => serde_json::Map::new(),
            Some((_, value)) => match serde_json::from_str::<Value>(value.get()) {
                Ok(Value::Object(entry)) => entry,
                _ => anyhow::bail!("its auths {} is not a JSON object; fix it by hand", super::quoted(key)),
            },
        };
        for field in STORED_FIELDS.iter().chain(&["username"]) {
            entry.remove(*field);
        }
        let secret = credential.secret.expose();
        if credential.username == IDENTITY_TOKEN_USERNAME {
            entry.insert("identitytoken".into(), Value::String(secret.to_owned()));
        } else {
            let pair = zeroize::Zeroizing::new(format!("{}:{secret}", credential.username));
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
            crate::redact::remember(&encoded);
            entry.insert("auth".into(), Value::String(encoded));
        }
        let value = raw(Value::Object(entry).to_string())?;
        match auths.iter_mut().rev().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => auths.push((key.to_owned(), value)),
        }
        self.set_object("auths", &auths)
    }

    /// The `auths` entries for a registry host in `hosts` that are JSON
    /// objects: (key, registry, entry).
    fn auths_for(
        &self,
        hosts: &BTreeSet<String>,
    ) -> Vec<(String, ServerUrl, serde_json::Map<String, Value>)> {
        let Ok(auths) = self.object("auths") else { return Vec::new() };
        auths
            .iter()
            .filter_map(|(key, entry)| {
                let url = ServerUrl::parse(key).ok().filter(|u| hosts.contains(u.registry()))?;
                match serde_json::from_str::<Value>(entry.get()) {
                    Ok(Value::Object(entry)) => Some((key.clone(), url, entry)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Takes the stored credential (and its username) out of the `auths`
    /// entries named in `keys`, keeping any other field; an entry left
    /// empty is removed. Returns the keys whose entry changed.
    ///
    /// # Errors
    /// `auths` is not an object.
    pub fn remove_auths_credentials(&mut self, keys: &[String]) -> anyhow::Result<Vec<String>> {
        let mut auths = self.object("auths")?;
        let mut removed = Vec::new();
        for (key, value) in auths.iter_mut().filter(|(k, _)| keys.contains(k)) {
            let Ok(Value::Object(mut entry)) = serde_json::from_str::<Value>(value.get()) else { continue };
            if stored_field(&entry).is_none() {
                continue;
            }
            for field in STORED_FIELDS.iter().chain(&["username"]) {
                entry.remove(*field);
            }
            *value = raw(Value::Object(entry).to_string())?;
            removed.push(key.clone());
        }
        if removed.is_empty() {
            return Ok(removed);
        }
        auths.retain(|(k, v)| !(removed.contains(k) && v.get() == "{}"));
        self.set_object("auths", &auths)?;
        Ok(removed)
    }
}

/// The field of an `auths` entry that holds a credential, if any.
fn stored_field(entry: &serde_json::Map<String, Value>) -> Option<&'static str> {
    STORED_FIELDS
        .iter()
        .find(|f| entry.get(**f).and_then(Value::as_str).is_some_and(|s| !s.is_empty()))
        .copied()
}

fn non_empty<'a>(entry: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a str> {
    entry.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The credential an entry holds, as Docker's native store would pass it
/// to a helper: an identity token under the username `<token>`, else the
/// user and password of `auth` (base64 of `user:password`, the password's
/// trailing NULs trimmed as Docker trims them), else `username` and
/// `password`.
fn credential_of(entry: &serde_json::Map<String, Value>) -> Result<Credential, AuthError> {
    if let Some(token) = non_empty(entry, "identitytoken") {
        return Ok(Credential {
            username: IDENTITY_TOKEN_USERNAME.to_owned(),
            secret: Secret::new(token.to_owned()),
        });
    }
    let (username, password) = match non_empty(entry, "auth") {
        Some(auth) => {
            use base64::Engine as _;
            // The encoded pair is as secret as the password in it.
            crate::redact::remember(auth);
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(AuthError::Malformed)?;
            let decoded = zeroize::Zeroizing::new(decoded);
            let (user, password) = decoded.split_once(':').ok_or(AuthError::Malformed)?;
            (user.to_owned(), password.trim_matches('\0').to_owned())
        }
        None => (
            non_empty(entry, "username").unwrap_or_default().to_owned(),
            non_empty(entry, "password").unwrap_or_default().to_owned(),
        ),
    };
    if username.is_empty() {
        return Err(AuthError::NoUsername);
    }
    Ok(Credential { username, secret: Secret::new(password) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(h: &str) -> BTreeSet<String> {
        BTreeSet::from([h.to_owned()])
    }

    fn only_credential(json: &str, host: &str) -> Result<Credential, AuthError> {
        let doc = Document::parse(json.as_bytes()).unwrap();
        let mut found = doc.stored_credentials(&hosts(host));
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0).credential
    }

    #[test]
    fn an_auth_field_is_read_as_base64_of_user_and_password() {
        // bob:pa:ss
        let cred =
            only_credential(r#"{"auths": {"r.example": {"auth": "Ym9iOnBhOnNz"}}}"#, "r.example").unwrap();
        assert_eq!((cred.username.as_str(), cred.secret.expose()), ("bob", "pa:ss"));
    }

    #[test]
    fn an_identity_token_is_filed_under_the_token_username() {
        let cred = only_credential(
            r#"{"auths": {"r.example": {"auth": "Ym9iOnB3", "identitytoken": "refresh-123"}}}"#,
            "r.example",
        )
        .unwrap();
        assert_eq!((cred.username.as_str(), cred.secret.expose()), ("<token>", "refresh-123"));
    }

    #[test]
    fn plain_username_and_password_fields_are_read() {
        let cred = only_credential(
            r#"{"auths": {"https://r.example": {"username": "u", "password": "p"}}}"#,
            "r.example",
        )
        .unwrap();
        assert_eq!((cred.username.as_str(), cred.secret.expose()), ("u", "p"));
    }

    #[test]
    fn an_auth_that_is_not_base64_of_a_pair_is_malformed() {
        assert_eq!(
            only_credential(r#"{"auths": {"r.example": {"auth": "%%%"}}}"#, "r.example"),
            Err(AuthError::Malformed)
        );
        // "nocolon"
        assert_eq!(
            only_credential(r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#, "r.example"),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn a_password_without_a_username_cannot_be_moved() {
        // ":pw"
        assert_eq!(
            only_credential(r#"{"auths": {"r.example": {"auth": "OnB3"}}}"#, "r.example"),
            Err(AuthError::NoUsername)
        );
    }

    #[test]
    fn stored_auths_names_the_field_that_holds_the_credential() {
        let doc = Document::parse(
            br#"{"auths": {"https://r.example": {"identitytoken": "t"}, "r.example/v2/": {}, "other": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        assert_eq!(
            doc.stored_auths(&hosts("r.example")),
            [("https://r.example".to_owned(), "identitytoken")]
        );
    }

    #[test]
    fn entries_without_a_secret_hold_no_credential() {
        let doc = Document::parse(br#"{"auths": {"r.example": {}, "s.example": {"email": "x"}}}"#).unwrap();
        let all = BTreeSet::from(["r.example".to_owned(), "s.example".to_owned()]);
        assert!(doc.stored_credentials(&all).is_empty());
    }

    #[test]
    fn removing_a_credential_keeps_other_fields_and_drops_an_empty_entry() {
        let mut doc = Document::parse(
            br#"{"auths": {"r.example": {"auth": "dTpw", "email": "x"}, "s.example": {"auth": "dTpw"}, "other": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        let removed = doc.remove_auths_credentials(&["r.example".into(), "s.example".into()]).unwrap();
        assert_eq!(removed, ["r.example", "s.example"]);
        let rendered: Value = serde_json::from_str(&doc.render(false)).unwrap();
        assert_eq!(
            rendered["auths"],
            serde_json::json!({"r.example": {"email": "x"}, "other": {"auth": "eDp5"}})
        );
    }

    #[test]
    fn an_entry_without_a_credential_is_not_removed() {
        let mut doc = Document::parse(br#"{"auths": {"r.example": {}}}"#).unwrap();
        assert!(doc.remove_auths_credentials(&["r.example".into()]).unwrap().is_empty());
        assert!(doc.render(false).contains("r.example"));
    }
}

#[cfg(test)]
mod reading {
    use super::*;

    fn only(json: &str) -> StoredAuth {
        let doc = Document::parse(json.as_bytes()).unwrap();
        let mut found = doc.stored_credentials(&BTreeSet::from(["r.example".to_owned()]));
        assert_eq!(found.len(), 1, "{found:?}");
        found.remove(0)
    }

    #[test]
    fn docker_reads_every_key_as_its_hosts_credential() {
        for key in ["r.example", "https://r.example/v1/", "r.example/team", "HTTP://r.example/x/y"] {
            let auth = only(&format!(r#"{{"auths": {{"{key}": {{"auth": "dTpw"}}}}}}"#));
            assert_eq!(auth.docker_host().as_str(), "r.example", "{key}");
        }
    }

    #[test]
    fn containers_read_a_key_with_a_path_and_no_scheme_as_a_namespace() {
        let namespace = |key: &str| {
            only(&format!(r#"{{"auths": {{"{key}": {{"auth": "dTpw"}}}}}}"#))
                .containers_namespace()
                .map(|u| u.as_str().to_owned())
        };
        assert_eq!(namespace("r.example/team").as_deref(), Some("r.example/team"));
        assert_eq!(namespace("https://r.example/v1/"), None);
        assert_eq!(namespace("r.example"), None);
    }

    #[test]
    fn a_password_beside_an_identity_token_is_noticed() {
        assert!(
            only(r#"{"auths": {"r.example": {"auth": "dTpw", "identitytoken": "t"}}}"#).password_beside_token
        );
        assert!(!only(r#"{"auths": {"r.example": {"identitytoken": "t"}}}"#).password_beside_token);
    }

    #[test]
    fn a_credential_put_back_reads_back_the_same_and_keeps_other_fields() {
        let mut doc = Document::parse(br#"{"auths": {"r.example": {"email": "x@y"}}}"#).unwrap();
        let password = Credential { username: "u".into(), secret: Secret::new("pa:ss".into()) };
        doc.put_auths_credential("r.example", &password).unwrap();
        let token = Credential { username: "<token>".into(), secret: Secret::new("refresh-1".into()) };
        doc.put_auths_credential("s.example", &token).unwrap();
        assert_eq!(doc.auths_credential("r.example").unwrap().unwrap(), password);
        assert_eq!(doc.auths_credential("s.example").unwrap().unwrap(), token);
        let rendered: Value = serde_json::from_str(&doc.render(false)).unwrap();
        assert_eq!(rendered["auths"]["r.example"]["email"], "x@y");
        assert_eq!(rendered["auths"]["s.example"], serde_json::json!({"identitytoken": "refresh-1"}));
    }
}
