//! Login brute-force protection, with counters in [`Kv`].
//!
//! Two counters per attempt: one per username (guards an account against a distributed guesser)
//! and one per client address (guards every account against one guesser). Each is a count of
//! failures and the time of the last one:
//!
//! | | per username | per address |
//! |---|---|---|
//! | free failures | 5 | 20 (NAT puts many users behind one address) |
//! | then each attempt waits after the last failure | 1 s, 2 s, 4 s, … doubling | same |
//! | longest wait (lockout) | 15 min | 15 min |
//! | forgotten after | 1 h without a failure | 1 h without a failure |
//! | reset by a successful login | yes | no (one valid account must not reset a guesser) |
//!
//! A refused attempt checks no password and counts nothing. So after 5 failures a guesser gets
//! about 10 more tries over the next ~17 minutes, then one per 15 minutes.
//!
//! Kv has no atomic increment: two failures at the same instant may count once. The count is
//! approximate under concurrency, which is good enough to throttle.
//!
//! A Kv outage fails closed: when a counter cannot be read, the attempt is refused with
//! [`ApiError::login_unavailable`] before any password is checked. Failing open would hand a
//! guesser unlimited, uncounted tries for as long as the store is down (and taking the store
//! down is something an attacker may be able to cause); refusing costs the honest users a retry
//! once the store is back, and nothing else (registration and every token-bearing request do
//! not read these counters). A write that fails after a successful read (the store died in
//! between) is logged and lost: one uncounted failure, not a window.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::ports::Kv;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub free_failures: u32,
    pub first_delay_ms: i64,
    pub max_delay_ms: i64,
    pub forget_after_ms: i64,
}

pub const PER_USERNAME: Policy = Policy {
    free_failures: 5,
    first_delay_ms: 1_000,
    max_delay_ms: 15 * 60 * 1_000,
    forget_after_ms: 60 * 60 * 1_000,
};

pub const PER_ADDRESS: Policy = Policy {
    free_failures: 20,
    ..PER_USERNAME
};

impl Policy {
    /// How long after the last failure the next attempt must wait, given the failures so far.
    pub fn delay_ms(&self, failures: u32) -> i64 {
        if failures < self.free_failures {
            return 0;
        }
        let doublings = (failures - self.free_failures).min(40);
        self.first_delay_ms
            .saturating_mul(1 << doublings)
            .min(self.max_delay_ms)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    failures: u32,
    last_failure_ms: i64,
}

struct Tracked {
    key: String,
    policy: Policy,
    counter: Counter,
}

/// The throttle state of one login attempt: [`LoginThrottle::check`] before verifying the
/// password, then exactly one of `failed` / `succeeded`.
pub struct LoginThrottle<'a> {
    kv: &'a dyn Kv,
    now_ms: i64,
    username: Tracked,
    address: Option<Tracked>,
}

impl<'a> LoginThrottle<'a> {
    /// Reads both counters and refuses with "try again in X s" if either says wait, or with
    /// "temporarily unavailable" if either cannot be read.
    pub fn check(
        kv: &'a dyn Kv,
        now_ms: i64,
        username: &str,
        client_addr: &str,
    ) -> Result<Self, ApiError> {
        // Hashed: usernames are client input of any length and content; keys stay short and
        // plain.
        let username = track(
            kv,
            now_ms,
            format!("throttle:login:user:{}", digest(username)),
            PER_USERNAME,
        )?;
        let address = Some(address_of(client_addr))
            .filter(|a| !a.is_empty())
            .map(|a| track(kv, now_ms, format!("throttle:login:addr:{a}"), PER_ADDRESS))
            .transpose()?;
        let throttle = LoginThrottle {
            kv,
            now_ms,
            username,
            address,
        };
        let wait_ms = throttle
            .trackers()
            .map(|t| t.wait_ms(now_ms))
            .max()
            .unwrap_or(0);
        if wait_ms > 0 {
            // Round up: "try again in 0 s" would invite an immediate, refused retry.
            let secs = (wait_ms + 999) / 1000;
            return Err(ApiError::too_many_attempts(secs as u64));
        }
        Ok(throttle)
    }

