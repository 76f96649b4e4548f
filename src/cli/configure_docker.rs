//! `configure-docker`: point Docker's config.json at this helper.

use std::process::ExitCode;

/// `configure-docker`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ConfigureDockerArgs {
    /// Registries to add to credHelpers (default: every exchange registry in the config).
    pub registries: Vec<String>,
    /// Set credsStore instead: the helper serves every registry.
    #[arg(long)]
    pub store: bool,
}

pub(super) fn configure_docker(_args: ConfigureDockerArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("configure-docker is not implemented yet")
}
