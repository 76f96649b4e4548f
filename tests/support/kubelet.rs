//! The kubelet's side of the credential provider exec API, for the
//! end-to-end test: it runs the built binary exactly as the kubelet does
//! (kubernetes/kubernetes `pkg/credentialprovider/plugin/plugin.go`) and
//! checks the answer as the kubelet would.
//!
//! - The provider comes from a `CredentialProviderConfig` (JSON, which the
//!   kubelet accepts as readily as YAML), read strictly with the field names
//!   of `k8s.io/kubelet/config/v1` and checked as the kubelet checks it.
//! - The plugin is invoked only for an image its `matchImages` match, and,
//!   with `tokenAttributes`, only for a pod with a service account that
//!   carries every required annotation.
//! - argv is `<bin dir>/<name>` and `args`; the environment is the
//!   provider's `env` and nothing else (the real kubelet adds its own
//!   environment, which on a node may lack HOME; here there is none at all,
//!   so no HOME, PATH or D-Bus); stdin is the request, written as
//!   apimachinery's JSON serializer writes it; stdout and stderr are pipes;
//!   the working directory is `/`; the process leads a new session, so it
//!   has no controlling terminal; it is killed after the kubelet's one
//!   minute.
//! - The response must echo the configured `apiVersion`, be a
//!   `CredentialProviderResponse`, decode strictly (unknown or mis-cased
//!   fields refused) and have a valid `cacheKeyType`; its `auth` keys are
//!   then matched against the image with the kubelet's keyring rules.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const CONFIG_API_VERSION: &str = "kubelet.config.k8s.io/v1";
const PROVIDER_API_VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];
/// The kubelet's catch-all timeout for an exec plugin.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// `CredentialProviderConfig` (`kubelet.config.k8s.io/v1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialProviderConfig {
    pub api_version: String,
    pub kind: String,
    pub providers: Vec<CredentialProvider>,
}

/// One `providers` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialProvider {
    pub name: String,
    pub match_images: Vec<String>,
    pub default_cache_duration: String,
    pub api_version: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<ExecEnvVar>,
    #[serde(default)]
    pub token_attributes: Option<TokenAttributes>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecEnvVar {
    pub name: String,
    pub value: String,
}

/// `tokenAttributes` (Kubernetes 1.33+; `cacheType` since 1.34).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenAttributes {
    pub service_account_token_audience: String,
    pub cache_type: String,
    pub require_service_account: Option<bool>,
    #[serde(default)]
    pub required_service_account_annotation_keys: Vec<String>,
    #[serde(default)]
    pub optional_service_account_annotation_keys: Vec<String>,
}

/// The pod's service account, as the kubelet sees it: a token bound to
/// the configured audience, and its annotations.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccount {
    pub token: String,
    pub annotations: BTreeMap<String, String>,
}

/// `CredentialProviderResponse`, decoded strictly and case-sensitively.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Response {
    pub api_version: String,
    pub kind: String,
    pub cache_key_type: String,
    #[serde(default)]
    pub cache_duration: Option<String>,
    #[serde(default)]
    pub auth: BTreeMap<String, AuthConfig>,
}

/// One `auth` value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
}

/// What one image pull got from the provider.
#[derive(Debug)]
pub enum Outcome {
    /// The plugin answered; the credentials whose keys match the image,
    /// most specific key first, as the kubelet tries them.
    Provided { response: Response, matching: Vec<(String, AuthConfig)>, stderr: String },
    /// The kubelet did not run the plugin, and why.
    NotInvoked(String),
    /// The plugin failed (the kubelet logs this and pulls without
    /// credentials).
    Failed { status: Option<i32>, stdout: String, stderr: String },
    /// The plugin answered something the kubelet would discard.
    Rejected { reason: String, stdout: String, stderr: String },
}

impl Outcome {
    /// The response and the first matching credentials; panics with the
    /// whole outcome otherwise.
    #[track_caller]
    pub fn credentials(&self) -> (&Response, &AuthConfig) {
        match self {
            Outcome::Provided { response, matching, .. } if !matching.is_empty() => {
                (response, &matching[0].1)
            }
            other => panic!("expected credentials for the image, got {other:#?}"),
        }
    }
}

/// A kubelet with one provider, its binary installed in a bin directory.
pub struct Kubelet {
    provider: CredentialProvider,
    bin_dir: tempfile::TempDir,
}

