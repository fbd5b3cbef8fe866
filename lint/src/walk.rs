//! Which files lint reads: files named are taken as they are, directories are walked for the
//! extensions asked for, skipping hidden entries, `--exclude` globs and Kustomize patches.

use std::path::{Path, PathBuf};

use semble_policy::yaml::Node;

use crate::context::{get, str_of};

/// File extensions lint reads from directories.
pub const LINT_EXTENSIONS: &[&str] = &["yaml", "yml", "json", "container", "pod", "kube", "network", "volume"];
/// File extensions of Kubernetes manifests.
pub const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Files under `paths`: files named are taken as they are; directories are walked recursively
/// for `extensions` (hidden entries, `exclude` globs and the strategic-merge patches a
/// `kustomization.yaml` names are skipped); `-` is standard input.
pub fn collect(paths: &[PathBuf], exclude: &[String], extensions: &[&str]) -> Result<Vec<PathBuf>, crate::LintError> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, exclude, extensions, &mut out, true)?;
    }
    Ok(out)
}

fn excluded(p: &Path, exclude: &[String]) -> bool {
    let s = p.display().to_string();
    exclude
        .iter()
        .any(|pat| glob_match(pat, &s) || p.file_name().is_some_and(|n| glob_match(pat, &n.to_string_lossy())))
}

/// `*` matches anything (including `/`); `?` one character.
fn glob_match(pat: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pat.as_bytes(), s.as_bytes())
}

fn walk(
    p: &Path,
    exclude: &[String],
    extensions: &[&str],
    out: &mut Vec<PathBuf>,
    explicit: bool,
) -> Result<(), crate::LintError> {
    if p == Path::new("-") {
        out.push(p.to_path_buf());
        return Ok(());
    }
    if !explicit && excluded(p, exclude) {
        return Ok(());
    }
    let read = |source| crate::LintError::Read { path: p.to_path_buf(), source };
    let meta = std::fs::metadata(p).map_err(read)?;
    if meta.is_dir() {
        let patches = kustomize_patches(p);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(read)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|e| !e.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        entries.sort();
        for e in entries {
            let lintable =
                e.is_dir() || e.extension().and_then(|x| x.to_str()).is_some_and(|x| extensions.contains(&x));
            // Strategic-merge patches are fragments of objects, not objects: lint what
            // `kubectl kustomize` builds instead.
            if lintable && !patches.contains(&e) {
                walk(&e, exclude, extensions, out, false)?;
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// The patch files a `kustomization.yaml` in `dir` names.
fn kustomize_patches(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(dir.join("kustomization.yaml")) else { return Vec::new() };
    let Ok(root) = semble_policy::yaml::parse(&text) else { return Vec::new() };
    let mut out = Vec::new();
    for key in ["patchesStrategicMerge", "patches"] {
        for item in get(&root, key).and_then(Node::as_seq).unwrap_or(&[]) {
            let file = item.scalar_text().or_else(|| str_of(get(item, "path")));
            if let Some(f) = file {
                out.push(dir.join(f));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.tmp.yaml", "a.tmp.yaml"));
        assert!(glob_match("vendor/*", "vendor/x/y.yaml"));
        assert!(!glob_match("vendor/*", "src/vendor.yaml"));
    }
}
