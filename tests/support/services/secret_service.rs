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
    home: PathBuf,
    runtime_dir: PathBuf,
    dir: tempfile::TempDir,
}

/// The password the login keyring is created and unlocked with.
pub const KEYRING_PASSWORD: &str = "test-keyring-password";

/// A bus configuration with no service activation: if the keyring daemon
/// dies, clients get a clear error rather than a second, locked keyring that
/// the bus started on its own.
fn bus_config(socket: &Path, anyone: bool) -> String {
    // A bus another user runs must let this one connect.
    let anyone = if anyone { "\n    <allow user=\"*\"/>" } else { "" };
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
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
        SecretService::start_with(home, None)
    }

    /// The same, but with the bus run by `nobody` (through `setpriv`) and
    /// open to every user: a bus of another user's, as a socket in a shared
    /// `/tmp` or a relay would be. `None` unless this process is root (the
    /// only one that may start a process as another user) and `setpriv`
    /// is installed.
    pub fn start_on_a_bus_of_nobody(home: &Path) -> Option<SecretService> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: only root can run a bus as another user");
            return None;
        }
        require_tool("setpriv").then(|| SecretService::start_with(home, Some(65534)))
    }

    fn start_with(home: &Path, bus_uid: Option<u32>) -> SecretService {
        let started = Instant::now();
        let dir = short_tempdir("ss");
        if bus_uid.is_some() {
            // The other user creates its socket here.
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))
                .expect("chmod the bus directory");
        }
        let runtime_dir = dir.path().join("run");
        fs::create_dir(&runtime_dir).expect("create XDG_RUNTIME_DIR");
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).expect("chmod XDG_RUNTIME_DIR");
        fs::create_dir_all(home).expect("create HOME");
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        fs::write(&config, bus_config(&socket, bus_uid.is_some())).expect("write bus config");
        let address = format!("unix:path={}", socket.display());
        let env = vec![
            ("HOME".to_string(), home.display().to_string()),
            ("XDG_RUNTIME_DIR".to_string(), runtime_dir.display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS".to_string(), address.clone()),
        ];

        let mut command = match bus_uid {
            None => Command::new(tool("dbus-daemon")),
            Some(uid) => {
                let mut c = Command::new(tool("setpriv"));
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg(tool("dbus-daemon"));
                c
            }
        };
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