impl Kubelet {
    /// Reads and checks `config` as the kubelet does at start-up, and
    /// installs `binary` as `<bin dir>/<name>` (a symlink).
    #[track_caller]
    pub fn start(config: &serde_json::Value, binary: &Path) -> Kubelet {
        let config: CredentialProviderConfig = serde_json::from_value(config.clone())
            .unwrap_or_else(|e| panic!("the kubelet refuses the CredentialProviderConfig: {e}"));
        assert_eq!(config.api_version, CONFIG_API_VERSION);
        assert_eq!(config.kind, "CredentialProviderConfig");
        let [provider] = <[CredentialProvider; 1]>::try_from(config.providers).expect("one provider");
        validate(&provider);
        let bin_dir = tempfile::Builder::new().prefix("dce-kubelet-bin-").tempdir().expect("bin dir");
        std::os::unix::fs::symlink(binary, bin_dir.path().join(&provider.name)).expect("install the plugin");
        Kubelet { provider, bin_dir }
    }

    /// The plugin's path, argv[0].
    pub fn plugin_path(&self) -> PathBuf {
        self.bin_dir.path().join(&self.provider.name)
    }

    /// Credentials for `image`, which is given as the kubelet passes it to
    /// providers (`ParseImageName`: registry explicit, no tag or digest).
    pub fn provide(&self, image: &str, service_account: Option<&ServiceAccount>) -> Outcome {
        if !self.provider.match_images.iter().any(|m| urls_match(m, image)) {
            return Outcome::NotInvoked(format!("{image} matches no matchImages entry"));
        }
        let (token, annotations) = match (&self.provider.token_attributes, service_account) {
            (None, _) => (None, BTreeMap::new()),
            (Some(t), None) if t.require_service_account == Some(true) => {
                return Outcome::NotInvoked("the pod has no service account".into());
            }
            (Some(_), None) => (None, BTreeMap::new()),
            (Some(t), Some(sa)) => {
                if let Some(missing) = t
                    .required_service_account_annotation_keys
                    .iter()
                    .find(|k| !sa.annotations.contains_key(*k))
                {
                    return Outcome::NotInvoked(format!("required annotation {missing} not found"));
                }
                let wanted = t.required_service_account_annotation_keys.iter();
                let wanted = wanted.chain(&t.optional_service_account_annotation_keys);
                let passed =
                    wanted.filter_map(|k| sa.annotations.get(k).map(|v| (k.clone(), v.clone()))).collect();
                (Some(sa.token.as_str()), passed)
            }
        };
        let request = encode_request(&self.provider.api_version, image, token, &annotations);
        let (status, stdout, stderr) = self.exec(&request);
        if status != Some(0) {
            return Outcome::Failed { status, stdout, stderr };
        }
        let rejected =
            |reason: String| Outcome::Rejected { reason, stdout: stdout.clone(), stderr: stderr.clone() };
        let gvk: serde_json::Value = match serde_json::from_str(&stdout) {
            Ok(v) => v,
            Err(e) => return rejected(format!("error reading GVK from response: {e}")),
        };
        if gvk["apiVersion"] != self.provider.api_version.as_str() {
            return rejected(format!(
                "apiVersion {} is not {}",
                gvk["apiVersion"], self.provider.api_version
            ));
        }
        let response: Response = match serde_json::from_str(&stdout) {
            Ok(r) => r,
            Err(e) => return rejected(format!("strict decoding failed: {e}")),
        };
        if response.kind != "CredentialProviderResponse" {
            return rejected(format!("unexpected Kind {:?}", response.kind));
        }
        if !["Image", "Registry", "Global"].contains(&response.cache_key_type.as_str()) {
            return rejected(format!("invalid cacheKeyType {:?}", response.cache_key_type));
        }
        if let Some(d) = &response.cache_duration
            && parse_go_duration(d).is_none()
        {
            return rejected(format!("cacheDuration {d:?} is not a Go duration"));
        }
        let mut keys: Vec<&String> = response.auth.keys().filter(|k| urls_match(k, image)).collect();
        // The keyring tries longer keys before their prefixes.
        keys.sort_by(|a, b| b.cmp(a));
        let matching = keys.into_iter().map(|k| (k.clone(), response.auth[k].clone())).collect();
        Outcome::Provided { response, matching, stderr }
    }

    /// Runs the plugin with `request` on stdin: (status, stdout, stderr).
    fn exec(&self, request: &str) -> (Option<i32>, String, String) {
        let mut command = Command::new(self.plugin_path());
        command
            .args(&self.provider.args)
            .env_clear()
            .envs(self.provider.env.iter().map(|v| (&v.name, &v.value)))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid(2) is async-signal-safe and only changes the
        // child's own session; it leaves the child without a controlling
        // terminal, as under a service manager.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
            });
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("exec {:?}: {e}", self.plugin_path()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = request.as_bytes().to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let read_all = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the plugin") {
                break status.code();
            }
            if started.elapsed() > PLUGIN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = writer.join();
        (status, stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default())
    }
}

