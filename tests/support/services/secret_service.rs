//! A private D-Bus session bus with gnome-keyring's Secret Service on it.

use super::*;

/// A private session bus with gnome-keyring-daemon's Secret Service on it,
/// its "login" keyring created, unlocked and the `default` alias, under
/// `$HOME/.local/share/keyrings` of the home given to [`SecretService::start`].
pub struct SecretService {
    // Field order is drop order: the keyring before its bus, both before
    // the directory holding the socket.
    keyring: Daemon,
    bus: Daemon,
    address: String,
    /// The bus's TCP address, when it listens on one too.
    tcp_address: Option<String>,
    home: PathBuf,
    runtime_dir: PathBuf,
    /// The user gnome-keyring (and so `secret-tool`) runs as, when it is
    /// not this process's, with the home it keeps its keyrings in.
    keyring_user: Option<(u32, PathBuf)>,
    dir: tempfile::TempDir,
}

/// The user id of `nobody` on Debian: the other user of the tests that
/// start a bus or a keyring as someone else.
pub const NOBODY: u32 = 65534;

/// Who runs what, and how the bus may be reached.
#[derive(Clone, Copy, Default)]
struct Layout {
    /// The bus daemon's user, when not this process's.
    bus_uid: Option<u32>,
    /// gnome-keyring's user, when not this process's.
    keyring_uid: Option<u32>,
    /// Whether the bus also listens on TCP (127.0.0.1, ANONYMOUS allowed).
    tcp: bool,
}

/// The password the login keyring is created and unlocked with.
pub const KEYRING_PASSWORD: &str = "test-keyring-password";

