//! `get` for an exchange registry: the state machine the parent module's
//! doc describes, from the cheap probe to the commit under the login
//! generation, with the failure kept for `status` and for the helpers
//! queued behind it.

use super::{Answer, GetOptions, Helper, HelperError, LOGIN_CHANGE_RETRIES, Origin};
use crate::cache::{Cache, CachedToken, Commit, Identity, Lookup, Schedule};
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
        Plan::new(url, key, reg, kubelet, None)?;
        let cx = Context { deadline: &self.deadline, kubelet_token: kubelet.service_account_token };
        for _ in 0..LOGIN_CHANGE_RETRIES {
            let probe = subject::probe(&reg.subject_token, cx)?;
            if matches!(probe, Probe::Absent) {
                crate::debug!("{url}: no subject token from {}; not found", reg.subject_token.describe());
                return Err(HelperError::NotFound);
            }
            let plan = Plan::new(url, key, reg, kubelet, probe.fingerprint().as_deref())?;
            if let Some(answer) = self.attempt(url, key, reg, &plan, probe, opts, cx)? {
                return Ok(answer);
            }
            crate::debug!("{url}: the login changed during the exchange; starting over");
        }
        Err(HelperError::LoginKeptChanging(key.to_string()))
    }

    /// One pass of the state machine; `Ok(None)` when the login changed
    /// under it and the pass must be repeated.
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &self,
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        plan: &Plan,
        probe: Probe,
        opts: GetOptions,
        cx: Context<'_>,
    ) -> Result<Option<Answer>, HelperError> {
        let fingerprint = probe.fingerprint();
        let cache = &self.cache;
        let scoped = plan.repository_scoped;
        if !opts.force_refresh
            && let Lookup::Fresh(hit) =
                cache.lookup(&plan.cache_key, fingerprint.as_deref(), crate::time::now())
        {
            crate::debug!("{url}: cache hit {}", plan.cache_key.as_str());
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
                    return self.fail(url, plan, stale(cache, plan, fingerprint.as_deref()), error.into());
                }
                Err(e) => {
                    crate::warn!("cannot lock the token cache ({e}); exchanging without it");
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
        if let Some(failure) = cache.failure(url)
            && (waiting_since..=now_ms()).contains(&failure.at_ms)
            && failure.key.as_deref() == Some(plan.cache_key.as_str())
        {
            crate::debug!("{url}: the exchange this helper waited for failed; reusing its failure");
            return self.fail(url, plan, stale, HelperError::SharedFailure(failure.message));
        }
        let generation = cache.generation(key.as_str(), &self.deadline);
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
                self.exchange(url, key, reg, plan, subject, fingerprint)
            }
            Ok(None) => return Err(HelperError::NotFound),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(entry) => {
                match cache.commit(key.as_str(), &plan.cache_key, &entry, generation.as_ref(), &self.deadline)
                {
                    Commit::LoginChanged => return Ok(None),
                    Commit::Accepted => {}
                }
                cache.clear_failure(url);
                Ok(Some(answer(entry, Origin::Exchange, scoped)))
            }
            Err(HelperError::NotFound) => Err(HelperError::NotFound),
            Err(e) => self.fail(url, plan, stale, e),
        }
    }

    /// Records a failed exchange (still holding the lock, so that helpers
    /// waiting behind see it) and falls back to a stale token that has not
    /// expired yet.
    fn fail(
        &self,
        url: &ServerUrl,
        plan: &Plan,
        stale: Option<CachedToken>,
        error: HelperError,
    ) -> Result<Option<Answer>, HelperError> {
        let message = error.to_string();
        // Only a failure of the endpoint is offered to the helpers waiting
        // for the same exchange; one of this process's own is not theirs.
        let shared = match &error {
            HelperError::Exchange(e) => e.is_shared(),
            HelperError::SharedFailure(_) => true,
            _ => false,
        };
        self.cache.record_failure(url, shared.then_some(&plan.cache_key), &message, &self.deadline);
        self.failure_recorded.set(true);
        match stale {
            Some(hit) if hit.expires_at > crate::time::now() => {
                crate::warn!(
                    "{message}; using the cached token for {url}, which expires at {}",
                    crate::time::rfc3339_signed(hit.expires_at)
                );
                Ok(Some(answer(hit, Origin::StaleCache, plan.repository_scoped)))
            }
            _ => Err(error),
        }
    }

    /// One exchange from `subject`, without the cache: the token and its
    /// cache entry.
    pub(super) fn exchange(
        &self,
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        plan: &Plan,
        subject: Subject,
        fingerprint: Option<String>,
    ) -> Result<CachedToken, HelperError> {
        subject::check_not_expired(&subject.token, key, &reg.subject_token, crate::time::now())?;
        let response = crate::exchange::exchange(&plan.request(key, reg, &subject.token), &self.deadline)?;
        let obtained_at = crate::time::now();
        let schedule = Schedule::new(
            obtained_at,
            response.expires_in,
            crate::jwt::expiry(response.access_token.expose()),
            reg.default_lifetime(),
            reg.safety_margin(),
        );
        if schedule.expires_at <= obtained_at {
            return Err(ExchangeError::Failed {
                registry: key.to_string(),
                endpoint: reg.token_endpoint.clone(),
                reason: "the endpoint issued a token that has already expired (expires_in 0, or an exp in the past); \
                         check its token lifetime and both machines' clocks"
                    .into(),
            }
            .into());
        }
        let username = reg.username_for(subject.username.as_deref());
        crate::debug!(
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
