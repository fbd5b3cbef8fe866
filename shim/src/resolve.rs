//! Which policy a container gets.
//!
//! In order: `--policy FILE` (the operator's choice for every container), the
//! `semble.dev/policy: NAME` annotation (an *installed* policy, `POLICY_DIR/NAME.yaml`: a
//! workload picks among policies, it never ships its own), `POLICY_DIR/default.yaml`, and
//! finally the built-in default.

use std::fmt;
use std::path::{Path, PathBuf};

use semble_policy::compile::oci::POLICY_ANNOTATION;
use semble_policy::SandboxPolicy;

use crate::settings::Settings;

/// The built-in default policy's source.
pub const BUILTIN_DEFAULT: &str = include_str!("builtin-default.yaml");

/// Where the policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--policy FILE`.
    Flag(PathBuf),
    /// The annotation, naming an installed policy.
    Annotation(PathBuf),
    /// `POLICY_DIR/default.yaml`.
    DirDefault(PathBuf),
    /// Compiled in.
    Builtin,
    /// The policy semble recorded for the container's pod sandbox (this ID).
    Pod(String),
    /// `--pin-policy NAME`.
    Pinned(String),
    /// `--default-policy NAME`.
    HandlerDefault(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(p) => write!(f, "--policy {}", p.display()),
            Source::Annotation(p) => write!(f, "annotation {POLICY_ANNOTATION} ({})", p.display()),
            Source::DirDefault(p) => write!(f, "{}", p.display()),
            Source::Builtin => f.write_str("built-in default"),
            Source::Pod(id) => write!(f, "the pod's, as its sandbox {id} got it"),
            Source::Pinned(n) => write!(f, "--pin-policy {n}"),
            Source::HandlerDefault(n) => write!(f, "--default-policy {n}"),
        }
    }
}

/// A policy with its source text (kept with the container so `exec` gets the same policy).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The policy.
    pub policy: SandboxPolicy,
    /// Its source text.
    pub text: String,
    /// Where it came from.
    pub source: Source,
}

/// Why no policy could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The annotation names something that cannot be a policy name.
    #[error("annotation {POLICY_ANNOTATION}=`{0}` is not a policy name; use the `metadata.name` of an installed policy (letters, digits, `-`)")]
    BadName(String),
    /// The annotation names a policy that is not installed.
    #[error("unknown policy `{name}`: no `{}` (annotation {POLICY_ANNOTATION}); install the policy there or fix the annotation", path.display())]
    Unknown {
        /// The name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A policy file cannot be read.
    #[error("cannot read policy `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A policy file is invalid.
    #[error("policy `{}` is invalid: {first}{more}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its first error.
        first: String,
        /// How many more.
        more: String,
    },
    /// The handler is bound to one policy and the container names another.
    #[error("this runtime handler runs policy `{pinned}` only (--pin-policy) and the container asks for `{asked}` (annotation {POLICY_ANNOTATION}); use the handler for `{asked}`, or drop the annotation")]
    Pinned {
        /// The handler's policy.
        pinned: String,
        /// What the container asked for.
        asked: String,
    },
    /// The policy may not be chosen by annotation.
    #[error("policy `{0}` cannot be chosen by annotation (spec.selection.byAnnotation: false); the operator binds it to a runtime handler (--pin-policy)")]
    NotByAnnotation(String),
    /// The pod's namespace may not have the policy.
    #[error("policy `{name}` is not for pods of namespace `{namespace}` (it admits {admits}); use a policy bound to `{namespace}`, or add the namespace to the policy's spec.selection.namespaces")]
    Namespace {
        /// The policy.
        name: String,
        /// The pod's namespace.
        namespace: String,
        /// What it admits.
        admits: String,
    },
    /// The handler wants an annotation.
    #[error("this runtime handler needs a {POLICY_ANNOTATION} annotation (--default-policy refuse); name one of the installed policies in {}", dir.display())]
    NeedsAnnotation {
        /// The policy directory.
        dir: PathBuf,
    },
    /// An installed policy's name differs from its file name.
    #[error("policy file `{}` holds policy `{name}`; the file must be named `{name}.yaml`", path.display())]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name inside.
        name: String,
    },
}

/// Parse a policy file.
pub fn load(path: &Path) -> Result<Resolved, ResolveError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ResolveError::Read { path: path.to_path_buf(), source })?;
    let policy = parse(&text, path)?;
    Ok(Resolved { policy, text, source: Source::Flag(path.to_path_buf()) })
}

