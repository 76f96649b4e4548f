//! The subcommands people run by hand (DESIGN.md section 5), parsed with
//! clap. Docker never comes here: its protocol verbs are dispatched before
//! any parsing in [`crate::main`]; they are also accepted here (hidden) so
//! that `docker-credential-exchange -v get` works when debugging.

mod configure_docker;
mod doctor;
mod login;
mod status;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// A Docker credential helper that exchanges login tokens for short-lived
/// registry tokens (RFC 8693) and keeps secrets in the OS keyring.
#[derive(Debug, Parser)]
#[command(name = "docker-credential-exchange", version, about, long_about = None)]
#[command(
    after_help = "Docker runs this helper as `docker-credential-exchange get|store|erase|list` with the request on stdin.\n\
Set it up with `docker-credential-exchange configure-docker REGISTRY`."
)]
pub struct Cli {
    /// Log what happens to stderr (same as DOCKER_CREDENTIAL_EXCHANGE_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a registry's login token in the keyring and prove it with one exchange.
    #[command(
        after_help = "Example:\n  gh auth token | docker-credential-exchange login registry.example.com --token-stdin"
    )]
    Login(login::LoginArgs),
    /// Remove a registry's stored token and its cached tokens.
    #[command(after_help = "Example:\n  docker-credential-exchange logout registry.example.com")]
    Logout {
        /// The registry, e.g. registry.example.com.
        registry: String,
    },
    /// Show every configured or stored registry and the life left in its tokens.
    #[command(after_help = "Example:\n  docker-credential-exchange status --json | jq .")]
    Status(status::StatusArgs),
    /// Run `get` as Docker would and show what came back, for debugging a failing pull.
    #[command(
        after_help = "Example:\n  docker-credential-exchange token registry.example.com/team/app --decode"
    )]
    Token(token::TokenArgs),
    /// Manage the token cache.
    #[command(
        subcommand,
        after_help = "Example:\n  docker-credential-exchange cache clear registry.example.com"
    )]
    Cache(CacheCommand),
    /// Point Docker's config.json at this helper (credHelpers, or credsStore with --store).
    #[command(
        after_help = "Example:\n  docker-credential-exchange configure-docker registry.example.com ghcr.io"
    )]
    ConfigureDocker(configure_docker::ConfigureDockerArgs),
    /// Check the config, keyring, cache, endpoints, clock and Docker's config.
    #[command(after_help = "Example:\n  docker-credential-exchange doctor")]
    Doctor,
    #[command(hide = true)]
    Get,
    #[command(hide = true)]
    Store,
    #[command(hide = true)]
    Erase,
    #[command(hide = true)]
    List,
    #[command(hide = true)]
    Version,
}

/// `cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove cached tokens: all, or one registry's.
    Clear {
        /// Only this registry's tokens.
        registry: Option<String>,
    },
    /// Print the cache directory.
    Dir,
}

/// Parses the arguments and runs the subcommand; errors go to stderr as
/// one line with their whole context chain.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::log::init(cli.verbose);
    use crate::protocol::{self, Action};
    let action = match &cli.command {
        Command::Get => Some(Action::Get),
        Command::Store => Some(Action::Store),
        Command::Erase => Some(Action::Erase),
        Command::List => Some(Action::List),
        Command::Version => Some(Action::Version),
        _ => None,
    };
    if let Some(action) = action {
        return protocol::run(action);
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("docker-credential-exchange: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Login(args) => login::login(args),
        Command::Logout { registry } => login::logout(&registry),
        Command::Status(args) => status::status(args),
        Command::Token(args) => token::token(args),
        Command::Cache(CacheCommand::Clear { registry }) => cache_clear(registry.as_deref()),
        Command::Cache(CacheCommand::Dir) => {
            println!("{}", crate::paths::cache_dir()?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::ConfigureDocker(args) => configure_docker::configure_docker(args),
        Command::Doctor => doctor::doctor(),
        Command::Get | Command::Store | Command::Erase | Command::List | Command::Version => {
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Parses a registry argument, with a message that names it.
pub(crate) fn parse_registry(raw: &str) -> anyhow::Result<ServerUrl> {
    ServerUrl::parse(raw).map_err(|e| anyhow::anyhow!("{raw:?} is not a registry: {e}"))
}

fn cache_clear(registry: Option<&str>) -> anyhow::Result<ExitCode> {
    let helper = Helper::from_env()?;
    let Some(cache) = helper.cache() else {
        println!("the cache is disabled ({}=1); nothing to clear", crate::paths::NO_CACHE_ENV);
        return Ok(ExitCode::SUCCESS);
    };
    let removed = match registry {
        Some(raw) => {
            let url = parse_registry(raw)?;
            helper.drop_cached(&helper.storage_key(&url))
        }
        None => cache.clear(),
    };
    println!("removed {removed} cached token(s) from {}", cache.dir().display());
    Ok(ExitCode::SUCCESS)
}
