//! The subcommands people run by hand (DESIGN.md section 5), parsed with
//! clap. Docker never comes here: its protocol verbs are dispatched before
//! any parsing in [`crate::main`]. A word that is neither a protocol verb
//! nor a subcommand gets the protocol's kind of error (one line on stdout,
//! exit 1), because the caller may be a client that ran the helper with an
//! action this version does not know.

mod configure_docker;
mod doctor;
mod generate;
mod import;
mod login;
mod output;
mod status;
mod token;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::deadline::Deadline;
use crate::helper::Helper;
use crate::server_url::ServerUrl;

/// `--version`: the version, the commit it was built from and the target.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DCE_BUILD_COMMIT"),
    ", ",
    env!("DCE_BUILD_TARGET"),
    ")"
);

/// `--config`'s help, naming this system's default config file (where the
/// `directories` crate puts it, as [`crate::paths::config_file`] reads it).
#[cfg(target_os = "macos")]
const CONFIG_HELP: &str = "The config file to use (default: $DOCKER_CREDENTIAL_EXCHANGE_CONFIG, \
else ~/Library/Application Support/docker-credential-exchange/config.json)";
#[cfg(windows)]
const CONFIG_HELP: &str = "The config file to use (default: %DOCKER_CREDENTIAL_EXCHANGE_CONFIG%, \
else %APPDATA%\\docker-credential-exchange\\config\\config.json)";
#[cfg(not(any(target_os = "macos", windows)))]
const CONFIG_HELP: &str = "The config file to use (default: $DOCKER_CREDENTIAL_EXCHANGE_CONFIG, \
else ~/.config/docker-credential-exchange/config.json)";

pub(crate) use crate::program::PROGRAM;

/// A Docker credential helper that exchanges login tokens for short-lived
/// registry tokens (RFC 8693) and keeps secrets in the OS keyring.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version = LONG_VERSION, about, long_about = None)]
#[command(
    after_help = "Docker runs this helper as `docker-credential-exchange get|store|erase|list` with the request on stdin.\n\
Set it up with `docker-credential-exchange configure-docker REGISTRY`; when a pull fails, run `docker-credential-exchange doctor`."
)]
pub struct Cli {
    /// Log what happens to stderr (same as DOCKER_CREDENTIAL_EXCHANGE_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[arg(long, global = true, value_name = "FILE", help = CONFIG_HELP)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a registry's login token, after proving it with one exchange.
    #[command(
        after_help = "Examples:\n  docker-credential-exchange login registry.example.com          # prompts, echo off\n  \
gh auth token | docker-credential-exchange login registry.example.com --token-stdin\n\n\
For a registry configured for exchange, log in here, not with `docker login`: Docker checks the\n\
password against the registry before it hands it to a helper, the registry refuses a login token\n\
meant for the token endpoint (`unauthorized`), and the helper never hears of it."
    )]
    Login(login::LoginArgs),
    /// Remove a registry's stored token and its cached tokens.
    #[command(after_help = "Example:\n  docker-credential-exchange logout registry.example.com")]
    Logout {
        /// The registry, e.g. registry.example.com.
        registry: String,
    },
    /// Show every configured or stored registry, the life left in its tokens and its last failure.
    #[command(after_help = "Example:\n  docker-credential-exchange status --json | jq .")]
    Status(status::StatusArgs),
    /// Run `get` as Docker would and show what came back, for debugging a failing pull.
    #[command(
        after_help = "Examples:\n  docker-credential-exchange token registry.example.com/team/app --decode\n  \
curl -H \"Authorization: Bearer $(docker-credential-exchange token registry.example.com --raw)\" …"
    )]
    Token(token::TokenArgs),
    /// Manage the token cache.
    #[command(
        subcommand,
        after_help = "Example:\n  docker-credential-exchange cache clear registry.example.com"
    )]
    Cache(CacheCommand),
    /// Point Docker's config.json at this helper (credHelpers, or credsStore with --store), or take it out (--remove).
    #[command(
        after_help = "Examples:\n  docker-credential-exchange configure-docker registry.example.com ghcr.io\n  \
docker-credential-exchange configure-docker --remove"
    )]
    ConfigureDocker(configure_docker::ConfigureDockerArgs),
    /// Check everything a pull could trip on, each problem with its fix.
    #[command(
        after_help = "Examples:\n  docker-credential-exchange doctor\n  docker-credential-exchange doctor --exchange --json"
    )]
    Doctor(doctor::DoctorArgs),
    /// The man page or a shell's completions, for packagers.
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
    /// Copy every credential another helper holds (secretservice, pass, osxkeychain, wincred, desktop).
    #[command(after_help = "Example:\n  docker-credential-exchange import --from secretservice")]
    Import(import::ImportArgs),
    /// Answer the kubelet as its image credential provider (a CredentialProviderRequest on stdin).
    #[command(
        name = crate::kubelet::SUBCOMMAND,
        after_help = "Example:\n  \
echo '{\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\",\"kind\":\"CredentialProviderRequest\",\"image\":\"registry.example.com/team/app\"}' \\\n    \
| docker-credential-exchange kubelet-credential-provider\n\
The kubelet runs it itself, as its CredentialProviderConfig says; see docs/kubernetes.md."
    )]
    KubeletCredentialProvider,
}

/// `cache` subcommands.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove cached tokens (and failure records): all, or one registry's.
    Clear {
        /// Only this registry's tokens.
        registry: Option<String>,
    },
    /// Print the cache directory.
    Dir,
}

