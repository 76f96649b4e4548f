//! `import --from HELPER`: copy every credential another helper holds
//! (secretservice, pass, osxkeychain, wincred, desktop, …) through that
//! helper's own `list` and `get`, so that switching `credsStore` to this
//! one loses no login. Nothing is removed from the other helper.
//!
//! One credential that cannot be read (a locked keyring item, a gpg error
//! in `pass`) does not strand the rest: every other one is still copied,
//! and the summary names each failure. The whole import runs by one
//! deadline (`DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS`): a helper that
//! hangs costs it once, not once per credential, and what was not tried
//! in time is named. The other helper's own words are shown only as a
//! short excerpt, redacted strictly: it may echo a secret we never held.
//! Helpers list one registry under
//! several spellings (`https://index.docker.io/v1/` and `docker.io`,
//! `https://h` and `h`), which this helper files under one key; they are
//! copied once, and when they disagree none of them is, rather than the
//! last one silently replacing the others.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;

use super::PROGRAM;
use super::output::say;
use crate::command::CommandError;
use crate::deadline::Deadline;
use crate::docker_config::{Credential, HELPER_NAME, already_held, check_stored};
use crate::helper::Helper;
use crate::other_helper::{Answer, CallError, call, get};
use crate::server_url::ServerUrl;

/// `import`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The helper to copy from, as Docker names it (`secretservice` runs docker-credential-secretservice).
    #[arg(long = "from", value_name = "HELPER")]
    pub from: String,
    /// Show what would be copied without storing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// The longest cause shown for one failed credential: the other helper's
/// output may be anything, and the summary keeps one line per failure.
const MAX_CAUSE: usize = 200;

/// What happened to the credentials listed.
#[derive(Default)]
struct Tally {
    copied: usize,
    skipped: usize,
    /// (the registry as listed, why), one line each.
    failed: Vec<(String, String)>,
    /// Whether the deadline cut the import short.
    out_of_time: bool,
}

