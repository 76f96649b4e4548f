//! What the credential actions do, whoever asks: the protocol verbs Docker
//! runs, the subcommands people run and the kubelet provider share this one
//! implementation.
//!
//! `get` for an exchange registry is a small state machine:
//! 1. resolve the request against its entry ([`Plan`]) and probe the
//!    subject cheaply; no subject means "not found", without a request
//!    (the reason is kept for `status` and the log);
//! 2. a fresh cache entry is the answer: no lock, keyring or network;
//! 3. otherwise wait, by the deadline, for the per-key lock, so that one
//!    exchange serves every helper asking at once;
//! 4. look again: the helper that held the lock may have refreshed the
//!    token, or failed, in which case its failure (or the stale token) is
//!    the answer rather than a second attempt; so is a failure of the same
//!    exchange under the same login a few seconds ago (remembered, unless
//!    `token --refresh` asks anew): clients that ask again after each
//!    failure must not pay a deadline each time;
//! 5. note the registry's login generation, read the subject, exchange;
//! 6. cache the token only if the login did not change meanwhile (else
//!    start over with the new login);
//! 7. on failure, keep the reason for `status` and `doctor` and, if it
//!    was the endpoint's, for the helpers waiting behind and those asking
//!    in the next seconds; fall back to a cached token that is inside its
//!    margin but not yet expired.
//!
//! The machine is in [`get`]; changes of login (`login`, `store`,
//! `erase`) in [`login`]; plain credentials and `list` here.

mod client_inputs;
mod error;
mod get;
mod list;
mod login;

pub use error::{Failure, HelperError};

use std::cell::{Cell, OnceCell};
use std::path::PathBuf;

use crate::cache::{Cache, Schedule};
use crate::config::{self, Config, ConfigError};
use crate::deadline::Deadline;
use crate::paths;
use crate::plan::KubeletRequest;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::store::{self, CredentialStore, EntryKind};

/// How many times a `get` starts over because the login changed under it.
const LOGIN_CHANGE_RETRIES: usize = 3;

/// How long a repeated "no subject token" outcome is not written again.
const REPEATED_OUTCOME_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

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

/// What `erase` did.
#[derive(Debug)]
pub struct Erased {
    /// The key whose entry it removed (or would have, had one been stored).
    pub key: ServerUrl,
    /// Whether one was stored.
    pub removed: bool,
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
        let cache_dir = paths::cache_dir()?;
        let caching = !paths::cache_disabled();
        Ok(Helper {
            // The config's index lives beside the tokens, and is not used
            // (nor written) when caching is off.
            config: if caching {
                Config::load_indexed(&config_path, &cache_dir)
            } else {
                Config::load(&config_path)
            },
            config_path,
            cache: Cache::new(cache_dir, caching),
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

    /// Every failed exchange a `get` would answer from memory now (for
    /// `status` and `doctor`), newest first: in its window, under the
    /// current login, and with the client inputs the entry has now.
    pub fn remembered(&self) -> Vec<crate::cache::ExchangeFailure> {
        let mut failures = self.cache.remembered(&self.deadline);
        failures.retain(|f| {
            let reg = ServerUrl::parse(&f.registry).ok().and_then(|key| {
                let config = self.config.as_ref().ok()?;
                config.registry(config.lookup(&key)?).ok()
            });
            f.with_same_client(reg.and_then(|reg| client_inputs::fingerprint(reg, &f.key)).as_deref())
        });
        failures
    }

    /// This helper with `deadline` in place of its own, for a command that
    /// waits on a person before its real work: the time someone takes to
    /// paste a token at `login`'s prompt must not be counted against the
    /// keyring or the endpoint. The store, if opened, is opened again so
    /// that it waits by the new deadline too.
    pub fn with_deadline(self, deadline: Deadline) -> Helper {
        Helper { deadline, store: OnceCell::new(), ..self }
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
        let kind = self.store_kind()?;
        let dir = paths::data_dir()?;
        Ok(self.store.get_or_init(|| store::open(kind, dir, self.deadline)).as_ref())
    }

    /// Which store [`Helper::store`] opens: the environment variable, else
    /// the config's choice, read even from a config too broken to parse
    /// (plain credentials keep working then).
    ///
    /// # Errors
    /// The variable or the config names no known store.
    pub fn store_kind(&self) -> Result<store::StoreKind, HelperError> {
        Ok(match &self.config {
            Ok(config) => config.store_kind()?,
            Err(_) => config::store_kind(config::salvage_store_choice(&self.config_path))?,
        })
    }

    /// The exchange entry for `url`, if the config is usable and has one.
    fn exchange_entry(&self, url: &ServerUrl) -> Option<(&Config, config::EntryId)> {
        let config = self.config.as_ref().ok()?;
        config.lookup(url).map(|id| (config, id))
    }

    /// Whether an exchange entry serves `url` (a usable config has one).
    pub fn is_exchange_registry(&self, url: &ServerUrl) -> bool {
        self.exchange_entry(url).is_some()
    }

    /// The exchange entry serving `url`, if a usable config has one: its
    /// key, and its settings unless the entry itself is invalid.
    pub fn entry_for(&self, url: &ServerUrl) -> Option<(ServerUrl, Option<config::RegistryConfig>)> {
        self.exchange_entry(url).map(|(c, id)| (c.key(id).clone(), c.registry(id).ok().cloned()))
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
            // Plain credentials keep working. A login token gets the file's
            // own error: the registry was configured for exchange when it
            // was stored, and whether it still is cannot be read, so there
            // is nothing to say about its entry (never "log out"). Nothing
            // stored gets it too when the broken file names the registry.
            Err(config_error) => match self.get_plain(url) {
                Err(HelperError::Failed(Failure::LoginTokenWithoutExchange { .. })) => {
                    Err(config_error.clone().into())
                }
                Err(HelperError::NotFound { .. }) if self.broken_config_mentions(url) => {
                    Err(config_error.clone().into())
                }
                other => other,
            },
        };
        match &result {
            Err(HelperError::NotFound { reason: None }) => {}
            // The newest outcome, so that `status` does not show an older
            // failure that has since been fixed; not an exchange failure,
            // so never answered from memory.
            Err(HelperError::NotFound { reason: Some(reason) }) => {
                self.cache.record_repeated_failure(url, reason, REPEATED_OUTCOME_REFRESH, &self.deadline);
            }
            Err(e) if !self.failure_recorded.get() => {
                self.cache.record_failure(url, None, &e.to_string(), &self.deadline)
            }
            Err(_) => {}
            // A hit or a stored credential is a success that did not clear
            // the failure on file; an exchange cleared it, and a stale token
            // comes with a failure that stays.
            Ok(a) if matches!(a.origin, Origin::Cache | Origin::Stored) => self.cache.clear_failure(url),
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
        .ok_or(HelperError::NOT_FOUND)?;
        if cred.kind == Some(EntryKind::LoginToken) {
            return Err(Failure::LoginTokenWithoutExchange { registry: url.registry().to_owned() }.into());
        }
        Ok(Answer {
            username: cred.username,
            secret: cred.secret,
            origin: Origin::Stored,
            schedule: None,
            repository_scoped: false,
        })
    }
}
