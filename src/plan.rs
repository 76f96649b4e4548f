//! A request resolved against its registry entry: the repository checked
//! against the OCI grammar, templates filled, and the cache key computed.
//! Cheap and pure: no I/O, so a cache hit costs nothing more than this.

use std::collections::BTreeMap;

use crate::cache::{CacheKey, KeyFields};
use crate::config::{RegistryConfig, TemplateError, TemplateVars, expand};
use crate::exchange::ExchangeRequest;
use crate::secret::Secret;
use crate::server_url::{ServerUrl, is_repository_name};

/// Why a request cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The path after the host is not a repository name.
    #[error(
        "{repository:?} is not a repository name (lower-case letters and digits, with . _ __ or - between them, \
         and / between components); ask for {registry} or {registry}/REPOSITORY"
    )]
    InvalidRepository {
        /// The registry host.
        registry: String,
        /// What was asked for (never a secret: it was a path).
        repository: String,
    },
    /// A template needs a value the request does not carry.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// An annotation the entry allows has a value outside the conservative
    /// set ([`is_safe_annotation_value`]): whoever may annotate a service
    /// account must not reshape a request (`/` and `..` walk a resource
    /// path, `*` and `,` widen a scope, `%` smuggles either past a check,
    /// a space adds a scope). The value is not repeated: it is not secret,
    /// but it is untrusted and may be long or unprintable.
    #[error(
        "the service account annotation {key}, which registry entry \"{entry}\" puts in a template, has a value \
         outside letters, digits, '.', '_' and '-' (beginning and ending with a letter or digit, no '..', at most \
         {MAX_ANNOTATION_VALUE} characters); nothing was sent. Fix the annotation"
    )]
    InvalidAnnotation {
        /// The config key of the entry.
        entry: String,
        /// The annotation key (one the config lists).
        key: String,
    },
}

/// The longest annotation value a template receives: a Kubernetes label
/// value's limit, which is what such values (a role, a team, a tenant)
/// usually are.
pub const MAX_ANNOTATION_VALUE: usize = 63;

/// Whether a service account annotation value may reach a template: the
/// grammar of a Kubernetes label value (letters, digits, `.`, `_`, `-`,
/// beginning and ending with a letter or digit, at most 63 characters),
/// and no `..`. So no value is empty or a path step of its own (`.`,
/// `..`), none begins like an option or a hidden name (`-x`, `.x`) or ends
/// like a fully qualified host (`x.`), and nothing a URL, a scope list or
/// a percent-decoder gives meaning to (`/`, `*`, `,`, `:`, `%`, `?`, `#`,
/// spaces) gets through.
pub fn is_safe_annotation_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    bytes.len() <= MAX_ANNOTATION_VALUE
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !value.contains("..")
}

/// What a kubelet request adds to a Docker one.
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeletRequest<'a> {
    /// The pod's service account token, the subject of `kubelet` sources.
    pub service_account_token: Option<&'a Secret>,
    /// The service account's annotations (templates see only the listed ones).
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

/// A request resolved against an entry.
#[derive(Debug)]
pub struct Plan {
    /// Filled `audience` values.
    pub audience: Vec<String>,
    /// Filled `resource` values.
    pub resource: Vec<String>,
    /// Filled `scope`.
    pub scope: Option<String>,
    /// The key of the token this request gets.
    pub cache_key: CacheKey,
    /// Whether the token depends on the request's repository (a template
    /// uses `{repository}`, or the entry is a repository prefix): such a
    /// token must not be reused for other repositories of the registry.
    pub repository_scoped: bool,
}

