//! Moving the credentials stored in client configs' `auths` into this
//! helper's store, read the way each client reads its file, before the
//! entries that held them are taken out.
//!
//! Docker's `config.json` is read as Docker reads it: every key is its
//! host's credential (`https://h/v1/`, `h/team` and `h` alike; see
//! [`StoredAuth::docker_host`]), so each moves under its host, and two keys
//! of one host that hold different credentials are refused, as no one can
//! tell which Docker would send. Containers' `auth.json` is read as
//! containers/image reads it: a key with a path and no scheme is a
//! credential for that namespace only, which podman and skopeo use there
//! before asking any helper; it is not the host's, so it stays.
//!
//! [`Moves::plan`] reads and checks everything and changes nothing;
//! [`Moves::execute`] stores what the store does not hold yet and reads
//! each back; the files change only afterwards, each entry only if it
//! still holds what was moved.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::bail;

use super::{PROGRAM, say};
use crate::docker_config::{ConfigFile, Credential, Document, already_held, check_stored, difference};
use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// Who reads a file, which decides what its `auths` keys mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// Docker's `config.json`.
    Docker,
    /// Containers' `auth.json` (podman, skopeo, buildah).
    Containers,
}

/// A file and the registry hosts whose stored credentials it gives up.
pub(super) struct Source<'a> {
    pub file: &'a ConfigFile,
    pub hosts: &'a BTreeSet<String>,
    pub reader: Reader,
}

/// The credentials stored in `auths` entries of ordinary registries, and
/// what this helper's store holds for each of those registries once they
/// are moved there.
#[derive(Default)]
pub(super) struct Moves {
    /// By the key the store files the registry under.
    pub held: BTreeMap<ServerUrl, Held>,
}

/// One registry's credential, and the entries it is moved from.
pub(super) struct Held {
    pub credential: Credential,
    /// Where it came from: (file, `auths` key), one or more.
    pub from: Vec<(PathBuf, String)>,
    /// Whether this run stores it (else the store held it already).
    pub moved_now: bool,
}

/// Where moved credentials go: this helper's store, or a stand-in in the
/// tests of a store that fails.
pub(super) trait Destination {
    /// Files `credential` under `key` (as `server_url` in `list`) and reads
    /// it back.
    ///
    /// # Errors
    /// The store failed, or does not hold it afterwards.
    fn put(&self, key: &ServerUrl, server_url: &str, credential: &Credential) -> anyhow::Result<()>;

    /// Which store it is, for the person (Docker may run the helper with
    /// another environment than this shell's).
    fn describe(&self) -> String;
}

impl Destination for Helper {
    fn put(&self, key: &ServerUrl, server_url: &str, credential: &Credential) -> anyhow::Result<()> {
        self.store_credential(key, server_url, &credential.username, credential.secret.clone())?;
        check_stored(self, key, credential)
    }

    fn describe(&self) -> String {
        self.store().map(|s| s.describe()).unwrap_or_default()
    }
}

