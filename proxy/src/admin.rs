//! The admin API, on its own listener (a Unix socket or a loopback port), never on the client
//! listeners:
//!
//! | request | token | answer |
//! |---|---|---|
//! | `GET /healthz` | no | `200 ok` while the process serves; `503` while the decision log is stuck (standard error not read for `--log-stall-timeout`) |
//! | `GET /readyz` | no | `200 ready`, or `503` naming what is missing (a credential that cannot be produced, no DNS) |
//! | `GET /metrics` | no | Prometheus/OpenMetrics text |
//! | `GET /rules` | yes | the rules in force, as a `ProxyRules` JSON document |
//! | `PUT /rules` | yes | replace the rules (YAML or JSON, `ProxyRules` or `SandboxPolicy`); validated first, swapped atomically; on any error `400` with every problem and the previous rules stay |
//!
//! The token is `Authorization: Bearer <token>` with the content of `--admin-token-file`.
//! Without that file `/rules` answers `403`: rules never change through an unauthenticated API.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::deny::{Deny, Reason};
use crate::log::Line;
use crate::pool::Body;
use crate::rules::RuleSet;
use crate::state::Proxy;

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())).map_err(|never| match never {}).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Compare without an early exit, so the time taken says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(proxy: &Proxy, req: &Request<Incoming>) -> Result<(), Box<Response<Body>>> {
    let Some(token) = &proxy.admin_token else {
        return Err(Box::new(text(
            StatusCode::FORBIDDEN,
            "semble-proxy: /rules is disabled: start the proxy with --admin-token-file\n",
        )));
    };
    let given = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if same(g.trim().as_bytes(), token.expose().as_bytes()) => Ok(()),
        _ => {
            let mut r = text(StatusCode::UNAUTHORIZED, "semble-proxy: /rules needs `Authorization: Bearer <token>`\n");
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Err(Box::new(r))
        }
    }
}

/// Check that every credential the rules name exists.
pub fn check_credentials(proxy: &Proxy, rules: &RuleSet) -> Result<(), String> {
    let missing = rules.missing_credentials(&proxy.creds.load());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("\n"))
    }
}

/// Handle one admin request.
pub async fn handle(proxy: Arc<Proxy>, client: String, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let resp = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => match proxy.log.health() {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ok: {why}\n")),
        },
        (Method::GET, "/readyz") => match readiness(&proxy).await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
        },
        (Method::GET, "/metrics") => {
            let mut r = text(StatusCode::OK, proxy.metrics.render());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            r
        }
        (Method::GET, "/rules") => match authorized(&proxy, &req) {
            Err(r) => refused(&proxy, &client, "GET", *r),
            Ok(()) => {
                let rs = proxy.rules.load();
                let specs: Vec<_> = rs.rules.iter().map(|r| r.spec.clone()).collect();
                let file = semble_policy::compile::proxy::rules_from(&rs.name, &specs);
                let mut r = text(StatusCode::OK, serde_json::to_string_pretty(&file).unwrap_or_default() + "\n");
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
        },
        (Method::PUT, "/rules") => match authorized(&proxy, &req) {
            Err(r) => refused(&proxy, &client, "PUT", *r),
            Ok(()) => put_rules(&proxy, req).await,
        },
        (_, "/healthz" | "/readyz" | "/metrics" | "/rules") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found: the admin API has /healthz, /readyz, /metrics and /rules\n"),
    };
    Ok(resp)
}

fn refused(proxy: &Proxy, client: &str, method: &str, r: Response<Body>) -> Response<Body> {
    let mut line = Line::new(client, "admin");
    line.method = method.into();
    line.path = "/rules".into();
    let reason = if r.status() == StatusCode::UNAUTHORIZED { Reason::AdminUnauthorized } else { Reason::AdminDisabled };
    line.refusal(&Deny::new(reason, "/rules refused"));
    proxy.finish(&line);
    r
}

async fn put_rules(proxy: &Proxy, req: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("semble-proxy: cannot read the rules: {e}\n")),
    };
    let fail = |msg: String| {
        proxy.metrics.reload_failures.inc();
        proxy.log.event("rules_rejected", serde_json::json!({"source": "admin API", "errors": msg}));
        text(StatusCode::BAD_REQUEST, format!("{msg}\nthe previous rules stay in force\n"))
    };
    let Ok(src) = std::str::from_utf8(&body) else {
        return fail("PUT /rules: the body is not UTF-8".into());
    };
    let parsed = match semble_policy::parse_rules(src) {
        Ok(p) => p,
        Err(e) => {
            return fail(e.diagnostics.iter().map(|d| d.render(Some("PUT /rules"))).collect::<Vec<_>>().join("\n"));
        }
    };
    let set = RuleSet::new(parsed, "admin API");
    if let Err(e) = check_credentials(proxy, &set) {
        return fail(format!("PUT /rules: {e}"));
    }
    let n = set.rules.len();
    proxy.warn_uncovered(&set, "admin API");
    proxy.rules.store(Arc::new(set));
    proxy.log.event("rules_applied", serde_json::json!({"source": "admin API", "rules": n}));
    text(StatusCode::OK, format!("applied {n} rule(s)\n"))
}

/// Ready when every credential the rules name can be produced now.
pub async fn readiness(proxy: &Proxy) -> Result<(), String> {
    let rules = proxy.rules.load_full();
    let creds = proxy.creds.load_full();
    let mut problems = Vec::new();
    for (_, name) in rules.credentials() {
        match creds.get(name) {
            Some(c) => {
                if let Err(d) = c.check().await {
                    problems.push(d.detail);
                }
            }
            None => problems.push(format!("credential `{name}` is not defined")),
        }
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
