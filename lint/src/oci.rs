//! OCI bundle configurations (`config.json`): bounding capabilities, a writable root.

use semble_policy::yaml::Node;

use crate::common::check_caps;
use crate::context::{get, path, Ctx};

pub(crate) fn lint(ctx: &mut Ctx, root: &Node) {
    if let Some(caps) = path(root, &["process", "capabilities", "bounding"]) {
        check_caps(ctx, caps, "the process");
    }
    if path(root, &["root", "readonly"]).and_then(Node::as_bool) != Some(true) {
        let pos = get(root, "root").map_or(root.pos, |n| n.pos);
        ctx.add("SB010", pos, "the root filesystem is writable (root.readonly is not true)".into());
    }
}
