//! Set-up shared by the end-to-end suites (`tests/e2e_*.rs`): the token-auth
//! stack (the local STS, distribution's token realm and Debian's
//! `docker-registry` trusting it), and a [`Client`]: the helper's sandbox
//! plus what Docker and skopeo need to find and run the helper the way they
//! do for a user.
//!
//! The clients run with a cleared environment: `PATH` is only the client's
//! own `bin` directory, which holds `docker-credential-exchange` and nothing
//! else. So Docker cannot fall back on another helper it finds on `PATH`
//! (Docker CLI 28 picks `docker-credential-secretservice` as `credsStore`
//! when the config names none), and nothing from the developer's own
//! environment (D-Bus, `~/.docker`, proxies) reaches the clients or the
//! helper they spawn.
//!
//! The `bin` entry is a two-line shell wrapper rather than a symlink: it
//! appends the action Docker asked for (`get`, `list`, `store`, …) to a
//! calls file, then `exec`s the real binary with the same arguments, stdin
//! and environment. That is how a test sees what a client asked the helper,
//! e.g. that the classic builder calls `list` before `get`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::cmd::{Output, Sandbox, bin};
use super::realm::{Grant, Realm, RealmOptions};
use super::services::{Dockerd, Registry, TokenAuth, docker_import_tiny_image, one_file_tar, require_tools};
use super::sts::{Sts, StsOptions, TOKEN_TYPE_JWT};

/// The `aud` the realm demands on STS tokens; exchange entries ask for it.
pub const AUDIENCE: &str = "https://registry.e2e.test";
/// The one repository the host entries' fixed scope names.
pub const SCOPE_TEAM_APP: &str = "repository:team/app:pull,push";
/// The image every engine starts with (see [`start_engine`]).
pub const TINY: &str = "tiny:latest";

/// True when dockerd, the docker CLI and docker-registry are installed;
/// otherwise a loud skip (a failure under CI).
pub fn require_engine() -> bool {
    require_tools(&["dockerd", "docker", "containerd", "runc", "docker-registry"])
}

/// True when skopeo and docker-registry are installed; otherwise a loud skip
/// (a failure under CI).
pub fn require_skopeo() -> bool {
    require_tools(&["skopeo", "docker-registry"])
}

/// A private dockerd holding [`TINY`].
///
/// One engine per test: starting one costs about 0.3 s and stopping it about
/// 1 s, little beside the pushes and pulls, and it keeps every test's images
/// and registry logins apart, and its `Drop` removes everything it made.
pub fn start_engine() -> Dockerd {
    let dockerd = Dockerd::start();
    docker_import_tiny_image(&dockerd, TINY);
    dockerd
}

// ---------------------------------------------------------------------------
// The token-auth stack
// ---------------------------------------------------------------------------

/// The STS, the realm that trusts its tokens, and a registry that trusts the
/// realm: the chain login token → exchange → realm → registry.
pub struct TokenStack {
    // Field order is drop order: the registry before the servers it calls.
    pub registry: Registry,
    pub realm: Realm,
    pub sts: Sts,
}

impl TokenStack {
    /// The stack with the STS's defaults (1 h tokens).
    pub fn start() -> TokenStack {
        TokenStack::start_with(StsOptions::default())
    }

    /// The stack with these STS options.
    pub fn start_with(options: StsOptions) -> TokenStack {
        let sts = Sts::start(options);
        let realm = Realm::start(RealmOptions {
            service: "e2e-registry".to_string(),
            ..RealmOptions::new(&sts.issuer(), sts.access_token_decoding_key(), AUDIENCE)
        });
        let registry = Registry::start_token(TokenAuth {
            realm: realm.url(),
            service: realm.service().to_string(),
            issuer: realm.issuer().to_string(),
            rootcertbundle: realm.rootcert_path(),
        });
        TokenStack { registry, realm, sts }
    }

    /// `127.0.0.1:PORT`: the registry's name for Docker and the config key.
    pub fn addr(&self) -> String {
        self.registry.addr()
    }

    /// `127.0.0.1:PORT/<path>`, e.g. `image("team/app:1")`.
    pub fn image(&self, path: &str) -> String {
        format!("{}/{path}", self.addr())
    }

    /// An exchange entry for this stack's STS (JWT subject, the realm's
    /// audience, the fixed `team/app` scope), with `extra` fields merged in.
    pub fn entry(&self, extra: Value) -> Value {
        let mut entry = json!({
            "token_endpoint": self.sts.url(),
            "subject_token_type": TOKEN_TYPE_JWT,
            "audience": AUDIENCE,
            "scope": SCOPE_TEAM_APP,
        });
        for (key, value) in extra.as_object().expect("extra fields are a JSON object") {
            entry[key] = value.clone();
        }
        entry
    }

