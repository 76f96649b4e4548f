//! `configure-docker`: point Docker's `config.json` at this helper, with
//! `credHelpers` entries per registry or `credsStore` for all of them, or
//! take it out again with `--remove`.
//!
//! Configuring a registry also takes a stored credential for it out of
//! `auths` in Docker's config and in containers' `auth.json` (clients use
//! a stored `auth` before asking any helper, so it would shadow this one;
//! `docker logout` would remove it too, but would also erase the helper's
//! own login). For an ordinary registry that entry may be the only copy of
//! the password (`docker login` without a helper), so it is first moved
//! into this helper's store, and removed only once the store holds it;
//! for an exchange registry the helper serves tokens from its own login
//! and the entry is only removed. Switching `credsStore` away from another
//! helper warns, before the switch, when that helper still holds
//! credentials, which Docker would stop seeing. Every changed file keeps a
//! timestamped backup.
//!
//! The slow steps (the old helper's `list`, the keyring) come first and
//! each file is read again right before it is written, so that a change
//! another program (`docker login`, Docker Desktop) makes meanwhile is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::docker_config::{self, ConfigFile, Credential, Document, HELPER_NAME};
use super::held::{already_held, check_stored, difference};
use super::output;
use crate::deadline::Deadline;
use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// This helper's program, as messages name it.
const HELPER: &str = "docker-credential-exchange";

/// `configure-docker`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ConfigureDockerArgs {
    /// Registries to add to credHelpers (default: every exchange registry in the config).
    pub registries: Vec<String>,
    /// Set credsStore instead: the helper serves every registry.
    #[arg(long)]
    pub store: bool,
    /// Take this helper out of Docker's config: its credHelpers entries (all, or the named registries') and credsStore.
    #[arg(long, conflicts_with = "store")]
    pub remove: bool,
}

