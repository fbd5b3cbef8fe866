//! JSON: `{"files": N, "findings": [...]}`, one object per finding with every field.

use crate::Finding;

/// The JSON document for `files` files and their findings.
pub fn render(files: usize, findings: &[Finding]) -> serde_json::Value {
    serde_json::json!({"files": files, "findings": findings})
}
