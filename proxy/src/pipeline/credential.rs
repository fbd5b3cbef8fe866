//! Stage 6, credential: the rule's credential ([`crate::creds`]) is attached to the request as
//! it will leave (hop-by-hop headers gone, origin-form URI, the upstream's `Host`: stage 7
//! changes nothing a signature covers). Every header that could carry a credential of the
//! workload's is removed first. SigV4 hashes the body, so a signed body is read whole, up to
//! `--max-signed-body`; so is a form body stage 4 wants searched for a `_method` field.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};

use super::method_path::{form_override_refused, form_overrides_method, Inspect};
use crate::body::{counted, full};
use crate::budget::{BodySlot, ClientKey};
use crate::deny::{Deny, Reason};
use crate::pool::Body;
use crate::rules::Rule;
use crate::state::Proxy;

/// The body to send, a copy to replay on a fresh connection (when it was read whole), and the
/// credential's name.
#[derive(Debug)]
pub struct Attached {
    /// The body.
    pub body: Body,
    /// The whole body, when it was read (signed, or empty).
    pub replay: Option<Bytes>,
    /// The credential's name, for the log.
    pub credential: Option<String>,
    /// The budget the whole body holds until it has gone upstream.
    pub budget: Option<BodySlot>,
}

/// Attach the rule's credential to `parts`; `authority` is the upstream's `host[:port]`.
#[allow(clippy::too_many_arguments)]
pub async fn attach(
    proxy: &Proxy,
    key: &ClientKey,
    rule: &Rule,
    inspect: Inspect,
    parts: &mut http::request::Parts,
    authority: &str,
    body: Incoming,
    up_count: Arc<AtomicU64>,
) -> Result<Attached, Deny> {
    let cred = match &rule.spec.credential {
        Some(name) => match proxy.creds.load().get(name) {
            Some(c) => Some(c.clone()),
            None => {
                return Err(Deny::new(Reason::CredentialUnavailable, format!("credential `{name}` is not defined")));
            }
        },
        None => None,
    };
    if let Some(c) = &cred {
        c.admits(parts)?;
    }
    let idle = proxy.config.limits.idle_timeout;
    let signed = cred.as_ref().is_some_and(|c| c.needs_body());
    let buffered = signed || inspect.form_body || body.is_end_stream();
    let mut slot = None;
    let (body, replay) = if buffered {
        let limit = proxy.config.limits.max_signed_body;
        if !body.is_end_stream() {
            // Reserve what reading it whole may take, before reading a byte.
            let declared = body.size_hint().exact().unwrap_or(u64::MAX);
            let reserve = declared.min(u64::try_from(limit).unwrap_or(u64::MAX));
            slot = Some(proxy.budgets.body(key, reserve)?);
        }
        let collected = Limited::new(counted(body, up_count, idle), limit).collect().await;
        match collected {
            Ok(c) => {
                let b = c.to_bytes();
                if inspect.form_body && form_overrides_method(&b) {
                    return Err(form_override_refused());
                }
                (full(b.clone()), Some(b))
            }
            Err(e) => {
                return Err(if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    let why = if signed { "signed" } else { "searched for a `_method` field" };
                    Deny::new(
                        Reason::BodyTooLarge,
                        format!("this request's body is {why}, so it is read whole, up to {limit} bytes"),
                    )
                } else {
                    Deny::new(Reason::BodyFailed, format!("cannot read the request body: {e}"))
                });
            }
        }
    } else {
        (counted(body, up_count, idle).boxed_unsync(), None)
    };
    if let Some(c) = &cred {
        c.apply(parts, authority, replay.as_deref().unwrap_or(&[])).await?;
    }
    Ok(Attached { body, replay, credential: cred.map(|c| c.name.clone()), budget: slot })
}
