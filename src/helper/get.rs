//! `get` for an exchange registry: the state machine the parent module's
//! doc describes, from the cheap probe to the commit under the login
//! generation, with the failure kept for `status`, for the helpers queued
//! behind it and, for a short window, for the helpers that ask next. The
//! wire itself (one RFC 8693 request and its answer) is `crate::exchange`.

use super::{Answer, Failure, GetOptions, Helper, HelperError, LOGIN_CHANGE_RETRIES, Origin};
use crate::cache::{Cache, CachedToken, Commit, ExchangeFailure, Generation, Identity, Lookup, Schedule};
use crate::config::{RegistryConfig, SourceSpec};
use crate::deadline::TIMEOUT_ENV;
use crate::exchange::ExchangeError;
use crate::fsutil::LockError;
use crate::plan::{KubeletRequest, Plan};
use crate::server_url::ServerUrl;
use crate::store::StoreError;
use crate::subject::{self, Context, Probe, Subject};
use crate::time::now_ms;

impl Helper {
    pub(super) fn get_exchanged(
        &self,
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        opts: GetOptions,
        kubelet: KubeletRequest<'_>,
    ) -> Result<Answer, HelperError> {
        // Resolved once before the subject is read: a request that cannot
        // be served runs no command and sends nothing.
        Plan::new(url, key, reg, kubelet, None, None)?;
        let cx = Context { deadline: &self.deadline, kubelet_token: kubelet.service_account_token };
        for _ in 0..LOGIN_CHANGE_RETRIES {
            let probe = subject::probe(&reg.subject_token, cx)?;
            if matches!(probe, Probe::Absent) {
                return Err(no_subject(url, key, reg));
            }
            let actor = subject::probe_actor(key, reg.actor_token.as_ref(), cx)?;
            let actor_fingerprint = actor.as_ref().and_then(Probe::fingerprint);
            let plan = Plan::new(
                url,
                key,
                reg,
                kubelet,
                probe.fingerprint().as_deref(),
                actor_fingerprint.as_deref(),
            )?;
            let request = Request { url, key, reg, plan };
            let tokens = Tokens { subject: probe, actor };
            if let Some(answer) = self.attempt(&request, tokens, opts, cx)? {
                return Ok(answer);
            }
            crate::log::debug!("{url}: the login changed during the exchange; starting over");
        }
        Err(Failure::LoginKeptChanging(key.to_string()).into())
    }

