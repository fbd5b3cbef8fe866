//! SARIF 2.1.0, for GitHub code scanning and every other SARIF reader.

use crate::rules::{Level, RULES};
use crate::Finding;

/// SARIF 2.1.0 for GitHub code scanning.
pub fn render(findings: &[Finding]) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": format!("{} Applies to: {}.", r.summary, r.applies)},
                "help": {"text": r.fix, "markdown": format!("**Fix:** {}", r.fix)},
                "helpUri": format!("https://github.com/semble-dev/semble/blob/main/docs/lint-rules.md#{}", r.id.to_ascii_lowercase()),
                "defaultConfiguration": {"level": sarif_level(r.level)},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut result = serde_json::json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": sarif_level(f.level),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file.trim_start_matches("./")},
                    "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)}
                }}],
            });
            if let Some(p) = &f.pod_security {
                result["properties"] = serde_json::json!({"podSecurity": p});
            }
            result
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "semble-policy lint", "informationUri": "https://github.com/semble-dev/semble", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results,
        }]
    })
}

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Info => "note",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}
