//! `configure-docker`: point Docker's `config.json` at this helper, with
//! `credHelpers` entries per registry or `credsStore` for all of them, or
//! take it out again with `--remove` ([`remove`]).
//!
//! Configuring a registry also takes a stored credential for it out of
//! `auths` in Docker's config and in containers' `auth.json` (clients use
//! a stored `auth` before asking any helper, so it would shadow this one;
//! `docker logout` would remove it too, but would also erase the helper's
//! own login). For an ordinary registry that entry may be the only copy of
//! the password (`docker login` without a helper), so it is first moved
//! into this helper's store, and removed only once the store holds it
//! ([`moves`], which reads each file's keys as its client does); for an
//! exchange registry the helper serves tokens from its own login and the
//! entry is only removed. What is replaced (another helper's name, a moved
//! credential's entry) is recorded first ([`record`]), so that `--remove`
//! can put it back. Every changed file keeps a timestamped backup.
//!
//! Before anything changes, the person is told what the change alone would
//! hide ([`warnings`]): the old `credsStore` helper's credentials that this
//! one does not hold, and a registry name it can give Docker nothing for.
//!
//! The slow steps (the old helper's `list`, the keyring) come first and
//! each file is read again right before it is written, so that a change
//! another program (`docker login`, Docker Desktop) makes meanwhile is kept.

mod moves;
mod remove;
mod warnings;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::PROGRAM;
use super::output::say;
use crate::deadline::Deadline;
use crate::docker_config::record::{self, Record};
use crate::docker_config::{self, ConfigFile, Document, HELPER_NAME};
use crate::helper::Helper;
use moves::{Edit, Moves, Reader, Source, remove_shadowing};

/// `configure-docker`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ConfigureDockerArgs {
    /// Registries to add to credHelpers (default: every exchange registry in the config).
    pub registries: Vec<String>,
    /// Set credsStore instead: the helper serves every registry.
    #[arg(long)]
    pub store: bool,
    /// Take this helper out of Docker's config: its credHelpers entries (all, or the named registries') and credsStore, putting back what it replaced and the credentials it moved.
    #[arg(long, conflicts_with = "store")]
    pub remove: bool,
}

