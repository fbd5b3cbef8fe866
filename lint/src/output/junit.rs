//! JUnit XML, for GitLab, Jenkins and other test-report readers.

use crate::Finding;

/// JUnit XML: one test case per file, failed when it has findings.
pub fn render(files: &[String], findings: &[Finding]) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
    let failed = files.iter().filter(|f| findings.iter().any(|x| &x.file == *f)).count();
    let mut out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"semble-policy lint\" tests=\"{}\" failures=\"{failed}\">\n", files.len());
    for f in files {
        out.push_str(&format!("  <testcase classname=\"semble-lint\" name=\"{}\">\n", esc(f)));
        for x in findings.iter().filter(|x| &x.file == f) {
            out.push_str(&format!(
                "    <failure type=\"{}\" message=\"{}\">{}:{}:{}: {} ({}) fix: {}</failure>\n",
                x.rule,
                esc(&x.message),
                esc(&x.file),
                x.line,
                x.column,
                esc(&x.message),
                x.level.as_str(),
                esc(x.fix)
            ));
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}
