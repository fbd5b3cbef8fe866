//! Checks several input kinds share: images, added capabilities, default credentials.

use semble_policy::diag::Pos;
use semble_policy::yaml::Node;

use crate::context::{cap_name, Ctx};

/// The capabilities Pod Security baseline lets a container add ([`semble_policy::facts`]).
pub(crate) use semble_policy::facts::KUBERNETES_BASELINE_CAPABILITIES as BASELINE_CAPS;

pub(crate) fn check_caps(ctx: &mut Ctx, list: &Node, what: &str) {
    for c in list.as_seq().unwrap_or(&[]) {
        let Some(name) = c.scalar_text() else { continue };
        let n = cap_name(&name);
        let dangerous = semble_policy::caps::Capability::parse(&n).is_some_and(|c| c.is_dangerous());
        if n == "ALL" || dangerous || !BASELINE_CAPS.contains(&n.as_str()) {
            ctx.add("SB005", c.pos, format!("{what} adds capability {n}"));
        }
    }
}

const DEFAULT_CREDENTIALS: &[(&str, &[&str])] = &[
    ("GF_SECURITY_ADMIN_PASSWORD", &["admin"]),
    ("POSTGRES_PASSWORD", &["postgres", "password"]),
    ("MYSQL_ROOT_PASSWORD", &["root", "password", "mysql"]),
    ("MONGO_INITDB_ROOT_PASSWORD", &["example", "password", "mongo"]),
    ("RABBITMQ_DEFAULT_PASS", &["guest"]),
    ("MINIO_ROOT_PASSWORD", &["minioadmin"]),
    ("REDIS_PASSWORD", &["redis", "password"]),
];

pub(crate) fn check_env_value(ctx: &mut Ctx, name: &str, value: &str, pos: Pos) {
    for (var, bad) in DEFAULT_CREDENTIALS {
        if name == *var && bad.contains(&value) {
            ctx.add("SB013", pos, format!("{name}={value} is the image's default credential"));
        }
    }
}

pub(crate) fn check_image(ctx: &mut Ctx, img: &Node) {
    let Some(s) = img.scalar_text() else { return };
    if s.contains('@') {
        return;
    }
    let last = s.rsplit('/').next().unwrap_or(&s);
    match last.split_once(':') {
        None => ctx.add("SB012", img.pos, format!("image `{s}` has no tag (it means :latest)")),
        Some((_, "latest")) => ctx.add("SB012", img.pos, format!("image `{s}` uses :latest")),
        _ => {}
    }
}