pub(super) fn configure_docker(args: ConfigureDockerArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let hosts = hosts(&args, helper)?;
    let path = docker_config::docker_config_path()?;
    let keys: Vec<String> = hosts.iter().flat_map(|h| docker_config::helper_keys(h)).collect();
    let first = read(&path)?;
    if args.remove {
        let mut file = first;
        let mut changes = file.doc.remove_cred_helpers((!keys.is_empty()).then_some(keys.as_slice()))?;
        if args.registries.is_empty() {
            changes.extend(file.doc.unset_creds_store());
        }
        write(&file, &changes, true, helper.deadline())?;
        return Ok(ExitCode::SUCCESS);
    }
    // The old helper may take seconds to answer: ask it before the change,
    // and read the file again afterwards.
    let first = match first.doc.creds_store().filter(|s| s != HELPER_NAME) {
        Some(old) if args.store => {
            warn_if_holding_credentials(&old);
            read(&path)?
        }
        _ => first,
    };
    // Under credsStore Docker asks this helper for every registry and takes
    // its answer (a "not found" too) over the file's `auths`: every stored
    // credential in config.json moves. containers/image has no credsStore,
    // so auth.json keeps what is not named.
    let mut docker_hosts = hosts.clone();
    if args.store {
        docker_hosts.extend(first.doc.stored_hosts());
    }
    let auth_files: Vec<ConfigFile> = docker_config::containers_auth_paths()
        .iter()
        .filter_map(|p| ConfigFile::read(p).ok())
        .filter(|f| f.original.is_some())
        .collect();
    let moves = Moves::plan(
        helper,
        std::iter::once((&first, &docker_hosts)).chain(auth_files.iter().map(|f| (f, &hosts))),
    )?;
    // A read-only file is refused before anything is moved or written.
    if !edit_docker_config(&mut first.doc.clone(), &args, &keys, &docker_hosts, helper, &moves)?
        .changes
        .is_empty()
    {
        first.ensure_writable()?;
    }
    for file in &auth_files {
        if !remove_shadowing(&mut file.doc.clone(), &hosts, helper, &moves)?.changes.is_empty() {
            file.ensure_writable()?;
        }
    }
    moves.execute(helper)?;

    let mut kept = Vec::new();
    let mut file = read(&path)?;
    let edit = edit_docker_config(&mut file.doc, &args, &keys, &docker_hosts, helper, &moves)?;
    write(&file, &edit.changes, true, helper.deadline())?;
    kept.extend(edit.kept.iter().map(|entry| format!("{entry} in {}", file.path.display())));
    for earlier in &auth_files {
        let Ok(mut file) = ConfigFile::read(&earlier.path) else { continue };
        let edit = remove_shadowing(&mut file.doc, &hosts, helper, &moves)?;
        write(&file, &edit.changes, false, helper.deadline())?;
        kept.extend(edit.kept.iter().map(|entry| format!("{entry} in {}", file.path.display())));
    }
    if !kept.is_empty() {
        bail!(
            "{} changed while configure-docker ran, so its stored credential was not moved into {HELPER}'s store \
             and is still there; run configure-docker again to move it",
            kept.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The registry hosts asked for, or every exchange registry's.
fn hosts(args: &ConfigureDockerArgs, helper: &Helper) -> anyhow::Result<BTreeSet<String>> {
    if args.registries.is_empty() {
        if args.store || args.remove {
            return Ok(BTreeSet::new());
        }
        let config = helper.config()?;
        let hosts: BTreeSet<String> = config.ids().map(|id| config.key(id).registry().to_owned()).collect();
        if hosts.is_empty() {
            bail!(
                "no exchange registries are configured in {}; name the registries (configure-docker REGISTRY…) \
                 or use --store to serve every registry",
                helper.config_path().display()
            );
        }
        return Ok(hosts);
    }
    let mut hosts = BTreeSet::new();
    for raw in &args.registries {
        let url = super::parse_registry(raw)?;
        if url.repository().is_some() {
            crate::warn!(
                "Docker asks credential helpers per registry host; using {} for {raw}",
                url.registry()
            );
        }
        hosts.insert(url.registry().to_owned());
    }
    Ok(hosts)
}

fn read(path: &Path) -> anyhow::Result<ConfigFile> {
    ConfigFile::read(path).with_context(|| format!("{} was not changed", path.display()))
}

/// Writes `file` if anything changed, and says what.
fn write(
    file: &ConfigFile,
    changes: &[String],
    say_if_unchanged: bool,
    deadline: &Deadline,
) -> anyhow::Result<()> {
    if changes.is_empty() {
        if say_if_unchanged {
            say(&format!("{}: already as asked; nothing changed", file.path.display()));
        }
        return Ok(());
    }
    let backup = file.write(deadline)?;
    for change in changes {
        say(&format!("{}: {change}", file.path.display()));
    }
    if let Some(backup) = backup {
        let secrets = changes.iter().any(|c| c.contains("stored credential"));
        let note = if secrets {
            "; it still holds the stored credentials taken out of the file: delete it once pulls work"
        } else {
            ""
        };
        say(&format!("the previous file is saved as {}{note}", backup.display()));
    }
    Ok(())
}

/// Progress for the person running the command. Best effort: a closed
/// stdout (`| head`) must not stop the work halfway between files.
fn say(line: &str) {
    let _ = output::line(line);
}

/// What an edit changed, and the `auths` entries it left alone because
/// they no longer hold what was moved (another program changed them after
/// they were read).
struct Edit {
    changes: Vec<String>,
    kept: Vec<String>,
}

fn edit_docker_config(
    doc: &mut Document,
    args: &ConfigureDockerArgs,
    keys: &[String],
    hosts: &BTreeSet<String>,
    helper: &Helper,
    moves: &Moves,
) -> anyhow::Result<Edit> {
    let mut changes = Vec::new();
    if args.store {
        changes.extend(doc.set_creds_store()?);
    }
    changes.extend(doc.add_cred_helpers(keys)?);
    let removed = remove_shadowing(doc, hosts, helper, moves)?;
    changes.extend(removed.changes);
    Ok(Edit { changes, kept: removed.kept })
}

/// Takes out of `doc`'s `auths` the stored credentials that would shadow
/// this helper for `hosts`: an exchange registry's at once, an ordinary
/// registry's only if this helper's store holds the same credential.
fn remove_shadowing(
    doc: &mut Document,
    hosts: &BTreeSet<String>,
    helper: &Helper,
    moves: &Moves,
) -> anyhow::Result<Edit> {
    let (mut remove, mut changes, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    for stored in doc.stored_credentials(hosts) {
        let entry = format!("auths {}", serde_json::Value::String(stored.key.clone()));
        if is_exchange_registry(helper, &stored.url) {
            changes.push(format!("removed the stored credential of {entry}"));
        } else if stored.url.repository().is_some() {
            continue; // a namespace's credential stays (see `Moves::plan`)
        } else {
            let held = moves.held.get(&helper.storage_key(&stored.url));
            match (held, &stored.credential) {
                (Some(held), Ok(credential)) if held.credential == *credential => {
                    changes.push(if held.moved_now {
                        format!(
                            "moved the stored credential of {entry} (user {}) into {HELPER}'s store",
                            credential.username
                        )
                    } else {
                        format!(
                            "removed the stored credential of {entry}: {HELPER}'s store already holds it (user {})",
                            credential.username
                        )
                    });
                }
                // Not what was moved: another program changed the entry
                // since it was read. It stays; moving it needs a new run.
                _ => {
                    kept.push(entry);
                    continue;
                }
            }
        }
        remove.push(stored.key);
    }
    doc.remove_auths_credentials(&remove)?;
    Ok(Edit { changes, kept })
}

fn is_exchange_registry(helper: &Helper, url: &ServerUrl) -> bool {
    helper.config().is_ok_and(|c| c.lookup(url).is_some())
}

/// The credentials stored in `auths` entries of ordinary registries, and
/// what this helper's store holds for each of those registries once they
/// are moved there.
struct Moves {
    /// By the key the store files the registry under.
    held: BTreeMap<ServerUrl, Held>,
}

struct Held {
    credential: Credential,
    /// Where it came from: a file and its `auths` key.
    from: (PathBuf, String),
    /// Whether this run stores it (else the store held it already).
    moved_now: bool,
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
    fn plan<'a>(
        helper: &Helper,
        files: impl Iterator<Item = (&'a ConfigFile, &'a BTreeSet<String>)>,
    ) -> anyhow::Result<Moves> {
        let mut held: BTreeMap<ServerUrl, Held> = BTreeMap::new();
        for (file, hosts) in files {
            let path = file.path.display();
            for stored in file.doc.stored_credentials(hosts) {
                let entry = format!("auths {}", serde_json::Value::String(stored.key.clone()));
                if let Err(e) = helper.config() {
                    bail!(
                        "{path} stores a credential in {entry}, and whether that is an exchange registry cannot be \
                         told because the helper's config is unusable ({e}); fix the config and run again; nothing \
                         was changed"
                    );
                }
                if is_exchange_registry(helper, &stored.url) {
                    continue;
                }
                if stored.url.repository().is_some() {
                    // Docker and containers/image ask a helper per host:
                    // stored under its namespace, no client would find it.
                    crate::warn!(
                        "{path}: {entry} is a credential for one namespace of {}; credential helpers are asked \
                         per registry host, so it stays in the file",
                        stored.url.registry()
                    );
                    continue;
                }
                let credential = stored.credential.map_err(|why| {
                    anyhow::anyhow!(
                        "{path}: {entry} cannot be moved into {HELPER}'s store: {why}; fix or remove the \
                         entry by hand, then run again; nothing was changed"
                    )
                })?;
                let key = helper.storage_key(&stored.url);
                if let Some(other) = held.get(&key) {
                    if other.credential != credential {
                        bail!(
                            "{entry} in {path} and auths {} in {} hold different credentials for {key} ({}); \
                             remove the one you do not want, then run again; nothing was changed",
                            serde_json::Value::String(other.from.1.clone()),
                            other.from.0.display(),
                            difference(&credential, &other.credential)
                        );
                    }
                    continue;
                }
                let moved_now = !already_held(helper, &key, &credential).map_err(|e| {
                    anyhow::anyhow!(
                        "the stored credential of {entry} in {path} cannot be moved: {}; nothing was changed",
                        crate::redact::chain(e.chain())
                    )
                })?;
                held.insert(key, Held { credential, from: (file.path.clone(), stored.key), moved_now });
            }
        }
        Ok(Moves { held })
    }

    /// Stores each credential the store does not hold yet.
    ///
    /// # Errors
    /// A store failed; the files are then left as they are.
    fn execute(&self, helper: &Helper) -> anyhow::Result<()> {
        let mut copied = Vec::new();
        for (key, held) in self.held.iter().filter(|(_, h)| h.moved_now) {
            let (path, entry) = &held.from;
            let credential = held.credential.clone();
            let stored = helper
                .store_credential(key, entry, &credential.username, credential.secret.clone())
                .map_err(anyhow::Error::from)
                .and_then(|()| check_stored(helper, key, &credential));
            if let Err(e) = stored {
                let copies = if copied.is_empty() {
                    String::new()
                } else {
                    format!(" (the store keeps the copies already made, of {})", copied.join(", "))
                };
                bail!(
                    "cannot move the stored credential of auths {} in {} into {HELPER}'s store: {}; no file \
                     was changed{copies}",
                    serde_json::Value::String(entry.clone()),
                    path.display(),
                    crate::redact::chain(e.chain())
                );
            }
            copied.push(key.to_string());
        }
        if !copied.is_empty() {
            // Docker runs the helper with its own environment: say which
            // store was written, in case this shell chose another.
            let store = helper.store().map(|s| s.describe()).unwrap_or_default();
            say(&format!("{HELPER}'s store ({store}) now holds {}", copied.join(", ")));
        }
        Ok(())
    }
}

/// Warns when the helper `credsStore` named until now still holds
/// credentials: after the switch Docker no longer sees them.
fn warn_if_holding_credentials(old: &str) {
    let program = format!("docker-credential-{old}");
    let deadline = Deadline::after(Duration::from_secs(10));
    let listed = crate::command::run(&[program.clone(), "list".into()], Some(b""), &deadline)
        .ok()
        .filter(|done| done.status.success())
        .and_then(|done| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&done.stdout).ok()
        });
    let Some(list) = listed else {
        crate::warn!(
            "cannot ask {program} which credentials it holds (it did not run, failed, or took over 10s); if it \
             holds any, Docker will no longer see them once credsStore is \"{HELPER_NAME}\": copy them with \
             `docker-credential-exchange import --from {old}`"
        );
        return;
    };
    let held = list.len();
    if held > 0 {
        crate::warn!(
            "{program} holds {held} credential(s) that Docker will no longer see once credsStore is \"{HELPER_NAME}\"; \
             copy them first with `docker-credential-exchange import --from {old}`"
        );
    }
}
