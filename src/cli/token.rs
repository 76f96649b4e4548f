//! `token`: run `get` as Docker would and show what came back.

use std::process::ExitCode;

/// `token`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// SERVER or SERVER/REPOSITORY.
    pub server: String,
    /// Exchange anew instead of using the cache.
    #[arg(long)]
    pub refresh: bool,
    /// Decode the token's JWT header and claims.
    #[arg(long)]
    pub decode: bool,
    /// Print the token itself.
    #[arg(long)]
    pub show_secret: bool,
}

pub(super) fn token(_args: TokenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("token is not implemented yet")
}