    /// One pass of the state machine; `Ok(None)` when the login changed
    /// under it and the pass must be repeated.
    fn attempt(
        &self,
        request: &Request<'_>,
        tokens: Tokens,
        opts: GetOptions,
        cx: Context<'_>,
    ) -> Result<Option<Answer>, HelperError> {
        let Request { url, key, reg, plan } = request;
        let Tokens { subject: probe, actor } = tokens;
        let fingerprint = probe.fingerprint();
        let cache = &self.cache;
        let scoped = plan.repository_scoped;
        if !opts.force_refresh
            && let Lookup::Fresh(hit) =
                cache.lookup(&plan.cache_key, fingerprint.as_deref(), crate::time::now())
        {
            crate::log::debug!("{url}: cache hit {}", plan.cache_key.as_str());
            return Ok(Some(answer(hit, Origin::Cache, scoped)));
        }
        let waiting_since = now_ms();
        let _lock = if cache.tokens_enabled() {
            match cache.lock(&plan.cache_key, &self.deadline) {
                Ok(lock) => Some(lock),
                Err(e @ LockError::TimedOut { .. }) => {
                    let reason = format!(
                        "{e}; that helper's exchange is still running. If the endpoint is just slow, raise {TIMEOUT_ENV}"
                    );
                    let error = ExchangeError::Failed {
                        registry: key.to_string(),
                        endpoint: reg.token_endpoint.clone(),
                        reason,
                    };
                    // Not the exchange's failure (that helper's is still to
                    // come), so nothing for others to reuse or remember.
                    let stale = stale(cache, plan, fingerprint.as_deref());
                    return self.fail(request, stale, error.into(), None);
                }
                Err(e) => {
                    crate::log::warn!("cannot lock the token cache ({e}); exchanging without it");
                    None
                }
            }
        } else {
            None
        };
        let stale = match cache.lookup(&plan.cache_key, fingerprint.as_deref(), crate::time::now()) {
            Lookup::Fresh(hit) if !opts.force_refresh => return Ok(Some(answer(hit, Origin::Cache, scoped))),
            Lookup::Fresh(hit) | Lookup::Stale(hit) => Some(hit),
            Lookup::Miss => None,
        };
        // Read before the login token: a token exchanged from a login that
        // changes from here on is never cached, and a failure remembered
        // under an earlier login is never answered.
        let generation = cache.generation(key.as_str(), &self.deadline);
        // The client inputs are read now, not before the lock: only a
        // failure of the same ones is this exchange's to answer.
        let client = super::client_inputs::fingerprint(reg, plan.cache_key.as_str());
        let prior = generation.as_ref().and_then(|g| {
            cache
                .exchange_failure(&plan.cache_key)
                .filter(|f| f.under(g) && f.with_same_client(client.as_deref()))
        });
        if let Some(prior) = prior {
            let now = now_ms();
            if (waiting_since..=now).contains(&prior.at_ms) {
                crate::log::debug!("{url}: the exchange this helper waited for failed; reusing its failure");
                return self.fail(request, stale, Failure::Shared(prior.message).into(), None);
            }
            if !opts.force_refresh && prior.remembered_at(now, self.deadline.limit()) {
                crate::log::debug!("{url}: the exchange failed moments ago; answering from memory");
                let error = Failure::Remembered {
                    request: url.to_string(),
                    at: prior.at(),
                    until: prior.until(),
                    message: prior.message,
                }
                .into();
                return self.fail(request, stale, error, None);
            }
        }
        let login_username = || self.store().ok()?.username(key).ok().flatten();
        let subject = subject::load(
            &reg.subject_token,
            probe,
            || self.store().map_err(|e| StoreError::Keyring(e.to_string()))?.get(key),
            plan.audience.first().map(String::as_str),
            cx,
        );
        let result = match subject {
            Ok(Some(mut subject)) => {
                if subject.username.is_none() && !matches!(reg.subject_token, SourceSpec::Keyring) {
                    subject.username = login_username();
                }
                self.exchange(request, subject, actor.as_ref(), fingerprint)
            }
            Ok(None) => return Err(no_subject(url, key, reg)),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(entry) => {
                match cache.commit(key.as_str(), &plan.cache_key, &entry, generation.as_ref(), &self.deadline)
                {
                    Commit::LoginChanged => return Ok(None),
                    Commit::Accepted => {}
                }
                cache.forget_failure(&plan.cache_key);
                cache.clear_failure(url);
                Ok(Some(answer(entry, Origin::Exchange, scoped)))
            }
            Err(e) => {
                let ran = generation.as_ref().map(|generation| Ran { generation, client: client.as_deref() });
                self.fail(request, stale, e, ran)
            }
        }
    }

    /// Records a failure as the request's last (for `status`) and, when it
    /// is a new failure of the endpoint and what it ran under is known, as
    /// the key's failed exchange (still holding the lock, so that the
    /// helpers waiting behind see it, and those that ask next get it from
    /// memory); then falls back to a stale token that has not expired yet.
    fn fail(
        &self,
        request: &Request<'_>,
        stale: Option<CachedToken>,
        error: HelperError,
        ran: Option<Ran<'_>>,
    ) -> Result<Option<Answer>, HelperError> {
        let Request { url, key, plan, .. } = request;
        let message = error.to_string();
        match &error {
            // Already on file as the request's last failure, as it was
            // said then: `status` adds until when it is remembered.
            HelperError::Failed(Failure::Remembered { message, .. }) => {
                self.cache.record_repeated_failure(url, message, crate::cache::REMEMBER_FOR, &self.deadline);
            }
            _ => self.cache.record_failure(url, Some(&plan.cache_key), &message, &self.deadline),
        }
        self.failure_recorded.set(true);
        // One of this process's own (a client secret it cannot read) is
        // not another helper's, and must not outlive its fix.
        if let (Some(ran), HelperError::Exchange(e)) = (ran, &error)
            && e.is_shared()
        {
            let window = crate::cache::window(e.retry_after());
            let mut failure = ExchangeFailure::new(
                &plan.cache_key,
                key.as_str(),
                url.as_str(),
                ran.generation,
                now_ms(),
                window,
                &message,
            )
            .with_client(ran.client);
            if self.deadline.expired() {
                // A helper allowed more time might still get an answer.
                failure = failure.timed_out_after(self.deadline.limit());
            }
            self.cache.remember_failure(&plan.cache_key, &failure, &self.deadline);
        }
        match stale {
            Some(hit) if hit.expires_at > crate::time::now() => {
                crate::log::warn!(
                    "{message}; using the cached token for {url}, which expires at {}",
                    crate::time::rfc3339_signed(hit.expires_at)
                );
                Ok(Some(answer(hit, Origin::StaleCache, plan.repository_scoped)))
            }
            _ => Err(error),
        }
    }

