//! Real services for integration tests: a private Secret Service
//! (dbus-daemon plus an unlocked gnome-keyring-daemon), Debian's
//! `docker-registry` with htpasswd or token auth, and a private `dockerd`.
//!
//! Every launcher starts real processes bound to 127.0.0.1 or to unix
//! sockets under its own temporary directory, waits (bounded) until the
//! service answers, and on `Drop` stops the processes, reaps them and removes
//! what they left. A service that does not come up panics with its captured
//! log, so a failing test says why. Nothing here touches the user's own
//! keyring, Docker engine or `~/.docker`.
//!
//! Tests that need a tool call [`require_tool`] first: on a developer's
//! machine without the tool the test is skipped loudly; under CI (`CI` set)
//! a missing tool is a failure, because `.ci/run` installs all of them.
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

/// Whether this run is CI, where a missing tool is a failure, not a skip.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "0" && value != "false")
}

/// True when `name` is installed. When it is not, prints a loud skip line to
/// stderr naming the test and the package, and returns false; under CI it
/// panics instead, since `.ci/run` installs every tool.
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        return true;
    }
    let current = std::thread::current();
    let test = current.name().unwrap_or("<unnamed test>");
    let message = format!(
        "SKIPPED: {test}: {name} not installed; run .ci/run or apt-get install {}",
        package_for(name)
    );
    if in_ci() {
        panic!("{message} (CI is set, so a missing tool is a failure)");
    }
    eprintln!("\n*** {message} ***\n");
    false
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

    // SAFETY: both are plain libc functions, which std already links; the
    // declarations match their C prototypes on Linux.
    unsafe extern "C" {
        pub fn kill(pid: c_int, sig: c_int) -> c_int;
        pub fn umount2(target: *const c_char, flags: c_int) -> c_int;
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

// ---------------------------------------------------------------------------
// Secret Service
// ---------------------------------------------------------------------------

/// A private session bus with gnome-keyring-daemon's Secret Service on it,
/// its "login" keyring created, unlocked and the `default` alias, under
/// `$HOME/.local/share/keyrings` of the home given to [`SecretService::start`].
pub struct SecretService {
    // Field order is drop order: the keyring before its bus, both before
    // the directory holding the socket.
    keyring: Daemon,
    bus: Daemon,
    address: String,
    home: PathBuf,
    runtime_dir: PathBuf,
    dir: tempfile::TempDir,
}

/// The password the login keyring is created and unlocked with.
pub const KEYRING_PASSWORD: &str = "test-keyring-password";

/// A bus configuration with no service activation: if the keyring daemon
/// dies, clients get a clear error rather than a second, locked keyring that
/// the bus started on its own.
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

impl SecretService {
    /// Starts the bus and the keyring for `home` (created if missing) and
    /// waits until the default collection exists and is unlocked.
    pub fn start(home: &Path) -> SecretService {
        let started = Instant::now();
        let dir = short_tempdir("ss");
        let runtime_dir = dir.path().join("run");
        fs::create_dir(&runtime_dir).expect("create XDG_RUNTIME_DIR");
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod XDG_RUNTIME_DIR");
        fs::create_dir_all(home).expect("create HOME");
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        fs::write(&config, bus_config(&socket)).expect("write bus config");
        let address = format!("unix:path={}", socket.display());
        let env = vec![
            ("HOME".to_string(), home.display().to_string()),
            ("XDG_RUNTIME_DIR".to_string(), runtime_dir.display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS".to_string(), address.clone()),
        ];

        let mut command = Command::new(tool("dbus-daemon"));
        command
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .arg("--nosyslog");
        let mut bus = Daemon::spawn("dbus-daemon", command, &env, dir.path().join("dbus.log"), None);
        bus.wait_until("its socket to accept connections", || UnixStream::connect(&socket).is_ok());

        let mut command = Command::new(tool("gnome-keyring-daemon"));
        command
            .arg("--foreground")
            .arg("--unlock")
            .arg("--components=secrets")
            .arg(format!("--control-directory={}", runtime_dir.join("keyring").display()));
        let keyring = Daemon::spawn(
            "gnome-keyring-daemon",
            command,
            &env,
            dir.path().join("keyring.log"),
            Some(KEYRING_PASSWORD.as_bytes()),
        );
        let mut service = SecretService { keyring, bus, address, home: home.to_path_buf(), runtime_dir, dir };
        let probe_env = service.env();
        let probe_dir = service.dir.path().to_path_buf();
        service.keyring.wait_until("an unlocked default collection", || {
            default_collection_unlocked(&probe_env, &probe_dir)
        });
        service.bus.check_alive();
        elapsed_note("SecretService", started);
        service
    }

    /// Variables a child process needs to reach this Secret Service:
    /// `DBUS_SESSION_BUS_ADDRESS`, `HOME` and `XDG_RUNTIME_DIR`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".to_string(), self.address.clone()),
            ("HOME".to_string(), self.home.display().to_string()),
            ("XDG_RUNTIME_DIR".to_string(), self.runtime_dir.display().to_string()),
        ]
    }

    /// The bus address, as for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The bus's and the keyring daemon's logs.
    pub fn log(&self) -> String {
        format!(
            "--- dbus-daemon ---\n{}\n--- gnome-keyring-daemon ---\n{}",
            self.bus.log(),
            self.keyring.log()
        )
    }

    fn secret_tool(&self) -> Command {
        let mut command = Command::new(tool("secret-tool"));
        command.env_clear().env("PATH", SERVICE_PATH).envs(self.env()).stdin(Stdio::null());
        command
    }

    /// `secret-tool search --all --unlock` for items with all of `attrs`:
    /// stdout and stderr together, so each item's label, secret and
    /// `attribute.*` lines. Empty when nothing matches.
    pub fn secret_tool_search(&self, attrs: &[(&str, &str)]) -> String {
        assert!(!attrs.is_empty(), "secret-tool search needs at least one attribute");
        let mut command = self.secret_tool();
        command.args(["search", "--all", "--unlock"]);
        for (key, value) in attrs {
            command.arg(key).arg(value);
        }
        let (_, output) = run_merged(command, self.dir.path());
        output
    }

    /// `secret-tool lookup`: the secret of an item with all of `attrs`, or
    /// None when there is none.
    pub fn secret_tool_lookup(&self, attrs: &[(&str, &str)]) -> Option<String> {
        let mut command = self.secret_tool();
        command.arg("lookup");
        for (key, value) in attrs {
            command.arg(key).arg(value);
        }
        let output = command.output().expect("run secret-tool lookup");
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `secret-tool store` into the default collection; panics on failure.
    pub fn secret_tool_store(&self, label: &str, attrs: &[(&str, &str)], secret: &str) {
        let mut command = self.secret_tool();
        command.arg("store").arg(format!("--label={label}"));
        for (key, value) in attrs {
            command.arg(key).arg(value);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run secret-tool store");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(secret.as_bytes())
            .expect("write secret-tool's stdin");
        let output = child.wait_with_output().expect("wait for secret-tool store");
        assert!(
            output.status.success(),
            "secret-tool store failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        self.keyring.stop(STOP_TIMEOUT);
        self.bus.stop(STOP_TIMEOUT);
    }
}

/// Whether the `default` alias names a collection and that collection is
/// unlocked, asked with dbus-send.
fn default_collection_unlocked(env: &[(String, String)], dir: &Path) -> bool {
    let dbus_send = |args: &[&str]| -> Option<String> {
        let mut command = Command::new(tool("dbus-send"));
        command
            .env_clear()
            .env("PATH", SERVICE_PATH)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["--session", "--print-reply", "--dest=org.freedesktop.secrets"])
            .args(args)
            .stdin(Stdio::null());
        let (ok, output) = run_merged(command, dir);
        ok.then_some(output)
    };
    let Some(alias) = dbus_send(&[
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.ReadAlias",
        "string:default",
    ]) else {
        return false;
    };
    let Some(path) = alias
        .split_whitespace()
        .skip_while(|word| *word != "path")
        .nth(1)
        .map(|word| word.trim_matches('"').to_string())
    else {
        return false;
    };
    if path == "/" {
        return false;
    }
    dbus_send(&[
        &path,
        "org.freedesktop.DBus.Properties.Get",
        "string:org.freedesktop.Secret.Collection",
        "string:Locked",
    ])
    .is_some_and(|locked| locked.contains("boolean false"))
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/// Token authentication settings for [`Registry::start_token`], as in the
/// registry's `auth.token` configuration.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificates whose keys may sign tokens.
    pub rootcertbundle: PathBuf,
}

/// Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, plain http,
/// filesystem storage in a temporary directory.
pub struct Registry {
    daemon: Daemon,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// A registry that accepts `user`/`password` with HTTP Basic auth
    /// (bcrypt htpasswd file).
    pub fn start_htpasswd(user: &str, password: &str) -> Registry {
        let dir = short_tempdir("rg");
        let htpasswd = dir.path().join("htpasswd");
        let output =
            Command::new(tool("htpasswd")).args(["-Bbn", user, password]).output().expect("run htpasswd");
        assert!(output.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&output.stderr));
        fs::write(&htpasswd, &output.stdout).expect("write htpasswd file");
        let auth =
            format!("auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n", htpasswd.display());
        Registry::start(dir, &auth)
    }

    /// A registry that wants bearer tokens from `auth.realm`.
    pub fn start_token(auth: TokenAuth) -> Registry {
        let dir = short_tempdir("rg");
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            yaml_string(&auth.realm),
            yaml_string(&auth.service),
            yaml_string(&auth.issuer),
            yaml_string(&auth.rootcertbundle.display().to_string()),
        );
        Registry::start(dir, &auth)
    }

    fn start(dir: tempfile::TempDir, auth: &str) -> Registry {
        let started = Instant::now();
        let storage = dir.path().join("data");
        fs::create_dir(&storage).expect("create registry storage");
        let mut last_log = String::new();
        // A port picked free can be taken before the registry binds it; try
        // a few.
        for attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs::write(&config, registry_config(&storage, port, auth)).expect("write registry config");
            let mut command = Command::new(tool("docker-registry"));
            command.arg("serve").arg(&config);
            let log = dir.path().join(format!("registry-{attempt}.log"));
            let mut daemon = Daemon::spawn("docker-registry", command, &[], log, None);
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if http_status(port, "/v2/") == Some(401) {
                    elapsed_note("Registry", started);
                    return Registry { daemon, port, dir };
                }
                if daemon.exited() {
                    last_log = daemon.log();
                    if last_log.contains("address already in use") {
                        break;
                    }
                    panic!("docker-registry exited during start-up; its log:\n{last_log}");
                }
                if Instant::now() > deadline {
                    panic!(
                        "docker-registry not ready after {READY_TIMEOUT:?} (GET /v2/ never gave 401); its log:\n{}",
                        daemon.log()
                    );
                }
                sleep(POLL);
            }
        }
        panic!("docker-registry found no free port in 5 tries; last log:\n{last_log}");
    }

    /// `127.0.0.1:PORT`, the registry's name in image references and in
    /// `docker login`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The registry's log so far (one line per request at level info).
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