pub(super) fn import(args: ImportArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let name = args.from.strip_prefix("docker-credential-").unwrap_or(&args.from);
    if name == HELPER_NAME || name.is_empty() || name.contains(['/', '\\']) {
        bail!(
            "--from names another helper as Docker does, e.g. secretservice, pass, osxkeychain, wincred or desktop"
        );
    }
    let program = format!("docker-credential-{name}");
    // Without the config, an exchange registry cannot be told from an
    // ordinary one, and a password would be filed where a login belongs.
    if let Err(e) = helper.config() {
        bail!(
            "cannot import: the helper's config is unusable ({e}), so exchange registries cannot be told from \
             others; fix the config first; nothing was copied"
        );
    }
    // One deadline for the whole import: every call to the other helper
    // and every write here waits by it.
    let deadline = *helper.deadline();
    let listed = match call(&program, "list", b"", &deadline) {
        Ok(out) => out,
        Err(CallError::Run { source: CommandError::Spawn { reason, .. }, .. }) => bail!(
            "cannot run {program} (named by --from): {reason}; install it or put it on PATH, or name another helper"
        ),
        Err(e @ CallError::Run { source: CommandError::TimedOut { .. }, .. }) => {
            bail!("{e}; {}; nothing was copied", time_hint(&deadline))
        }
        Err(e) => return Err(e.into()),
    };
    let listed: serde_json::Map<String, serde_json::Value> = crate::json::from_object_slice(&listed)
        .map_err(|e| anyhow::anyhow!("{program} list did not answer a JSON object: {e}"))?;
    if listed.is_empty() {
        return nothing_listed(name, &program);
    }

    let mut tally = Tally::default();
    // One registry, however many ways the other helper spells it.
    let mut registries: BTreeMap<ServerUrl, Vec<String>> = BTreeMap::new();
    for server in listed.keys() {
        match ServerUrl::parse(server) {
            Ok(url) => registries.entry(url).or_default().push(server.clone()),
            Err(_) => {
                crate::log::warn!("skipping {server:?}: not a registry");
                tally.skipped += 1;
            }
        }
    }
    for (url, spellings) in &registries {
        if deadline.expired() {
            // Not tried: say so for each, rather than stop without a word.
            tally.out_of_time = true;
            for server in spellings {
                tally.failed.push((server.clone(), "not tried: the import ran out of time".to_owned()));
            }
            continue;
        }
        import_registry(helper, &program, url, spellings, args.dry_run, &deadline, &mut tally)?;
    }

    let verb = if args.dry_run { "would copy" } else { "copied" };
    say(&format!(
        "{verb} {} credential(s) from {program}; skipped {}; failed {}",
        tally.copied,
        tally.skipped,
        tally.failed.len()
    ));
    if tally.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (server, why) in &tally.failed {
        // On stderr, beside the error that ends the run; a closed stderr
        // leaves the exit status to say it.
        let line = crate::redact::line(&format!("docker-credential-exchange: not copied {server}: {why}"));
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    let (failed, done) =
        if args.dry_run { ("would not be copied", "would be") } else { ("were not copied", "were") };
    let time = if tally.out_of_time { format!("; {}", time_hint(&deadline)) } else { String::new() };
    bail!(
        "{} credential(s) of {program} {failed} (each is named above with its cause) and {} {done}; fix the \
         causes and run the import again{time}",
        tally.failed.len(),
        tally.copied
    )
}

/// Copies the credential of one registry, which the other helper lists as
/// `spellings` (one or more names that normalize to `url`).
fn import_registry(
    helper: &Helper,
    program: &str,
    url: &ServerUrl,
    spellings: &[String],
    dry_run: bool,
    deadline: &Deadline,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let listed_as = spellings.join(", ");
    if helper.is_exchange_registry(url) {
        say(&format!(
            "skipped {listed_as}: it is an exchange registry here; log in with `docker-credential-exchange login {}`",
            url.registry()
        ));
        tally.skipped += 1;
        return Ok(());
    }
    let mut answers: Vec<(&String, Answer)> = Vec::new();
    let mut unread = Vec::new();
    for server in spellings {
        match get(program, server, deadline) {
            Ok(answer) if answer.username.is_empty() || answer.secret.is_empty() => {
                crate::log::warn!("skipping {server}: {program} answered without a username or secret");
                tally.skipped += 1;
            }
            Ok(answer) => answers.push((server, answer)),
            Err(e) => {
                tally.out_of_time |=
                    matches!(e, CallError::Run { source: CommandError::TimedOut { .. }, .. });
                tally.failed.push((server.clone(), cause(&e)));
                unread.push(server.as_str());
            }
        }
    }
    // Whether the readable spellings agree with the unreadable one cannot
    // be told: copying one could file a stale credential.
    if !unread.is_empty() {
        for (server, _) in &answers {
            tally.failed.push((
                (*server).clone(),
                format!("not copied: {} (the same registry) could not be read to compare", unread.join(", ")),
            ));
        }
        return Ok(());
    }
    let Some((first, answer)) = answers.first() else { return Ok(()) };
    if answers.iter().any(|(_, other)| other != answer) {
        let names: Vec<&str> = answers.iter().map(|(s, _)| s.as_str()).collect();
        tally.failed.push((
            names.join(" and "),
            format!(
                "{program} lists them with different credentials for the one registry {url}; copy the right one \
                 by hand, e.g. echo {} | {program} get | docker-credential-exchange store",
                names[0]
            ),
        ));
        return Ok(());
    }
    // The spelling `list` shows for Docker Hub is Docker's own.
    let server = answers.iter().map(|(s, _)| *s).find(|s| *s == url.display_name()).unwrap_or(first);
    let also: Vec<&str> = answers.iter().map(|(s, _)| s.as_str()).filter(|s| s != server).collect();
    let note = if also.is_empty() {
        String::new()
    } else {
        format!("; also listed as {}, the same registry with the same credential", also.join(", "))
    };
    // What this helper holds already is never silently replaced: the same
    // credential is nothing to do, another one (or a login token) a
    // failure the person resolves.
    let key = helper.storage_key(url);
    let credential = Credential { username: answer.username.clone(), secret: answer.secret.clone() };
    match already_held(helper, &key, &credential) {
        Ok(true) => {
            say(&format!("skipped {server}: {PROGRAM} holds the same credential (user {})", answer.username));
            tally.skipped += 1;
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => {
            tally.failed.push((server.clone(), crate::redact::chain(e.chain())));
            return Ok(());
        }
    }
    if dry_run {
        say(&format!("would copy {server} (user {}{note})", answer.username));
    } else if let Err(e) = helper
        .store_credential(url, server, &answer.username, answer.secret.clone())
        .map_err(anyhow::Error::from)
        .and_then(|()| check_stored(helper, &key, &credential))
    {
        tally
            .failed
            .push((server.clone(), format!("storing it here failed: {}", crate::redact::chain(e.chain()))));
        return Ok(());
    } else {
        say(&format!("copied {server} (user {}{note})", answer.username));
    }
    tally.copied += 1;
    Ok(())
}

/// What to do when the import ran out of time.
fn time_hint(deadline: &Deadline) -> String {
    format!(
        "the whole import may take {}s ({} sets it): run it again, with more time if needed",
        deadline.limit().as_secs_f64(),
        crate::deadline::TIMEOUT_ENV
    )
}

/// The other helper listed nothing: why, if it is known, as an error;
/// else a plain word that there was nothing to copy.
fn nothing_listed(name: &str, program: &str) -> anyhow::Result<ExitCode> {
    // docker-credential-pass lists nothing, successfully, when `pass`
    // itself is missing.
    let path = std::env::var_os("PATH").unwrap_or_default();
    if name == "pass" && crate::command::find_in_path(&path, "pass").is_none() {
        bail!(
            "{program} lists no credentials: it keeps them with `pass` (the password store), which is not on PATH; \
             install pass (and run `pass init`), or name another helper; nothing was copied"
        );
    }
    say(&format!("{program} lists no credentials; nothing to copy"));
    Ok(ExitCode::SUCCESS)
}

/// An error as one short line, redacted before it is cut.
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    crate::redact::bounded(&crate::redact::chain(std::iter::successors(Some(e), |e| e.source())), MAX_CAUSE)
}
