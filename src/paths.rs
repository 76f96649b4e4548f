//! Where the helper keeps things: the config file, the token cache and the
//! data directory (index and file store), each overridable by environment
//! variable for tests, CI images and people with unusual layouts.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Overrides the config file's path.
pub const CONFIG_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_CONFIG";
/// Overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR";
/// Overrides the data directory (keyring index, file store).
pub const DATA_DIR_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR";
/// `1` disables the token cache.
pub const NO_CACHE_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE";

const APP: &str = "docker-credential-exchange";

/// Why a location cannot be determined.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot determine your {what} directory (is HOME set?); set {env} to choose one")]
pub struct NoHomeError {
    what: &'static str,
    env: &'static str,
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The platform directories, computed once per process: `get` needs both
/// the config file and the cache directory, and each computation reads
/// several environment variables and builds several paths (about 10,500
/// instructions, measured with callgrind; see bench/RESULTS.md).
fn project_dirs() -> Option<&'static directories::ProjectDirs> {
    static DIRS: OnceLock<Option<directories::ProjectDirs>> = OnceLock::new();
    DIRS.get_or_init(|| directories::ProjectDirs::from("", "", APP)).as_ref()
}

static CONFIG_OVERRIDE: OnceLock<PathBuf> = OnceLock::new();

/// Makes [`config_file`] answer `path` for the rest of the process: the
/// global `--config FILE` of the subcommands.
pub fn override_config_file(path: PathBuf) {
    let _ = CONFIG_OVERRIDE.set(path);
}

/// The config file: `--config`, else `$DOCKER_CREDENTIAL_EXCHANGE_CONFIG`,
/// else `config.json` in the platform config directory.
///
/// # Errors
/// Neither the variable nor a home directory is available.
pub fn config_file() -> Result<PathBuf, NoHomeError> {
    if let Some(path) = CONFIG_OVERRIDE.get() {
        return Ok(path.clone());
    }
    from_env(CONFIG_ENV)
        .or_else(|| project_dirs().map(|d| d.config_dir().join("config.json")))
        .ok_or(NoHomeError { what: "config", env: CONFIG_ENV })
}

/// Where [`config_file`]'s answer came from, for the commands that tell a
/// person which file they read (`status`, `doctor`): a config silently
/// ignored because it sits in another platform's directory is a classic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// The global `--config FILE` option.
    Flag,
    /// `$DOCKER_CREDENTIAL_EXCHANGE_CONFIG`.
    Env,
    /// `config.json` in the platform's config directory.
    PlatformDefault,
}

impl ConfigOrigin {
    /// Which one is in force, by the same rules as [`config_file`].
    pub fn current() -> ConfigOrigin {
        if CONFIG_OVERRIDE.get().is_some() {
            ConfigOrigin::Flag
        } else if from_env(CONFIG_ENV).is_some() {
            ConfigOrigin::Env
        } else {
            ConfigOrigin::PlatformDefault
        }
    }

    /// A stable word for scripts: `flag`, `env` or `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigOrigin::Flag => "flag",
            ConfigOrigin::Env => "env",
            ConfigOrigin::PlatformDefault => "default",
        }
    }

    /// Words for people: "from --config", "from $DOCKER_CREDENTIAL_EXCHANGE_CONFIG",
    /// "the default on Linux".
    pub fn describe(self) -> String {
        match self {
            ConfigOrigin::Flag => "from --config".to_owned(),
            ConfigOrigin::Env => format!("from ${CONFIG_ENV}"),
            ConfigOrigin::PlatformDefault => {
                let os = match std::env::consts::OS {
                    "linux" => "Linux",
                    "macos" => "macOS",
                    "windows" => "Windows",
                    other => other,
                };
                format!("the default on {os}")
            }
        }
    }
}

/// The token cache directory.
///
/// # Errors
/// Neither the variable nor a home directory is available.
pub fn cache_dir() -> Result<PathBuf, NoHomeError> {
    from_env(CACHE_DIR_ENV)
        .or_else(|| project_dirs().map(|d| d.cache_dir().to_owned()))
        .ok_or(NoHomeError { what: "cache", env: CACHE_DIR_ENV })
}

/// The data directory: the keyring index and the file store. The local
/// one: on Windows `%LOCALAPPDATA%`, like the cache, not the roaming
/// profile, which copies itself to other machines and would carry the file
/// store's secrets, and an index of keyring items that are not there. (On
/// Linux and macOS the local and the roaming data directory are one.)
///
/// # Errors
/// Neither the variable nor a home directory is available.
pub fn data_dir() -> Result<PathBuf, NoHomeError> {
    from_env(DATA_DIR_ENV)
        .or_else(|| project_dirs().map(|d| d.data_local_dir().to_owned()))
        .ok_or(NoHomeError { what: "data", env: DATA_DIR_ENV })
}

/// Whether `DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE` turns the cache off.
pub fn cache_disabled() -> bool {
    std::env::var_os(NO_CACHE_ENV).is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;

    /// Windows: the index and the file store stay on this machine, beside
    /// the cache in `%LOCALAPPDATA%`, not in the roaming profile with the
    /// config.
    #[test]
    fn the_data_directory_is_local_like_the_cache() {
        assert!(
            from_env(DATA_DIR_ENV).is_none() && from_env(CACHE_DIR_ENV).is_none(),
            "unset {DATA_DIR_ENV} and {CACHE_DIR_ENV} to run this test"
        );
        let (data, cache) = (data_dir().unwrap(), cache_dir().unwrap());
        assert_eq!(data.parent(), cache.parent(), "data in {}, cache in {}", data.display(), cache.display());
        assert!(data.ends_with("data"), "{}", data.display());
    }
}