/// The kubelet's start-up checks of one provider.
#[track_caller]
fn validate(p: &CredentialProvider) {
    assert!(
        !p.name.is_empty() && !p.name.contains('/') && p.name != "." && p.name != "..",
        "name {:?}",
        p.name
    );
    assert!(!p.match_images.is_empty(), "matchImages is required");
    assert!(
        parse_go_duration(&p.default_cache_duration).is_some(),
        "defaultCacheDuration {:?}",
        p.default_cache_duration
    );
    assert!(PROVIDER_API_VERSIONS.contains(&p.api_version.as_str()), "apiVersion {:?}", p.api_version);
    if let Some(t) = &p.token_attributes {
        assert_eq!(p.api_version, PROVIDER_API_VERSIONS[0], "tokenAttributes needs the v1 API");
        assert!(!t.service_account_token_audience.is_empty(), "serviceAccountTokenAudience is required");
        assert!(["Token", "ServiceAccount"].contains(&t.cache_type.as_str()), "cacheType {:?}", t.cache_type);
        let require = t.require_service_account.expect("requireServiceAccount is required");
        assert!(
            require || t.required_service_account_annotation_keys.is_empty(),
            "required keys need requireServiceAccount"
        );
        let both = t
            .required_service_account_annotation_keys
            .iter()
            .find(|k| t.optional_service_account_annotation_keys.contains(k));
        assert!(both.is_none(), "annotation key {both:?} is both required and optional");
    }
}

/// The request as apimachinery's JSON serializer writes it.
pub fn encode_request(
    api_version: &str,
    image: &str,
    token: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let mut out = format!(
        "{{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":{},\"image\":{}",
        go_json_string(api_version),
        go_json_string(image)
    );
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        out.push_str(&format!(",\"serviceAccountToken\":{}", go_json_string(token)));
    }
    if !annotations.is_empty() {
        let pairs: Vec<String> =
            annotations.iter().map(|(k, v)| format!("{}:{}", go_json_string(k), go_json_string(v))).collect();
        out.push_str(&format!(",\"serviceAccountAnnotations\":{{{}}}", pairs.join(",")));
    }
    out.push_str("}\n");
    out
}

/// A JSON string as Go's encoding/json writes it, HTML-safe escapes included.
fn go_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The kubelet's `URLsMatchStr(glob, target)`: the same number of host
/// labels, each matching (`*` globs within one label), equal ports, and the
/// glob's path a string prefix of the target's.
pub fn urls_match(glob: &str, target: &str) -> bool {
    let split = |s: &str| {
        let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
        let (authority, path) = s.find('/').map_or((s, ""), |at| (&s[..at], &s[at..]));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
            _ => (authority, ""),
        };
        (host.trim_start_matches('[').trim_end_matches(']').to_owned(), port.to_owned(), path.to_owned())
    };
    let ((g_host, g_port, g_path), (t_host, t_port, t_path)) = (split(glob), split(target));
    let (g_labels, t_labels): (Vec<&str>, Vec<&str>) =
        (g_host.split('.').collect(), t_host.split('.').collect());
    g_port == t_port
        && g_labels.len() == t_labels.len()
        && t_path.starts_with(&g_path)
        && g_labels.iter().zip(&t_labels).all(|(g, t)| glob_label(g, t))
}

/// `*` matches any run of characters within one label; the rest literally.
fn glob_label(glob: &str, text: &str) -> bool {
    match glob.split_once('*') {
        None => glob == text,
        Some((head, tail)) => {
            let starts = (head.len()..=text.len()).filter(|&i| text.is_char_boundary(i));
            text.starts_with(head) && starts.clone().any(|i| glob_label(tail, &text[i..]))
        }
    }
}

/// Go's `time.ParseDuration`, as the kubelet reads `cacheDuration` and
/// `defaultCacheDuration`, for non-negative values: decimal numbers with
/// units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`, or a bare `0`. Written on
/// the kubelet's side, apart from the helper's formatter, so that a test
/// reading the helper's output does not check it against itself.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += number.parse::<f64>().ok()? * nanos_per_unit;
        rest = tail;
    }
    (nanos <= i64::MAX as f64).then(|| Duration::from_nanos(nanos.round() as u64))
}
