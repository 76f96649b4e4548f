//! Reading a login token from a person: a file, piped stdin (read whole),
//! or on a terminal one line typed or pasted with echo off, as `docker
//! login` prompts. Interrupting the prompt restores the terminal: the
//! prompt library turns echo off and, on Ctrl-C, raises SIGINT before it
//! can turn it back on, so a handler restores the saved settings first.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};

use crate::bounded::{ONE_MIB, ReadError};
use crate::secret::Secret;

/// Where the token comes from.
pub enum Source<'a> {
    /// A file (or `/dev/stdin`, or a process substitution).
    File(&'a Path),
    /// Standard input, whole, even on a terminal (`--token-stdin`).
    Stdin,
    /// A prompt on the terminal if stdin is one, else stdin whole.
    Auto {
        /// What the prompt asks for.
        prompt: String,
    },
}

/// Reads the token, trimmed; never empty.
///
/// # Errors
/// Unreadable, over 1 MiB, not UTF-8, or empty.
pub fn read_token(source: Source<'_>) -> anyhow::Result<Secret> {
    let text = match source {
        Source::File(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("reading the login token from {}", path.display()))?;
            read(file).with_context(|| format!("reading the login token from {}", path.display()))?
        }
        Source::Auto { prompt } if std::io::stdin().is_terminal() => prompt_on_terminal(&prompt)?,
        Source::Stdin | Source::Auto { .. } => {
            read(std::io::stdin().lock()).context("reading the login token from stdin")?
        }
    };
    let token = text.trim();
    if token.is_empty() {
        bail!(
            "no login token given: type or paste it at the prompt, pipe it in, or name a file with --token-file"
        );
    }
    Ok(Secret::new(token.to_owned()))
}

fn read(reader: impl std::io::Read) -> anyhow::Result<String> {
    crate::bounded::read_text(reader, ONE_MIB).map_err(|e| match e {
        ReadError::TooLarge(_) => anyhow::anyhow!("the login token is larger than 1 MiB"),
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            anyhow::anyhow!("the login token is not UTF-8 text")
        }
        ReadError::Io(e) => e.into(),
    })
}

fn prompt_on_terminal(prompt: &str) -> anyhow::Result<String> {
    let _restore = terminal::restore_on_interrupt();
    rpassword::prompt_password(prompt).context("reading the login token from the terminal")
}

#[cfg(unix)]
mod terminal {
    use std::sync::OnceLock;

    /// The terminal's settings before the prompt, for the signal handler.
    static SAVED: OnceLock<(libc::c_int, libc::termios)> = OnceLock::new();

    extern "C" fn restore_and_exit(_signal: libc::c_int) {
        if let Some((fd, settings)) = SAVED.get() {
            // SAFETY: tcsetattr, write and _exit are async-signal-safe; the
            // fd and settings were saved before the handler was installed.
            unsafe {
                libc::tcsetattr(*fd, libc::TCSANOW, settings);
                libc::write(*fd, b"\n".as_ptr().cast(), 1);
            }
        }
        // SAFETY: ends the process without running anything else.
        unsafe { libc::_exit(130) }
    }

    /// Saves the terminal's settings and, while the guard lives, restores
    /// them if SIGINT, SIGTERM or SIGHUP arrives.
    pub(super) fn restore_on_interrupt() -> Option<Guard> {
        let path = c"/dev/tty";
        // SAFETY: a valid NUL-terminated path; the fd is kept for the
        // handler for the rest of the process.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: termios is plain data, filled in by tcgetattr.
        let mut settings: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open; settings is a valid termios to write into.
        if unsafe { libc::tcgetattr(fd, &mut settings) } != 0 || SAVED.set((fd, settings)).is_err() {
            // SAFETY: closing the fd we opened.
            unsafe { libc::close(fd) };
            return None;
        }
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction structs are plain data; the handler only
            // calls async-signal-safe functions.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = restore_and_exit as *const () as libc::sighandler_t;
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(signal, &action, &mut old);
                previous.push((signal, old));
            }
        }
        Some(Guard { previous })
    }

    /// Puts the previous signal handlers back when dropped.
    pub(super) struct Guard {
        previous: Vec<(libc::c_int, libc::sigaction)>,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            for (signal, old) in &self.previous {
                // SAFETY: reinstalls the action that sigaction returned.
                unsafe { libc::sigaction(*signal, old, std::ptr::null_mut()) };
            }
        }
    }
}

#[cfg(not(unix))]
mod terminal {
    /// The console restores echo itself when the process ends.
    pub(super) fn restore_on_interrupt() -> Option<()> {
        None
    }
}
