//! The store choice: which store holds secrets at rest. It is a config
//! value (the file's `"store"`, overridden by an environment variable), so
//! it lives here, and the stores take it from the config rather than the
//! config reaching into the stores.

/// Environment variable that selects the file store (`file`) or the keyring
/// (`keyring`), overriding the config file.
pub const STORE_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_STORE";

/// Which store holds secrets at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS keyring (the default).
    Keyring,
    /// A 0600 JSON file: an explicit opt-in for headless machines.
    File,
}
