//! Which helper Docker runs for a registry (`credHelpers`, else
//! `credsStore`, else the file's own `auths`), and the edits that point
//! Docker at this helper or take it out again, putting back what it had
//! replaced.

use std::collections::BTreeMap;

use super::{Document, HELPER_NAME, helper_keys, quoted, raw, string_of};

impl Document {
    /// The helper `credsStore` names.
    pub fn creds_store(&self) -> Option<String> {
        self.get("credsStore").and_then(string_of).filter(|s| !s.is_empty())
    }

    /// The helper `credHelpers` names for `key`.
    pub fn cred_helper(&self, key: &str) -> Option<String> {
        self.cred_helpers().into_iter().find(|(k, _)| k == key).map(|(_, helper)| helper)
    }

    /// Every `credHelpers` entry as (key, helper), the last of a repeated
    /// key winning, as when Docker reads it; entries whose value is not a
    /// string are left out.
    pub fn cred_helpers(&self) -> Vec<(String, String)> {
        let Ok(helpers) = self.object("credHelpers") else { return Vec::new() };
        let mut out: Vec<(String, String)> = Vec::new();
        for (key, value) in helpers {
            out.retain(|(k, _)| *k != key);
            if let Some(helper) = string_of(&value) {
                out.push((key, helper));
            }
        }
        out
    }

    /// The helper Docker runs for the registry `host`, as Docker's CLI
    /// chooses it (docker/cli `configfile.getConfiguredCredentialStore`):
    /// a `credHelpers` entry under Docker's name for the registry wins,
    /// an empty one meaning the file itself; else `credsStore`. `None`:
    /// Docker reads and writes the file's `auths`.
    pub fn docker_helper_for(&self, host: &str) -> Option<String> {
        let docker_key = helper_keys(host).into_iter().next().unwrap_or_default();
        let helpers = self.object("credHelpers").unwrap_or_default();
        match helpers.iter().rev().find(|(k, _)| *k == docker_key) {
            Some((_, v)) => string_of(v).filter(|s| !s.is_empty()),
            None => self.creds_store(),
        }
    }

    /// Sets `credsStore` to this helper; the change made, if any.
    ///
    /// # Errors
    /// Producing the JSON failed (a bug).
    pub fn set_creds_store(&mut self) -> anyhow::Result<Option<String>> {
        let current = self.creds_store();
        if current.as_deref() == Some(HELPER_NAME) {
            return Ok(None);
        }
        self.set("credsStore", raw(quoted(HELPER_NAME))?);
        Ok(Some(match current {
            Some(old) => format!("set \"credsStore\": \"{HELPER_NAME}\" (was {})", quoted(&old)),
            None => format!("set \"credsStore\": \"{HELPER_NAME}\""),
        }))
    }

    /// Takes this helper out of `credsStore`, putting back `previous`
    /// (the helper it replaced) if there was one; the change made, if any.
    ///
    /// # Errors
    /// Producing the JSON failed (a bug).
    pub fn unset_creds_store(&mut self, previous: Option<&str>) -> anyhow::Result<Option<String>> {
        if self.creds_store().as_deref() != Some(HELPER_NAME) {
            return Ok(None);
        }
        match previous.filter(|p| *p != HELPER_NAME) {
            Some(previous) => {
                self.set("credsStore", raw(quoted(previous))?);
                Ok(Some(format!(
                    "set \"credsStore\" back to {} (configure-docker had replaced it with \"{HELPER_NAME}\")",
                    quoted(previous)
                )))
            }
            None => {
                self.entries.retain(|(k, _)| k != "credsStore");
                Ok(Some(format!("removed \"credsStore\": \"{HELPER_NAME}\"")))
            }
        }
    }