    /// A login token (1 h) the STS accepts.
    pub fn login_token(&self) -> String {
        self.sts.mint_subject_token("alice", 3600)
    }

    /// Exchanges made so far (POST /token, failed ones included).
    pub fn exchanges(&self) -> usize {
        self.sts.requests()
    }

    /// Every realm request so far.
    pub fn grants(&self) -> Vec<Grant> {
        self.realm.grants()
    }

    /// The logs of the registry, for failure messages.
    pub fn logs(&self) -> String {
        format!("--- docker-registry log ---\n{}", self.registry.log())
    }
}

/// Whether any realm request asked for `name` and got none of it.
pub fn refused(grants: &[Grant], name: &str) -> bool {
    grants
        .iter()
        .any(|g| g.requested.iter().any(|a| a.name == name) && !g.granted.iter().any(|a| a.name == name))
}

/// Whether any realm request granted `action` on `name`.
pub fn granted(grants: &[Grant], name: &str, action: &str) -> bool {
    grants.iter().any(|g| g.allows(name, action))
}

// ---------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------

/// The helper's sandbox (file store, its own config, cache and log file),
/// a `DOCKER_CONFIG` directory, and a `bin` directory that puts the helper
/// on the clients' `PATH`.
pub struct Client {
    pub sandbox: Sandbox,
    /// The clients' `PATH`: the `bin` directory, or an installed helper's.
    path: PathBuf,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client whose helper keeps secrets in the file store.
    pub fn new() -> Client {
        let mut sandbox = Sandbox::new();
        let bin_dir = sandbox.root().join("bin");
        fs::create_dir(&bin_dir).expect("create the bin directory");
        fs::create_dir(sandbox.root().join("docker")).expect("create DOCKER_CONFIG");
        let wrapper = bin_dir.join("docker-credential-exchange");
        let calls = sandbox.root().join("helper-calls.log");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {}\nexec {} \"$@\"\n",
                sh_quote(&calls),
                sh_quote(&bin())
            ),
        )
        .expect("write the helper wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod the helper wrapper");
        let log = sandbox.root().join("helper.log");
        sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", &log.display().to_string());
        Client { sandbox, path: bin_dir }
    }

    /// A client whose clients find the helper as it was installed (e.g.
    /// `/usr/bin` for the .deb): `PATH` is `dir` alone, and there is no
    /// wrapper, so [`Client::helper_calls`] stays empty.
    pub fn installed_in(dir: &Path) -> Client {
        let mut client = Client::new();
        client.path = dir.to_owned();
        client
    }

    /// A client as in CI: no store configured at all (neither keyring nor
    /// file store), and no D-Bus or keyring variable anywhere in the
    /// environment. The subject must come from `env` or `github-actions`.
    pub fn ci() -> Client {
        let mut client = Client::new();
        client.sandbox.remove_env("DOCKER_CREDENTIAL_EXCHANGE_STORE");
        for key in ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "DISPLAY", "GNOME_KEYRING_CONTROL"] {
            assert!(!client.sandbox.env().contains_key(key), "{key} leaked into the CI sandbox");
        }
        client
    }

    /// The helper's config: `registries` as given.
    pub fn write_helper_config(&self, registries: Value) {
        self.sandbox.write_config(&json!({ "registries": registries }));
    }

    /// `$DOCKER_CONFIG`, shared by docker and (as `--authfile`) skopeo.
    pub fn docker_config_dir(&self) -> PathBuf {
        self.sandbox.root().join("docker")
    }

    /// Writes `$DOCKER_CONFIG/config.json`.
    pub fn write_docker_config(&self, config: Value) {
        fs::write(self.docker_config_dir().join("config.json"), serde_json::to_vec_pretty(&config).unwrap())
            .expect("write Docker's config.json");
    }

    /// `$DOCKER_CONFIG/config.json` as Docker left it.
    pub fn docker_config(&self) -> Value {
        let path = self.docker_config_dir().join("config.json");
        serde_json::from_slice(&fs::read(&path).unwrap_or_default()).unwrap_or(Value::Null)
    }

    /// `login REGISTRY --token-stdin` (plus `extra` arguments), the way a
    /// person stores a login token.
    pub fn login(&self, registry: &str, token: &str, extra: &[&str]) -> Output {
        let mut args = vec!["login", registry, "--token-stdin"];
        args.extend_from_slice(extra);
        self.sandbox.cmd(&args).stdin(token).run()
    }

    /// The environment a client runs with: the sandbox's (HOME, the
    /// helper's directories and log file, and whatever a test set, such as
    /// a subject token variable), with `PATH` only the helper's directory.
    pub fn client_env(&self) -> BTreeMap<String, String> {
        let mut env = self.sandbox.env().clone();
        env.insert("PATH".into(), self.path.display().to_string());
        env.insert("DOCKER_CONFIG".into(), self.docker_config_dir().display().to_string());
        env
    }

    /// `docker ARGS` against `dockerd`.
    pub fn docker(&self, dockerd: &Dockerd, args: &[&str]) -> Output {
        self.docker_with(dockerd, args, &[], None)
    }

    /// `docker ARGS` with extra variables and stdin.
    pub fn docker_with(
        &self,
        dockerd: &Dockerd,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Output {
        let mut command = dockerd.docker();
        command.env_clear().envs(self.client_env()).env("DOCKER_HOST", dockerd.host());
        command.envs(env.iter().copied()).args(args);
        self.run(command, &format!("docker {}", args.join(" ")), stdin, || {
            format!("--- dockerd log ---\n{}", dockerd.log())
        })
    }

    /// Tags the engine's [`TINY`] image as `image` (which must work) and
    /// pushes it: the push's output.
    pub fn push_tiny_as(&self, dockerd: &Dockerd, image: &str) -> Output {
        self.docker(dockerd, &["tag", TINY, image]).success();
        self.docker(dockerd, &["push", image])
    }

    /// The path skopeo reads credentials from (`--authfile`): Docker's
    /// config.json, as containers/image reads it.
    pub fn authfile(&self) -> String {
        self.docker_config_dir().join("config.json").display().to_string()
    }

    /// `skopeo ARGS`, with a private accept-anything policy.
    pub fn skopeo(&self, args: &[&str]) -> Output {
        let policy = self.sandbox.root().join("policy.json");
        fs::write(&policy, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).expect("write policy.json");
        let program = super::services::find_tool("skopeo").expect("skopeo is required first");
        let mut command = Command::new(program);
        command.env_clear().envs(self.client_env()).arg("--policy").arg(&policy).args(args);
        self.run(command, &format!("skopeo {}", redact_creds(args)), None, String::new)
    }

    fn run(
        &self,
        mut command: Command,
        description: &str,
        stdin: Option<&str>,
        context: impl Fn() -> String,
    ) -> Output {
        command
            .current_dir(self.sandbox.root())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for the client");
        let code = out.status.code();
        // Only a failure prints this, so gather the logs only then.
        let description = if code == Some(0) {
            description.to_string()
        } else {
            format!(
                "{description}\n--- helper calls ---\n{}--- helper log ---\n{}{}",
                self.helper_calls().join("\n") + "\n",
                self.helper_log(),
                context()
            )
        };
        Output {
            description,
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The actions clients ran the helper with, in order.
    pub fn helper_calls(&self) -> Vec<String> {
        let calls = fs::read_to_string(self.sandbox.root().join("helper-calls.log")).unwrap_or_default();
        calls.lines().map(str::to_string).collect()
    }

    /// Forgets the calls so far.
    pub fn clear_helper_calls(&self) {
        let _ = fs::remove_file(self.sandbox.root().join("helper-calls.log"));
    }

    /// The helper's log file (`DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE`).
    pub fn helper_log(&self) -> String {
        fs::read_to_string(self.sandbox.root().join("helper.log")).unwrap_or_default()
    }
}

/// The arguments, joined, with the value of any `--creds`-like option
/// replaced: failure messages show the command, not the token in it.
fn redact_creds(args: &[&str]) -> String {
    let mut shown = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if std::mem::take(&mut hide_next) {
            shown.push("<redacted>");
            continue;
        }
        hide_next = arg.ends_with("creds");
        shown.push(if arg.contains("creds=") { "<redacted creds>" } else { arg });
    }
    shown.join(" ")
}

/// Single quotes for sh.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------
// An image for skopeo
// ---------------------------------------------------------------------------

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a one-layer OCI image layout under `dir` (tag `1`) and returns
/// skopeo's name for it, `oci:DIR:1`. No daemon needed.
pub fn write_oci_image(dir: &Path) -> String {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("create the OCI layout");
    let blob = |bytes: &[u8]| {
        let digest = sha256_hex(bytes);
        fs::write(blobs.join(&digest), bytes).expect("write an OCI blob");
        (format!("sha256:{digest}"), bytes.len())
    };
    let layer = one_file_tar("hello.txt", b"hello from skopeo\n");
    let (layer_digest, layer_size) = blob(&layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = blob(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = blob(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "1"},
        }],
    });
    fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    format!("oci:{}:1", dir.display())
}