/// A bus configuration with no service activation: if the keyring daemon
/// dies, clients get a clear error rather than a second, locked keyring that
/// the bus started on its own.
fn bus_config(socket: &Path, anyone: bool, tcp: bool) -> String {
    // A bus another user runs, or one another user's keyring joins, must
    // let both users connect.
    let anyone = if anyone { "\n    <allow user=\"*\"/>" } else { "" };
    // A TCP listener has no peer credentials: clients there authenticate
    // with ANONYMOUS, as a bus relayed over a network would let them.
    let tcp = if tcp {
        "\n  <listen>tcp:host=127.0.0.1,port=0</listen>\n  <auth>ANONYMOUS</auth>\n  <allow_anonymous/>"
    } else {
        ""
    };
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>{tcp}
  <policy context="default">{anyone}
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
        SecretService::start_with(home, Layout::default())
    }

    /// The same, but with the bus and gnome-keyring both run by `nobody`
    /// (through `setpriv`) and the bus open to every user: another user's
    /// keyring, as a stale `DBUS_SESSION_BUS_ADDRESS` pointing at a socket
    /// in a shared `/tmp` would reach. `None` (after a loud skip) unless
    /// this process may start processes as another user.
    pub fn start_on_a_bus_of_nobody(home: &Path) -> Option<SecretService> {
        as_another_user().then(|| {
            SecretService::start_with(
                home,
                Layout { bus_uid: Some(NOBODY), keyring_uid: Some(NOBODY), tcp: false },
            )
        })
    }

    /// This process's bus, open to every user, with gnome-keyring run by
    /// `nobody` on it: another user's process owning
    /// `org.freedesktop.secrets` on a bus of this user's. `None` as for
    /// [`SecretService::start_on_a_bus_of_nobody`].
    pub fn start_with_a_keyring_of_nobody(home: &Path) -> Option<SecretService> {
        as_another_user().then(|| {
            SecretService::start_with(home, Layout { bus_uid: None, keyring_uid: Some(NOBODY), tcp: false })
        })
    }

    /// The usual bus and keyring, the bus listening on 127.0.0.1 TCP as
    /// well (ANONYMOUS authentication, as a bus relayed over a network
    /// would be): [`SecretService::tcp_address`] reaches it there, where
    /// nobody's credentials can be checked.
    pub fn start_reachable_over_tcp(home: &Path) -> SecretService {
        SecretService::start_with(home, Layout { tcp: true, ..Layout::default() })
    }

    fn start_with(home: &Path, layout: Layout) -> SecretService {
        let started = Instant::now();
        let dir = short_tempdir("ss");
        let foreign = layout.bus_uid.is_some() || layout.keyring_uid.is_some();
        if foreign {
            // The other user creates its socket, or its files, in here.
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))
                .expect("chmod the bus directory");
        }
        let runtime_dir = dir.path().join("run");
        fs::create_dir(&runtime_dir).expect("create XDG_RUNTIME_DIR");
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod XDG_RUNTIME_DIR");
        fs::create_dir_all(home).expect("create HOME");
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        fs::write(&config, bus_config(&socket, foreign, layout.tcp)).expect("write bus config");
        let address = format!("unix:path={}", socket.display());
        let env = vec![
            ("HOME".to_string(), home.display().to_string()),
            ("XDG_RUNTIME_DIR".to_string(), runtime_dir.display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS".to_string(), address.clone()),
        ];

        let mut command = as_user(layout.bus_uid, "dbus-daemon");
        command
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .arg("--nosyslog")
            // Every address it listens on, on one line of its log.
            .arg("--print-address=1");
        let mut bus = Daemon::spawn("dbus-daemon", command, &env, dir.path().join("dbus.log"), None);
        bus.wait_until("its socket to accept connections", || UnixStream::connect(&socket).is_ok());
        let tcp_address = layout.tcp.then(|| {
            let mut found = None;
            bus.wait_until("its TCP address", || {
                found = bus_log_tcp_address(&read_log(&dir.path().join("dbus.log")));
                found.is_some()
            });
            found.expect("waited for it")
        });

        // gnome-keyring of another user keeps its keyrings in a home and a
        // runtime directory of that user's.
        let (keyring_user, keyring_runtime) = match layout.keyring_uid {
            None => (None, runtime_dir.clone()),
            Some(uid) => (
                Some((uid, private_dir_of(uid, &dir.path().join("other-home")))),
                private_dir_of(uid, &dir.path().join("other-run")),
            ),
        };
        let keyring_env = vec![
            (
                "HOME".to_string(),
                keyring_user.as_ref().map_or(home, |(_, h)| h.as_path()).display().to_string(),
            ),
            ("XDG_RUNTIME_DIR".to_string(), keyring_runtime.display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS".to_string(), address.clone()),
        ];
        let control = keyring_runtime.join("keyring");
        let mut command = as_user(layout.keyring_uid, "gnome-keyring-daemon");
        command
            .arg("--foreground")
            .arg("--unlock")
            .arg("--components=secrets")
            .arg(format!("--control-directory={}", control.display()));
        let keyring = Daemon::spawn(
            "gnome-keyring-daemon",
            command,
            &keyring_env,
            dir.path().join("keyring.log"),
            Some(KEYRING_PASSWORD.as_bytes()),
        );
        let mut service = SecretService {
            keyring,
            bus,
            address,
            tcp_address,
            home: home.to_path_buf(),
            runtime_dir,
            keyring_user,
            dir,
        };
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

    /// The bus's TCP address (`tcp:host=127.0.0.1,port=…`); only for a
    /// service started with [`SecretService::start_reachable_over_tcp`].
    pub fn tcp_address(&self) -> &str {
        self.tcp_address.as_deref().expect("started with start_reachable_over_tcp")
    }

    /// The bus's and the keyring daemon's logs.
    pub fn log(&self) -> String {
        format!(
            "--- dbus-daemon ---\n{}\n--- gnome-keyring-daemon ---\n{}",
            self.bus.log(),
            self.keyring.log()
        )
    }

    /// `secret-tool` as the keyring's own user, as that user would run it.
    fn secret_tool(&self) -> Command {
        let mut command = as_user(self.keyring_user.as_ref().map(|(uid, _)| *uid), "secret-tool");
        command.env_clear().env("PATH", SERVICE_PATH).envs(self.env()).stdin(Stdio::null());
        if let Some((_, home)) = &self.keyring_user {
            command.env("HOME", home);
        }
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

    /// `secret-tool clear`: deletes the items with all of `attrs`, as
    /// another tool (seahorse, a script) would behind the helper's back.
    pub fn secret_tool_clear(&self, attrs: &[(&str, &str)]) {
        let mut command = self.secret_tool();
        command.arg("clear");
        for (key, value) in attrs {
            command.arg(key).arg(value);
        }
        let (ok, output) = run_merged(command, self.dir.path());
        assert!(ok, "secret-tool clear failed: {output}");
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

impl SecretService {
    /// Locks the login collection, as the desktop does when the screen
    /// locks or the session idles (gnome-keyring locks without a prompt),
    /// and waits until it reads as locked. Unlocking it again takes a
    /// prompt, which no one here can answer, or its password.
    pub fn lock(&mut self) {
        let (env, dir) = (self.env(), self.dir.path().to_path_buf());
        let path = default_collection(&env, &dir).expect("a default collection to lock");
        let locked = dbus_send(
            &env,
            &dir,
            &[
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                &format!("array:objpath:{path}"),
            ],
        );
        assert!(locked.is_some(), "Lock failed; logs:\n{}", self.log());
        self.keyring.wait_until("the login collection to be locked", || {
            default_collection_locked(&env, &dir) == Some(true)
        });
    }

    /// What `doctor` advises for a locked keyring without a desktop: a new
    /// gnome-keyring-daemon that replaces the running one (`--replace`) and
    /// unlocks the login keyring with the password it reads on stdin
    /// (`--unlock`). Kept in the foreground, so that it stays this test's
    /// to stop; waits until the collection is unlocked.
    pub fn replace_keyring_unlocking_it(&mut self) {
        let (env, dir) = (self.env(), self.dir.path().to_path_buf());
        let mut command = as_user(self.keyring_user.as_ref().map(|(uid, _)| *uid), "gnome-keyring-daemon");
        command
            .arg("--replace")
            .arg("--unlock")
            .arg("--foreground")
            .arg("--components=secrets")
            .arg(format!("--control-directory={}", self.runtime_dir.join("keyring").display()));
        let replacing = Daemon::spawn(
            "gnome-keyring-daemon --replace --unlock",
            command,
            &env,
            dir.join("keyring-replacing.log"),
            Some(KEYRING_PASSWORD.as_bytes()),
        );
        let mut replaced = std::mem::replace(&mut self.keyring, replacing);
        self.keyring.wait_until("the replacing keyring to unlock the collection", || {
            default_collection_unlocked(&env, &dir)
        });
        replaced.stop(STOP_TIMEOUT);
    }

    /// Whether the login collection is locked.
    pub fn is_locked(&self) -> bool {
        default_collection_locked(&self.env(), self.dir.path()) == Some(true)
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        self.keyring.stop(STOP_TIMEOUT);
        self.bus.stop(STOP_TIMEOUT);
    }
}

/// Whether this process may run the daemons as another user: only root
/// may, with `setpriv`. Says so loudly when not.
fn as_another_user() -> bool {
    if !super::super::skip::require_root("to run a bus or a keyring as another user") {
        return false;
    }
    require_tool("setpriv")
}

/// `name`, run as `uid` through `setpriv` when given.
fn as_user(uid: Option<u32>, name: &str) -> Command {
    match uid {
        None => Command::new(tool(name)),
        Some(uid) => {
            let mut c = Command::new(tool("setpriv"));
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg(tool(name));
            c
        }
    }
}

/// `path`, created 0700 and owned by `uid`.
fn private_dir_of(uid: u32, path: &Path) -> PathBuf {
    fs::create_dir_all(path).expect("create a directory for another user");
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).expect("chmod it");
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown it to the other user");
    path.to_path_buf()
}

/// The `tcp:` address in the line dbus-daemon's `--print-address` wrote
/// (its addresses joined by `;`), without the guid.
fn bus_log_tcp_address(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("tcp:host="))?;
    let tcp = line.split(';').find(|a| a.starts_with("tcp:"))?;
    Some(tcp.split(",guid=").next().unwrap_or(tcp).to_string())
}

/// `dbus-send --print-reply` to the Secret Service on the bus of `env`:
/// its reply, or `None` if the call failed.
fn dbus_send(env: &[(String, String)], dir: &Path, args: &[&str]) -> Option<String> {
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
}

/// The object path the `default` alias names, if any.
fn default_collection(env: &[(String, String)], dir: &Path) -> Option<String> {
    let alias = dbus_send(
        env,
        dir,
        &["/org/freedesktop/secrets", "org.freedesktop.Secret.Service.ReadAlias", "string:default"],
    )?;
    let path = alias
        .split_whitespace()
        .skip_while(|word| *word != "path")
        .nth(1)
        .map(|word| word.trim_matches('"').to_string())?;
    (path != "/").then_some(path)
}

/// Whether the `default` alias names a collection and that collection is
/// unlocked, asked with dbus-send.
fn default_collection_unlocked(env: &[(String, String)], dir: &Path) -> bool {
    default_collection_locked(env, dir) == Some(false)
}

/// Whether the default collection is locked; `None` if there is none.
fn default_collection_locked(env: &[(String, String)], dir: &Path) -> Option<bool> {
    let path = default_collection(env, dir)?;
    let locked = dbus_send(
        env,
        dir,
        &[
            &path,
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.Secret.Collection",
            "string:Locked",
        ],
    )?;
    Some(locked.contains("boolean true"))
}
