//! The opening of the kubelet end-to-end test: a [`Node`] (a directory for
//! the helper's config, cache and log, and the kubelet's provider config
//! pointing at them), and a [`KubeletStack`]: the token-auth stack (STS,
//! realm, Debian's `docker-registry`) with two images pushed.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::cmd::bin;
use super::e2e::{AUDIENCE, Client, TokenStack, write_oci_image};
use super::kubelet::{Kubelet, ServiceAccount};
use super::registry_api::{Pull, pull_manifest};
use super::sts::TOKEN_TYPE_JWT;

/// The audience the kubelet binds service account tokens to
/// (`tokenAttributes.serviceAccountTokenAudience`): here the STS's issuer.
pub const SA_AUDIENCE: &str = "local-sts";
/// The repositories pushed at start, each with tag `1`.
pub const REPOSITORIES: [&str; 2] = ["team/app", "team/other"];

/// A node: where the helper's files live, and the kubelet's config for
/// the provider.
pub struct Node {
    dir: tempfile::TempDir,
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    pub fn new() -> Node {
        Node { dir: tempfile::Builder::new().prefix("dce-node-").tempdir().expect("a node directory") }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("helper.log")
    }

    /// Writes the helper's config: `registries` as given.
    pub fn write_helper_config(&self, registries: Value) {
        let text = serde_json::to_vec_pretty(&json!({ "registries": registries })).expect("JSON");
        std::fs::write(self.config_path(), text).expect("write the helper config");
    }

    /// A `CredentialProviderConfig` as docs/kubernetes.md shows it, for this
    /// node's paths: `matchImages` and `tokenAttributes` (or none) as given.
    pub fn provider_config(&self, match_images: &[&str], token_attributes: Option<Value>) -> Value {
        let path = |p: PathBuf| p.display().to_string();
        let mut provider = json!({
            "name": "docker-credential-exchange",
            "matchImages": match_images,
            "defaultCacheDuration": "5m",
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "args": ["kubelet-credential-provider"],
            "env": [
                {"name": "DOCKER_CREDENTIAL_EXCHANGE_CONFIG", "value": path(self.config_path())},
                {"name": "DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR", "value": path(self.dir.path().join("cache"))},
                {"name": "DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", "value": path(self.log_path())},
            ],
        });
        if let Some(attributes) = token_attributes {
            provider["tokenAttributes"] = attributes;
        }
        json!({"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig", "providers": [provider]})
    }

    /// A kubelet running the built binary under `config`.
    pub fn kubelet(&self, config: &Value) -> Kubelet {
        Kubelet::start(config, &bin())
    }

    /// The helper's log file, for failure messages.
    pub fn helper_log(&self) -> String {
        format!("--- helper log ---\n{}", std::fs::read_to_string(self.log_path()).unwrap_or_default())
    }
}

/// The stack with its images, and a node.
pub struct KubeletStack {
    pub stack: TokenStack,
    pub node: Node,
}

impl KubeletStack {
    /// Starts the stack and pushes [`REPOSITORIES`] with skopeo, authorized
    /// by an access token the STS issues directly for the set-up.
    pub fn start() -> KubeletStack {
        let stack = TokenStack::start();
        let pusher = Client::new();
        let token = stack.sts.issue_access_token("pusher", AUDIENCE, "repository:*:push,pull", 600);
        let creds = format!("pusher:{token}");
        for repository in REPOSITORIES {
            let layout = tempfile::tempdir().expect("an OCI layout directory");
            let source = write_oci_image(layout.path());
            let dest = format!("docker://{}/{repository}:1", stack.addr());
            pusher
                .skopeo(&["copy", "--dest-tls-verify=false", "--dest-creds", &creds, &source, &dest])
                .success();
        }
        stack.realm.reset_counts();
        KubeletStack { stack, node: Node::new() }
    }

    /// `127.0.0.1:PORT/<repository>`: an image as the kubelet passes it.
    pub fn image(&self, repository: &str) -> String {
        format!("{}/{repository}", self.stack.addr())
    }

    /// An exchange entry for the registry whose subject is the kubelet's
    /// service account token, with `extra` fields merged in.
    pub fn entry(&self, extra: Value) -> Value {
        let mut entry = json!({
            "token_endpoint": self.stack.sts.url(),
            "subject_token": {"source": "kubelet"},
            "subject_token_type": TOKEN_TYPE_JWT,
            "audience": AUDIENCE,
            "scope": "repository:{repository}:pull",
        });
        for (key, value) in extra.as_object().expect("extra fields are a JSON object") {
            entry[key] = value.clone();
        }
        entry
    }

    /// The node's `CredentialProviderConfig` for this registry.
    pub fn provider_config(&self, token_attributes: Option<Value>) -> Value {
        self.node.provider_config(&[&self.stack.addr()], token_attributes)
    }

    /// A service account `default/NAME` with `annotations`, and a token the
    /// kubelet would have had bound to [`SA_AUDIENCE`] for ten minutes.
    pub fn service_account(&self, name: &str, annotations: &[(&str, &str)]) -> ServiceAccount {
        let sub = format!("system:serviceaccount:default:{name}");
        ServiceAccount {
            token: self.stack.sts.mint_subject_token_for(&sub, SA_AUDIENCE, 600),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// A pull of `repository:1`'s manifest with these credentials.
    pub fn pull(&self, repository: &str, username: &str, password: &str) -> Pull {
        pull_manifest(&self.stack.addr(), repository, "1", username, password)
    }

    /// The helper's log file and the registry's log, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}{}", self.node.helper_log(), self.stack.logs())
    }
}
