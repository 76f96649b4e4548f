//! `doctor`'s checks of key-based client authentication and delegation,
//! for each exchange registry that uses them: the client key reads and
//! parses (and signs, for `private_key_jwt`), its file is private, the
//! client certificate is the key's, valid now and not about to expire,
//! and the actor token is there. Findings name files and sources, never
//! key material.

use std::time::Duration;

use super::Checks;
use crate::client_auth::{self, ClientCertificate, KeySettings, assertion};
use crate::config::{ClientAuth, RegistryConfig, SourceSpec};
use crate::deadline::Deadline;
use crate::server_url::ServerUrl;
use crate::subject::{self, Context};

/// Each read may take this long (a command source).
const CHECK_TIME: Duration = Duration::from_secs(10);
/// A certificate is "about to expire" inside this much time, or inside
/// the last third of its life if that is shorter (short-lived
/// certificates are renewed often and must not always warn).
const RENEW_WITHIN_SECS: i64 = 14 * 24 * 3600;

/// The client key, certificate and actor token of one entry.
pub(super) fn check(checks: &mut Checks, key: &ServerUrl, reg: &RegistryConfig) -> anyhow::Result<()> {
    if let Some(settings) = KeySettings::of(reg) {
        client_key(checks, key, &settings)?;
    }
    actor(checks, key, reg)
}

fn client_key(checks: &mut Checks, key: &ServerUrl, settings: &KeySettings<'_>) -> anyhow::Result<()> {
    let source = settings.key.describe();
    if let SourceSpec::File { path } = settings.key
        && let Ok(Some(mode)) = client_auth::check_key_file(path)
    {
        checks.warn(
            "client",
            format!(
                "{key}: the client key file {} can be read by its group (mode {mode:03o})",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        )?;
    }
    let deadline = Deadline::after(CHECK_TIME);
    let client_key = match client_auth::read_key(settings.key, &deadline) {
        Ok(k) => k,
        Err(e) => {
            return checks.problem(
                "client",
                format!("{key}: {e}; every exchange would fail"),
                "fix client_key in the config, or what it reads",
            );
        }
    };
    if settings.method == ClientAuth::PrivateKeyJwt {
        // A trial signature: what the first exchange will do.
        let claims = assertion::Claims::new(settings.client_id, vec!["doctor".into()], crate::time::now());
        return match assertion::sign(&client_key, settings.algorithm, settings.key_id, &claims) {
            Ok(_) => {
                let alg = client_key.algorithm(settings.algorithm).map_or("?", |a| a.name());
                let kid = settings.key_id.map(|k| format!(", kid {k}")).unwrap_or_default();
                checks.ok(
                    "client",
                    format!("{key}: the client key ({source}) signs {alg} client assertions{kid}"),
                )
            }
            Err(e) => checks.problem(
                "client",
                format!("{key}: {e}"),
                "fix client_key or client_key_algorithm in the config",
            ),
        };
    }
    let Some(path) = settings.certificate else { return Ok(()) };
    let cert = match ClientCertificate::read(path) {
        Ok(c) => c,
        Err(e) => {
            return checks.problem("client", format!("{key}: {e}"), "fix client_certificate in the config");
        }
    };
    if let Err(e) = cert.check_key(&client_key) {
        return checks.problem(
            "client",
            format!("{key}: {e}"),
            "configure the certificate and the key that belong together",
        );
    }
    let now = crate::time::now();
    if let Err(e) = cert.check_valid_at(now) {
        return checks.problem("client", format!("{key}: {e}"), "renew the client certificate");
    }
    let until = crate::time::rfc3339_signed(cert.not_after);
    let left = cert.not_after - now;
    let lifetime = cert.not_after.saturating_sub(cert.not_before);
    if left < RENEW_WITHIN_SECS.min(lifetime / 3) {
        return checks.warn(
            "client",
            format!(
                "{key}: the client certificate {} expires at {until}, in {}",
                path.display(),
                human(left)
            ),
            "renew it before then; exchanges fail from that moment",
        );
    }
    checks.ok(
        "client",
        format!("{key}: the client certificate {} is the key's and valid until {until}", path.display()),
    )
}

fn actor(checks: &mut Checks, key: &ServerUrl, reg: &RegistryConfig) -> anyhow::Result<()> {
    let Some(spec) = &reg.actor_token else { return Ok(()) };
    let deadline = Deadline::after(CHECK_TIME);
    match subject::probe_actor(key, Some(spec), Context { deadline: &deadline, kubelet_token: None }) {
        Ok(_) => checks.ok("actor", format!("{key}: the actor token ({}) is available", spec.describe())),
        // A kubelet source exists only inside a kubelet request.
        Err(_) if matches!(spec, SourceSpec::Kubelet) => {
            checks.ok("actor", format!("{key}: the actor token comes with each kubelet request"))
        }
        Err(e) => checks.problem(
            "actor",
            format!("{e}; every exchange would fail"),
            match spec {
                SourceSpec::Env { var } => format!("set {var}"),
                _ => format!("make {} provide it", spec.describe()),
            },
        ),
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} minutes", (s / 60).max(1)),
    }
}
