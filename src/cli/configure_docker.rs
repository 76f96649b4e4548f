//! `configure-docker`: point Docker's `config.json` at this helper, with
//! `credHelpers` entries per registry or `credsStore` for all of them, or
//! take it out again with `--remove`.
//!
//! Configuring a registry also removes a stored credential for it from
//! `auths` in Docker's config and in containers' `auth.json` (clients use
//! a stored `auth` before asking any helper, so it would shadow this one;
//! `docker logout` would remove it too, but would also erase the helper's
//! own login). Switching `credsStore` away from another helper warns when
//! that helper still holds credentials, which Docker would stop seeing.
//! Every changed file keeps a timestamped backup.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::docker_config::{self, ConfigFile, HELPER_NAME};
use super::output;
use crate::deadline::Deadline;
use crate::helper::Helper;

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
    let mut file = ConfigFile::read(&path).with_context(|| format!("{} was not changed", path.display()))?;
    let keys: Vec<String> = hosts.iter().flat_map(|h| docker_config::helper_keys(h)).collect();
    let mut changes = Vec::new();
    if args.remove {
        changes.extend(file.doc.remove_cred_helpers((!keys.is_empty()).then_some(keys.as_slice()))?);
        if args.registries.is_empty() {
            changes.extend(file.doc.unset_creds_store());
        }
    } else {
        if args.store {
            if let Some(old) = file.doc.creds_store().filter(|s| s != HELPER_NAME) {
                warn_if_holding_credentials(&old);
            }
            changes.extend(file.doc.set_creds_store()?);
        }
        changes.extend(file.doc.add_cred_helpers(&keys)?);
        changes.extend(file.doc.remove_stored_auths(&hosts)?);
    }
    if changes.is_empty() {
        output::line(&format!("{}: already as asked; nothing changed", file.path.display()))?;
    } else {
        let backup = file.write()?;
        for change in &changes {
            output::line(&format!("{}: {change}", file.path.display()))?;
        }
        if let Some(backup) = backup {
            output::line(&format!("the previous file is saved as {}", backup.display()))?;
        }
    }
    if !args.remove {
        remove_shadowing_in_containers_auth(&hosts)?;
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

/// containers' `auth.json` is read by skopeo and podman before Docker's
/// config; a stored credential there shadows this helper too.
fn remove_shadowing_in_containers_auth(hosts: &BTreeSet<String>) -> anyhow::Result<()> {
    for path in docker_config::containers_auth_paths() {
        let Ok(mut file) = ConfigFile::read(&path) else { continue };
        if file.original.is_none() {
            continue;
        }
        let changes = file.doc.remove_stored_auths(hosts)?;
        if changes.is_empty() {
            continue;
        }
        let backup = file.write()?;
        for change in &changes {
            output::line(&format!("{}: {change}", file.path.display()))?;
        }
        if let Some(backup) = backup {
            output::line(&format!("the previous file is saved as {}", backup.display()))?;
        }
    }
    Ok(())
}

/// Warns when the helper `credsStore` named until now still holds
/// credentials: after the switch Docker no longer sees them.
fn warn_if_holding_credentials(old: &str) {
    let program = format!("docker-credential-{old}");
    let deadline = Deadline::after(Duration::from_secs(10));
    let held = crate::command::run(&[program.clone(), "list".into()], Some(b""), &deadline)
        .ok()
        .filter(|done| done.status.success())
        .and_then(|done| {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&done.stdout).ok()
        })
        .map_or(0, |list| list.len());
    if held > 0 {
        crate::warn!(
            "{program} holds {held} credential(s) that Docker will no longer see once credsStore is \"{HELPER_NAME}\"; \
             copy them first with `docker-credential-exchange import --from {old}`"
        );
    }
}
