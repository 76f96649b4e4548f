//! What the credential actions do, whoever asks: the protocol verbs Docker
//! runs and the subcommands people run share this one implementation.
//!
//! `get` for an exchange registry is the heart of the product: probe the
//! subject cheaply, serve a fresh cache entry without any lock, keyring or
//! network; otherwise take the per-key lock (so concurrent helpers share one
//! exchange), look again, exchange, cache, and fall back to a still-valid
//! stale token if the refresh fails.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use crate::cache::{Cache, CacheKey, CachedToken, KeyFields, Lookup, schedule};
use crate::config::{
    self, Config, ConfigError, DEFAULT_USERNAME, MissingRepository, RegistryConfig, TemplateVars,
};
use crate::exchange::{ExchangeError, ExchangeRequest};
use crate::paths::{self, NoHomeError};
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::store::{self, CredentialStore, StoreError, StoredCredential};
use crate::subject::{self, Probe, SubjectError};

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
    /// A template needs a repository the request lacks.
    #[error(transparent)]
    Template(#[from] MissingRepository),
    /// The exchange failed (and no still-valid token was cached).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
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
    /// When it expires (exchanged tokens only).
    pub expires_at: Option<i64>,
}

/// Options of `get` that only people use (`token --refresh`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions {
    /// Skip the cache and exchange anew.
    pub force_refresh: bool,
}

/// The helper's state for one process: config, cache, and a store opened
/// on first use.
pub struct Helper {
    config: Config,
    cache: Option<Cache>,
    store: OnceCell<Result<Box<dyn CredentialStore>, NoHomeError>>,
}