/// Quotes a value for the YAML config (JSON strings are YAML strings).
fn yaml_string(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

fn registry_config(storage: &Path, port: u16, auth: &str) -> String {
    format!(
        "version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: integration-test-secret
{auth}",
        storage = yaml_string(&storage.display().to_string()),
    )
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0")
}

/// The status code of a plain GET on 127.0.0.1:`port`, or None when nothing
/// answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    http_get_status(stream, &format!("127.0.0.1:{port}"), path)
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

// ---------------------------------------------------------------------------
// Docker engine
// ---------------------------------------------------------------------------

/// A private `dockerd` (with the containerd it starts for itself) whose
/// data root, exec root, pid file and socket are all in a temporary
/// directory. No bridge, no iptables: it can pull, push, import and build
/// without touching the host's network.
pub struct Dockerd {
    daemon: Daemon,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Dockerd {
    /// Starts dockerd and waits until `GET /_ping` answers 200.
    pub fn start() -> Dockerd {
        let started = Instant::now();
        let dir = short_tempdir("dk");
        let socket = dir.path().join("docker.sock");
        let config = dir.path().join("daemon.json");
        // An own config file, so the host's /etc/docker/daemon.json cannot
        // change this daemon, and an own trust key: dockerd 20.10 otherwise
        // creates /etc/docker/key.json, a race between parallel daemons.
        let key = serde_json::Value::String(dir.path().join("key.json").display().to_string());
        fs::write(&config, format!("{{\"deprecated-key-path\": {key}}}\n")).expect("write daemon.json");
        let mut command = Command::new(tool("dockerd"));
        command
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--log-level=warn",
            ]);
        // TMPDIR keeps containerd's stack dumps (written when dockerd's
        // health check restarts it under heavy load) out of /tmp.
        let env = [
            ("HOME".to_string(), dir.path().display().to_string()),
            ("TMPDIR".to_string(), dir.path().display().to_string()),
        ];
        let daemon = Daemon::spawn("dockerd", command, &env, dir.path().join("dockerd.log"), None);
        let mut dockerd = Dockerd { daemon, dir, socket };
        let socket = dockerd.socket.clone();
        dockerd.daemon.wait_until("GET /_ping to answer 200", || {
            UnixStream::connect(&socket).ok().and_then(|stream| http_get_status(stream, "docker", "/_ping"))
                == Some(200)
        });
        elapsed_note("Dockerd", started);
        dockerd
    }

    /// `unix:///…/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// dockerd's log (containerd's warnings included).
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// A `docker` command aimed at this daemon: `DOCKER_HOST` set,
    /// `DOCKER_CONTEXT` removed. The caller sets `DOCKER_CONFIG`.
    pub fn docker(&self) -> Command {
        let mut command = Command::new(tool("docker"));
        command
            .env("DOCKER_HOST", self.host())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        command
    }

    fn stop(&mut self) {
        self.daemon.stop(STOP_TIMEOUT);
        // A clean exit stops containerd and its shims; after a SIGKILL they
        // live on in their own sessions, found by the paths in their
        // command lines.
        kill_processes_mentioning(self.dir.path());
        unmount_under(self.dir.path());
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGKILLs every process whose command line mentions `dir`.
fn kill_processes_mentioning(dir: &Path) {
    let mut needle = dir.as_os_str().as_bytes().to_vec();
    needle.push(b'/');
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.windows(needle.len()).any(|window| window == needle.as_slice()) {
            signal(pid, sys::SIGKILL);
        }
    }
}

/// Detaches every mount at or below `dir` (overlay layers, network
/// namespaces, the data root's own bind mount), deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.as_os_str().as_bytes();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|point| {
            let bytes = point.as_bytes();
            bytes.starts_with(prefix) && (bytes.len() == prefix.len() || bytes[prefix.len()] == b'/')
        })
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        if let Ok(target) = CString::new(point) {
            // SAFETY: target is a valid NUL-terminated path.
            unsafe {
                sys::umount2(target.as_ptr(), sys::MNT_DETACH);
            }
        }
    }
}