impl Moves {
    /// Reads what each file stores for its hosts and checks that it can be
    /// moved without losing anything: each ordinary registry has one
    /// credential in all the files, and the store holds either nothing for
    /// it or that same credential. Changes nothing.
    ///
    /// # Errors
    /// An entry cannot be read, two entries or an entry and the store
    /// disagree, or the store or the helper's config cannot be read.
    pub fn plan<'a>(helper: &Helper, sources: impl Iterator<Item = Source<'a>>) -> anyhow::Result<Moves> {
        let mut held: BTreeMap<ServerUrl, Held> = BTreeMap::new();
        for Source { file, hosts, reader } in sources {
            let path = file.path.display();
            for stored in file.doc.stored_credentials(hosts) {
                let entry = entry_name(&stored.key);
                if let Err(e) = helper.config() {
                    bail!(
                        "{path} stores a credential in {entry}, and whether that is an exchange registry cannot be \
                         told because the helper's config is unusable ({e}); fix the config and run again; nothing \
                         was changed"
                    );
                }
                let namespace = stored.namespace_for(reader);
                if helper.is_exchange_registry(namespace.unwrap_or(&stored.docker_host())) {
                    continue;
                }
                if let Some(namespace) = namespace {
                    crate::log::warn!(
                        "{path}: {entry} is a credential for one namespace ({namespace}/…) to podman, skopeo and \
                         buildah, which use it there instead of asking {PROGRAM}; Docker does not read this file; \
                         it stays"
                    );
                    continue;
                }
                let host = stored.docker_host();
                let credential = stored.credential.map_err(|why| {
                    anyhow::anyhow!(
                        "{path}: {entry} cannot be moved into {PROGRAM}'s store: {why}; fix or remove the \
                         entry by hand, then run again; nothing was changed"
                    )
                })?;
                let key = helper.storage_key(&host);
                if let Some(other) = held.get_mut(&key) {
                    if other.credential != credential {
                        let (other_path, other_key) = &other.from[0];
                        bail!(
                            "{entry} in {path} and {} in {} hold different credentials for {key} ({}){}; remove \
                             the one you do not want, then run again; nothing was changed",
                            entry_name(other_key),
                            other_path.display(),
                            difference(&credential, &other.credential),
                            if reader == Reader::Docker && other_path == &file.path {
                                format!(
                                    ", and Docker reads both as {host}'s credential (the key {host} if there \
                                     is one, else whichever it finds first)"
                                )
                            } else {
                                String::new()
                            },
                        );
                    }
                    other.from.push((file.path.clone(), stored.key));
                    continue;
                }
                let moved_now = !already_held(helper, &key, &credential).map_err(|e| {
                    anyhow::anyhow!(
                        "the stored credential of {entry} in {path} cannot be moved: {}; nothing was changed",
                        crate::redact::chain(e.chain())
                    )
                })?;
                held.insert(key, Held { credential, from: vec![(file.path.clone(), stored.key)], moved_now });
            }
        }
        Ok(Moves { held })
    }

    /// Stores each credential the store does not hold yet.
    ///
    /// # Errors
    /// A store failed; the files are then left as they are.
    pub fn execute(&self, destination: &impl Destination) -> anyhow::Result<()> {
        let mut copied = Vec::new();
        for (key, held) in self.held.iter().filter(|(_, h)| h.moved_now) {
            let (path, entry) = &held.from[0];
            if let Err(e) = destination.put(key, &listed_name(key, entry), &held.credential) {
                let copies = if copied.is_empty() {
                    String::new()
                } else {
                    format!(" (the store keeps the copies already made, of {})", copied.join(", "))
                };
                bail!(
                    "cannot move the stored credential of {} in {} into {PROGRAM}'s store: {}; no file was \
                     changed{copies}",
                    entry_name(entry),
                    path.display(),
                    crate::redact::chain(e.chain())
                );
            }
            copied.push(key.to_string());
        }
        if !copied.is_empty() {
            say(&format!("{PROGRAM}'s store ({}) now holds {}", destination.describe(), copied.join(", ")));
        }
        Ok(())
    }
}

/// The name `list` shows for a moved credential: its key, unless the key
/// has a path, which the credential is not for (Docker asks by host).
fn listed_name(key: &ServerUrl, entry: &str) -> String {
    match ServerUrl::parse(entry) {
        Ok(url) if url.repository().is_none() => entry.to_owned(),
        _ => key.display_name().to_owned(),
    }
}

/// `auths "key"`, as messages name an entry.
pub(super) fn entry_name(key: &str) -> String {
    format!("auths {}", serde_json::Value::String(key.to_owned()))
}

/// How a client reads a stored entry of its file.
trait ReadBy {
    /// The namespace the entry is a credential for to `reader`, if it is
    /// not its host's.
    fn namespace_for(&self, reader: Reader) -> Option<&ServerUrl>;
}

impl ReadBy for crate::docker_config::StoredAuth {
    fn namespace_for(&self, reader: Reader) -> Option<&ServerUrl> {
        match reader {
            Reader::Docker => None,
            Reader::Containers => self.containers_namespace(),
        }
    }
}

/// What an edit changed, and the `auths` entries it left alone because
/// they no longer hold what was moved (another program changed them after
/// they were read).
#[derive(Default)]
pub(super) struct Edit {
    pub changes: Vec<String>,
    pub kept: Vec<String>,
}