impl std::fmt::Debug for Helper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper")
            .field("config", &self.config.path)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Helper {
    /// Loads the config named by the environment and locates the cache.
    ///
    /// # Errors
    /// The config is invalid or no home directory can be found.
    pub fn from_env() -> Result<Helper, HelperError> {
        let config = Config::load(&paths::config_file()?)?;
        let cache = if paths::cache_disabled() { None } else { Some(Cache::new(paths::cache_dir()?)) };
        Ok(Helper { config, cache, store: OnceCell::new() })
    }

    /// The loaded config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cache, unless disabled.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// The credential store the config and environment choose.
    ///
    /// # Errors
    /// The store choice is invalid or no data directory can be found.
    pub fn store(&self) -> Result<&dyn CredentialStore, HelperError> {
        let kind = self.config.store_kind()?;
        let store = self.store.get_or_init(|| paths::data_dir().map(|dir| store::open(kind, dir)));
        match store {
            Ok(s) => Ok(s.as_ref()),
            Err(e) => Err(HelperError::Paths(e.clone())),
        }
    }

    /// The key credentials for `url` are filed under: the exchange entry's
    /// key when one matches (its login token), else the URL itself.
    pub fn storage_key(&self, url: &ServerUrl) -> ServerUrl {
        self.config.lookup(url).map_or_else(|| url.clone(), |(key, _)| key.clone())
    }

    /// The protocol's `get`.
    ///
    /// # Errors
    /// [`HelperError::NotFound`] when nothing is stored or no subject
    /// token exists; otherwise what failed.
    pub fn get(&self, url: &ServerUrl, opts: GetOptions) -> Result<Answer, HelperError> {
        match self.config.lookup(url) {
            Some((key, reg)) => self.get_exchanged(url, key, reg, opts),
            None => {
                let store = self.store()?;
                // Docker asks by host; a request with a repository path (the
                // `token` subcommand, scripts) falls back to the host's entry.
                let cred = match store.get(url)? {
                    Some(c) => Some(c),
                    None if url.repository().is_some() => store.get(&url.host_only())?,
                    None => None,
                }
                .ok_or(HelperError::NotFound)?;
                Ok(Answer {
                    username: cred.username,
                    secret: cred.secret,
                    origin: Origin::Stored,
                    expires_at: None,
                })
            }
        }
    }

    fn get_exchanged(
        &self,
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        opts: GetOptions,
    ) -> Result<Answer, HelperError> {
        let plan = Plan::new(url, key, reg)?;
        let probe = subject::probe(&reg.subject_token)?;
        if matches!(probe, Probe::Absent) {
            crate::debug!("{url}: no subject token from {}; not found", reg.subject_token.describe());
            return Err(HelperError::NotFound);
        }
        let fingerprint = probe.fingerprint();
        let now = crate::time::now();
        let cache = self.cache.as_ref();
        if let Some(cache) = cache
            && !opts.force_refresh
            && let Lookup::Fresh(hit) = cache.lookup(&plan.cache_key, fingerprint.as_deref(), now)
        {
            crate::debug!("{url}: cache hit {}", plan.cache_key.as_str());
            return Ok(answer(hit, Origin::Cache));
        }
        // Single flight: one process exchanges, the others wait here and
        // then find its token in the cache.
        let _lock = match cache.map(|c| c.lock(&plan.cache_key)).transpose() {
            Ok(lock) => lock,
            Err(e) => {
                crate::warn!("cannot lock the token cache ({e}); exchanging without it");
                None
            }
        };
        let stale = match cache.map(|c| c.lookup(&plan.cache_key, fingerprint.as_deref(), crate::time::now()))
        {
            Some(Lookup::Fresh(hit)) if !opts.force_refresh => return Ok(answer(hit, Origin::Cache)),
            Some(Lookup::Fresh(hit) | Lookup::Stale(hit)) => Some(hit),
            _ => None,
        };
        match self.exchange(url, key, reg, &plan, probe) {
            Ok(fresh) => {
                if let Some(cache) = cache
                    && let Err(e) = cache.store(&plan.cache_key, &fresh)
                {
                    crate::warn!("cannot write the token cache: {e}");
                }
                Ok(answer(fresh, Origin::Exchange))
            }
            Err(HelperError::NotFound) => Err(HelperError::NotFound),
            Err(e) => match stale {
                Some(hit) if hit.expires_at > crate::time::now() => {
                    crate::warn!(
                        "{e}; using the cached token for {url}, which expires at {}",
                        crate::time::rfc3339_signed(hit.expires_at)
                    );
                    Ok(answer(hit, Origin::StaleCache))
                }
                _ => Err(e),
            },
        }
    }

    fn exchange(
        &self,
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        plan: &Plan,
        probe: Probe,
    ) -> Result<CachedToken, HelperError> {
        let fingerprint = probe.fingerprint();
        let default_audience = plan.audience.first().map(String::as_str);
        let subject = match probe {
            Probe::Loaded(s) => s,
            _ => {
                let store = self.store()?;
                subject::load_deferred(&reg.subject_token, key, store, default_audience)?
                    .ok_or(HelperError::NotFound)?
            }
        };
        let now = crate::time::now();
        subject::check_not_expired(&subject.token, key, &reg.subject_token, now)?;
        let client_secret = match &reg.client_secret {
            Some(spec) => Some(subject::read_secret(spec)?.ok_or_else(|| ExchangeError::Failed {
                registry: key.to_string(),
                endpoint: reg.token_endpoint.clone(),
                reason: format!("the client secret ({}) is not available", spec.describe()),
            })?),
            None => None,
        };
        let request = ExchangeRequest {
            registry: key.as_str(),
            endpoint: &reg.token_endpoint,
            subject_token: &subject.token,
            subject_token_type: reg.subject_token_type(),
            audience: plan.audience.clone(),
            resource: plan.resource.clone(),
            scope: plan.scope.clone(),
            requested_token_type: reg.requested_token_type.as_deref(),
            client_id: reg.client_id.as_deref(),
            client_secret: client_secret.as_ref(),
            client_auth: reg.client_auth,
        };
        let client = crate::http::client(reg.ca_file.as_deref()).map_err(|e| ExchangeError::Failed {
            registry: key.to_string(),
            endpoint: reg.token_endpoint.clone(),
            reason: e.to_string(),
        })?;
        let response = crate::exchange::exchange(&client, &request)?;
        let obtained_at = crate::time::now();
        let times = schedule(
            obtained_at,
            response.expires_in,
            crate::jwt::expiry(response.access_token.expose()),
            reg.default_lifetime(),
            reg.safety_margin(),
        );
        let username = match &reg.username {
            Some(u) => u.clone(),
            None => match subject.username {
                Some(u) => u,
                None => self.stored_username(key).unwrap_or_else(|| DEFAULT_USERNAME.to_owned()),
            },
        };
        crate::debug!(
            "{url}: exchanged {} for {} (expires {}, refresh at {})",
            subject.token.fingerprint(),
            response.access_token.fingerprint(),
            crate::time::rfc3339_signed(times.0),
            crate::time::rfc3339_signed(times.1)
        );
        Ok(Cache::entry_for(&plan.cache_key, key.as_str(), url.as_str(), &username).build(
            response.access_token,
            response.issued_token_type,
            obtained_at,
            times,
            fingerprint,
        ))
    }

    /// The username stored at `login`/`store` for a non-keyring subject;
    /// a failing store is no reason to fail the exchange.
    fn stored_username(&self, key: &ServerUrl) -> Option<String> {
        self.store().ok()?.username(key).ok().flatten().filter(|u| !u.is_empty())
    }

    /// The protocol's `store`: a plain credential, or an exchange
    /// registry's login token. Drops the registry's cached tokens.
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
        let key = self.storage_key(url);
        let cred =
            StoredCredential { server_url: server_url.to_owned(), username: username.to_owned(), secret };
        self.store()?.put(&key, &cred)?;
        self.drop_cached(&key);
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
        self.drop_cached(&key);
        Ok(removed)
    }

    /// Drops the cached tokens of the registry that `key` names.
    pub fn drop_cached(&self, key: &ServerUrl) -> usize {
        self.cache.as_ref().map_or(0, |c| c.drop_registry(key.as_str()))
    }

    /// The protocol's `list`: stored registries and exchange registries,
    /// by server URL, with the username `get` would return. Reads the
    /// index and the config only: no keyring, no network.
    ///
    /// # Errors
    /// The index cannot be read.
    pub fn list(&self) -> Result<BTreeMap<String, String>, HelperError> {
        let stored = self.store()?.list()?;
        let mut out = BTreeMap::new();
        for (key, listed) in &stored {
            let username = ServerUrl::parse(key)
                .ok()
                .and_then(|k| self.config.lookup(&k).and_then(|(_, reg)| reg.username.clone()))
                .unwrap_or_else(|| listed.username.clone());
            out.insert(listed.server_url.clone(), username);
        }
        for (key, reg) in &self.config.registries {
            if stored.contains_key(key.as_str()) {
                continue;
            }
            out.insert(key.to_string(), reg.username.clone().unwrap_or_else(|| DEFAULT_USERNAME.to_owned()));
        }
        Ok(out)
    }
}

