//! Runs the real `docker-credential-exchange` binary the way Docker does,
//! in a sandbox: its own temporary HOME, config, cache and data
//! directories, and a cleared environment, so no test can read or damage
//! the developer's real credentials. On failure, every assertion dumps the
//! command, status, stdout and stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_docker-credential-exchange"))
}

/// A private HOME with the helper's directories and environment.
pub struct Sandbox {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A sandbox using the file store (no keyring needed).
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new().prefix("dce-test-").tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut env = BTreeMap::new();
        env.insert("HOME".into(), home.display().to_string());
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()));
        env.insert(
            "DOCKER_CREDENTIAL_EXCHANGE_CONFIG".into(),
            dir.path().join("config.json").display().to_string(),
        );
        env.insert(
            "DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR".into(),
            dir.path().join("cache").display().to_string(),
        );
        env.insert(
            "DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        );
        env.insert("DOCKER_CREDENTIAL_EXCHANGE_STORE".into(), "file".into());
        // Windows programs need SystemRoot to load system libraries that
        // sockets and crypto use; it names no user data.
        #[cfg(windows)]
        if let Some(root) = std::env::var_os("SystemRoot") {
            env.insert("SystemRoot".into(), root.to_string_lossy().into_owned());
        }
        Sandbox { dir, env }
    }

    /// Uses the keyring of the session the tests run in: the login
    /// Keychain on macOS, Credential Manager on Windows. Only the keyring
    /// is shared; config, cache and index stay in the sandbox.
    ///
    /// On macOS the real HOME is kept, because the Security framework finds
    /// the login keychain through `$HOME/Library`; with the sandbox's HOME
    /// there is no default keychain at all.
    pub fn use_session_keyring(&mut self) -> &mut Self {
        self.env.remove("DOCKER_CREDENTIAL_EXCHANGE_STORE");
        if cfg!(target_os = "macos")
            && let Some(home) = std::env::var_os("HOME")
        {
            self.env.insert("HOME".into(), home.to_string_lossy().into_owned());
        }
        self
    }

    /// Uses the OS keyring instead of the file store, with the given
    /// environment (e.g. a private D-Bus session's address).
    pub fn use_keyring(&mut self, env: &[(String, String)]) -> &mut Self {
        self.env.remove("DOCKER_CREDENTIAL_EXCHANGE_STORE");
        for (k, v) in env {
            self.env.insert(k.clone(), v.clone());
        }
        self
    }

    /// Sets an environment variable for every command of this sandbox.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Removes an environment variable from every command of this sandbox.
    pub fn remove_env(&mut self, key: &str) -> &mut Self {
        self.env.remove(key);
        self
    }

    /// The sandbox's environment.
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The sandbox's root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The private HOME.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The config file path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The data directory (index, file store).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The token cache's entries (`*.json` in the cache directory), sorted.
    pub fn cache_entries(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.cache_dir()) else { return Vec::new() };
        let mut entries: Vec<_> =
            dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
        entries.sort();
        entries
    }

    /// Rewrites the first cache entry through `change` (e.g. moving its
    /// times) and returns its path.
    pub fn edit_cache_entry(&self, change: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let path = self.cache_entries().into_iter().next().expect("a cache entry");
        let mut entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        change(&mut entry);
        std::fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
        path
    }

    /// Writes the helper's config file.
    pub fn write_config(&self, config: &serde_json::Value) {
        std::fs::write(self.config_path(), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    }

    /// Writes a config with one exchange registry at `endpoint`, whose
    /// subject tokens are JWTs, plus `extra` fields for that entry.
    pub fn write_exchange_config(&self, registry: &str, endpoint: &str, extra: serde_json::Value) {
        let mut entry = serde_json::json!({
            "token_endpoint": endpoint,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        });
        for (k, v) in extra.as_object().expect("extra fields are an object") {
            entry[k] = v.clone();
        }
        self.write_config(&serde_json::json!({ "registries": { registry: entry } }));
    }

    /// A command running the helper with `args`.
    pub fn cmd(&self, args: &[&str]) -> TestCommand {
        let mut cmd = Command::new(bin());
        cmd.args(args).env_clear().envs(&self.env).current_dir(self.dir.path());
        TestCommand { cmd, stdin: Vec::new(), kill_after: None }
    }

    /// `get` for `server` on stdin.
    pub fn get(&self, server: &str) -> Output {
        self.cmd(&["get"]).stdin(server).run()
    }

    /// `store` of Docker's JSON.
    pub fn store(&self, server: &str, username: &str, secret: &str) -> Output {
        let body = serde_json::json!({"ServerURL": server, "Username": username, "Secret": secret});
        self.cmd(&["store"]).stdin(body.to_string()).run()
    }

    /// `erase` of `server`.
    pub fn erase(&self, server: &str) -> Output {
        self.cmd(&["erase"]).stdin(server).run()
    }

    /// `list`.
    pub fn list(&self) -> Output {
        self.cmd(&["list"]).run()
    }

    /// `login REGISTRY --username alice --token-stdin` with `token`.
    pub fn login(&self, registry: &str, token: &str) -> Output {
        self.cmd(&["login", registry, "--username", "alice", "--token-stdin"]).stdin(token).run()
    }

    /// Logs alice in to `registry` with a fresh login token from `sts`, and
    /// returns the token.
    pub fn logged_in(&self, registry: &str, sts: &super::sts::Sts) -> String {
        let token = sts.mint_subject_token("alice", 3600);
        self.login(registry, &token).success();
        token
    }

    /// Writes an executable `sh` script `name` running `body` into the
    /// sandbox's own `bin` directory, which comes first on its PATH: a
    /// stand-in for another credential helper that the helper runs by
    /// name. Returns the script's path.
    #[cfg(unix)]
    pub fn add_script(&mut self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let on_path = self.env["PATH"].split(':').next() == Some(bin.to_str().unwrap());
        if !on_path {
            let path_var = format!("{}:{}", bin.display(), self.env["PATH"]);
            self.env.insert("PATH".into(), path_var);
        }
        path
    }

    /// Sends every helper's log lines, debug ones included, to a file in
    /// the sandbox (stderr stays quiet) and returns its path.
    pub fn log_to_file(&mut self) -> PathBuf {
        let path = self.dir.path().join("helpers.log");
        self.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", path.to_str().expect("a UTF-8 temp dir"));
        path
    }

    /// Blocks until the log file of [`Sandbox::log_to_file`] holds `count`
    /// lines containing `needle`: a helper's own word that it has come so
    /// far (say, that it waits for a lock). Panics after `limit`, naming
    /// what the log held, or as soon as `gone_wrong` says why waiting on
    /// is pointless (say, a second exchange reached the STS).
    pub fn wait_for_log_lines(
        &self,
        needle: &str,
        count: usize,
        limit: std::time::Duration,
        gone_wrong: impl Fn() -> Option<String>,
    ) {
        let path = self.dir.path().join("helpers.log");
        let started = std::time::Instant::now();
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let found = log.lines().filter(|l| l.contains(needle)).count();
            if found >= count {
                return;
            }
            if let Some(why) = gone_wrong() {
                panic!("{why} while {found} of {count} log lines held {needle:?}; the log:\n{log}");
            }
            assert!(
                started.elapsed() < limit,
                "{found} of {count} log lines with {needle:?} after {limit:?}; the log:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Every file under the sandbox (relative paths), for "nothing changed"
    /// assertions, with contents.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let p = e.path();
                let ft = e.file_type().unwrap();
                if ft.is_dir() {
                    walk(root, &p, out);
                } else if ft.is_file() {
                    out.insert(
                        p.strip_prefix(root).unwrap().to_owned(),
                        std::fs::read(&p).unwrap_or_default(),
                    );
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out
    }

    /// Every file under the sandbox whose bytes contain `needle`: where a
    /// secret that belongs in the keyring must never be.
    pub fn files_containing(&self, needle: &str) -> Vec<PathBuf> {
        self.snapshot()
            .into_iter()
            .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .map(|(path, _)| path)
            .collect()
    }
}

/// A prepared invocation.
pub struct TestCommand {
    cmd: Command,
    stdin: Vec<u8>,
    kill_after: Option<std::time::Duration>,
}

impl TestCommand {
    /// Bytes for stdin.
    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = bytes.as_ref().to_vec();
        self
    }

    /// An extra environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Kills the helper if it runs longer than `limit`, so that a test of a
    /// time bound fails instead of hanging the suite.
    pub fn kill_after(mut self, limit: std::time::Duration) -> Self {
        self.kill_after = Some(limit);
        self
    }

    /// The underlying command, for spawning by hand.
    pub fn into_command(self) -> (Command, Vec<u8>) {
        (self.cmd, self.stdin)
    }

    /// Starts the helper with every stream piped and the stdin bytes
    /// written, but stdin left open: the caller closes it (drops it), or
    /// holds it open to play a client that never does.
    pub fn spawn(mut self) -> (std::process::Child, std::process::ChildStdin) {
        let (mut child, _) = self.start_piped();
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(&self.stdin).unwrap();
        (child, stdin)
    }

    /// Starts the helper with every stream piped; returns it and the
    /// command line, for failure messages.
    fn start_piped(&mut self) -> (std::process::Child, String) {
        let description = format!("{:?}", self.cmd);
        let child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
        (child, description)
    }

    /// Runs to completion.
    pub fn run(mut self) -> Output {
        let (mut child, description) = self.start_piped();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(limit) = self.kill_after {
            let (pid, finished) = (child.id(), std::sync::Arc::clone(&finished));
            std::thread::spawn(move || {
                std::thread::sleep(limit);
                if !finished.load(std::sync::atomic::Ordering::SeqCst) {
                    // SAFETY: a signal to the child this command started,
                    // which has not been reaped (so its pid is still its).
                    #[cfg(unix)]
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGKILL);
                    }
                    // No kill by pid from another thread here on Windows: a
                    // hung child there ends only with the test.
                    #[cfg(not(unix))]
                    let _ = pid;
                }
            });
        }
        let mut stdin = child.stdin.take().unwrap();
        let input = std::mem::take(&mut self.stdin);
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = writer.join();
        Output {
            description,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Waits up to `limit` for `child` to exit, then kills it if it has not:
/// its exit code (None: still running at the limit, or killed by a
/// signal) and what it printed. For tests of a time bound, which must fail
/// rather than hang the suite.
pub fn finish_within(mut child: std::process::Child, limit: std::time::Duration) -> (Option<i32>, Output) {
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ended = child.try_wait().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let output = Output {
        description: "a spawned helper".into(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (ended.and_then(|s| s.code()), output)
}

/// What a run produced.
#[derive(Clone)]
pub struct Output {
    /// The command, for failure messages.
    pub description: String,
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\ncommand: {}\nstatus: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.description, self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        self
    }

    /// Asserts exit 0 with an empty stderr, as on every quiet success.
    #[track_caller]
    pub fn quiet_success(self) -> Self {
        let s = self.success();
        assert_eq!(s.stderr, "", "expected empty stderr: {s:?}");
        s
    }

    /// Asserts exit 1.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert_eq!(self.code, Some(1), "expected exit status 1: {self:?}");
        self
    }

    /// Asserts a protocol error: exit 1 and exactly `line` on stdout.
    #[track_caller]
    pub fn protocol_error(self, line: &str) -> Self {
        let s = self.failure();
        assert_eq!(s.stdout, format!("{line}\n"), "unexpected protocol error: {s:?}");
        s
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The `Secret` of a `get` answer.
    #[track_caller]
    pub fn secret(&self) -> String {
        self.json()["Secret"].as_str().unwrap_or_else(|| panic!("no Secret: {self:?}")).to_owned()
    }
}
