//! `semble-shim explain-bundle DIR`: what a bundle gets from semble — or got, when it was
//! created — policy, backend, every control and who enforces it, and what changed in
//! `config.json`.

use std::path::Path;

use serde_json::{json, Value};

use semble_policy::compile::oci::POLICY_ANNOTATION;

use crate::bundle::{self, Inputs, Mounts, BACKEND_ANNOTATION};
use crate::error::{Failure, Outcome};
use crate::host;
use crate::ops::{choose_backend, json_reason};
use crate::resolve;
use crate::settings::Settings;
use crate::state::{self, ORIGINAL_CONFIG};

fn read(path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure(format!("cannot read `{}`: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Failure(format!(
            "cannot parse `{}` at line {} column {}: {}",
            path.display(),
            e.line(),
            e.column(),
            json_reason(&e)
        ))
    })
}

fn show(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            let items: Vec<&str> = a.iter().filter_map(Value::as_str).map(|s| s.trim_start_matches("CAP_")).collect();
            if items.is_empty() {
                "(none)".into()
            } else {
                items.join(",")
            }
        }
        Some(other) => other.to_string(),
    }
}

/// Explain a bundle.
pub fn explain(settings: &Settings, dir: &Path, id: &str, format: &str) -> Outcome {
    let config_path = dir.join("config.json");
    let current = read(&config_path)?;
    let created = crate::bundle::has_annotation(&current, BACKEND_ANNOTATION);
    let original = if created && dir.join(ORIGINAL_CONFIG).is_file() {
        read(&dir.join(ORIGINAL_CONFIG))?
    } else {
        current.clone()
    };
    let record = state::all(&settings.records_dir())
        .into_iter()
        .find(|r| r.bundle == dir || std::fs::canonicalize(dir).ok().as_deref() == Some(r.bundle.as_path()));
    let id = record.as_ref().map(|r| r.id.clone()).unwrap_or_else(|| id.to_string());
    let annotation = crate::bundle::annotation(&original, POLICY_ANNOTATION);
    let resolved = resolve::resolve(settings, annotation, crate::bundle::pod_namespace(&original))?;
    let policy = &resolved.policy;
    let facts = host::probe_for(settings.rootless);
    let (backend_kind, fallback) = match &record {
        Some(r) => (r.backend, r.fallback_reason.clone()),
        None => {
            let (b, f) = choose_backend(settings, policy)?;
            (b.kind, f)
        }
    };
    let paths = state::Paths::new(&settings.records_dir(), &id);
    let runsc = (backend_kind == crate::bundle::BackendKind::Runsc)
        .then(|| crate::backend::find(settings, backend_kind).ok())
        .flatten()
        .map(|b| crate::ops::runsc_inputs(settings, &b, dir, &original, policy));
    let resolvers = settings.resolvers_for(policy);
    let sources = crate::mounts::resolve_sources(&original, dir);
    let devices = crate::bundle::host_devices(&original);
    let mounts = Mounts {
        box_dir: paths.box_dir(),
        init_binary: settings.init_binary().unwrap_or_else(|| "/usr/local/lib/semble/semble-init".into()),
        proxy_dir: settings.proxy_dir.join(&policy.name),
    };
    let applied = bundle::apply(
        &original,
        &Inputs {
            id: &id,
            policy,
            facts: &facts,
            backend: backend_kind,
            mounts: &mounts,
            runsc: runsc.as_ref(),
            record: settings.record.is_some(),
            resolvers: &resolvers,
            sources: &sources,
            devices: &devices,
            allowed_hooks: &settings.allowed_hooks,
            engine_roots: &settings.user_engine_roots(),
            private_dirs: &settings.user_private_dirs(),
            pod_sandbox_known: crate::ops::pod_sandbox_known(settings, &original),
        },
    );
    // Every field the merge changed, each with the row of the ceiling table that decides it.
    let changes: Vec<Change> = match &applied {
        Ok(a) => diff(&original, &a.config),
        Err(_) => Vec::new(),
    };
    match (&applied, format) {
        (Err(refusal), "json") => {
            println!(
                "{}",
                json!({"bundle": dir, "policy": policy.name, "source": resolved.source.to_string(), "refused": refusal.to_string()})
            );
            Ok(1)
        }
        (Err(refusal), _) => {
            println!("bundle   {}\npolicy   {} ({})\nREFUSED  {refusal}", dir.display(), policy.name, resolved.source);
            Ok(1)
        }
        (Ok(a), "json") => {
            let changes: Vec<Value> = changes
                .iter()
                .map(|c| json!({"field": c.path, "requested": c.before, "enforced": c.after, "action": c.action, "how": c.how}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "bundle": dir, "container": id, "created": created, "policy": policy.name, "source": resolved.source.to_string(),
                    "backend": backend_kind.as_str(), "fallback": fallback, "controls": a.controls, "notes": a.notes, "changes": changes,
                    "landlock": a.init.as_ref().and_then(|i| i.landlock.as_ref()),
                }))?
            );
            Ok(0)
        }
        (Ok(a), _) => {
            println!(
                "bundle   {}{}",
                dir.display(),
                if created { format!(" (created as `{id}`)") } else { " (not created yet)".into() }
            );
            println!("policy   {} ({})", policy.name, resolved.source);
            println!(
                "backend  {}{}",
                backend_kind.as_str(),
                fallback.map(|f| format!(" — fallback: {f}")).unwrap_or_default()
            );
            println!("\nenforced:");
            for c in &a.controls {
                println!("  {:<26} {:<34} {}", c.control, c.by, c.detail);
            }
            for n in &a.notes {
                println!("  note: {n}");
            }
            if let Some(rs) = a.init.as_ref().and_then(|i| i.landlock.as_ref()) {
                // Each path's rights: what a refused access lacked, where the kernel does not
                // log Landlock's refusals (before Linux 6.15, or with audit off).
                println!(
                    "\nLandlock rules (everything else is refused; paths missing in the container grant nothing):"
                );
                for r in &rs.rules {
                    let rights: Vec<String> = r
                        .access
                        .iter()
                        .filter_map(|x| serde_json::to_value(x).ok())
                        .filter_map(|v| v.as_str().map(|s| s.replace('-', "_")))
                        .collect();
                    println!("  {:<34} {:<44} {}", r.path, rights.join(","), r.reason);
                }
            }
            println!("\nconfig.json, requested -> enforced (docs/ceiling.md has every field's row):");
            for c in &changes {
                println!(
                    "* {:<44} {}  ->  {}  [{}]",
                    c.path,
                    show(c.before.as_ref()),
                    show(c.after.as_ref()),
                    c.action
                );
            }
            Ok(0)
        }
    }
}

/// One field the merge changed.
#[derive(Debug, Clone)]
struct Change {
    path: String,
    before: Option<Value>,
    after: Option<Value>,
    action: &'static str,
    how: &'static str,
}

/// The leaves that differ between the request and the rewritten configuration (arrays of
/// scalars compared whole, so a capability list reads as one change).
fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk_diff("", Some(before), Some(after), &mut out);
    out
}

fn scalar_array(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| a.iter().all(|x| !x.is_object() && !x.is_array()))
}

fn walk_diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Change>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                walk_diff(&format!("{path}/{k}"), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if !scalar_array(a) || !scalar_array(b) => {
            for i in 0..x.len().max(y.len()) {
                walk_diff(&format!("{path}/{i}"), x.get(i), y.get(i), out);
            }
        }
        _ => {
            let row = crate::bundle::table::row(path).or_else(|| crate::bundle::table::row(&format!("{path}/0")));
            out.push(Change {
                path: path.to_string(),
                before: a.cloned(),
                after: b.cloned(),
                action: row.map_or("add", |r| r.action.as_str()),
                how: row.map_or("semble's own (semble-init, its files)", |r| r.how),
            });
        }
    }
}
