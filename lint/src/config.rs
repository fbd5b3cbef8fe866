//! `.semble-lint.yaml`: rules turned off or re-levelled, and paths excluded.

use semble_policy::yaml::Node;

use crate::rules::{Level, RULES};
use crate::Finding;

/// `.semble-lint.yaml`: rules turned off or given another severity, and excluded paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Rule → `None` (off) or a severity.
    pub rules: Vec<(String, Option<Level>)>,
    /// Globs of paths to skip.
    pub exclude: Vec<String>,
}

impl Config {
    /// Read a configuration file's text; errors are `file:line:column: message`.
    pub fn parse(file: &str, text: &str) -> Result<Config, crate::LintError> {
        let root = semble_policy::yaml::parse(text).map_err(|e| crate::LintError::at(file, e.pos, e.message))?;
        let at = |n: &Node, m: String| crate::LintError::at(file, n.pos, m);
        let mut cfg = Config::default();
        let Some(map) = root.as_map() else {
            return if root.is_null() {
                Ok(cfg)
            } else {
                Err(at(&root, "expected a mapping with `rules` and `exclude`".into()))
            };
        };
        for (k, v) in map.iter() {
            match k.name.as_str() {
                "rules" => {
                    let Some(rules) = v.as_map() else {
                        return Err(at(v, "`rules` maps rule IDs to off, info, warning or error".into()));
                    };
                    for (id, level) in rules.iter() {
                        if !RULES.iter().any(|r| r.id == id.name) {
                            return Err(crate::LintError::at(
                                file,
                                id.pos,
                                format!("unknown rule `{}`; `semble-policy lint --list-rules` lists them", id.name),
                            ));
                        }
                        let l = match level.scalar_text().as_deref() {
                            Some("off") | Some("false") => None,
                            Some("info") => Some(Level::Info),
                            Some("warning") => Some(Level::Warning),
                            Some("error") => Some(Level::Error),
                            _ => return Err(at(level, format!("`{}` must be off, info, warning or error", id.name))),
                        };
                        cfg.rules.push((id.name.clone(), l));
                    }
                }
                "exclude" => {
                    for g in v.as_seq().unwrap_or(&[]) {
                        cfg.exclude
                            .push(g.scalar_text().ok_or_else(|| at(g, "exclude entries are glob strings".into()))?);
                    }
                }
                other => {
                    return Err(crate::LintError::at(
                        file,
                        k.pos,
                        format!("unknown key `{other}`; expected `rules` or `exclude`"),
                    ))
                }
            }
        }
        Ok(cfg)
    }

    /// Apply rule settings to findings.
    pub fn apply(&self, findings: Vec<Finding>) -> Vec<Finding> {
        findings
            .into_iter()
            .filter_map(|mut f| match self.rules.iter().find(|(id, _)| id == f.rule) {
                Some((_, None)) => None,
                Some((_, Some(l))) => {
                    f.level = *l;
                    Some(f)
                }
                None => Some(f),
            })
            .collect()
    }
}