/// /proc/self/mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(octal, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Imports a one-file image (`/hello.txt`) into `dockerd` as `tag`. The
/// image has no binary, so it can be pushed, pulled and built `FROM`, but
/// not run.
pub fn docker_import_tiny_image(dockerd: &Dockerd, tag: &str) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let tar = dir.path().join("tiny.tar");
    fs::write(&tar, tiny_tar("hello.txt", b"hello from the tiny image\n")).expect("write tar");
    let config = dir.path().join("docker-config");
    fs::create_dir(&config).expect("create DOCKER_CONFIG");
    let output: Output = dockerd
        .docker()
        .env("DOCKER_CONFIG", &config)
        .arg("import")
        .arg(&tar)
        .arg(tag)
        .output()
        .expect("run docker import");
    assert!(
        output.status.success(),
        "docker import {tag} failed: {}\n--- dockerd log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        dockerd.log()
    );
}

/// A POSIX ustar archive holding one regular file.
fn tiny_tar(name: &str, content: &[u8]) -> Vec<u8> {
    assert!(name.len() < 100, "tar name too long");
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mut field = |offset: usize, value: &str| {
        header[offset..offset + value.len()].copy_from_slice(value.as_bytes());
    };
    field(100, "0000644\0"); // mode
    field(108, "0000000\0"); // uid
    field(116, "0000000\0"); // gid
    field(124, &format!("{:011o}\0", content.len())); // size
    field(136, "00000000000\0"); // mtime
    field(148, "        "); // checksum, as spaces while summing
    field(156, "0"); // regular file
    field(257, "ustar\0");
    field(263, "00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0);
    tar
}