impl Plan {
    /// Resolves `url` against the entry `key` → `reg`, for a subject with
    /// fingerprint `subject` when it is one the request or the environment
    /// carries (env, file, command, kubelet, CI): each such subject has its
    /// own token, so CI jobs sharing a HOME neither evict nor borrow each
    /// other's, nor each other's failures. The actor token's fingerprint
    /// (RFC 8693 delegation) joins the key the same way: a token issued to
    /// one actor is never handed to another.
    ///
    /// # Errors
    /// The repository is not a repository name, or a template needs a
    /// value the request does not carry.
    pub fn new(
        url: &ServerUrl,
        key: &ServerUrl,
        reg: &RegistryConfig,
        kubelet: KubeletRequest<'_>,
        subject: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Plan, PlanError> {
        if let Some(repository) = url.repository()
            && !is_repository_name(repository)
        {
            return Err(PlanError::InvalidRepository {
                registry: url.registry().to_owned(),
                repository: crate::redact::bounded(repository, 80),
            });
        }
        // Only the annotations the entry lists reach a template or the key,
        // and only values of the conservative set: anyone who may annotate
        // a service account may ask, never reshape.
        let allowed: Option<BTreeMap<String, String>> = kubelet.annotations.map(|all| {
            all.iter()
                .filter(|(k, _)| reg.kubelet_annotations.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        if let Some((annotation, _)) = allowed.iter().flatten().find(|(_, v)| !is_safe_annotation_value(v)) {
            return Err(PlanError::InvalidAnnotation {
                entry: key.as_str().to_owned(),
                key: annotation.clone(),
            });
        }
        let vars = TemplateVars {
            registry: url.registry(),
            repository: url.repository(),
            annotations: allowed.as_ref(),
        };
        let entry = key.as_str();
        let fill = |values: Option<&crate::config::OneOrMany>, field| -> Result<Vec<String>, TemplateError> {
            values.map_or(Ok(Vec::new()), |v| {
                v.values().iter().map(|t| expand(t, vars, entry, field)).collect()
            })
        };
        let audience = fill(reg.audience.as_ref(), "audience")?;
        let resource = fill(reg.resource.as_ref(), "resource")?;
        let scope = reg.scope.as_deref().map(|s| expand(s, vars, entry, "scope")).transpose()?;
        let source = reg.subject_token.describe();
        let cache_key = CacheKey::new(&KeyFields {
            registry_key: entry,
            repository: url.repository(),
            endpoint: &reg.token_endpoint,
            subject_source: &source,
            subject_token_type: reg.subject_token_type(),
            audience: &audience,
            resource: &resource,
            scope: scope.as_deref(),
            requested_token_type: reg.requested_token_type.as_deref(),
            client_id: reg.client_id.as_deref(),
            username: reg.username.as_deref(),
            subject,
            actor,
        });
        let templates = reg.audience.iter().chain(&reg.resource).flat_map(|v| v.values()).chain(&reg.scope);
        let uses_repository = templates.into_iter().any(|t| t.contains("{repository}"));
        let repository_scoped = url.repository().is_some() && (uses_repository || key.repository().is_some());
        Ok(Plan { audience, resource, scope, cache_key, repository_scoped })
    }

    /// The exchange this plan asks for, from `subject_token` (and
    /// `actor_token`, when the entry delegates).
    pub fn request<'a>(
        &'a self,
        key: &'a ServerUrl,
        reg: &'a RegistryConfig,
        subject_token: &'a Secret,
        actor_token: Option<&'a Secret>,
    ) -> ExchangeRequest<'a> {
        ExchangeRequest {
            registry: key.as_str(),
            endpoint: &reg.token_endpoint,
            subject_token,
            subject_token_type: reg.subject_token_type(),
            audience: self.audience.clone(),
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            requested_token_type: reg.requested_token_type.as_deref(),
            client_id: reg.client_id.as_deref(),
            client_secret: reg.client_secret.as_ref(),
            client_auth: reg.client_auth,
            client_key: crate::client_auth::KeySettings::of(reg),
            actor: actor_token.zip(reg.actor_token_type.as_deref()),
            ca_file: reg.ca_file.as_deref(),
            subject_rejected: reg.subject_token.when_rejected(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(json: &str) -> RegistryConfig {
        serde_json::from_str(json).unwrap()
    }

    fn plan(url: &str, reg: &RegistryConfig) -> Result<Plan, PlanError> {
        let key = ServerUrl::parse("ok.test").unwrap();
        Plan::new(&ServerUrl::parse(url).unwrap(), &key, reg, KubeletRequest::default(), None, None)
    }

    #[test]
    fn a_path_that_is_not_a_repository_never_reaches_a_template() {
        let r = reg(r#"{"token_endpoint": "https://s/t", "scope": "repository:{repository}:pull"}"#);
        let err = plan("ok.test/team/../../etc", &r).unwrap_err();
        assert!(matches!(err, PlanError::InvalidRepository { .. }), "{err}");
    }

    #[test]
    fn a_repository_fills_the_scope() {
        let r = reg(r#"{"token_endpoint": "https://s/t", "scope": "repository:{repository}:pull"}"#);
        assert_eq!(plan("ok.test/team/app", &r).unwrap().scope.as_deref(), Some("repository:team/app:pull"));
    }

    #[test]
    fn a_token_is_repository_scoped_only_when_the_repository_shapes_it() {
        let templated = reg(r#"{"token_endpoint": "https://s/t", "scope": "repository:{repository}:pull"}"#);
        let fixed = reg(r#"{"token_endpoint": "https://s/t", "scope": "repository:team/app:pull"}"#);
        assert!(plan("ok.test/team/app", &templated).unwrap().repository_scoped);
        assert!(!plan("ok.test/team/app", &fixed).unwrap().repository_scoped);
    }

    #[test]
    fn the_configured_username_is_part_of_the_key() {
        let a = reg(r#"{"token_endpoint": "https://s/t", "username": "a"}"#);
        let b = reg(r#"{"token_endpoint": "https://s/t", "username": "b"}"#);
        assert_ne!(plan("ok.test", &a).unwrap().cache_key, plan("ok.test", &b).unwrap().cache_key);
    }

    #[test]
    fn only_listed_annotations_reach_a_template() {
        let r = reg(
            r#"{"token_endpoint": "https://s/t", "kubelet_annotations": ["x/role"], "audience": "{annotation:x/role}"}"#,
        );
        let annotations = BTreeMap::from([
            ("x/role".to_owned(), "puller".to_owned()),
            ("x/other".to_owned(), "z".to_owned()),
        ]);
        let kubelet = KubeletRequest { service_account_token: None, annotations: Some(&annotations) };
        let key = ServerUrl::parse("ok.test").unwrap();
        let p = Plan::new(&ServerUrl::parse("ok.test/app").unwrap(), &key, &r, kubelet, None, None).unwrap();
        assert_eq!(p.audience, ["puller"]);
    }

    #[test]
    fn an_annotation_value_that_would_add_a_scope_is_refused() {
        let r = reg(
            r#"{"token_endpoint": "https://s/t", "kubelet_annotations": ["x/role"], "scope": "role:{annotation:x/role}"}"#,
        );
        let annotations = BTreeMap::from([("x/role".to_owned(), "puller repository:*:push".to_owned())]);
        let kubelet = KubeletRequest { service_account_token: None, annotations: Some(&annotations) };
        let key = ServerUrl::parse("ok.test").unwrap();
        let err =
            Plan::new(&ServerUrl::parse("ok.test/app").unwrap(), &key, &r, kubelet, None, None).unwrap_err();
        assert!(matches!(err, PlanError::InvalidAnnotation { .. }), "{err}");
    }

    #[test]
    fn annotation_values_of_the_conservative_set_are_accepted() {
        for value in ["puller", "team-a", "role_1.read", "A", "9", &"x".repeat(MAX_ANNOTATION_VALUE)] {
            assert!(is_safe_annotation_value(value), "{value:?}");
        }
    }

    #[test]
    fn annotation_values_that_could_reshape_a_request_are_refused() {
        let long = "x".repeat(MAX_ANNOTATION_VALUE + 1);
        for value in [
            "",
            ".",
            "..",
            "../../admin",
            "a..b",
            "*",
            "p,push",
            "x%2F..%2Fy",
            "a/b",
            "a:b",
            "a b",
            "a?b",
            "a#b",
            ".hidden",
            "-rf",
            "host.",
            "tab\t",
            "é",
            &long,
        ] {
            assert!(!is_safe_annotation_value(value), "{value:?}");
        }
    }

    #[test]
    fn a_refused_annotation_names_the_entry_and_the_key_but_not_the_value() {
        let r = reg(
            r#"{"token_endpoint": "https://s/t", "kubelet_annotations": ["x/role"], "resource": "https://s/{annotation:x/role}"}"#,
        );
        let annotations = BTreeMap::from([("x/role".to_owned(), "../../admin".to_owned())]);
        let kubelet = KubeletRequest { service_account_token: None, annotations: Some(&annotations) };
        let key = ServerUrl::parse("ok.test").unwrap();
        let err =
            Plan::new(&ServerUrl::parse("ok.test/app").unwrap(), &key, &r, kubelet, None, None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("x/role") && text.contains("\"ok.test\""), "{text}");
        assert!(!text.contains("../../admin"), "{text}");
    }

    #[test]
    fn each_subject_the_request_carries_has_its_own_key() {
        let r = reg(r#"{"token_endpoint": "https://s/t", "subject_token": {"source": "kubelet"}}"#);
        let key = ServerUrl::parse("ok.test").unwrap();
        let url = ServerUrl::parse("ok.test/app").unwrap();
        let keyed = |fp| Plan::new(&url, &key, &r, KubeletRequest::default(), fp, None).unwrap().cache_key;
        assert_ne!(keyed(Some("sha-of-a")), keyed(Some("sha-of-b")));
        assert_ne!(keyed(Some("sha-of-a")), keyed(None));
    }

    #[test]
    fn each_actor_has_its_own_key() {
        let r = reg(r#"{"token_endpoint": "https://s/t", "subject_token": {"source": "env", "var": "S"},
            "actor_token": {"source": "env", "var": "A"}, "actor_token_type": "urn:ietf:params:oauth:token-type:jwt"}"#);
        let key = ServerUrl::parse("ok.test").unwrap();
        let keyed =
            |actor| Plan::new(&key, &key, &r, KubeletRequest::default(), Some("s"), actor).unwrap().cache_key;
        assert_ne!(keyed(Some("sha-of-actor-a")), keyed(Some("sha-of-actor-b")));
        assert_ne!(keyed(Some("sha-of-actor-a")), keyed(None));
    }
}