/// Takes out of `doc`'s `auths` the stored credentials that would shadow
/// this helper for `hosts`: an exchange registry's at once, an ordinary
/// registry's only if this helper's store holds the same credential.
///
/// # Errors
/// `auths` is not an object.
pub(super) fn remove_shadowing(
    doc: &mut Document,
    hosts: &BTreeSet<String>,
    reader: Reader,
    helper: &Helper,
    moves: &Moves,
) -> anyhow::Result<Edit> {
    let (mut remove, mut edit) = (Vec::new(), Edit::default());
    for stored in doc.stored_credentials(hosts) {
        let entry = entry_name(&stored.key);
        let host = stored.docker_host();
        let namespace = stored.namespace_for(reader);
        if helper.is_exchange_registry(namespace.unwrap_or(&host)) {
            edit.changes.push(format!("removed the stored credential of {entry}"));
            remove.push(stored.key);
            continue;
        }
        if namespace.is_some() {
            continue; // a namespace's credential stays (see `Moves::plan`)
        }
        let held = moves.held.get(&helper.storage_key(&host));
        let credential = match (held, &stored.credential) {
            (Some(held), Ok(credential)) if held.credential == *credential => credential,
            // Not what was moved: another program changed the entry since
            // it was read. It stays; moving it needs a new run.
            _ => {
                edit.kept.push(entry);
                continue;
            }
        };
        let user = &credential.username;
        let under = if stored.url.repository().is_some() {
            format!(" under {host}, the registry Docker sent it to")
        } else {
            String::new()
        };
        let mut change = if held.is_some_and(|h| h.moved_now) {
            format!("moved the stored credential of {entry} (user {user}) into {PROGRAM}'s store{under}")
        } else {
            format!(
                "removed the stored credential of {entry}: {PROGRAM}'s store already holds it{under} (user {user})"
            )
        };
        if stored.password_beside_token {
            change.push_str(
                "; its identity token, that is: the password beside it in \"auth\" is not kept (Docker keeps only \
                 the token in a helper too), the backup has it",
            );
        }
        edit.changes.push(change);
        remove.push(stored.key);
    }
    doc.remove_auths_credentials(&remove)?;
    Ok(edit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::cell::RefCell;

    /// A store that takes `fail_after` credentials, then fails.
    struct FailingStore {
        fail_after: usize,
        stored: RefCell<Vec<String>>,
    }

    impl Destination for FailingStore {
        fn put(&self, key: &ServerUrl, _: &str, _: &Credential) -> anyhow::Result<()> {
            if self.stored.borrow().len() >= self.fail_after {
                bail!("the keyring is locked");
            }
            self.stored.borrow_mut().push(key.to_string());
            Ok(())
        }

        fn describe(&self) -> String {
            "a test store".into()
        }
    }

    fn moves(registries: &[&str]) -> Moves {
        let held = registries
            .iter()
            .map(|r| {
                let credential =
                    Credential { username: "u".into(), secret: Secret::new(format!("pw-of-{r}")) };
                let from = vec![(PathBuf::from("/home/u/.docker/config.json"), (*r).to_owned())];
                (ServerUrl::parse(r).unwrap(), Held { credential, from, moved_now: true })
            })
            .collect();
        Moves { held }
    }

    #[test]
    fn a_store_that_fails_stops_the_move_and_names_the_copies_already_made() {
        let store = FailingStore { fail_after: 1, stored: RefCell::new(Vec::new()) };
        let err = moves(&["a.example", "b.example"]).execute(&store).unwrap_err().to_string();
        assert!(err.contains("cannot move the stored credential of auths \"b.example\""), "{err}");
        assert!(err.contains("the keyring is locked") && err.contains("no file was changed"), "{err}");
        assert!(err.contains("the store keeps the copies already made, of a.example"), "{err}");
        assert!(!err.contains("pw-of-"), "{err}");
        assert_eq!(*store.stored.borrow(), ["a.example"]);
    }

    #[test]
    fn a_store_that_fails_at_once_has_no_copies_to_name() {
        let store = FailingStore { fail_after: 0, stored: RefCell::new(Vec::new()) };
        let err = moves(&["a.example"]).execute(&store).unwrap_err().to_string();
        assert!(err.contains("no file was changed") && !err.contains("copies"), "{err}");
    }

    #[test]
    fn a_credential_moved_from_a_key_with_a_path_is_listed_under_its_host() {
        let host = ServerUrl::parse("quay.io").unwrap();
        assert_eq!(listed_name(&host, "quay.io/team"), "quay.io");
        assert_eq!(listed_name(&host, "https://quay.io"), "https://quay.io");
    }
}
