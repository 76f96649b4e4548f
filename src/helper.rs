//! What the credential actions do, whoever asks: the protocol verbs Docker
//! runs, the subcommands people run and the kubelet provider share this one
//! implementation.
//!
//! `get` for an exchange registry is a small state machine:
//! 1. resolve the request against its entry ([`Plan`]) and probe the
//!    subject cheaply; no subject means "not found", without a request;
//! 2. a fresh cache entry is the answer: no lock, keyring or network;
//! 3. otherwise wait, by the deadline, for the per-key lock, so that one
//!    exchange serves every helper asking at once;
//! 4. look again: the helper that held the lock may have refreshed the
//!    token, or failed, in which case its failure (or the stale token) is
//!    the answer rather than a second attempt;
//! 5. note the registry's login generation, read the subject, exchange;
//! 6. cache the token only if the login did not change meanwhile (else
//!    start over with the new login);
//! 7. on failure, keep the reason for `status` and `doctor` and for the
//!    helpers waiting behind, and fall back to a cached token that is inside
//!    its margin but not yet expired.

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cache::{Cache, CachedToken, Commit, Identity, Lookup, Schedule};
use crate::time::now_ms;
use crate::config::{self, Config, ConfigError, DEFAULT_USERNAME, RegistryConfig, SourceSpec};
use crate::deadline::{Deadline, TIMEOUT_ENV};
use crate::exchange::ExchangeError;
use crate::fsutil::LockError;
use crate::paths::{self, NoHomeError};
use crate::plan::{KubeletRequest, Plan, PlanError};
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::store::{self, CredentialStore, EntryKind, StoreError, StoredCredential};
use crate::subject::{self, Context, Probe, Subject, SubjectError};

/// How many times a `get` starts over because the login changed under it.
const LOGIN_CHANGE_RETRIES: usize = 3;

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// Nothing is stored (or no subject token is available): Docker's
    /// "not logged in", the protocol's exact string.
    #[error("credentials not found in native keychain")]
    NotFound,
    /// The config file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A directory cannot be determined.
    #[error(transparent)]
    Paths(#[from] NoHomeError),
    /// The keyring or file store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The subject token cannot be had.
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// The request cannot be resolved against its entry.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The exchange failed (and no still-valid token was cached).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// Another helper's exchange for the same token failed while this one
    /// waited for it; its message, as it recorded it.
    #[error("{0}")]
    SharedFailure(String),
    /// A login token is stored for a registry the config no longer makes
    /// an exchange registry; it is never handed out as a password.
    #[error(
        "the credentials stored for {registry} are a login token for a token exchange, but {registry} is not \
         configured for exchange; add it back to the config, or run `docker-credential-exchange logout {registry}`"
    )]
    LoginTokenWithoutExchange {
        /// The registry.
        registry: String,
    },
    /// `login` for a registry whose subject token comes from elsewhere.
    #[error(
        "{registry} takes its login token from {from} (subject_token in the config), not from the keyring; \
         provide the token there"
    )]
    NotAKeyringSource {
        /// The registry.
        registry: String,
        /// Where its subject comes from.
        from: String,
    },
    /// The login changed during every attempt.
    #[error("the login for {0} changed during the exchange {LOGIN_CHANGE_RETRIES} times in a row; try again")]
    LoginKeptChanging(String),
}

/// Where the credentials `get` returned came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The keyring or file store (an ordinary registry).
    Stored,
    /// A fresh cache entry.
    Cache,
    /// A new exchange.
    Exchange,
    /// A cached token inside its margin, because the refresh failed.
    StaleCache,
}

/// What `get` answers.
#[derive(Debug)]
pub struct Answer {
    /// The username for Docker.
    pub username: String,
    /// The password or token for Docker.
    pub secret: Secret,
    /// Where it came from.
    pub origin: Origin,
    /// When it expires and should be refreshed (exchanged tokens only).
    pub schedule: Option<Schedule>,
    /// Whether the token is scoped to the request's repository.
    pub repository_scoped: bool,
}

/// Options of `get` that only people use (`token --refresh`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions {
    /// Skip the cache and exchange anew.
    pub force_refresh: bool,
}

/// What `login` did.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The registry entry the login token was stored under.
    pub key: ServerUrl,
    /// The token the proving exchange issued, unless `--no-verify`.
    pub verified: Option<Answer>,
}

