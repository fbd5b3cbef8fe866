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
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(p) => write!(f, "--policy {}", p.display()),
            Source::Annotation(p) => write!(f, "annotation {POLICY_ANNOTATION} ({})", p.display()),
            Source::DirDefault(p) => write!(f, "{}", p.display()),
            Source::Builtin => f.write_str("built-in default"),
            Source::Pod(id) => write!(f, "the pod's, as its sandbox {id} got it"),
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

/// Choose the policy for a container with these annotations.
pub fn resolve(settings: &Settings, annotation: Option<&str>) -> Result<Resolved, ResolveError> {
    if let Some(path) = &settings.policy_file {
        return load(path);
    }
    if let Some(name) = annotation {
        if !is_policy_name(name) {
            return Err(ResolveError::BadName(name.to_string()));
        }
        let candidates = [
            settings.policy_dir.join(format!("{name}.yaml")),
            settings.policy_dir.join(format!("{name}.yml")),
            settings.policy_dir.join(format!("{name}.json")),
        ];
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(ResolveError::Unknown { name: name.to_string(), path: candidates[0].clone() });
        };
        let mut r = load(path)?;
        if r.policy.name != name {
            return Err(ResolveError::NameMismatch { path: path.clone(), name: r.policy.name });
        }
        r.source = Source::Annotation(path.clone());
        return Ok(r);
    }
    let default = settings.policy_dir.join("default.yaml");
    if default.is_file() {
        let mut r = load(&default)?;
        r.source = Source::DirDefault(default);
        return Ok(r);
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
        }
    }

    const P: &str =
        "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: NAME}\nspec: {network: {mode: none}}\n";

    #[test]
    fn order_is_flag_annotation_default_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        assert_eq!(resolve(&s, None).unwrap().source, Source::Builtin);
        std::fs::write(dir.path().join("default.yaml"), P.replace("NAME", "default")).unwrap();
        assert!(matches!(resolve(&s, None).unwrap().source, Source::DirDefault(_)));
        std::fs::write(dir.path().join("ws.yaml"), P.replace("NAME", "ws")).unwrap();
        let r = resolve(&s, Some("ws")).unwrap();
        assert_eq!(r.policy.name, "ws");
        let mut s2 = s.clone();
        s2.policy_file = Some(dir.path().join("default.yaml"));
        assert_eq!(resolve(&s2, Some("ws")).unwrap().policy.name, "default");
    }

    #[test]
    fn annotations_cannot_name_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        for bad in ["../etc/x", "/tmp/p", "a/b", "", "UPPER"] {
            assert!(matches!(resolve(&s, Some(bad)), Err(ResolveError::BadName(_))), "{bad}");
        }
    }

    #[test]
    fn unknown_and_invalid_policies_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let e = resolve(&s, Some("nope")).unwrap_err().to_string();
        assert!(e.starts_with("unknown policy `nope`"), "{e}");
        std::fs::write(
            dir.path().join("bad.yaml"),
            "apiVersion: semble.dev/v1alpha1\nkind: SandboxPolicy\nmetadata: {name: bad}\nspec: {procss: {}}\n",
        )
        .unwrap();
        let e = resolve(&s, Some("bad")).unwrap_err().to_string();
        assert!(e.contains("4:8: error: unknown field `procss`"), "{e}");
        std::fs::write(dir.path().join("other.yaml"), P.replace("NAME", "different")).unwrap();
        assert!(matches!(resolve(&s, Some("other")), Err(ResolveError::NameMismatch { .. })));
    }

    #[test]
    fn the_builtin_default_is_valid() {
        let p = semble_policy::parse(BUILTIN_DEFAULT).unwrap();
        assert!(p.warnings.iter().all(|w| w.severity != semble_policy::Severity::Warning));
    }
}
