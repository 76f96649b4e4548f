//! Placeholders in `audience`, `resource` and `scope`: `{registry}` and
//! `{repository}` from the request, and `{annotation:KEY}` from the service
//! account annotations the kubelet passes, for keys the entry lists.
//!
//! A repository reaches a template only if it is a repository name by the
//! OCI grammar ([`crate::server_url::is_repository_name`]): a request for
//! `host/team/../../etc` must not become `scope=repository:team/../../etc`.

use std::collections::BTreeMap;

/// A request's values for the placeholders.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    /// `host[:port]`.
    pub registry: &'a str,
    /// The repository path, when the request named one (already checked
    /// against the OCI grammar).
    pub repository: Option<&'a str>,
    /// Service account annotations the entry allows (kubelet requests only).
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

/// Why a template cannot be filled for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{repository}` is used but the request names none.
    #[error(
        "registry entry \"{entry}\" uses {{repository}} in {field}, but the request for {registry} names no repository \
         (Docker, BuildKit and skopeo pass only the host); give the entry a fixed {field}, or ask for host/repository"
    )]
    MissingRepository {
        /// The config key.
        entry: String,
        /// The field with the placeholder.
        field: &'static str,
        /// The requested registry.
        registry: String,
    },
    /// `{annotation:KEY}` is used but the request carries no such annotation.
    #[error(
        "registry entry \"{entry}\" uses {{annotation:{annotation}}} in {field}, but the request carries no such \
         service account annotation; annotate the pod's service account, or give the entry a fixed {field}"
    )]
    MissingAnnotation {
        /// The config key.
        entry: String,
        /// The field with the placeholder.
        field: &'static str,
        /// The annotation key.
        annotation: String,
    },
}

/// The placeholders a template may use, checked when the config is read.
pub(super) fn check(template: &str, allowed_annotations: &[String]) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| format!("{template:?} has an unclosed '{{'"))?;
        let name = &after[..close];
        match name.strip_prefix("annotation:") {
            Some(key) if allowed_annotations.iter().any(|a| a == key) => {}
            Some(key) => {
                return Err(format!(
                    "{{annotation:{key}}} names an annotation that kubelet_annotations does not list"
                ));
            }
            None if name == "registry" || name == "repository" => {}
            None => {
                return Err(format!(
                    "unknown placeholder {{{name}}}; use {{registry}}, {{repository}} or {{annotation:KEY}}"
                ));
            }
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fills the placeholders of `template` (already checked by [`check`]).
///
/// # Errors
/// A placeholder whose value the request does not carry.
pub fn expand(
    template: &str,
    vars: TemplateVars<'_>,
    entry: &str,
    field: &'static str,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let name = &after[..close];
        match name {
            "registry" => out.push_str(vars.registry),
            "repository" => {
                out.push_str(vars.repository.ok_or_else(|| TemplateError::MissingRepository {
                    entry: entry.to_owned(),
                    field,
                    registry: vars.registry.to_owned(),
                })?)
            }
            _ => match name.strip_prefix("annotation:") {
                Some(key) => out.push_str(vars.annotations.and_then(|a| a.get(key)).ok_or_else(|| {
                    TemplateError::MissingAnnotation {
                        entry: entry.to_owned(),
                        field,
                        annotation: key.to_owned(),
                    }
                })?),
                // Unreachable after `check`; kept verbatim rather than lost.
                None => out.push_str(&rest[open..open + close + 2]),
            },
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(
        repository: Option<&'a str>,
        annotations: Option<&'a BTreeMap<String, String>>,
    ) -> TemplateVars<'a> {
        TemplateVars { registry: "r:5000", repository, annotations }
    }

    #[test]
    fn registry_and_repository_are_filled() {
        let out =
            expand("repository:{repository}:pull@{registry}", vars(Some("team/app"), None), "r", "scope");
        assert_eq!(out.unwrap(), "repository:team/app:pull@r:5000");
    }

    #[test]
    fn a_missing_repository_is_an_error_never_an_empty_scope() {
        let err =
            expand("repository:{repository}:pull", vars(None, None), "r", "scope").unwrap_err().to_string();
        assert!(err.contains("registry entry \"r\"") && err.contains("scope"), "{err}");
    }

    #[test]
    fn an_allowed_annotation_is_filled() {
        let annotations = BTreeMap::from([("example.com/role".to_owned(), "puller".to_owned())]);
        let out =
            expand("role:{annotation:example.com/role}", vars(None, Some(&annotations)), "r", "audience");
        assert_eq!(out.unwrap(), "role:puller");
    }

    #[test]
    fn a_missing_annotation_is_an_error() {
        let err = expand("{annotation:example.com/role}", vars(None, None), "r", "audience").unwrap_err();
        assert!(matches!(err, TemplateError::MissingAnnotation { .. }));
    }

    #[test]
    fn check_refuses_unknown_placeholders_and_unlisted_annotations() {
        assert!(check("repository:{repo}:pull", &[]).unwrap_err().contains("{repo}"));
        assert!(check("{annotation:x}", &[]).unwrap_err().contains("kubelet_annotations"));
        assert!(check("{annotation:x}", &["x".to_owned()]).is_ok());
        assert!(check("{registry", &[]).unwrap_err().contains("unclosed"));
    }
}
