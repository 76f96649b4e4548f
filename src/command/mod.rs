//! Running another program by a deadline: a `command` subject source, or
//! another credential helper (`import --from`, `configure-docker`'s check
//! of the helper it replaces). The program gets its own process group (a
//! Job Object on Windows, see `windows.rs`), so that at the deadline the
//! whole group is killed, including a background child that still holds
//! its stdout; its stdout is read through the one bounded reader; its
//! stderr is discarded (it may echo a secret). Once the program has
//! exited, its output is waited for only a short grace: a background child
//! it left holding stdout is killed with the group then, not at the
//! deadline.

#[cfg(windows)]
mod windows;

use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::bounded::{ONE_MIB, ReadError};
use crate::deadline::Deadline;

/// Why a program could not be run to the end.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot run {program}: {reason}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// The deadline passed first; it was killed with its process group.
    #[error("{program} did not finish within {limit}s and was killed")]
    TimedOut {
        /// The program.
        program: String,
        /// The limit in seconds.
        limit: f64,
    },
    /// Its stdout was over 1 MiB or unreadable.
    #[error("{program} {reason}")]
    Output {
        /// The program.
        program: String,
        /// What was wrong with its output.
        reason: String,
    },
}

/// What a program that ran to the end left.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout, at most 1 MiB.
    pub stdout: Vec<u8>,
}

/// Runs `argv` with `stdin` (nothing if `None`) until it exits or
/// `deadline` passes.
///
/// # Errors
/// See [`CommandError`].
pub fn run(argv: &[String], stdin: Option<&[u8]>, deadline: &Deadline) -> Result<Finished, CommandError> {
    let program = argv.first().cloned().unwrap_or_default();
    #[cfg(windows)]
    let mut command = Command::new(windows::resolve(&program));
    #[cfg(not(windows))]
    let mut command = Command::new(&program);
    command
        .args(argv.iter().skip(1))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let (mut child, group) = Group::spawn(&mut command)
        .map_err(|e| CommandError::Spawn { program: program.clone(), reason: e.to_string() })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        // On a thread: a program that does not read its stdin must not
        // block us before the deadline is being watched.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let Some(stdout) = child.stdout.take() else {
        group.kill(&mut child);
        return Err(CommandError::Output { program, reason: "has no stdout".into() });
    };
    // Read on a thread: a program that fills the pipe must not deadlock
    // the wait, and a background child holding the pipe open must not keep
    // us reading past the deadline.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(crate::bounded::read_to_end(stdout, ONE_MIB));
    });
    let (first, status) = wait_for_output(&receiver, &mut child, deadline);
    let output = match (first, status) {
        (Some(output), Some(_)) => Some(output),
        (first, _) => {
            // Something of its group still runs at the deadline: kill it
            // all, which also closes the pipe it held.
            group.kill(&mut child);
            first.or_else(|| receiver.recv_timeout(Duration::from_millis(500)).ok())
        }
    };
    let (Some(status), Some(output)) = (status, output) else {
        return Err(CommandError::TimedOut { program, limit: deadline.limit().as_secs_f64() });
    };
    let stdout = output.map_err(|e| CommandError::Output {
        program: program.clone(),
        reason: match e {
            ReadError::TooLarge(_) => "printed more than 1 MiB".into(),
            ReadError::Io(e) => format!("could not be read ({e})"),
        },
    })?;
    Ok(Finished { status, stdout })
}

/// How long a program's output is waited for once it has exited: what it
/// wrote is in the pipe already, and a background child it left holding
/// the pipe open must not keep us waiting until the deadline.
const GRACE: Duration = Duration::from_millis(250);

type Output = Result<Vec<u8>, ReadError>;

/// The first file named `name` in the directories of `path` (a `PATH`
/// value) that could be run: executable on Unix; elsewhere a file, as
/// `name` or `name.exe`.
pub fn find_in_path(path: &std::ffi::OsStr, name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(path).map(|dir| dir.join(name)).find_map(|candidate| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let runnable = std::fs::metadata(&candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            runnable.then_some(candidate)
        }
        #[cfg(not(unix))]
        {
            let exe = candidate.with_extension("exe");
            if candidate.is_file() { Some(candidate) } else { exe.is_file().then_some(exe) }
        }
    })
}

/// Waits until stdout closes, the program exits (then [`GRACE`] more for
/// its output), or the deadline passes. Returns the output, if it came,
/// and the exit status, if the program exited.
fn wait_for_output(
    receiver: &std::sync::mpsc::Receiver<Output>,
    child: &mut Child,
    deadline: &Deadline,
) -> (Option<Output>, Option<ExitStatus>) {
    let mut pause = Duration::from_millis(1);
    loop {
        match receiver.recv_timeout(deadline.cap(pause)) {
            // stdout closed: the program is done, or nearly.
            Ok(output) => return (Some(output), wait_until(child, deadline)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return (None, wait_until(child, deadline));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            return (receiver.recv_timeout(deadline.cap(GRACE)).ok(), Some(status));
        }
        if deadline.expired() {
            return (None, None);
        }
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The child's exit status, if it exits by `deadline`.
fn wait_until(child: &mut Child, deadline: &Deadline) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if deadline.expired() => return None,
            Ok(None) => {
                std::thread::sleep(deadline.cap(pause));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(_) => return None,
        }
    }
}

/// Unix: the program leads a process group of its own, which `kill`
/// signals whole.
#[cfg(not(windows))]
struct Group;

#[cfg(not(windows))]
impl Group {
    fn spawn(command: &mut Command) -> std::io::Result<(Child, Group)> {
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(command, 0);
        Ok((command.spawn()?, Group))
    }

    /// Kills the program and everything left in its process group, then
    /// reaps it. Only called while the group still has a member, so its id
    /// cannot have been reused.
    fn kill(&self, child: &mut Child) {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: signals the process group created for this child.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(windows)]
use windows::Group;

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn soon(secs: u64) -> Deadline {
        Deadline::after(Duration::from_secs(secs))
    }

    #[test]
    fn stdout_and_status_come_back() {
        let done = run(&sh("echo out; exit 3"), None, &soon(10)).unwrap();
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.status.code(), Some(3));
    }

    #[test]
    fn stdin_is_given_to_the_program() {
        let done = run(&sh("cat"), Some(b"request"), &soon(10)).unwrap();
        assert_eq!(done.stdout, b"request");
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_deadline() {
        let start = Instant::now();
        let err = run(&sh("sleep 30"), None, &soon(1)).unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn a_background_child_holding_stdout_is_killed_with_the_group() {
        let start = Instant::now();
        let done = run(&sh("echo tok; sleep 30 &"), None, &soon(2)).unwrap();
        assert_eq!(done.stdout, b"tok\n");
        assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
    }

    #[test]
    fn a_background_child_holding_stdout_costs_a_short_grace_not_the_deadline() {
        let start = Instant::now();
        let done = run(&sh("echo tok; sleep 60 &"), None, &soon(30)).unwrap();
        assert_eq!(done.stdout, b"tok\n");
        assert!(done.status.success());
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }

    #[test]
    fn a_program_that_does_not_exist_is_a_spawn_error() {
        assert!(matches!(
            run(&["/nonexistent/prog".into()], None, &soon(5)),
            Err(CommandError::Spawn { .. })
        ));
    }
}