/// The helper's state for one invocation: config (or why it is unusable),
/// cache, deadline, and a store opened on first use.
pub struct Helper {
    config: Result<Config, ConfigError>,
    config_path: PathBuf,
    cache: Cache,
    deadline: Deadline,
    store: OnceCell<Box<dyn CredentialStore>>,
    /// Set once this invocation's failure has been recorded.
    failure_recorded: Cell<bool>,
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper")
            .field("config", &self.config_path)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Helper {
    /// Locates the config and the cache. A config that cannot be used is
    /// kept as an error: plain credentials keep working without it.
    ///
    /// # Errors
    /// No home directory can be found.
    pub fn from_env(deadline: Deadline) -> Result<Helper, HelperError> {
        let config_path = paths::config_file()?;
        Ok(Helper {
            config: Config::load(&config_path),
            config_path,
            cache: Cache::new(paths::cache_dir()?, !paths::cache_disabled()),
            deadline,
            store: OnceCell::new(),
            failure_recorded: Cell::new(false),
        })
    }

    /// The config, or why it cannot be used.
    ///
    /// # Errors
    /// The config file is unusable.
    pub fn config(&self) -> Result<&Config, ConfigError> {
        self.config.as_ref().map_err(Clone::clone)
    }

    /// The config file's path (which may not exist).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// The cache directory.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The invocation's deadline.
    pub fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// The credential store the environment and config choose. A broken
    /// config still names its store if it does so unambiguously.
    ///
    /// # Errors
    /// The store choice is invalid or no data directory can be found.
    pub fn store(&self) -> Result<&dyn CredentialStore, HelperError> {
        if let Some(store) = self.store.get() {
            return Ok(store.as_ref());
        }
        let kind = match &self.config {
            Ok(config) => config.store_kind()?,
            Err(_) => config::store_kind(config::salvage_store_choice(&self.config_path))?,
        };
        let dir = paths::data_dir()?;
        Ok(self.store.get_or_init(|| store::open(kind, dir)).as_ref())
    }

    /// The exchange entry for `url`, if the config is usable and has one.
    fn exchange_entry(&self, url: &ServerUrl) -> Option<(&Config, config::EntryId)> {
        let config = self.config.as_ref().ok()?;
        config.lookup(url).map(|id| (config, id))
    }

    /// The key credentials for `url` are filed under: the exchange entry's
    /// key when one matches (its login token), else the URL itself.
    pub fn storage_key(&self, url: &ServerUrl) -> ServerUrl {
        self.exchange_entry(url).map_or_else(|| url.clone(), |(c, id)| c.key(id).clone())
    }

    /// The protocol's `get`.
    ///
    /// # Errors
    /// [`HelperError::NotFound`] when nothing is stored or no subject
    /// token exists; otherwise what failed, which is also kept as the
    /// request's last failure.
    pub fn get(&self, url: &ServerUrl, opts: GetOptions) -> Result<Answer, HelperError> {
        self.get_with(url, opts, KubeletRequest::default())
    }

    /// `get` for a kubelet request, which may carry the subject itself.
    ///
    /// # Errors
    /// As [`Helper::get`].
    pub fn get_with(
        &self,
        url: &ServerUrl,
        opts: GetOptions,
        kubelet: KubeletRequest<'_>,
    ) -> Result<Answer, HelperError> {
        let result = match &self.config {
            Ok(config) => match config.lookup(url) {
                Some(id) => config
                    .registry(id)
                    .map_err(HelperError::from)
                    .and_then(|reg| self.get_exchanged(url, config.key(id), reg, opts, kubelet)),
                None => self.get_plain(url),
            },
            // Plain credentials keep working; a login token, or nothing
            // stored for a registry the broken file names, gets its error.
            Err(config_error) => match self.get_plain(url) {
                Err(HelperError::NotFound | HelperError::LoginTokenWithoutExchange { .. })
                    if self.broken_config_mentions(url) =>
                {
                    Err(config_error.clone().into())
                }
                other => other,
            },
        };
        match &result {
            Err(HelperError::NotFound) => {}
            Err(e) if !self.failure_recorded.get() => self.cache.record_failure(url, None, &e.to_string()),
            Err(_) => {}
            // Only a success that did not already clear it (a cache hit or a
            // stored credential) gets here with a failure possibly on file.
            Ok(a) if a.origin != Origin::Exchange => self.cache.clear_failure(url),
            Ok(_) => {}
        }
        result
    }

    /// Whether the unreadable config file names `url`'s registry, so that
    /// its error, not "not found", is what a `get` for it answers.
    fn broken_config_mentions(&self, url: &ServerUrl) -> bool {
        let Ok(Some(bytes)) = crate::fsutil::read_regular_file(&self.config_path, crate::bounded::ONE_MIB)
        else {
            return false;
        };
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        text.contains(url.registry())
    }

    fn get_plain(&self, url: &ServerUrl) -> Result<Answer, HelperError> {
        let store = self.store()?;
        // Docker asks by host; a request with a repository path (the
        // `token` subcommand, scripts) falls back to the host's entry.
        let cred = match store.get(url)? {
            Some(c) => Some(c),
            None if url.repository().is_some() => store.get(&url.host_only())?,
            None => None,
        }
        .ok_or(HelperError::NotFound)?;
        if cred.kind == Some(EntryKind::LoginToken) {
            return Err(HelperError::LoginTokenWithoutExchange { registry: url.registry().to_owned() });
        }
        Ok(Answer {
            username: cred.username,
            secret: cred.secret,
            origin: Origin::Stored,
            schedule: None,
            repository_scoped: false,
        })
    }

    fn get_exchanged(
        &self,
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        opts: GetOptions,
        kubelet: KubeletRequest<'_>,
    ) -> Result<Answer, HelperError> {
        let plan = Plan::new(url, key, reg, kubelet)?;
        let cx = Context { deadline: &self.deadline, kubelet_token: kubelet.service_account_token };
        for _ in 0..LOGIN_CHANGE_RETRIES {
            let probe = subject::probe(&reg.subject_token, cx)?;
            if matches!(probe, Probe::Absent) {
                crate::debug!("{url}: no subject token from {}; not found", reg.subject_token.describe());
                return Err(HelperError::NotFound);
            }
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
        let scoped = url.repository().is_some();
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
            && failure.at_ms >= waiting_since
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
        self.cache.record_failure(url, Some(&plan.cache_key), &message);
        self.failure_recorded.set(true);
        match stale {
            Some(hit) if hit.expires_at > crate::time::now() => {
                crate::warn!(
                    "{message}; using the cached token for {url}, which expires at {}",
                    crate::time::rfc3339_signed(hit.expires_at)
                );
                Ok(Some(answer(hit, Origin::StaleCache, url.repository().is_some())))
            }
            _ => Err(error),
        }
    }

    /// One exchange from `subject`, without the cache: the token and its
    /// cache entry.
    fn exchange(
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

    /// `login`: proves `token` with one exchange (unless `verify` is
    /// false), and only then replaces the stored login token, starts a new
    /// login generation and caches the proven token. An interrupt or a
    /// failed check leaves the previous login in place.
    ///
    /// # Errors
    /// The registry is not an exchange registry with a keyring subject, the
    /// token has expired, or the check or the store failed.
    pub fn login(
        &self,
        url: &ServerUrl,
        username: Option<&str>,
        token: Secret,
        verify: bool,
    ) -> Result<LoginOutcome, HelperError> {
        let config = self.config()?;
        let id = config.lookup(url).ok_or(HelperError::NotFound)?;
        let (key, reg) = (config.key(id).clone(), config.registry(id)?);
        if !matches!(reg.subject_token, SourceSpec::Keyring) {
            return Err(HelperError::NotAKeyringSource {
                registry: key.to_string(),
                from: reg.subject_token.describe(),
            });
        }
        if let Some(exp) = crate::jwt::expiry(token.expose())
            && exp <= crate::time::now()
        {
            return Err(SubjectError::Expired {
                registry: key.to_string(),
                at: crate::time::rfc3339_signed(exp),
                hint: "this token has already expired; get a fresh one from your identity provider".into(),
            }
            .into());
        }
        let username = username.map(str::to_owned);
        let proven = if verify {
            let plan = Plan::new(&key, &key, reg, KubeletRequest::default())?;
            let subject = Subject { token: token.clone(), username: username.clone() };
            let entry = self.exchange(&key, &key, reg, &plan, subject, None)?;
            Some((plan, entry))
        } else {
            None
        };
        let cred = StoredCredential {
            server_url: key.display_name().to_owned(),
            username: username.unwrap_or_default(),
            secret: token,
            kind: Some(EntryKind::LoginToken),
        };
        self.store()?.put(&key, &cred)?;
        self.new_generation(&key);
        let verified = proven.map(|(plan, entry)| {
            // The proven token serves the next `get`.
            if let Ok(_lock) = self.cache.lock(&plan.cache_key, &self.deadline)
                && let Err(e) = self.cache.store(&plan.cache_key, &entry)
            {
                crate::warn!("cannot write the token cache: {e}");
            }
            answer(entry, Origin::Exchange, false)
        });
        Ok(LoginOutcome { key, verified })
    }

    /// The protocol's `store`: a plain credential, or an exchange
    /// registry's login token. Starts a new login generation, which drops
    /// the registry's cached tokens.
    ///
    /// # Errors
    /// The store failed; nothing was changed.
    pub fn store_credential(
        &self,
        url: &ServerUrl,
        server_url: &str,
        username: &str,
        secret: Secret,
    ) -> Result<(), HelperError> {
        let (key, kind) = match self.exchange_entry(url) {
            Some((config, id)) => (config.key(id).clone(), EntryKind::LoginToken),
            None => (url.clone(), EntryKind::Credential),
        };
        let cred = StoredCredential {
            server_url: server_url.to_owned(),
            username: username.to_owned(),
            secret,
            kind: Some(kind),
        };
        self.store()?.put(&key, &cred)?;
        self.new_generation(&key);
        Ok(())
    }

    /// The protocol's `erase`. Erasing what is not there succeeds, as
    /// Docker's `logout` erases several spellings of one registry.
    ///
    /// # Errors
    /// The store failed.
    pub fn erase(&self, url: &ServerUrl) -> Result<bool, HelperError> {
        let key = self.storage_key(url);
        let removed = self.store()?.remove(&key)?;
        self.new_generation(&key);
        Ok(removed)
    }

    /// Starts a new login generation for `key`, dropping its cached tokens.
    fn new_generation(&self, key: &ServerUrl) -> usize {
        match self.cache.new_generation(key.as_str(), &self.deadline) {
            Ok(dropped) => dropped,
            Err(e) => {
                crate::warn!("cannot record the new login for {key} in the cache ({e}); dropping its tokens");
                self.cache.drop_registry(key.as_str())
            }
        }
    }

    /// Drops the cached tokens of the registry that `key` names.
    pub fn drop_cached(&self, key: &ServerUrl) -> usize {
        self.cache.drop_registry(key.as_str())
    }

    /// The protocol's `list`: stored registries and exchange registries,
    /// by server URL, with the username `get` would return. Reads the
    /// index and the config only: no keyring, no network. An entry that
    /// does not parse is listed with the default username; its `get`
    /// reports the error.
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn list(&self) -> Result<BTreeMap<String, String>, HelperError> {
        let stored = self.store()?.list()?;
        let config = self.config.as_ref().ok();
        let mut out = BTreeMap::new();
        for (key, listed) in &stored {
            let entry = config.and_then(|c| Some((c, c.lookup(&ServerUrl::parse(key).ok()?)?)));
            let username = match entry {
                Some((c, id)) => c.registry(id).map_or_else(
                    |_| DEFAULT_USERNAME.to_owned(),
                    |reg| reg.username_for(Some(&listed.username)),
                ),
                None => listed.username.clone(),
            };
            out.insert(listed.server_url.clone(), username);
        }
        if let Some(config) = config {
            for id in config.ids() {
                let key = config.key(id);
                if stored.contains_key(key.as_str()) {
                    continue;
                }
                let username = config
                    .registry(id)
                    .map_or_else(|_| DEFAULT_USERNAME.to_owned(), |r| r.username_for(None));
                out.insert(key.display_name().to_owned(), username);
            }
        }
        Ok(out)
    }
}

fn stale(cache: &Cache, plan: &Plan, fingerprint: Option<&str>) -> Option<CachedToken> {
    match cache.lookup(&plan.cache_key, fingerprint, crate::time::now()) {
        Lookup::Fresh(hit) | Lookup::Stale(hit) => Some(hit),
        Lookup::Miss => None,
    }
}

fn answer(entry: CachedToken, origin: Origin, repository_scoped: bool) -> Answer {
    let schedule = entry.schedule();
    Answer {
        username: entry.username,
        secret: entry.token,
        origin,
        schedule: Some(schedule),
        repository_scoped,
    }
}