fn parse(text: &str, path: &Path) -> Result<SandboxPolicy, ResolveError> {
    semble_policy::parse(text).map(|p| p.policy).map_err(|e| {
        let errors: Vec<String> = e.errors().map(|d| d.render(None)).collect();
        let more = if errors.len() > 1 {
            format!(" (and {} more; run `semble-policy validate`)", errors.len() - 1)
        } else {
            String::new()
        };
        ResolveError::Invalid { path: path.to_path_buf(), first: errors.into_iter().next().unwrap_or_default(), more }
    })
}

fn is_policy_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// An installed policy, `POLICY_DIR/NAME.yaml` (or `.yml`, `.json`), whose `metadata.name` is
/// `NAME`.
fn installed(settings: &Settings, name: &str) -> Result<Resolved, ResolveError> {
    if !is_policy_name(name) {
        return Err(ResolveError::BadName(name.to_string()));
    }
    let candidates: Vec<PathBuf> = settings
        .policy_dirs()
        .iter()
        .flat_map(|d| [d.join(format!("{name}.yaml")), d.join(format!("{name}.yml")), d.join(format!("{name}.json"))])
        .collect();
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(ResolveError::Unknown { name: name.to_string(), path: candidates[0].clone() });
    };
    let mut r = load(path)?;
    if r.policy.name != name {
        return Err(ResolveError::NameMismatch { path: path.clone(), name: r.policy.name });
    }
    r.source = Source::Annotation(path.clone());
    Ok(r)
}

