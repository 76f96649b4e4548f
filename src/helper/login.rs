//! Changes of login: `login` (proved before it replaces anything), the
//! protocol's `store` and `erase`, each starting a new login generation so
//! that no exchange in flight can cache or return a token of the old one.

use super::{
    Erased, Failure, Helper, HelperError, LoginOutcome, Origin,
    get::{Request, answer},
};
use crate::config::SourceSpec;
use crate::plan::{KubeletRequest, Plan};
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::store::{EntryKind, StoredCredential};
use crate::subject::{Subject, SubjectError};

impl Helper {
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
        let id = config.lookup(url).ok_or(HelperError::NOT_FOUND)?;
        let (key, reg) = (config.key(id).clone(), config.registry(id)?);
        if !matches!(reg.subject_token, SourceSpec::Keyring) {
            return Err(Failure::NotAKeyringSource {
                registry: key.to_string(),
                from: reg.subject_token.describe(),
            }
            .into());
        }
        if let Some(exp) = crate::jwt::expiry(token.expose())
            && exp <= crate::time::now()
        {
            return Err(SubjectError::Expired {
                registry: key.to_string(),
                at: crate::time::rfc3339_signed(exp),
                hint: "get a fresh one from your identity provider".into(),
            }
            .into());
        }
        let username = username.map(str::to_owned);
        let proven = if verify {
            // Proved against what was asked for: `login HOST/REPO` proves an
            // entry whose templates need a repository.
            let cx = crate::subject::Context { deadline: &self.deadline, kubelet_token: None };
            let actor = crate::subject::probe_actor(&key, reg.actor_token.as_ref(), cx)?;
            let actor_fingerprint = actor.as_ref().and_then(crate::subject::Probe::fingerprint);
            let plan =
                Plan::new(url, &key, reg, KubeletRequest::default(), None, actor_fingerprint.as_deref())?;
            let subject = Subject { token: token.clone(), username: username.clone() };
            let request = Request { url, key: &key, reg, plan };
            let entry = self.exchange(&request, subject, actor.as_ref(), None)?;
            Some((request.plan, entry))
        } else {
            None
        };
        let cred = StoredCredential {
            server_url: key.display_name().to_owned(),
            username: username.unwrap_or_default(),
            secret: token,
            kind: Some(EntryKind::LoginToken),
        };
        // A new generation before the change and after it: a helper killed
        // between the two still leaves no token of the old login cached.
        // After a failed write too, as in `store`: a keyring write that
        // timed out may still land, and no token of the old login may
        // outlive it.
        self.new_generation(&key);
        let stored = self.store().and_then(|store| Ok(store.put(&key, &cred)?));
        self.new_generation(&key);
        stored?;
        let verified = proven.map(|(plan, entry)| {
            // The proven token serves the next `get`, unless another change
            // of login (a logout racing this login) came after ours.
            let ours = self.cache.generation(key.as_str(), &self.deadline);
            if let Ok(_lock) = self.cache.lock(&plan.cache_key, &self.deadline) {
                self.cache.commit(key.as_str(), &plan.cache_key, &entry, ours.as_ref(), &self.deadline);
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
        // `docker login HOST` with no new credentials stores back what
        // `get` answered: a token this helper issued. Storing it as the
        // login token would replace the login with a token the STS rejects.
        if kind == EntryKind::LoginToken && self.cache.issued(key.as_str(), &secret) {
            crate::log::debug!("{key}: store of a token this helper issued; the login is kept");
            return Ok(());
        }
        // `list` reports `server_url`, and `erase` of what `list` reports
        // must find this entry: a login token stored through a longer URL
        // (`h/team` for the entry `h`) is listed as its entry, or it would
        // share a name with a plain credential stored as `h/team`.
        let server_url = if key == *url { server_url } else { key.display_name() };
        let cred = StoredCredential {
            server_url: server_url.to_owned(),
            username: username.to_owned(),
            secret,
            kind: Some(kind),
        };
        // Before and after, and after a failure too: a write that timed out
        // may still land, and no token of the old login may outlive it.
        self.login_changed(&key);
        let stored = self.store().and_then(|store| Ok(store.put(&key, &cred)?));
        self.login_changed(&key);
        stored
    }

    /// The protocol's `erase`: removes the entry filed under exactly
    /// `url`, as `list` shows it; only when there is none, the login token
    /// that `store` files `url`'s credentials under (its exchange entry's).
    /// So a plain credential for `h/team`, stored before `h` was configured
    /// for exchange, is erased as `h/team`, and `h`'s login token is not.
    /// Erasing what is not there succeeds, as Docker's `logout` erases
    /// several spellings of one registry.
    ///
    /// # Errors
    /// The store failed.
    pub fn erase(&self, url: &ServerUrl) -> Result<Erased, HelperError> {
        let key = self.erase_key(url)?;
        self.login_changed(&key);
        let removed = self.store().and_then(|store| Ok(store.remove(&key)?));
        self.login_changed(&key);
        Ok(Erased { removed: removed?, key })
    }

    /// The key [`Helper::erase`] removes for `url`.
    fn erase_key(&self, url: &ServerUrl) -> Result<ServerUrl, HelperError> {
        let filed = self.storage_key(url);
        if filed == *url || self.store()?.username(url)?.is_none() {
            return Ok(filed);
        }
        Ok(url.clone())
    }

    /// After `store` or `erase`: an exchange registry's login (or any
    /// registry's, while the config cannot tell) starts a new login
    /// generation; a plain credential has no exchanged tokens to protect,
    /// only stray ones to drop.
    fn login_changed(&self, key: &ServerUrl) {
        let exchange_key = self.exchange_entry(key).is_some_and(|(config, id)| config.key(id) == key);
        if self.config.is_err() || exchange_key {
            self.new_generation(key);
        } else {
            self.drop_cached(key);
        }
    }

    /// Starts a new login generation for `key`, dropping its cached tokens.
    fn new_generation(&self, key: &ServerUrl) -> usize {
        match self.cache.new_generation(key.as_str(), &self.deadline) {
            Ok(dropped) => dropped,
            Err(e) => {
                crate::log::warn!(
                    "cannot record the new login for {key} in the cache ({e}); dropping its tokens"
                );
                self.cache.drop_registry(key.as_str())
            }
        }
    }

    /// Drops the cached tokens of the registry that `key` names.
    pub fn drop_cached(&self, key: &ServerUrl) -> usize {
        self.cache.drop_registry(key.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, OnceCell, RefCell};
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use std::time::Duration;

    use super::*;
    use crate::cache::{Cache, CacheKey, Commit, Generation, Identity, KeyFields, Schedule};
    use crate::config::Config;
    use crate::deadline::Deadline;
    use crate::store::{CredentialStore, ListedCredential, StoreError, Write};

    /// A keyring whose write times out (and may still land). While it
    /// "writes", a `get` of another process reads the login generation,
    /// as one that starts its exchange at that moment would.
    struct TimedOutWrite {
        cache: Cache,
        seen_during_write: Rc<RefCell<Option<Generation>>>,
    }

    impl CredentialStore for TimedOutWrite {
        fn get(&self, _: &ServerUrl) -> Result<Option<StoredCredential>, StoreError> {
            Ok(None)
        }
        fn username(&self, _: &ServerUrl) -> Result<Option<String>, StoreError> {
            Ok(None)
        }
        fn put(&self, key: &ServerUrl, _: &StoredCredential) -> Result<(), StoreError> {
            let deadline = Deadline::after(Duration::from_secs(5));
            *self.seen_during_write.borrow_mut() = self.cache.generation(key.as_str(), &deadline);
            Err(StoreError::KeyringTimedOut { limit: Duration::from_secs(1), write: Write::Store })
        }
        fn remove(&self, _: &ServerUrl) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn list(&self) -> Result<BTreeMap<String, ListedCredential>, StoreError> {
            Ok(BTreeMap::new())
        }
        fn describe(&self) -> String {
            "a keyring whose writes time out".into()
        }
        fn check_ready(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn a_login_whose_write_timed_out_still_refuses_tokens_exchanged_during_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.json");
        std::fs::write(
            &config_path,
            r#"{"registries": {"r.example": {"token_endpoint": "https://sts.example/t"}}}"#,
        )
        .unwrap();
        let cache = Cache::new(dir.path().join("cache"), true);
        let seen = Rc::new(RefCell::new(None));
        let store: Box<dyn CredentialStore> =
            Box::new(TimedOutWrite { cache: cache.clone(), seen_during_write: Rc::clone(&seen) });
        let helper = Helper {
            config: Config::load(&config_path),
            config_path,
            cache: cache.clone(),
            deadline: Deadline::after(Duration::from_secs(5)),
            store: OnceCell::from(store),
            failure_recorded: Cell::new(false),
        };
        let url = ServerUrl::parse("r.example").unwrap();
        let login = helper.login(&url, Some("alice"), Secret::new("new-login-token".into()), false);
        assert!(matches!(login, Err(HelperError::Failed(Failure::Store(_)))), "{login:?}");

        // The `get` that started during the write now offers the token it
        // exchanged from the login it read then.
        let key = CacheKey::new(&KeyFields::example(None));
        let identity = Identity { key: &key, registry: "r.example", request: "r.example", username: "alice" };
        let now = crate::time::now();
        let token = identity.entry(
            Secret::new("tok".into()),
            None,
            Schedule::new(now, Some(3600), None, 60, 60),
            None,
        );
        let seen = seen.borrow().clone();
        assert!(seen.is_some(), "the generation could not be read");
        let deadline = Deadline::after(Duration::from_secs(5));
        assert_eq!(cache.commit("r.example", &key, &token, seen.as_ref(), &deadline), Commit::LoginChanged);
    }
}
