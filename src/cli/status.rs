//! `status`: every configured or stored registry and its tokens' life.

use std::process::ExitCode;

/// `status`'s arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn status(_args: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("status is not implemented yet")
}