/// Choose the policy for a container, from its `semble.dev/policy` annotation and (in a
/// Kubernetes pod) its namespace, within the operator's binding: `--policy FILE`, then
/// `--pin-policy NAME` (a container naming another policy is refused), then the annotation (the
/// policy must allow `byAnnotation` and admit the pod's namespace), then `--default-policy`
/// (`refuse`: an annotation is required), `POLICY_DIR/default.yaml`, the built-in default.
pub fn resolve(
    settings: &Settings,
    annotation: Option<&str>,
    namespace: Option<&str>,
) -> Result<Resolved, ResolveError> {
    if let Some(path) = &settings.policy_file {
        return load(path);
    }
    let admitted = |r: Resolved| -> Result<Resolved, ResolveError> {
        if let Some(ns) = namespace {
            let sel = &r.policy.selection;
            if !sel.admits_namespace(ns, &r.policy.kubernetes) {
                let admits = if sel.namespaces.is_empty() {
                    format!("namespace `{}`", r.policy.kubernetes.namespace.clone().unwrap_or_default())
                } else {
                    sel.namespaces.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                };
                return Err(ResolveError::Namespace { name: r.policy.name, namespace: ns.to_string(), admits });
            }
        }
        Ok(r)
    };
    if let Some(pinned) = &settings.pin_policy {
        if let Some(asked) = annotation.filter(|a| a != pinned) {
            return Err(ResolveError::Pinned { pinned: pinned.clone(), asked: asked.to_string() });
        }
        let mut r = installed(settings, pinned)?;
        r.source = Source::Pinned(pinned.clone());
        return admitted(r);
    }
    if let Some(name) = annotation {
        let r = installed(settings, name)?;
        if !r.policy.selection.by_annotation {
            return Err(ResolveError::NotByAnnotation(r.policy.name));
        }
        return admitted(r);
    }
    match settings.default_policy.as_deref() {
        Some("refuse") => return Err(ResolveError::NeedsAnnotation { dir: settings.policy_dir.clone() }),
        Some(name) => {
            let mut r = installed(settings, name)?;
            r.source = Source::HandlerDefault(name.to_string());
            return admitted(r);
        }
        None => {}
    }
    if let Some(default) = settings.policy_dirs().iter().map(|d| d.join("default.yaml")).find(|p| p.is_file()) {
        let mut r = load(&default)?;
        r.source = Source::DirDefault(default);
        return admitted(r);
    }
    let policy = parse(BUILTIN_DEFAULT, Path::new("<built-in default>"))?;
    Ok(Resolved { policy, text: BUILTIN_DEFAULT.to_string(), source: Source::Builtin })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Passthrough;

    fn settings(dir: &Path) -> Settings {
        Settings {
            root: dir.join("root"),
            policy_file: None,
            policy_dir: dir.to_path_buf(),
            more_policy_dirs: Vec::new(),
            rootless: false,
            state_home: dir.join("root"),
            user_dirs: None,
            backend: None,
            runc: None,
            runsc: None,
            runsc_platform: None,
            init: None,
            proxy_dir: dir.join("proxy"),
            passthrough: Passthrough::default(),
            record: None,
            allow_record_annotation: false,
            resolvers: Vec::new(),
            allowed_hooks: Vec::new(),
            pin_policy: None,
            default_policy: None,
            enable_audit: false,
        }
    }

    const P: &str =
        "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: NAME}\nspec: {network: {mode: none}}\n";

    #[test]
    fn order_is_flag_annotation_default_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        assert_eq!(resolve(&s, None, None).unwrap().source, Source::Builtin);
        std::fs::write(dir.path().join("default.yaml"), P.replace("NAME", "default")).unwrap();
        assert!(matches!(resolve(&s, None, None).unwrap().source, Source::DirDefault(_)));
        std::fs::write(dir.path().join("ws.yaml"), P.replace("NAME", "ws")).unwrap();
        let r = resolve(&s, Some("ws"), None).unwrap();
        assert_eq!(r.policy.name, "ws");
        let mut s2 = s.clone();
        s2.policy_file = Some(dir.path().join("default.yaml"));
        assert_eq!(resolve(&s2, Some("ws"), None).unwrap().policy.name, "default");
    }

    #[test]
    fn annotations_cannot_name_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        for bad in ["../etc/x", "/tmp/p", "a/b", "", "UPPER"] {
            assert!(matches!(resolve(&s, Some(bad), None), Err(ResolveError::BadName(_))), "{bad}");
        }
    }

    #[test]
    fn unknown_and_invalid_policies_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let e = resolve(&s, Some("nope"), None).unwrap_err().to_string();
        assert!(e.starts_with("unknown policy `nope`"), "{e}");
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: bad}\nspec: {procss: {}}\n",
        )
        .unwrap();
        let e = resolve(&s, Some("bad"), None).unwrap_err().to_string();
        assert!(e.contains("4:8: error: unknown field `procss`"), "{e}");
        std::fs::write(dir.path().join("other.yaml"), P.replace("NAME", "different")).unwrap();
        assert!(matches!(resolve(&s, Some("other"), None), Err(ResolveError::NameMismatch { .. })));
    }

    #[test]
    fn the_builtin_default_is_valid() {
        let p = semble_policy::parse(BUILTIN_DEFAULT).unwrap();
        assert!(p.warnings.iter().all(|w| w.severity != semble_policy::Severity::Warning));
    }

    #[test]
    fn the_operator_binds_policies_to_handlers_and_namespaces() {
        let t = tempfile::tempdir().unwrap();
        let write = |name: &str, spec: &str| {
            std::fs::write(
                t.path().join(format!("{name}.yaml")),
                format!("apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {{name: {name}}}\nspec: {{network: {{mode: none}}{spec}}}\n"),
            )
            .unwrap();
        };
        write("lax", "");
        write("bound", ", selection: {byAnnotation: false}");
        write("ns", ", kubernetes: {namespace: team-a, podSelector: {app: x}}");
        write("two", ", selection: {namespaces: [team-a, team-b]}");
        let mut s = settings(t.path());
        // Pinned: the annotation may name the pinned policy or nothing; another one is refused.
        s.pin_policy = Some("bound".into());
        assert_eq!(resolve(&s, None, None).unwrap().policy.name, "bound");
        assert_eq!(resolve(&s, Some("bound"), None).unwrap().policy.name, "bound");
        assert!(matches!(resolve(&s, Some("lax"), None), Err(ResolveError::Pinned { .. })));
        s.pin_policy = None;
        // Not by annotation.
        assert!(matches!(resolve(&s, Some("bound"), None), Err(ResolveError::NotByAnnotation(_))));
        // Namespaces: the policy's kubernetes.namespace, or its list.
        assert!(resolve(&s, Some("ns"), Some("team-a")).is_ok());
        let e = resolve(&s, Some("ns"), Some("team-c")).unwrap_err().to_string();
        assert!(e.contains("not for pods of namespace `team-c`"), "{e}");
        assert!(resolve(&s, Some("two"), Some("team-b")).is_ok());
        assert!(matches!(resolve(&s, Some("two"), Some("x")), Err(ResolveError::Namespace { .. })));
        // Outside Kubernetes (no namespace) the namespace binding does not apply.
        assert!(resolve(&s, Some("ns"), None).is_ok());
        // What an unannotated container gets.
        s.default_policy = Some("refuse".into());
        assert!(matches!(resolve(&s, None, None), Err(ResolveError::NeedsAnnotation { .. })));
        s.default_policy = Some("lax".into());
        assert_eq!(resolve(&s, None, None).unwrap().policy.name, "lax");
    }
}
