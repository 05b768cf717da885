//! The abuse limits ([`tikspin_core::limits`]) on Spin: the [`Atomics`] port on
//! `wasi:keyvalue/atomics` (store `default`, the one `key_value_stores` grants), the limit
//! variables, and which address a request counts against.
//!
//! Spin has no start hook for a component, so a limit variable that is not a number cannot
//! stop `spin up`: every limited request of the component answers `status_code` 1502 naming
//! the variable instead (the host does the same; neither crashes nor answers 5xx).

use std::cell::OnceCell;

use spin_sdk::wit::wasi::keyvalue::{atomics, store};
use tikspin_core::api::ApiError;
use tikspin_core::limits::{self, Action, Limits};
use tikspin_core::ports::Atomics;
use tikspin_core::{Env, Params};

use crate::config::var;
use crate::http::{json, JsonResponse, RequestHead};

/// A refused (or misconfigured) request: the envelope's error, and `Retry-After` seconds for a
/// limit.
pub struct Refused {
    pub error: ApiError,
    pub retry_after: Option<u64>,
}

impl Refused {
    /// The answer: HTTP 200 with the envelope shaped by the endpoint's payload `P`, and
    /// `Retry-After` for a limit.
    pub fn response<P: tikspin_core::api::Payload>(self) -> JsonResponse {
        JsonResponse {
            retry_after: self.retry_after,
            ..json(200, tikspin_core::Reply::error::<P>(self.error))
        }
    }
}

/// The address a request's limits count against. The one place that decides it: the real
/// client behind trusted proxies (`client_ip.rs`, the `trusted_proxies` variable).
pub fn client_key(head: &RequestHead) -> String {
    crate::client_ip::client_ip(head)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

/// Checks the request's limits, the user taken from its token when valid (a request without
/// one counts against its address only; the service refuses it anyway if it needs one). With the
/// limits off this costs one variable read: the token is verified only when they are on.
pub fn check_request(head: &RequestHead, env: &Env<'_>, params: &Params) -> Result<(), Refused> {
    let Some(action) = Action::of_path(&head.path) else {
        return Ok(());
    };
    let Some(limits) = load(action)? else {
        return Ok(());
    };
    admit(&limits, head, env, tikspin_core::auth::viewer(env, params))
}

/// Checks `action`'s limits for `user` (if any) and the request's address.
pub fn check(
    action: Action,
    head: &RequestHead,
    env: &Env<'_>,
    user: Option<i64>,
) -> Result<(), Refused> {
    match load(action)? {
        Some(limits) => admit(&limits, head, env, user),
        None => Ok(()),
    }
}

/// `action`'s limits from the variables; `None` when they are switched off.
fn load(action: Action) -> Result<Option<Limits>, Refused> {
    Limits::load(action, var).map_err(|error| Refused {
        error,
        retry_after: None,
    })
}

fn admit(
    limits: &Limits,
    head: &RequestHead,
    env: &Env<'_>,
    user: Option<i64>,
) -> Result<(), Refused> {
    let store = SpinAtomics::default();
    limits::admit(
        &store,
        limits,
        user,
        &client_key(head),
        env.now_ms.saturating_mul(1000),
    )
    .map_err(|r| Refused {
        error: r.error,
        retry_after: Some(r.retry_after_secs),
    })
}

/// The store `default` through `wasi:keyvalue`, opened on first use.
#[derive(Default)]
pub struct SpinAtomics(OnceCell<store::Bucket>);

impl SpinAtomics {
    fn bucket(&self) -> Result<&store::Bucket, String> {
        if let Some(b) = self.0.get() {
            return Ok(b);
        }
        let b = store::open("default").map_err(|e| format!("key-value open: {e:?}"))?;
        Ok(self.0.get_or_init(|| b))
    }
}

impl Atomics for SpinAtomics {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.bucket()?.get(key).map_err(|e| format!("{e:?}"))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        atomics::increment(self.bucket()?, key, delta).map_err(|e| format!("{e:?}"))
    }
}
