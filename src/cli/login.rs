//! `login` and `logout`: put a registry's login token in the store (and
//! prove it with one exchange), or take it out with its cached tokens.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::helper::{GetOptions, Helper, Origin};
use crate::secret::Secret;

/// `login`'s arguments. The token is never an argument: arguments are
/// visible to every user in `ps` and land in shell history.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry, e.g. registry.example.com.
    pub registry: String,
    /// The username to return with exchanged tokens (default: the config's, else oauth2accesstoken).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the login token from stdin (the default when stdin is not a terminal).
    #[arg(long, conflicts_with = "token_file")]
    pub token_stdin: bool,
    /// Read the login token from a file.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Store the token without proving it with an exchange.
    #[arg(long)]
    pub no_verify: bool,
    /// A token given as an argument: accepted by the parser only to be
    /// refused with a message that says what to do instead.
    #[arg(hide = true, value_parser = |s: &str| Ok::<_, String>(Secret::new(s.to_owned())))]
    pub refused_token: Option<Secret>,
}

const MAX_TOKEN: u64 = 1024 * 1024;

pub(super) fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    if args.refused_token.is_some() {
        bail!(
            "a login token given as an argument is refused: arguments are visible to every user in `ps` \
             and land in shell history; pipe it to --token-stdin or name a file with --token-file"
        );
    }
    let url = super::parse_registry(&args.registry)?;
    let helper = Helper::from_env()?;
    let token = read_token(&args)?;
    let exchange = helper.config().lookup(&url).map(|(k, _)| k.clone());
    let username = args.username.clone().unwrap_or_else(|| {
        helper
            .config()
            .lookup(&url)
            .and_then(|(_, r)| r.username.clone())
            .unwrap_or_else(|| crate::config::DEFAULT_USERNAME.to_owned())
    });
    let key = helper.storage_key(&url);
    // Keep what was there, so a token that fails verification does not
    // replace one that worked.
    let previous = helper.store()?.get(&key).context("reading the previously stored token")?;
    helper
        .store_credential(&url, key.as_str(), &username, token)
        .with_context(|| format!("storing the login token for {key}"))?;
    match (&exchange, args.no_verify) {
        (None, _) => {
            eprintln!("stored credentials for {key} (not an exchange registry: nothing to verify)");
        }
        (Some(_), true) => eprintln!("stored the login token for {key} (not verified)"),
        // Only a new exchange proves the token: a stale cached token (which
        // a concurrent helper could have written) proves nothing.
        (Some(_), false) => match helper.get(&url, GetOptions { force_refresh: true }).and_then(|answer| {
            if answer.origin == Origin::Exchange {
                Ok(answer)
            } else {
                Err(crate::helper::HelperError::NotFound)
            }
        }) {
            Ok(answer) => {
                let life = answer.expires_at.map(|e| crate::time::human_duration(e - crate::time::now()));
                eprintln!(
                    "logged in to {key}: exchanged for a token {} valid for {}",
                    answer.secret.fingerprint(),
                    life.unwrap_or_else(|| "an unknown time".into())
                );
            }
            Err(e) => {
                match previous {
                    Some(prev) => helper.store()?.put(&key, &prev)?,
                    None => {
                        helper.store()?.remove(&key)?;
                    }
                }
                helper.drop_cached(&key);
                bail!("the login token for {key} was not stored: the verifying exchange failed: {e}");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn read_token(args: &LoginArgs) -> anyhow::Result<Secret> {
    let mut bytes = Vec::new();
    match &args.token_file {
        Some(path) => {
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_TOKEN + 1).read_to_end(&mut bytes))
                .with_context(|| format!("reading the login token from {}", path.display()))?;
        }
        None => {
            if !args.token_stdin && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("Paste the login token for {}, then press Enter: ", args.registry);
            }
            let mut line = String::new();
            std::io::stdin()
                .take(MAX_TOKEN + 1)
                .read_to_string(&mut line)
                .context("reading the login token from stdin (it must be UTF-8 text)")?;
            bytes = line.into_bytes();
        }
    }
    if bytes.len() as u64 > MAX_TOKEN {
        bail!("the login token is larger than 1 MiB");
    }
    let text = String::from_utf8(bytes).context("the login token is not UTF-8 text")?;
    let token = text.trim();
    if token.is_empty() {
        bail!("no login token given: pipe it to --token-stdin or name a file with --token-file");
    }
    Ok(Secret::new(token.to_owned()))
}

pub(super) fn logout(registry: &str) -> anyhow::Result<ExitCode> {
    let url = super::parse_registry(registry)?;
    let helper = Helper::from_env()?;
    let key = helper.storage_key(&url);
    let removed = helper.erase(&url).with_context(|| format!("removing the stored token for {key}"))?;
    if removed {
        eprintln!("removed the stored token and cached tokens for {key}");
    } else {
        eprintln!("nothing was stored for {key}; cached tokens dropped");
    }
    Ok(ExitCode::SUCCESS)
}
