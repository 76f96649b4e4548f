//! Real services for integration tests: a private Secret Service
//! (dbus-daemon plus an unlocked gnome-keyring-daemon), Debian's
//! `docker-registry` with htpasswd or token auth, a private `dockerd`, and
//! a Debian base image made with debootstrap for it.
//!
//! Every launcher starts real processes bound to 127.0.0.1 or to unix
//! sockets under its own temporary directory, waits (bounded) until the
//! service answers, and on `Drop` stops the processes, reaps them and removes
//! what they left. A service that does not come up panics with its captured
//! log, so a failing test says why. Nothing here touches the user's own
//! keyring, Docker engine or `~/.docker`.
//!
//! Tests that need a tool call [`require_tool`] first: on a developer's
//! machine without the tool the test is skipped loudly (`super::skip`);
//! under CI (`CI` set) a missing tool is a failure, because `.ci/run`
//! installs all of them.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

mod base_image;
mod dockerd;
mod registry;
mod secret_service;

// Each test binary uses its own subset of these.
#[allow(unused_imports)]
pub use base_image::{docker_import_bookworm, mirror_in, require_debootstrap};
#[allow(unused_imports)]
pub use dockerd::{Dockerd, docker_import_tiny_image, one_file_tar};
#[allow(unused_imports)]
pub use registry::{Registry, TokenAuth, free_port};
#[allow(unused_imports)]
pub use secret_service::SecretService;

/// How long any service may take to become ready before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(25);
/// How long a service may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// A PATH that finds the daemons wherever Debian puts them.
const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

/// The Debian package that provides each tool these tests use, for the skip
/// message.
fn package_for(tool: &str) -> &'static str {
    match tool {
        "dbus-daemon" => "dbus-daemon",
        "dbus-send" => "dbus-bin",
        "gnome-keyring-daemon" => "gnome-keyring",
        "secret-tool" => "libsecret-tools",
        "docker-registry" => "docker-registry",
        "htpasswd" => "apache2-utils",
        "dockerd" | "docker" | "containerd" | "runc" => "docker.io",
        "skopeo" => "skopeo",
        "curl" => "curl",
        "openssl" => "openssl",
        "docker-credential-secretservice" => "golang-docker-credential-helpers",
        "debootstrap" => "debootstrap",
        "git" => "git",
        "bash" => "bash",
        "zsh" => "zsh",
        "fish" => "fish",
        "man" => "man-db",
        "/usr/bin/docker-credential-exchange" => "the .deb: dpkg -i \"$(install/build-deb.sh)\"",
        _ => "the package that provides it",
    }
}

/// Where `name` is installed: searched on `PATH`, then in the sbin
/// directories, which a non-login root shell may leave off `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::env::split_paths(SERVICE_PATH))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Whether this run is CI, where a test that cannot run is a failure.
fn in_ci() -> bool {
    super::skip::in_ci()
}

/// True when `name` is installed. When it is not, the calling test is
/// skipped loudly, naming the package ([`skip`](super::skip::skip); under
/// CI that is a failure, since `.ci/run` installs every tool).
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    super::skip::skip(&format!("{name} not installed; run .ci/run or install {}", package_for(name)));
    false
}

/// True when the tests run as root, which a test that hands files to
/// another user needs (`chown`). Otherwise a loud skip, or under CI a
/// failure, as for a missing tool.
pub fn require_root() -> bool {
    super::skip::require_root("to give a file to another user")
}

/// True when every tool in `names` is installed (see [`require_tool`]).
pub fn require_tools(names: &[&str]) -> bool {
    names.iter().all(|name| require_tool(name))
}

/// True when `skopeo` is installed (see [`require_tool`]). Skopeo needs no
/// daemon.
pub fn skopeo_available() -> bool {
    require_tool("skopeo")
}

/// The absolute path of a tool the caller has already required.
fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| panic!("{name} not installed: call require_tool first"))
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

mod sys {
    use std::ffi::{c_char, c_int};

    pub const SIGKILL: c_int = 9;
    pub const SIGTERM: c_int = 15;
    pub const MNT_DETACH: c_int = 2;

    // SAFETY: these are plain libc functions, which std already links; the
    // declarations match their C prototypes on Linux.
    unsafe extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
        pub fn umount2(target: *const c_char, flags: c_int) -> c_int;
        pub fn geteuid() -> u32;
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only gives ESRCH.
    unsafe {
        sys::kill(pid, sig);
    }
}

/// A child process that leads its own process group, with stdout and stderr
/// captured in a log file. Dropping it kills the whole group and reaps the
/// child.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    stopped: bool,
}

impl Daemon {
    /// Spawns `command` in a new process group with a clean environment
    /// (plus `PATH` and `env`), stdin from `stdin` or /dev/null, and output
    /// to `log`.
    fn spawn(
        name: &'static str,
        mut command: Command,
        env: &[(String, String)],
        log: PathBuf,
        stdin: Option<&[u8]>,
    ) -> Daemon {
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        command
            .env_clear()
            .env("PATH", SERVICE_PATH)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {name} ({command:?}): {e}"));
        if let Some(bytes) = stdin {
            // Dropping the handle closes the pipe, which ends the input.
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(bytes).unwrap_or_else(|e| panic!("write {name}'s stdin: {e}"));
        }
        Daemon { name, child, log, stopped: false }
    }

    fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Panics with the log if the process has already exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited during start-up ({status}); its log:\n{}", self.name, self.log());
        }
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Polls `ready` until it holds, panicking with the log if the process
    /// exits or [`READY_TIMEOUT`] passes.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ready() {
                return;
            }
            self.check_alive();
            if Instant::now() > deadline {
                panic!(
                    "{} not ready after {READY_TIMEOUT:?} (waiting for {what}); its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            sleep(POLL);
        }
    }

    /// SIGTERM to the group, up to `grace` to exit, then SIGKILL to the
    /// group; always reaps the child. The group is signalled only while its
    /// leader is unreaped, so its id cannot have been reused.
    fn stop(&mut self, grace: Duration) {
        if std::mem::replace(&mut self.stopped, true) || self.exited() {
            return;
        }
        let group = -(self.child.id() as i32);
        signal(group, sys::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            sleep(POLL);
        }
        signal(group, sys::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

fn read_log(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("<no log at {}: {e}>", path.display()),
    }
}

/// A temporary directory with a short path under /tmp, so unix socket paths
/// inside it stay far below the 108-byte limit.
fn short_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("create a temporary directory under /tmp")
}

/// Runs `command` and returns stdout and stderr together, in the order
/// written, plus whether it succeeded.
fn run_merged(mut command: Command, dir: &Path) -> (bool, String) {
    let capture = tempfile::tempfile_in(dir).expect("create capture file");
    let err = capture.try_clone().expect("clone capture handle");
    let mut reader = capture.try_clone().expect("clone capture handle");
    let status =
        command.stdout(capture).stderr(err).status().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    let mut out = String::new();
    use std::io::Seek;
    reader.rewind().expect("rewind capture file");
    reader.read_to_string(&mut out).expect("read capture file");
    (status.success(), out)
}

fn elapsed_note(name: &str, started: Instant) {
    if std::env::var_os("SERVICES_TIMING").is_some() {
        eprintln!("{name} ready in {:?}", started.elapsed());
    }
}

fn http_get_status<S: Read + Write>(mut stream: S, host: &str, path: &str) -> Option<u16> {
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < 12 {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    // "HTTP/1.1 401 ..."
    std::str::from_utf8(&head[..filled]).ok()?.split_whitespace().nth(1)?.parse().ok()
}