    /// One exchange from `subject` (with the entry's actor token, when it
    /// delegates), without the cache: the token and its cache entry.
    pub(super) fn exchange(
        &self,
        request: &Request<'_>,
        subject: Subject,
        actor: Option<&Probe>,
        fingerprint: Option<String>,
    ) -> Result<CachedToken, HelperError> {
        let Request { url, key, reg, plan } = request;
        subject::check_not_expired(&subject.token, key, &reg.subject_token, crate::time::now())?;
        let actor_token = match (reg.actor_token.as_ref(), actor) {
            (Some(spec), Some(probe)) => {
                let audience = plan.audience.first().map(String::as_str);
                Some(subject::load_actor(key, spec, probe, audience, &self.deadline)?)
            }
            _ => None,
        };
        let request = plan.request(key, reg, &subject.token, actor_token.as_ref());
        let response = crate::exchange::exchange(&request, &self.deadline)?;
        let obtained_at = crate::time::now();
        let exp = crate::jwt::expiry(response.access_token.expose());
        let schedule =
            Schedule::new(obtained_at, response.expires_in, exp, reg.default_lifetime(), reg.safety_margin());
        if schedule.expires_at <= obtained_at {
            // Say which of the two the server sent: a zero or negative
            // `expires_in` is its own word that the token is expired; an
            // `exp` in the past may be a clock that is off.
            let which = match response.expires_in {
                Some(secs) if secs <= 0 => format!("expires_in {secs}"),
                _ => format!("exp {}", exp.map_or_else(String::new, crate::time::rfc3339_signed)),
            };
            return Err(ExchangeError::Failed {
                registry: key.to_string(),
                endpoint: reg.token_endpoint.clone(),
                reason: format!(
                    "the endpoint issued a token that has already expired ({which}); check its token lifetime and \
                     both machines' clocks"
                ),
            }
            .into());
        }
        let username = reg.username_for(subject.username.as_deref());
        crate::log::debug!(
            "{url}: exchanged {} for {} (expires {}, refresh at {})",
            subject.token.fingerprint(),
            response.access_token.fingerprint(),
            crate::time::rfc3339_signed(schedule.expires_at),
            crate::time::rfc3339_signed(schedule.refresh_at)
        );
        let identity = Identity {
            key: &plan.cache_key,
            registry: key.as_str(),
            request: url.as_str(),
            username: &username,
        };
        Ok(identity.entry(response.access_token, response.issued_token_type, schedule, fingerprint))
    }
}

/// One request as resolved against its registry entry: what every step
/// of the machine, and `login`'s proving exchange, reads.
pub(super) struct Request<'a> {
    /// What was asked for.
    pub url: &'a ServerUrl,
    /// The entry's key (its login token is filed under it).
    pub key: &'a ServerUrl,
    /// The entry.
    pub reg: &'a RegistryConfig,
    /// The request resolved against the entry: cache key, audience, scope.
    pub plan: Plan,
}

/// What a failed exchange ran under, which a later `get` must share to be
/// answered its failure: the login generation, and the fingerprint of the
/// client inputs ([`super::client_inputs`]).
#[derive(Clone, Copy)]
struct Ran<'a> {
    generation: &'a Generation,
    client: Option<&'a str>,
}

/// The tokens one exchange starts from, as probed: the subject, and the
/// actor when the entry delegates (RFC 8693 section 2.1).
struct Tokens {
    subject: Probe,
    actor: Option<Probe>,
}

/// "Not found" for Docker, with the reason for people and the log.
fn no_subject(url: &ServerUrl, key: &ServerUrl, reg: &RegistryConfig) -> HelperError {
    let source = reg.subject_token.describe();
    let reason = format!(
        "{url} is an exchange registry (entry {key}) but there is no login token from {source}: {}",
        subject::why_absent(&reg.subject_token, key)
    );
    crate::log::debug!("{reason}; not found");
    HelperError::NotFound { reason: Some(reason) }
}

fn stale(cache: &Cache, plan: &Plan, fingerprint: Option<&str>) -> Option<CachedToken> {
    match cache.lookup(&plan.cache_key, fingerprint, crate::time::now()) {
        Lookup::Fresh(hit) | Lookup::Stale(hit) => Some(hit),
        Lookup::Miss => None,
    }
}

pub(super) fn answer(entry: CachedToken, origin: Origin, repository_scoped: bool) -> Answer {
    let schedule = entry.schedule();
    Answer {
        username: entry.username,
        secret: entry.token,
        origin,
        schedule: Some(schedule),
        repository_scoped,
    }
}