fn answer(entry: CachedToken, origin: Origin) -> Answer {
    Answer { username: entry.username, secret: entry.token, origin, expires_at: Some(entry.expires_at) }
}

/// A request resolved against its registry entry: templates filled and the
/// cache key computed. Cheap: no I/O.
struct Plan {
    audience: Vec<String>,
    resource: Vec<String>,
    scope: Option<String>,
    cache_key: CacheKey,
}

impl Plan {
    fn new(url: &ServerUrl, key: &ServerUrl, reg: &RegistryConfig) -> Result<Plan, MissingRepository> {
        let vars = TemplateVars { registry: url.registry(), repository: url.repository() };
        let fill = |values: Option<&config::OneOrMany>, field| -> Result<Vec<String>, MissingRepository> {
            values.map_or(Ok(Vec::new()), |v| {
                v.values().iter().map(|t| config::expand(t, vars, key, field)).collect()
            })
        };
        let audience = fill(reg.audience.as_ref(), "audience")?;
        let resource = fill(reg.resource.as_ref(), "resource")?;
        let scope = reg.scope.as_deref().map(|s| config::expand(s, vars, key, "scope")).transpose()?;
        let source = reg.subject_token.describe();
        let cache_key = CacheKey::new(&KeyFields {
            registry_key: key.as_str(),
            repository: url.repository(),
            endpoint: &reg.token_endpoint,
            subject_source: &source,
            subject_token_type: reg.subject_token_type(),
            audience: &audience,
            resource: &resource,
            scope: scope.as_deref(),
            requested_token_type: reg.requested_token_type.as_deref(),
            client_id: reg.client_id.as_deref(),
        });
        Ok(Plan { audience, resource, scope, cache_key })
    }
}
