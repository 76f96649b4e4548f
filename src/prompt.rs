//! Reading a login token from a person: a file, piped stdin (read whole),
//! or on a terminal one line typed or pasted with echo off, as `docker
//! login` prompts.
//!
//! At the prompt, echo goes off *before* the prompt is shown, as OpenSSH's
//! `readpassphrase` does: a token pasted or sent (an `expect` script,
//! `tmux send-keys`) the moment the prompt appears is never echoed. What
//! was typed before that (echoed already, or meant for the shell) is
//! discarded rather than taken for the token. The terminal's settings
//! belong to the terminal, not to this process, so they are put back
//! however the prompt ends: Enter, an error, or an interrupt (Ctrl-C, which
//! the prompt library turns into SIGINT; SIGTERM; SIGHUP; on Windows the
//! console's Ctrl-C, Ctrl-Break and close events).

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
    let quiet = terminal::Quiet::begin().context("turning echo off on the terminal")?;
    quiet.show(prompt).context("showing the prompt on the terminal")?;
    // The library saves the settings it finds (echo already off), reads one
    // line in raw mode, and puts them back; `quiet` then restores the rest.
    let line = rpassword::read_password().context("reading the login token from the terminal");
    drop(quiet);
    line
}

#[cfg(unix)]
mod terminal {
    use std::sync::OnceLock;

    /// The terminal and its settings before the prompt, for the signal
    /// handler (which may read only what was set before it was installed).
    static SAVED: OnceLock<(libc::c_int, libc::termios)> = OnceLock::new();

    /// Restores the terminal, then ends the process as the signal would
    /// have, by the shell's convention (status 128 + the signal: 130 for
    /// Ctrl-C).
    extern "C" fn restore_and_exit(signal: libc::c_int) {
        if let Some((fd, settings)) = SAVED.get() {
            // SAFETY: tcsetattr, write and _exit are async-signal-safe; the
            // fd and settings were saved before the handler was installed.
            unsafe {
                libc::tcsetattr(*fd, libc::TCSANOW, settings);
                libc::write(*fd, b"\n".as_ptr().cast(), 1);
            }
        }
        // SAFETY: ends the process without running anything else.
        unsafe { libc::_exit(128 + signal) }
    }

    /// Echo off on the controlling terminal until dropped, with the
    /// settings restored by a signal handler if the process is interrupted
    /// meanwhile.
    pub(super) struct Quiet {
        fd: libc::c_int,
        settings: libc::termios,
        previous: Vec<(libc::c_int, libc::sigaction)>,
    }

    impl Quiet {
        /// Saves the terminal's settings, installs the handlers, then turns
        /// echo off (in that order: no moment has echo off and nothing to
        /// restore it), discarding input that arrived before.
        pub(super) fn begin() -> std::io::Result<Quiet> {
            let fd = SAVED.get().map_or_else(open_tty, |(fd, _)| Ok(*fd))?;
            // SAFETY: termios is plain data, filled in by tcgetattr.
            let mut settings: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: fd is open; settings is a valid termios to write into.
            if unsafe { libc::tcgetattr(fd, &mut settings) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A second prompt in one process keeps the first one's record,
            // which holds the same terminal's settings before any prompt.
            let _ = SAVED.set((fd, settings));
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
            let quiet = Quiet { fd, settings, previous };
            let mut silent = settings;
            silent.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
            // SAFETY: fd is open and `silent` a valid termios.
            if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &silent) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(quiet)
        }

        /// Writes `prompt` to the terminal.
        pub(super) fn show(&self, prompt: &str) -> std::io::Result<()> {
            let mut rest = prompt.as_bytes();
            while !rest.is_empty() {
                // SAFETY: fd is open; the pointer and length describe `rest`.
                let n = unsafe { libc::write(self.fd, rest.as_ptr().cast(), rest.len()) };
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                rest = rest.get(n as usize..).unwrap_or_default();
            }
            Ok(())
        }
    }