    /// Points `credHelpers` at this helper for each of `keys`.
    ///
    /// # Errors
    /// `credHelpers` is not an object.
    pub fn add_cred_helpers(&mut self, keys: &[String]) -> anyhow::Result<Vec<String>> {
        let mut helpers = self.object("credHelpers")?;
        let mut changes = Vec::new();
        for key in keys {
            let current = helpers.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.get().to_owned());
            match current {
                Some(old) if string_of(&raw(old.clone())?).as_deref() == Some(HELPER_NAME) => continue,
                Some(old) => {
                    helpers.retain(|(k, _)| k != key);
                    helpers.push((key.clone(), raw(quoted(HELPER_NAME))?));
                    changes.push(format!(
                        "credHelpers {}: \"{HELPER_NAME}\" (replaced {old}, which Docker ran as docker-credential-{})",
                        quoted(key),
                        old.trim_matches('"')
                    ));
                }
                None => {
                    helpers.push((key.clone(), raw(quoted(HELPER_NAME))?));
                    changes.push(format!("added credHelpers {}: \"{HELPER_NAME}\"", quoted(key)));
                }
            }
        }
        if !changes.is_empty() {
            self.set_object("credHelpers", &helpers)?;
        }
        Ok(changes)
    }

    /// Takes out the `credHelpers` entries that name this helper (all, or
    /// those of `keys`), putting back the helper each had replaced where
    /// `previous` names one.
    ///
    /// # Errors
    /// `credHelpers` is not an object.
    pub fn remove_cred_helpers(
        &mut self,
        keys: Option<&[String]>,
        previous: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<String>> {
        let mut helpers = self.object("credHelpers")?;
        let mut changes = Vec::new();
        let mut kept = Vec::with_capacity(helpers.len());
        for (key, value) in helpers.drain(..) {
            let ours = string_of(&value).as_deref() == Some(HELPER_NAME)
                && keys.is_none_or(|keys| keys.contains(&key));
            if !ours {
                kept.push((key, value));
                continue;
            }
            match previous.get(&key).filter(|p| *p != HELPER_NAME) {
                Some(previous) => {
                    changes.push(format!(
                        "set credHelpers {} back to {} (configure-docker had replaced it with \"{HELPER_NAME}\")",
                        quoted(&key),
                        quoted(previous)
                    ));
                    kept.push((key, raw(quoted(previous))?));
                }
                None => changes.push(format!("removed credHelpers {}", quoted(&key))),
            }
        }
        if !changes.is_empty() {
            self.set_object("credHelpers", &kept)?;
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cred_helpers_that_is_not_an_object_is_refused() {
        let mut doc = Document::parse(br#"{"credHelpers": []}"#).unwrap();
        assert!(doc.add_cred_helpers(&["r".into()]).is_err());
    }

    #[test]
    fn a_present_entry_is_no_change() {
        let mut doc = Document::parse(br#"{"credHelpers": {"r": "exchange"}}"#).unwrap();
        assert!(doc.add_cred_helpers(&["r".into()]).unwrap().is_empty());
    }

    #[test]
    fn removing_this_helper_leaves_other_helpers() {
        let mut doc = Document::parse(
            br#"{"credHelpers": {"a": "exchange", "b": "gcloud"}, "credsStore": "exchange"}"#,
        )
        .unwrap();
        assert_eq!(doc.remove_cred_helpers(None, &BTreeMap::new()).unwrap().len(), 1);
        assert!(doc.unset_creds_store(None).unwrap().is_some());
        assert_eq!(doc.render(false), "{\n\t\"credHelpers\": {\n\t\t\"b\": \"gcloud\"\n\t}\n}");
    }

    #[test]
    fn removing_this_helper_puts_back_what_it_replaced() {
        let mut doc = Document::parse(
            br#"{"credsStore": "exchange", "credHelpers": {"a": "exchange", "b": "exchange"}}"#,
        )
        .unwrap();
        let previous = BTreeMap::from([("a".to_owned(), "ecr-login".to_owned())]);
        let changes = doc.remove_cred_helpers(None, &previous).unwrap();
        assert!(changes[0].contains("back to \"ecr-login\""), "{changes:?}");
        assert!(doc.unset_creds_store(Some("secretservice")).unwrap().is_some());
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&doc.render(false)).unwrap(),
            serde_json::json!({"credsStore": "secretservice", "credHelpers": {"a": "ecr-login"}})
        );
    }

    #[test]
    fn cred_helpers_are_read_as_docker_reads_them() {
        let doc = Document::parse(br#"{"credHelpers": {"a": "gcloud", "b": 5, "a": "exchange"}}"#).unwrap();
        assert_eq!(doc.cred_helpers(), [("a".to_owned(), "exchange".to_owned())]);
        assert_eq!(doc.cred_helper("a").as_deref(), Some("exchange"));
    }

    #[test]
    fn docker_asks_the_cred_helper_then_the_creds_store_then_the_file() {
        let doc = Document::parse(
            br#"{"credsStore": "desktop", "credHelpers": {"a.example": "gcloud", "b.example": "", "https://index.docker.io/v1/": "exchange"}}"#,
        )
        .unwrap();
        assert_eq!(doc.docker_helper_for("a.example").as_deref(), Some("gcloud"));
        assert_eq!(doc.docker_helper_for("b.example"), None, "an empty entry means the file");
        assert_eq!(doc.docker_helper_for("c.example").as_deref(), Some("desktop"));
        assert_eq!(doc.docker_helper_for("docker.io").as_deref(), Some("exchange"));
        assert_eq!(Document::default().docker_helper_for("c.example"), None);
    }
}
