//! `login` and `logout`: put a registry's login token in the store, proved
//! first by one exchange, or take it out with its cached tokens.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::output::{self, Waiting};
use crate::config::TemplateError;
use crate::deadline::Deadline;
use crate::helper::{Helper, HelperError};
use crate::plan::PlanError;
use crate::prompt::{self, Source};
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::subject::SubjectError;

/// `login`'s arguments. The token is never an argument: arguments are
/// visible to every user in `ps` and land in shell history.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry, e.g. registry.example.com.
    pub registry: String,
    /// The username to return with exchanged tokens (default: the config's, else oauth2accesstoken).
    #[arg(long, short)]
    pub username: Option<String>,
    /// Read the login token from stdin, all of it (the default when stdin is not a terminal).
    #[arg(long, conflicts_with = "token_file")]
    pub token_stdin: bool,
    /// Read the login token from a file.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Store the token without proving it with an exchange.
    #[arg(long)]
    pub no_verify: bool,
    /// Store a plain credential for a registry that is not configured for exchange (needs --username).
    #[arg(long)]
    pub plain: bool,
    /// A token given as an argument: accepted by the parser only to be
    /// refused with a message that says what to do instead.
    #[arg(hide = true, value_parser = |s: &str| Ok::<_, String>(Secret::new(s.to_owned())))]
    pub refused_token: Option<Secret>,
}

pub(super) fn login(args: LoginArgs, helper: Helper) -> anyhow::Result<ExitCode> {
    if args.refused_token.is_some() {
        bail!(
            "a login token given as an argument is refused: arguments are visible to every user in `ps` \
             and land in shell history; pipe it to --token-stdin or name a file with --token-file"
        );
    }
    let url = super::parse_registry(&args.registry)?;
    let entry = match helper.config() {
        Ok(_) => helper.entry_for(&url),
        Err(e) if args.plain => {
            crate::log::warn!("{e}");
            None
        }
        Err(e) => return Err(e).context("the config must be usable to log in to an exchange registry"),
    };
    let source = match (&args.token_file, args.token_stdin) {
        (Some(path), _) => Source::File(path),
        (None, true) => Source::Stdin,
        (None, false) => Source::Auto { prompt: format!("Login token for {}: ", url.registry()) },
    };
    let Some((key, reg)) = entry else {
        if !args.plain {
            bail!("{}", not_configured(&helper, &url));
        }
        let username = args.username.as_deref().context("--plain needs --username")?;
        let token = prompt::read_token(source)?;
        let helper = after_the_wait(helper)?;
        helper.store_credential(&url, url.display_name(), username, token)?;
        output::line(&format!("stored a plain credential for {url} (user {username})"))?;
        return Ok(ExitCode::SUCCESS);
    };
    let token = prompt::read_token(source)?;
    let expires_at = crate::jwt::expiry(token.expose());
    let helper = after_the_wait(helper)?;
    let endpoint = reg.map(|r| r.token_endpoint).unwrap_or_default();
    let waiting = (!args.no_verify).then(|| {
        Waiting::start(
            format!("the token endpoint {endpoint} to prove the token"),
            Duration::from_millis(700),
        )
    });
    let outcome = match helper.login(&url, args.username.as_deref(), token, !args.no_verify) {
        Ok(outcome) => outcome,
        Err(HelperError::Plan(PlanError::Template(TemplateError::MissingRepository { field, .. }))) => bail!(
            "the login token for {key} was not stored: the entry's {field} uses {{repository}}, so the token is proved \
             against a repository; run `docker-credential-exchange login {key}/REPOSITORY`, or store it without the \
             proof with --no-verify"
        ),
        Err(HelperError::Subject(SubjectError::Expired { at, .. })) => bail!(
            "the login token for {key} was not stored: it expired at {at}; get a fresh one from your identity provider"
        ),
        Err(e @ (HelperError::Exchange(_) | HelperError::Plan(_))) => bail!(
            "the login token for {key} was not stored, and the previous login is unchanged: the proving exchange failed: {e}. \
             To store it without the proof (if the endpoint cannot be reached from here), add --no-verify"
        ),
        Err(e) => return Err(e).with_context(|| format!("the login token for {key} was not stored")),
    };
    drop(waiting);
    let message = match outcome.verified {
        Some(answer) => {
            let left = answer.schedule.map_or_else(
                || "an unknown time".into(),
                |s| crate::time::human_duration(s.expires_at - crate::time::now()),
            );
            format!(
                "logged in to {}: the token was proven by an exchange (a registry token {} valid for {left})",
                outcome.key,
                answer.secret.fingerprint()
            )
        }
        None => format!("stored the login token for {} (not proven: --no-verify)", outcome.key),
    };
    output::line(&message)?;
    if let Some(at) = expires_at {
        warn_if_short_lived(&outcome.key, at);
    }
    Ok(ExitCode::SUCCESS)
}

/// A login token with less than this left gets a warning at `login`: one
/// pasted a moment before it expires works once, then every pull fails. A
/// freshly issued one-hour token (a common lifetime) is a minute short of
/// this and says nothing.
const SHORT_LIVED_SECS: i64 = 59 * 60;

/// Warns that the stored login token is about to expire, and what then.
fn warn_if_short_lived(key: &ServerUrl, expires_at: i64) {
    let left = expires_at.saturating_sub(crate::time::now());
    if left < SHORT_LIVED_SECS {
        crate::log::warn!(
            "this login token expires in {} (at {}); after that every pull from {key} fails until you log in \
             again: get a longer-lived token from your identity provider, or use a subject_token source that \
             renews itself (file, command, github-actions)",
            crate::time::human_duration(left.max(0)),
            crate::time::rfc3339_signed(expires_at)
        );
    }
}

/// The helper with the invocation's deadline started afresh, once the
/// token has been read: a slow paste is not a slow keyring.
fn after_the_wait(helper: Helper) -> anyhow::Result<Helper> {
    Ok(helper.with_deadline(Deadline::from_env()?))
}

/// "not configured for exchange", naming the closest configured key.
fn not_configured(helper: &Helper, url: &ServerUrl) -> String {
    let config = helper.config().ok();
    let keys: Vec<&ServerUrl> = config.iter().flat_map(|c| c.ids().map(|id| c.key(id))).collect();
    let file = helper.config_path().display();
    let closest = keys
        .iter()
        .map(|k| (strsim::levenshtein(k.as_str(), url.as_str()), k))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, k)| *d <= k.as_str().len() / 3 + 2);
    let hint = match (closest, keys.is_empty()) {
        (Some((_, key)), _) => format!("did you mean {key}?"),
        (None, true) => format!("no exchange registries are configured (in {file})"),
        (None, false) => {
            let names: Vec<&str> = keys.iter().take(5).map(|k| k.as_str()).collect();
            format!("configured: {}", names.join(", "))
        }
    };
    format!(
        "{url} is not configured for exchange in {file}; {hint} To store a plain credential for it instead, \
         add --plain --username USER (or use `docker login`)"
    )
}

pub(super) fn logout(registry: &str, helper: &Helper) -> anyhow::Result<ExitCode> {
    let url = super::parse_registry(registry)?;
    let erased = helper.erase(&url).with_context(|| format!("removing what is stored for {url}"))?;
    let key = erased.key;
    output::line(&if erased.removed {
        format!("removed the stored token and the cached tokens of {key}")
    } else {
        format!("nothing was stored for {key}; its cached tokens were dropped")
    })?;
    Ok(ExitCode::SUCCESS)
}
