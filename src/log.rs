//! Diagnostics for people debugging the helper: to stderr with `-v` or
//! `DOCKER_CREDENTIAL_EXCHANGE_LOG=debug`, and appended to
//! `DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE`, because Docker swallows a
//! helper's stderr.
//!
//! Hand-written rather than `tracing`: the cache-hit path must start in well
//! under a millisecond, and all it needs from logging is "is debug on?",
//! one relaxed atomic load. Callers pass fingerprints, never secrets, and
//! every line still goes through [`crate::redact`] on its way out.
//!
//! The log file is often in a shared place (`/tmp/dce.log`), so it is
//! opened without following symlinks, created 0600, and refused if another
//! user owns it or others may write to it.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Environment variable that turns on debug logging to stderr.
pub const LOG_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_LOG";
/// Environment variable naming a file that log lines are appended to.
pub const LOG_FILE_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE";

const WARN: u8 = 1;
const DEBUG: u8 = 2;

static STDERR_LEVEL: AtomicU8 = AtomicU8::new(WARN);
static FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Reads the logging environment once at start-up. `verbose` is `-v`.
pub fn init(verbose: bool) {
    let env_debug = std::env::var_os(LOG_ENV).is_some_and(|v| {
        let v = v.to_string_lossy();
        v.eq_ignore_ascii_case("debug") || v.eq_ignore_ascii_case("trace") || v == "1"
    });
    if verbose || env_debug {
        STDERR_LEVEL.store(DEBUG, Ordering::Relaxed);
    }
    if let Some(path) = std::env::var_os(LOG_FILE_ENV).filter(|p| !p.is_empty()) {
        let path = std::path::Path::new(&path);
        match open_log_file(path) {
            Ok(f) => {
                let _ = FILE.set(Mutex::new(f));
            }
            Err(why) => {
                warn(format_args!("not logging to {}: {why}; logging to stderr only", path.display()))
            }
        }
    }
}

/// Opens the log file for appending, safely: see the module doc.
fn open_log_file(path: &std::path::Path) -> Result<std::fs::File, String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| {
        if crate::fsutil::is_symlink_error(&e) {
            "it is a symbolic link, which is not followed".to_owned()
        } else {
            e.to_string()
        }
    })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = crate::fsutil::current_uid();
        if meta.uid() != me {
            return Err(format!("it belongs to uid {}, not to you (uid {me})", meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "others may write to it (mode {:o}); run chmod 600 on it",
                meta.mode() & 0o777
            ));
        }
    }
    Ok(file)
}

/// Whether a debug line would go anywhere; lets callers skip formatting.
pub fn debug_enabled() -> bool {
    STDERR_LEVEL.load(Ordering::Relaxed) >= DEBUG || FILE.get().is_some()
}

/// Logs a debug line.
pub fn debug(args: std::fmt::Arguments<'_>) {
    emit(DEBUG, "debug", args);
}

/// Logs a warning: shown on stderr unless quieted, and in the log file.
pub fn warn(args: std::fmt::Arguments<'_>) {
    emit(WARN, "warning", args);
}

fn emit(level: u8, label: &str, args: std::fmt::Arguments<'_>) {
    let to_stderr = STDERR_LEVEL.load(Ordering::Relaxed) >= level;
    let file = FILE.get();
    if !to_stderr && file.is_none() {
        return;
    }
    let text = crate::redact::line(&args.to_string());
    if to_stderr {
        let _ = writeln!(std::io::stderr().lock(), "docker-credential-exchange: {label}: {text}");
    }
    if let Some(file) = file {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let line = format!("{} [{}] {label}: {text}\n", crate::time::rfc3339(secs), std::process::id());
        if let Ok(mut f) = file.lock() {
            // One write per line so concurrent helpers' lines do not interleave.
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Records why a protocol action failed. Docker shows the user only
/// "error getting credentials", so the log file is where the cause is found.
pub fn log_failure(action: &str, line: &str) {
    // On stderr only when debugging: the line itself already goes to stdout.
    emit(DEBUG, "error", format_args!("{action}: {line}"));
}

/// `debug!("…", args)`: a debug line, formatted only when it goes somewhere.
macro_rules! debug_line {
    ($($arg:tt)*) => {
        if $crate::log::debug_enabled() {
            $crate::log::debug(format_args!($($arg)*));
        }
    };
}

/// `warn!("…", args)`: a warning for the person running the helper.
macro_rules! warn_line {
    ($($arg:tt)*) => {
        $crate::log::warn(format_args!($($arg)*))
    };
}

// Crate-visible under the names callers use, `crate::log::debug!` and
// `crate::log::warn!`, rather than exported at the crate root: they are
// not an API, and a path through `log` says where they live.
pub(crate) use debug_line as debug;
pub(crate) use warn_line as warn;