    pub fn failed(self) {
        for t in self.trackers() {
            let counter = Counter {
                failures: t.counter.failures + 1,
                last_failure_ms: self.now_ms,
            };
            let value = serde_json::to_vec(&counter).unwrap_or_default();
            if let Err(e) = self.kv.set(&t.key, &value) {
                eprintln!("tikspin: throttle: cannot write {}: {e}", t.key);
            }
        }
    }

    /// Clears the username's failures (only when there were some: a success costs no write).
    pub fn succeeded(self) {
        if self.username.counter.failures > 0 {
            if let Err(e) = self.kv.delete(&self.username.key) {
                eprintln!("tikspin: throttle: cannot clear {}: {e}", self.username.key);
            }
        }
    }

    fn trackers(&self) -> impl Iterator<Item = &Tracked> {
        std::iter::once(&self.username).chain(self.address.as_ref())
    }
}

impl Tracked {
    fn wait_ms(&self, now_ms: i64) -> i64 {
        let ready_at = self
            .counter
            .last_failure_ms
            .saturating_add(self.policy.delay_ms(self.counter.failures));
        (ready_at - now_ms).max(0)
    }
}

/// Reads one counter. A store that cannot answer refuses the attempt (fails closed); a value
/// that does not parse (another release's format, a damaged value) counts as no failures, since
/// it says nothing about this guesser.
fn track(kv: &dyn Kv, now_ms: i64, key: String, policy: Policy) -> Result<Tracked, ApiError> {
    let stored = kv.get(&key).map_err(|e| {
        eprintln!("tikspin: throttle: cannot read {key}, refusing the login: {e}");
        ApiError::login_unavailable()
    })?;
    let counter = stored
        .and_then(|bytes| serde_json::from_slice::<Counter>(&bytes).ok())
        .filter(|c| now_ms - c.last_failure_ms <= policy.forget_after_ms)
        .unwrap_or_default();
    Ok(Tracked {
        key,
        policy,
        counter,
    })
}

fn digest(s: &str) -> String {
    Sha256::digest(s.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The host part of a client address: Spin's `spin-client-addr` carries the port, which changes
/// with every connection and would give a guesser a fresh counter each time.
fn address_of(addr: &str) -> &str {
    let addr = addr.trim();
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.split_once(':') {
        Some((host, port)) if !port.contains(':') => host,
        _ => addr, // a bare IPv6 address, or no port
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let p = PER_USERNAME;
        assert_eq!(p.delay_ms(4), 0);
        assert_eq!(p.delay_ms(5), 1_000);
        assert_eq!(p.delay_ms(6), 2_000);
        assert_eq!(p.delay_ms(14), 512_000);
        assert_eq!(p.delay_ms(15), 900_000);
        assert_eq!(p.delay_ms(u32::MAX), 900_000);
    }

    /// A store that answers nothing: Redis down.
    struct DownKv;

    impl Kv for DownKv {
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>, String> {
            Err("redis: Connection refused".into())
        }
        fn set(&self, _: &str, _: &[u8]) -> Result<(), String> {
            Err("redis: Connection refused".into())
        }
        fn delete(&self, _: &str) -> Result<(), String> {
            Err("redis: Connection refused".into())
        }
    }

    #[test]
    fn an_unreadable_store_refuses_the_attempt() {
        for addr in ["10.0.0.1:5555", ""] {
            let refused = LoginThrottle::check(&DownKv, 1_000, "alice", addr)
                .err()
                .expect("a login whose counters cannot be read is refused");
            assert_eq!(refused, ApiError::login_unavailable());
            assert_eq!(refused.code, crate::api::LOGIN_UNAVAILABLE);
            assert!(refused.msg.contains("temporarily unavailable"));
        }
    }

    #[test]
    fn an_unparsable_counter_counts_as_none() {
        let kv = crate::testing::MemKv::new();
        let key = format!("throttle:login:user:{}", digest("alice"));
        kv.set(&key, b"not json").unwrap();
        assert!(LoginThrottle::check(&kv, 1_000, "alice", "10.0.0.1:1").is_ok());
    }

    #[test]
    fn addresses_lose_their_port() {
        assert_eq!(address_of("10.0.0.1:5555"), "10.0.0.1");
        assert_eq!(address_of("[::1]:5555"), "::1");
        assert_eq!(address_of("fe80::1"), "fe80::1");
        assert_eq!(address_of("10.0.0.1"), "10.0.0.1");
    }
}
