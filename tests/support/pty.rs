//! Runs the helper on a pseudo-terminal, as a person at a terminal runs
//! it: the pty is its controlling terminal and its stdin, stdout and stderr,
//! so prompts, echo and Ctrl-C behave as they do for a person. The test
//! types with [`Pty::send`] and reads the screen with [`Pty::expect`].

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A program running on a pseudo-terminal.
pub struct Pty {
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
    child: Child,
    /// The terminal's side, kept while its output is held.
    held: Option<OwnedFd>,
}

impl Pty {
    /// Starts `command` with a new pty as its controlling terminal.
    pub fn spawn(command: Command) -> Pty {
        Pty::spawn_with(command, None, false)
    }

    /// The same on a terminal `columns` wide (24 rows), as a window of that
    /// size reports it to the program (TIOCGWINSZ).
    pub fn spawn_with_width(command: Command, columns: u16) -> Pty {
        Pty::spawn_with(command, Some(columns), false)
    }

    /// The same, but with the terminal's output held (`tcflow(TCOOFF)`, as
    /// Ctrl-S holds it) before the program starts: whatever it writes to the
    /// terminal, its prompt first, blocks until [`Pty::release_output`], and
    /// nothing reaches the screen. That makes "what is the terminal's state
    /// while the prompt is being shown" a question with one answer.
    pub fn spawn_with_output_held(command: Command) -> Pty {
        Pty::spawn_with(command, None, true)
    }

    /// Lets held output through (`tcflow(TCOON)`).
    pub fn release_output(&mut self) {
        if let Some(slave) = self.held.take() {
            // SAFETY: tcflow on an open terminal fd.
            assert_eq!(unsafe { libc::tcflow(slave.as_raw_fd(), libc::TCOON) }, 0, "tcflow TCOON");
        }
    }

    fn spawn_with(mut command: Command, columns: Option<u16>, hold_output: bool) -> Pty {
        let (mut master, mut slave) = (-1, -1);
        let size = columns.map(|ws_col| libc::winsize { ws_row: 24, ws_col, ws_xpixel: 0, ws_ypixel: 0 });
        let size_ptr = size.as_ref().map_or(std::ptr::null(), |s| s as *const libc::winsize);
        // SAFETY: openpty fills two fds; the other arguments may be null,
        // and the window size, when given, lives until the call returns.
        let opened = unsafe {
            libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), size_ptr)
        };
        assert_eq!(opened, 0, "openpty");
        // SAFETY: both fds were just opened and are owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let slave_fd = slave.as_raw_fd();
        let stdio = || Stdio::from(slave.try_clone().expect("dup pty"));
        command.stdin(stdio()).stdout(stdio()).stderr(stdio());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        if hold_output {
            // SAFETY: tcflow on an open terminal fd.
            assert_eq!(unsafe { libc::tcflow(slave_fd, libc::TCOOFF) }, 0, "tcflow TCOOFF");
        }
        let child = command.spawn().expect("spawn on a pty");
        // Kept only while output is held: the reader sees the end of the
        // screen once the program and this fd have both closed the terminal.
        let held = hold_output.then_some(slave);
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), Arc::clone(&screen));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { master, screen, child, held }
    }

    /// Types `bytes` at the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Everything the program has shown so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `text`; panics with the screen after
    /// `limit`.
    pub fn expect(&self, text: &str, limit: Duration) {
        let start = Instant::now();
        while !self.screen().contains(text) {
            assert!(
                start.elapsed() < limit,
                "the terminal never showed {text:?}; it shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the terminal echoes what is typed.
    pub fn echoes(&self) -> bool {
        self.local_modes() & libc::ECHO != 0
    }

    /// The terminal's local modes (`c_lflag`: echo, canonical input,
    /// signals), to compare before and after a program ran.
    pub fn local_modes(&self) -> libc::tcflag_t {
        // SAFETY: termios is plain data filled in by tcgetattr on our fd.
        let mut settings: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: the master fd is open.
        assert_eq!(unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut settings) }, 0);
        settings.c_lflag
    }

    /// Waits until `ready` holds; panics with the screen and `what` after
    /// `limit`.
    pub fn wait_until(&self, what: &str, limit: Duration, ready: impl Fn(&Pty) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            assert!(
                start.elapsed() < limit,
                "{what}, after {limit:?}; the terminal shows:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the program to exit (at most `limit`); its exit code,
    /// `None` if a signal ended it.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader drain what was written last.
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            assert!(start.elapsed() < limit, "still running; the terminal shows:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