    impl Drop for Quiet {
        fn drop(&mut self) {
            // SAFETY: fd is open (kept for the handler for the process's
            // life); the settings are the ones tcgetattr gave; the actions
            // are the ones sigaction returned.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSANOW, &self.settings);
                for (signal, old) in &self.previous {
                    libc::sigaction(*signal, old, std::ptr::null_mut());
                }
            }
        }
    }

    /// The controlling terminal, opened for the rest of the process (the
    /// signal handler needs it).
    fn open_tty() -> std::io::Result<libc::c_int> {
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe { libc::open(c"/dev/tty".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 { Err(std::io::Error::last_os_error()) } else { Ok(fd) }
    }
}

#[cfg(windows)]
mod terminal {
    use std::sync::atomic::{AtomicIsize, AtomicU32, Ordering};

    use windows_sys::Win32::Foundation::{
        CloseHandle, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
    };
    use windows_sys::Win32::Storage::FileSystem::{
        CreateFileW, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
    };
    use windows_sys::Win32::System::Console::{
        CONSOLE_MODE, ENABLE_ECHO_INPUT, FlushConsoleInputBuffer, GetConsoleMode, SetConsoleCtrlHandler,
        SetConsoleMode, WriteConsoleW,
    };

    /// The console input's handle and mode before the prompt, for the
    /// control handler, which runs on a thread of its own.
    static INPUT: AtomicIsize = AtomicIsize::new(0);
    static MODE: AtomicU32 = AtomicU32::new(0);

    /// Ctrl-C, Ctrl-Break or the console closing: the mode belongs to the
    /// console, which outlives this process and goes back to the shell, so
    /// it is restored; then the next handler (the default one, which ends
    /// the process) runs.
    unsafe extern "system" fn restore_console(_event: u32) -> i32 {
        let handle = INPUT.load(Ordering::SeqCst);
        if handle != 0 {
            // SAFETY: the handle stays open while this handler is installed.
            unsafe { SetConsoleMode(handle as HANDLE, MODE.load(Ordering::SeqCst)) };
        }
        0
    }

    /// Echo off on the console until dropped, restored by a control
    /// handler if the process is interrupted meanwhile.
    pub(super) struct Quiet {
        input: HANDLE,
        output: HANDLE,
        mode: CONSOLE_MODE,
    }

    impl Quiet {
        /// Saves the console's input mode, installs the handler, then turns
        /// echo off, discarding input that arrived before.
        pub(super) fn begin() -> std::io::Result<Quiet> {
            let input = open("CONIN$")?;
            let output = match open("CONOUT$") {
                Ok(output) => output,
                Err(e) => {
                    // SAFETY: closing the handle opened above.
                    unsafe { CloseHandle(input) };
                    return Err(e);
                }
            };
            let mut mode: CONSOLE_MODE = 0;
            // SAFETY: both handles are open; `mode` is valid for a write.
            unsafe {
                if GetConsoleMode(input, &mut mode) == 0 {
                    let e = std::io::Error::last_os_error();
                    CloseHandle(input);
                    CloseHandle(output);
                    return Err(e);
                }
            }
            INPUT.store(input as isize, Ordering::SeqCst);
            MODE.store(mode, Ordering::SeqCst);
            let quiet = Quiet { input, output, mode };
            // SAFETY: the handler only restores the saved mode; the handle
            // is open until `quiet` is dropped, which removes the handler
            // first.
            unsafe {
                if SetConsoleCtrlHandler(Some(restore_console), 1) == 0
                    || SetConsoleMode(input, mode & !ENABLE_ECHO_INPUT) == 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                FlushConsoleInputBuffer(input);
            }
            Ok(quiet)
        }

        /// Writes `prompt` to the console.
        pub(super) fn show(&self, prompt: &str) -> std::io::Result<()> {
            let wide: Vec<u16> = prompt.encode_utf16().collect();
            let mut written = 0u32;
            // SAFETY: the handle is open; the pointer and length describe `wide`.
            let ok = unsafe {
                WriteConsoleW(
                    self.output,
                    wide.as_ptr().cast(),
                    wide.len() as u32,
                    &mut written,
                    std::ptr::null(),
                )
            };
            if ok == 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        }
    }

    impl Drop for Quiet {
        fn drop(&mut self) {
            // SAFETY: the handles are open; the mode is the one read.
            unsafe {
                SetConsoleMode(self.input, self.mode);
                SetConsoleCtrlHandler(Some(restore_console), 0);
                INPUT.store(0, Ordering::SeqCst);
                CloseHandle(self.input);
                CloseHandle(self.output);
            }
        }
    }

    fn open(name: &str) -> std::io::Result<HANDLE> {
        let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
        // SAFETY: a NUL-terminated name; the other arguments are plain values.
        let handle = unsafe {
            CreateFileW(
                wide.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                0,
                std::ptr::null_mut(),
            )
        };
        if handle == INVALID_HANDLE_VALUE { Err(std::io::Error::last_os_error()) } else { Ok(handle) }
    }
}
