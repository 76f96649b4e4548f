//! Debian's docker-registry (distribution 2.8) with htpasswd or token auth.

use super::*;

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

    /// `docker-registry serve CONFIG` with a config someone else wrote
    /// (one that listens on 127.0.0.1:`port`, plain http, with token or
    /// htpasswd auth), as a person runs it; waits until `GET /v2/`
    /// answers 401.
    pub fn start_with_config(config: &Path, port: u16) -> Registry {
        let started = Instant::now();
        let dir = short_tempdir("rg");
        let mut command = Command::new(tool("docker-registry"));
        command.arg("serve").arg(config);
        let mut daemon =
            Daemon::spawn("docker-registry", command, &[], dir.path().join("registry.log"), None);
        daemon.wait_until("GET /v2/ to answer 401", || http_status(port, "/v2/") == Some(401));
        elapsed_note("Registry", started);
        Registry { daemon, port, dir }
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
pub fn free_port() -> u16 {
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
