//! `update`: new limits through the ceiling's `linux.resources` rows, never above the policy.

use super::*;

/// A runc-style size: bytes, or a number with `b`, `k`, `m`, `g`, `t` (binary units, any case);
/// `-1` for unlimited.
pub(super) fn parse_size(text: &str) -> Option<i64> {
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(-1);
    }
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let shift = match unit.trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    num.parse::<i64>().ok().and_then(|n| n.checked_mul(1i64 << shift))
}

/// `update`: the new limits go through the same rows of the ceiling as `create`'s
/// `linux.resources` (unknown fields refused, every limit held to the policy), and reach the
/// backend as one `--resources` document.
pub fn update(settings: &Settings, log: &mut Logger, args: &UpdateArgs) -> Outcome {
    let id = args.id.as_str();
    let (_, backend) = record_and_backend(settings, id)?;
    if backend.embedded() {
        return fail("`update` is not supported by the embedded backend; its limits are the policy's");
    }
    let paths = Paths::new(&settings.records_dir(), id);
    let (_, policy) = state::stored_policy(&paths, id).map_err(Failure)?;
    let mut v: Value = match &args.resources {
        Some(res) => {
            let text = if res == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
                s
            } else {
                fs::read_to_string(res).map_err(|e| Failure(format!("cannot read `{res}`: {e}")))?
            };
            serde_json::from_str(&text)
                .map_err(|e| Failure(format!("cannot parse the resources JSON: {}", json_reason(&e))))?
        }
        None => json!({}),
    };
    if !v.is_object() {
        return fail("the resources JSON must be an object (OCI `linux.resources`)");
    }
    let size = |flag: &str, t: &Option<String>| -> Result<Option<i64>, Failure> {
        t.as_deref()
            .map(|t| parse_size(t).ok_or_else(|| Failure(format!("--{flag} `{t}` is not a size (e.g. 512m, 2g)"))))
            .transpose()
    };
    if let Some(m) = size("memory", &args.memory)? {
        v["memory"]["limit"] = json!(m);
    }
    if let Some(m) = size("memory-swap", &args.memory_swap)? {
        v["memory"]["swap"] = json!(m);
    }
    if let Some(m) = size("memory-reservation", &args.memory_reservation)? {
        v["memory"]["reservation"] = json!(m);
    }
    if let Some(q) = args.cpu_quota {
        v["cpu"]["quota"] = json!(q);
    }
    if let Some(p) = args.cpu_period {
        v["cpu"]["period"] = json!(p);
    }
    if let Some(s) = args.cpu_share {
        v["cpu"]["shares"] = json!(s);
    }
    if let Some(c) = &args.cpuset_cpus {
        v["cpu"]["cpus"] = json!(c);
    }
    if let Some(m) = &args.cpuset_mems {
        v["cpu"]["mems"] = json!(m);
    }
    if let Some(p) = args.pids_limit {
        v["pids"]["limit"] = json!(p);
    }
    if let Some(w) = args.blkio_weight {
        v["blockIO"]["weight"] = json!(w);
    }
    let unknown = bundle::table::unknown_fields(&v, &["linux", "resources"]);
    if let Some(first) = unknown.first() {
        return fail(format!(
            "update field `{first}` is not one semble knows; policy `{}` refuses what it cannot judge",
            policy.name
        ));
    }
    for row in bundle::table::FIELDS.iter().filter(|r| r.action == bundle::table::Action::Refuse) {
        if let Some(rel) = row.path.strip_prefix("/linux/resources") {
            for (path, val) in bundle::table::values_at(&v, rel) {
                if !val.is_null() && val != &json!(false) && val != &json!(0) {
                    return fail(format!(
                        "update field `/linux/resources{path}` is refused by policy `{}`: {}",
                        policy.name, row.how
                    ));
                }
            }
        }
    }
    let before = v.clone();
    let map = v.as_object_mut().ok_or_else(|| Failure("the resources JSON must be an object".into()))?;
    bundle::clamp_limits(map, &policy, false).map_err(|(field, why)| {
        Failure(format!("update field `{field}` is refused by policy `{}`: {why}", policy.name))
    })?;
    // Drop the empty objects clamping added, and say what was lowered.
    map.retain(|_, x| x.as_object().is_none_or(|o| !o.is_empty()));
    if v != before {
        log.warn(
            &format!("update: limits above policy `{}` lowered to it: {}", policy.name, serde_json::to_string(&v)?),
            &[],
        );
    }
    let scratch = paths.scratch("update.json");
    write_file(&scratch, &serde_json::to_vec(&v)?, 0o600)?;
    let status = backend
        .command(settings, "update", vec!["--resources".into(), scratch.clone().into(), id.into()])
        .status()
        .map_err(|e| Failure(format!("cannot run `{}`: {e}", backend.binary.display())));
    let _ = fs::remove_file(&scratch);
    Ok(code(status?))
}