pub(super) fn configure_docker(args: ConfigureDockerArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    if args.remove {
        return remove::remove(&args, helper);
    }
    let hosts = hosts(&args, helper)?;
    let path = docker_config::docker_config_path()?;
    let keys: Vec<String> = hosts.iter().flat_map(|h| docker_config::helper_keys(h)).collect();
    let first = read(&path)?;
    // The old helper may take seconds to answer: ask it before the change,
    // and read the file again afterwards.
    let first = match first.doc.creds_store().filter(|s| s != HELPER_NAME) {
        Some(old) if args.store => {
            warnings::old_creds_store(&old, helper);
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
    let sources = std::iter::once(Source { file: &first, hosts: &docker_hosts, reader: Reader::Docker })
        .chain(auth_files.iter().map(|file| Source { file, hosts: &hosts, reader: Reader::Containers }));
    let moves = Moves::plan(helper, sources)?;
    if !args.store {
        warnings::unknown_registries(&hosts, helper, &moves);
    }
    // A read-only file, or a record of earlier runs that cannot be read,
    // is refused before anything is moved or written.
    let preview = edit_docker_config(&mut first.doc.clone(), &args, &keys, &docker_hosts, helper, &moves)?;
    if !preview.edit.changes.is_empty() {
        first.ensure_writable()?;
    }
    let config_name = record::config_name(&first.path);
    let mut record = record::load(&config_name);
    if !preview.replaced.is_empty() || !moves.held.is_empty() {
        record = Ok(record.context("nothing was changed")?);
    }
    for file in &auth_files {
        let edit = remove_shadowing(&mut file.doc.clone(), &hosts, Reader::Containers, helper, &moves)?;
        if !edit.changes.is_empty() {
            file.ensure_writable()?;
        }
    }
    moves.execute(helper)?;

    let mut kept = Vec::new();
    let mut file = read(&path)?;
    let DockerEdit { edit, replaced } =
        edit_docker_config(&mut file.doc, &args, &keys, &docker_hosts, helper, &moves)?;
    // What is replaced is recorded before it is replaced, for --remove.
    remember(record, &config_name, replaced, &moves, helper.deadline())?;
    write(&file, &edit.changes, true, helper.deadline())?;
    kept.extend(edit.kept.iter().map(|entry| format!("{entry} in {}", file.path.display())));
    let moved_here = !edit.changes.is_empty();
    for earlier in &auth_files {
        let Ok(mut file) = ConfigFile::read(&earlier.path) else { continue };
        let edit = remove_shadowing(&mut file.doc, &hosts, Reader::Containers, helper, &moves)?;
        write(&file, &edit.changes, false, helper.deadline())?;
        kept.extend(edit.kept.iter().map(|entry| format!("{entry} in {}", file.path.display())));
    }
    if moved_here {
        warnings::what_containers_see(&file.path, &moves, args.store);
    }
    if !kept.is_empty() {
        bail!(
            "{} changed while configure-docker ran, so its stored credential was not moved into {PROGRAM}'s store \
             and is still there; run configure-docker again to move it",
            kept.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Records what this run replaces in Docker's config `config`: the
/// helpers it overwrites and the credentials it moves out of `auths` (of
/// any file), beside what earlier runs replaced (`earlier`).
///
/// # Errors
/// The record cannot be kept; then no file was changed.
fn remember(
    earlier: anyhow::Result<Record>,
    config: &Path,
    replaced: Replaced,
    moves: &Moves,
    deadline: &Deadline,
) -> anyhow::Result<()> {
    let moved = moves
        .held
        .iter()
        .flat_map(|(key, held)| {
            held.from.iter().map(move |(path, entry)| record::Moved {
                file: record::config_name(path),
                key: entry.clone(),
                registry: key.to_string(),
                username: held.credential.username.clone(),
                copied: held.moved_now,
            })
        })
        .collect();
    let newer = Record {
        config: config.to_owned(),
        creds_store: replaced.creds_store,
        cred_helpers: replaced.cred_helpers,
        moved,
    };
    if newer.is_empty() {
        return Ok(());
    }
    let copies: Vec<String> =
        moves.held.iter().filter(|(_, h)| h.moved_now).map(|(key, _)| key.to_string()).collect();
    let unchanged = if copies.is_empty() {
        "no file was changed".to_owned()
    } else {
        format!("no file was changed (the store keeps the copies it made, of {})", copies.join(", "))
    };
    let mut record = earlier.context(unchanged.clone())?;
    record.merge(newer);
    record::save(&record, deadline).context(unchanged)
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
            crate::log::warn!(
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

/// What the edit of Docker's config replaced: the helpers it overwrote.
#[derive(Default)]
struct Replaced {
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
}

impl Replaced {
    fn is_empty(&self) -> bool {
        self.creds_store.is_none() && self.cred_helpers.is_empty()
    }
}

/// The edit of Docker's config, and what it replaced.
struct DockerEdit {
    edit: Edit,
    replaced: Replaced,
}

fn edit_docker_config(
    doc: &mut Document,
    args: &ConfigureDockerArgs,
    keys: &[String],
    hosts: &BTreeSet<String>,
    helper: &Helper,
    moves: &Moves,
) -> anyhow::Result<DockerEdit> {
    let mut replaced = Replaced::default();
    let mut changes = Vec::new();
    if args.store {
        replaced.creds_store = doc.creds_store().filter(|s| s != HELPER_NAME);
        changes.extend(doc.set_creds_store()?);
    }
    for key in keys {
        if let Some(old) = doc.cred_helper(key).filter(|h| h != HELPER_NAME) {
            replaced.cred_helpers.insert(key.clone(), old);
        }
    }
    changes.extend(doc.add_cred_helpers(keys)?);
    let removed = remove_shadowing(doc, hosts, Reader::Docker, helper, moves)?;
    changes.extend(removed.changes);
    Ok(DockerEdit { edit: Edit { changes, kept: removed.kept }, replaced })
}