/// Parses `args` (without the program name) and runs the subcommand;
/// errors go to stderr as one line with their whole context chain.
pub fn main(args: Vec<OsString>) -> ExitCode {
    if let Some(action) = args.first().and_then(|a| crate::protocol::Action::from_arg(&a.to_string_lossy())) {
        // A protocol word with extra arguments: say how it is called.
        let line = format!(
            "docker-credential-exchange {} takes no arguments: the request goes on stdin, \
             e.g. `echo registry.example.com | docker-credential-exchange get`",
            action.name()
        );
        let _ = output::line(&line);
        return ExitCode::FAILURE;
    }
    if let Some(word) = unknown_action(&args) {
        // The protocol's form of error: a client may be asking.
        let line = crate::redact::line(&format!(
            "unknown action {word:?}: docker-credential-exchange takes get, store, erase, list or version \
             (with the request on stdin), or a command for people; see docker-credential-exchange --help"
        ));
        let _ = output::line(&line);
        return ExitCode::FAILURE;
    }
    // A token pasted where an option's value goes (`--token-stdin=eyJ…`)
    // would be echoed by clap's error: long opaque words are taken for
    // secrets and redacted from it.
    for arg in &args {
        let arg = arg.to_string_lossy();
        let value = arg.split_once('=').map_or(&*arg, |(_, v)| v);
        if looks_pasted_secret(value) {
            crate::redact::remember(value);
        }
    }
    let parsed = Cli::try_parse_from(std::iter::once(OsString::from(PROGRAM)).chain(args));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let _ =
                writeln!(std::io::stderr(), "{}", crate::redact::redact(&e.render().to_string()).trim_end());
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        // --help and --version.
        Err(e) => {
            let _ = output::print(&e.render().to_string());
            return ExitCode::SUCCESS;
        }
    };
    crate::log::init(cli.verbose);
    if let Some(path) = cli.config {
        // Named on the command line, a missing file is a typo, not "no
        // exchange registries".
        if !path.exists() {
            eprintln!(
                "docker-credential-exchange: error: the config file {} (from --config) does not exist",
                path.display()
            );
            return ExitCode::FAILURE;
        }
        crate::paths::override_config_file(path);
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "docker-credential-exchange: error: {}",
                crate::redact::line(&crate::redact::chain(e.chain()))
            );
            ExitCode::FAILURE
        }
    }
}

/// Whether a command-line word looks like a token rather than a word a
/// person typed: long, and not made of lower-case words alone. Paths and
/// registry names have `/` or `.`; `kubelet-credential-provider` and
/// `docker-credential-pass` are words; base64 and hex tokens have capitals
/// or digits. (JWTs are recognised by their shape wherever they appear.)
fn looks_pasted_secret(value: &str) -> bool {
    value.len() >= 20
        && !value.contains(['/', '.'])
        && !value.bytes().all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_')
}

/// The first argument, if it is a word that names neither a subcommand
/// nor a flag.
fn unknown_action(args: &[OsString]) -> Option<String> {
    let word = args.first()?.to_string_lossy();
    if word.starts_with('-') {
        return None;
    }
    let cli = Cli::command();
    let known = cli
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .any(|n| n == word);
    (!known && word != "help").then(|| word.into_owned())
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    // Packaging runs this where no config, cache or keyring need exist.
    if let Command::Generate(args) = command {
        return generate::generate(args);
    }
    let helper = Helper::from_env(Deadline::from_env()?)?;
    match command {
        Command::Login(args) => login::login(args, helper),
        Command::Logout { registry } => login::logout(&registry, &helper),
        Command::Status(args) => status::status(args, &helper),
        Command::Token(args) => token::token(args, &helper),
        Command::Cache(CacheCommand::Clear { registry }) => cache_clear(registry.as_deref(), &helper),
        Command::Cache(CacheCommand::Dir) => {
            output::line(&helper.cache().dir().display().to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ConfigureDocker(args) => configure_docker::configure_docker(args, &helper),
        Command::Doctor(args) => doctor::doctor(args, &helper),
        Command::Generate(args) => generate::generate(args),
        Command::Import(args) => import::import(args, &helper),
        Command::KubeletCredentialProvider => crate::kubelet::main(&helper),
    }
}

/// Parses a registry argument, with a message that names it.
pub(crate) fn parse_registry(raw: &str) -> anyhow::Result<ServerUrl> {
    ServerUrl::parse(raw).map_err(|e| anyhow::anyhow!("{e}"))
}

fn cache_clear(registry: Option<&str>, helper: &Helper) -> anyhow::Result<ExitCode> {
    let cache = helper.cache();
    let removed = match registry {
        Some(raw) => {
            let url = parse_registry(raw)?;
            helper.drop_cached(&helper.storage_key(&url))
        }
        None => cache.clear(),
    };
    output::line(&format!("removed {removed} cached token(s) from {}", cache.dir().display()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::looks_pasted_secret;

    #[test]
    fn subcommand_and_helper_names_are_not_taken_for_secrets() {
        for word in ["kubelet-credential-provider", "docker-credential-secretservice", "--token-stdin"] {
            assert!(!looks_pasted_secret(word), "{word}");
        }
    }

    #[test]
    fn opaque_tokens_on_the_command_line_are_taken_for_secrets() {
        for word in ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "0123456789abcdef0123456789abcdef"] {
            assert!(looks_pasted_secret(word), "{word}");
        }
    }
}
