//! `import --from HELPER`: copy every credential another helper holds
//! (secretservice, pass, osxkeychain, wincred, desktop, …) through that
//! helper's own `list` and `get`, so that switching `credsStore` to this
//! one loses no login. Nothing is removed from the other helper.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::docker_config::HELPER_NAME;
use super::output;
use crate::deadline::Deadline;
use crate::helper::Helper;
use crate::secret::Secret;
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

/// A credential as a helper's `get` answers it.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret")]
    secret: Secret,
}

/// Each call to the other helper may take this long (a keyring may ask
/// the user to unlock it).
const PER_CALL: Duration = Duration::from_secs(60);

pub(super) fn import(args: ImportArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let name = args.from.strip_prefix("docker-credential-").unwrap_or(&args.from);
    if name == HELPER_NAME || name.is_empty() || name.contains(['/', '\\']) {
        bail!(
            "--from names another helper as Docker does, e.g. secretservice, pass, osxkeychain, wincred or desktop"
        );
    }
    let program = format!("docker-credential-{name}");
    let listed = call(&program, "list", b"")?;
    let listed: serde_json::Map<String, serde_json::Value> = crate::json::from_object_slice(&listed)
        .map_err(|e| anyhow::anyhow!("{program} list did not answer a JSON object: {e}"))?;
    let (mut copied, mut skipped) = (0, 0);
    for server in listed.keys() {
        let Ok(url) = ServerUrl::parse(server) else {
            crate::warn!("skipping {server:?}: not a registry");
            skipped += 1;
            continue;
        };
        if helper.config().ok().is_some_and(|c| c.lookup(&url).is_some()) {
            output::line(&format!(
                "skipped {server}: it is an exchange registry here; log in with `docker-credential-exchange login {}`",
                url.registry()
            ))?;
            skipped += 1;
            continue;
        }
        let answer = call(&program, "get", server.as_bytes())?;
        let answer: Answer = crate::json::from_object_slice(&answer)
            .map_err(|e| anyhow::anyhow!("{program} get {server} did not answer credentials: {e}"))?;
        if answer.username.is_empty() || answer.secret.is_empty() {
            crate::warn!("skipping {server}: {program} answered without a username or secret");
            skipped += 1;
            continue;
        }
        if args.dry_run {
            output::line(&format!("would copy {server} (user {})", answer.username))?;
        } else {
            helper
                .store_credential(&url, server, &answer.username, answer.secret)
                .with_context(|| format!("storing the credential for {server}"))?;
            output::line(&format!("copied {server} (user {})", answer.username))?;
        }
        copied += 1;
    }
    let verb = if args.dry_run { "would copy" } else { "copied" };
    output::line(&format!("{verb} {copied} credential(s) from {program}; skipped {skipped}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `program action` with `input` on stdin, as Docker would.
fn call(program: &str, action: &str, input: &[u8]) -> anyhow::Result<Vec<u8>> {
    let done = crate::command::run(
        &[program.to_owned(), action.to_owned()],
        Some(input),
        &Deadline::after(PER_CALL),
    )
    .with_context(|| format!("{program} {action}"))?;
    if !done.status.success() {
        // Helpers print their error on stdout; it never holds a secret.
        let said = crate::redact::bounded(&String::from_utf8_lossy(&done.stdout), 200);
        bail!("{program} {action} failed ({}): {said}", done.status);
    }
    Ok(done.stdout)
}
