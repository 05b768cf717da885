//! Abuse limits: a token bucket per (action, user) and per (action, client address), kept in
//! the key-value store so every instance, process and replica shares it.
//!
//! | action | what | buckets |
//! |---|---|---|
//! | `register` | `/douyin/user/register/` | per address |
//! | `login` | `/douyin/user/login/` (besides [`crate::throttle`]'s failure back-off) | per address |
//! | `publish` | `/douyin/publish/action/` | per user, per address |
//! | `favorite` | `/douyin/favorite/action/` | per user, per address |
//! | `comment` | `/douyin/comment/action/` (add and delete) | per user, per address |
//! | `follow` | `/douyin/relation/action/` (follow and unfollow) | per user, per address |
//! | `message` | `/douyin/message/action/` | per user, per address |
//! | `read` | every other `/douyin/…` request (feed, lists, profiles, chat) | per address |
//!
//! Each action has a rate (`limit_<action>_per_minute`) and a burst (`limit_<action>_burst`);
//! an address bucket of a per-user action is `limit_address_multiplier` times the user's (many
//! people can share one address behind a NAT). `limits_enabled = false` turns them all off.
//!
//! **The bucket** is GCRA, the token bucket written as one number: the "theoretical arrival
//! time" (TAT) of the next request, in microseconds. A request at `now` is admitted when
//! `max(TAT, now) + T - now <= burst * T` (`T` = 60 s / rate), and the TAT moves to
//! `max(TAT, now) + T`. So `burst` requests pass at once, then one every `T`; a refused request
//! changes nothing and learns exactly when the next one will pass (`Retry-After`). One key per
//! bucket (`limit:<action>:u:<id>` or `limit:<action>:a:<address>`), moved forward in place:
//! the store holds one key per subject that ever acted, never one per window.
//!
//! **One atomic write per bucket.** The TAT only ever moves forward, so it is kept with
//! `wasi:keyvalue/atomics.increment`: a read of the TAT, then one increment by
//! `max(TAT, now) - TAT + T`, whose answer (the TAT with every concurrent request's step in it)
//! decides. Past the limit, the increment is taken back and the request refused. An earlier
//! design swapped the TAT with compare-and-swap and read it back; at 64 concurrent requests
//! on one address its lost races cost more than the requests (issue 19's benchmark).
//!
//! **Exactness.** Increments are atomic on both of Spin's stores (SQLite: one transaction
//! under the store's lock; Redis: `INCRBY`), so admissions never exceed the limit, across
//! instances, processes and replicas. The errors are all on the strict side:
//! - concurrent requests of an idle subject each add the idle gap they saw, so the TAT can
//!   move further than one step each; a request that finds itself past the limit that way
//!   takes its step back and looks once more ([`ATTEMPTS`]), but one that loses twice is
//!   refused although the burst had room;
//! - between a refused request's increment and its take-back, others see the TAT too far on;
//! - the user and the address buckets are two keys: the user's step is taken back when the
//!   address refuses, but a concurrent request may see it in between.
//!
//! **Store down.** Every limit fails open (logged): the limits guard against abuse, and a
//! key-value outage must not take every read and write down with it. Login's failure back-off
//! ([`crate::throttle`]) keeps failing closed, as before.

use crate::api::ApiError;
use crate::ports::Atomics;


#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Register,
    Login,
    Publish,
    Favorite,
    Comment,
    Follow,
    Message,
    Read,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Register,
        Action::Login,
        Action::Publish,
        Action::Favorite,
        Action::Comment,
        Action::Follow,
        Action::Message,
        Action::Read,
    ];

    /// The action a request is, by its normalised path (no trailing slash); `None`: not
    /// limited (media bytes, whose players send many Range requests, and non-API paths).
    pub fn of_path(path: &str) -> Option<Action> {
        Some(match path {
            "/douyin/user/register" => Action::Register,
            "/douyin/user/login" => Action::Login,
            "/douyin/publish/action" => Action::Publish,
            "/douyin/favorite/action" => Action::Favorite,
            "/douyin/comment/action" => Action::Comment,
            "/douyin/relation/action" => Action::Follow,
            "/douyin/message/action" => Action::Message,
            p if p.starts_with("/douyin/") => Action::Read,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Login => "login",
            Action::Publish => "publish",
            Action::Favorite => "favorite",
            Action::Comment => "comment",
            Action::Follow => "follow",
            Action::Message => "message",
            Action::Read => "read",
        }
    }

    /// What the refusal says was too much.
    fn what(self) -> &'static str {
        match self {
            Action::Register => "too many sign-ups from your network",
            Action::Login => "too many logins from your network",
            Action::Publish => "too many uploads",
            Action::Favorite => "too many likes",
            Action::Comment => "too many comments",
            Action::Follow => "too many follows",
            Action::Message => "too many messages",
            Action::Read => "too many requests",
        }
    }

    /// Whether the action has a per-user bucket (it needs a token).
    fn per_user(self) -> bool {
        !matches!(self, Action::Register | Action::Login | Action::Read)
    }

    /// `(per minute, burst)` when no variable says otherwise.
    pub fn default_rule(self) -> Rule {
        let (per_minute, burst) = match self {
            Action::Register => (10, 10),
            Action::Login => (30, 20),
            Action::Publish => (2, 5),
            Action::Favorite => (60, 30),
            Action::Comment => (12, 6),
            Action::Follow => (30, 20),
            Action::Message => (30, 20),
            Action::Read => (300, 200),
        };
        Rule { per_minute, burst }
    }
}

pub const DEFAULT_ADDRESS_MULTIPLIER: u64 = 4;

/// A bucket's rate and burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub per_minute: u64,
    pub burst: u64,
}

impl Rule {
    /// Microseconds between two tokens.
    fn interval_us(self) -> i64 {
        (60_000_000 / self.per_minute.max(1)).max(1) as i64
    }

    fn times(self, k: u64) -> Rule {
        Rule {
            per_minute: self.per_minute.saturating_mul(k),
            burst: self.burst.saturating_mul(k),
        }
    }
}

/// The limits of one action, read from the variables: `None` when `limits_enabled` is false.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub action: Action,
    pub user: Rule,
    pub address: Rule,
}

impl Limits {
    /// Reads `limits_enabled` and the action's variables through `var` (an unset or empty one
    /// takes its default). A value that is not a whole number ≥ 1 is an error naming the
    /// variable, so a typo in a deployment shows in every answer instead of silently
    /// disabling the limit.
    pub fn load(action: Action, var: impl Fn(&str) -> String) -> Result<Option<Limits>, ApiError> {
        match var("limits_enabled").trim().to_ascii_lowercase().as_str() {
            "" | "true" | "1" | "yes" | "on" => {}
            "false" | "0" | "no" | "off" => return Ok(None),
            other => return Err(misconfigured("limits_enabled", other, "true or false")),
        }
        let number = |name: String, default: u64| -> Result<u64, ApiError> {
            let raw = var(&name);
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(default);
            }
            match raw.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(misconfigured(&name, raw, "a whole number of at least 1")),
            }
        };
        let default = action.default_rule();
        let user = Rule {
            per_minute: number(format!("limit_{}_per_minute", action.name()), default.per_minute)?,
            burst: number(format!("limit_{}_burst", action.name()), default.burst)?,
        };
        let address = if action.per_user() {
            user.times(number(
                "limit_address_multiplier".into(),
                DEFAULT_ADDRESS_MULTIPLIER,
            )?)
        } else {
            user
        };
        Ok(Some(Limits {
            action,
            user,
            address,
        }))
    }
}

fn misconfigured(name: &str, value: &str, expected: &str) -> ApiError {
    let shown: String = value.chars().take(40).collect();
    ApiError::new(
        crate::api::MISCONFIGURED,
        format!("server misconfigured: variable {name} is {shown:?}, expected {expected}"),
    )
}

/// A refused request: the envelope's error and the `Retry-After` seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error: ApiError,
    pub retry_after_secs: u64,
}

/// Admits or refuses one request of `limits.action` by `user` (when the action has a per-user
/// bucket and the caller has a valid token) from `address` (empty: unknown, not limited by
/// address). `now_us`: the request's clock, microseconds.
pub fn admit(
    store: &dyn Atomics,
    limits: &Limits,
    user: Option<i64>,
    address: &str,
    now_us: i64,
) -> Result<(), Refusal> {
    let action = limits.action;
    let mut taken = None;
    if let Some(user) = user.filter(|_| action.per_user()) {
        let key = format!("limit:{}:u:{user}", action.name());
        match take(store, &key, limits.user, now_us) {
            Ok(step) => taken = step.map(|step| (key, step)),
            Err(wait) => return Err(refusal(action, wait)),
        }
    }
    if !address.is_empty() {
        let key = format!("limit:{}:a:{address}", action.name());
        if let Err(wait) = take(store, &key, limits.address, now_us) {
            if let Some((key, step)) = taken {
                give_back(store, &key, step);
            }
            return Err(refusal(action, wait));
        }
    }
    Ok(())
}

fn refusal(action: Action, wait_us: i64) -> Refusal {
    let secs = ((wait_us.max(1) + 999_999) / 1_000_000) as u64;
    Refusal {
        error: ApiError::new(
            crate::api::RATE_LIMITED,
            format!("{}, try again in {secs} s", action.what()),
        ),
        retry_after_secs: secs,
    }
}

/// One request from `key`'s bucket: `Ok(Some(step))`, the amount the TAT moved (to give back
/// if another bucket refuses); `Ok(None)` admitted uncounted (the store failed); `Err(wait)`
/// refused, `wait` µs before the next request can pass.
fn take(store: &dyn Atomics, key: &str, rule: Rule, now_us: i64) -> Result<Option<i64>, i64> {
    let t = rule.interval_us();
    let tolerance = t.saturating_mul(rule.burst as i64);
    let mut refused = 0;
    for _ in 0..ATTEMPTS {
        let tat = match store.get(key) {
            Ok(v) => v.as_deref().map_or(Some(0), decode),
            Err(e) => return Ok(fail_open(key, &e)),
        };
        let Some(tat) = tat else {
            return Ok(fail_open(key, "the value is not a number"));
        };
        let base = tat.max(now_us);
        if base + t - now_us > tolerance {
            // Refused on what was read: nothing written.
            return Err(base + t - tolerance - now_us);
        }
        let step = base - tat + t;
        let moved = match store.increment(key, step) {
            Ok(v) => v,
            Err(e) => return Ok(fail_open(key, &e)),
        };
        if moved - now_us <= tolerance {
            return Ok(Some(step));
        }
        // Concurrent requests moved the TAT first: they took the rest of the burst, or, with
        // the bucket idle, each added the idle gap it saw. Take the step back and look again.
        give_back(store, key, step);
        refused = moved - tolerance - now_us;
    }
    Err(refused)
}

/// Reads and increments one bucket gets before it refuses: a second look tells a burst that
/// concurrent requests really spent from idle gaps they each added.
const ATTEMPTS: u32 = 2;

fn give_back(store: &dyn Atomics, key: &str, step: i64) {
    if let Err(e) = store.increment(key, -step) {
        eprintln!("tikspin: limit {key}: could not take back a refused step: {e}");
    }
}

fn fail_open(key: &str, why: &str) -> Option<i64> {
    eprintln!("tikspin: limit {key}: key-value store failed, admitting: {why}");
    None
}

/// An incremented value as the store keeps it: Spin's SQLite store writes 8 bytes little-endian,
/// Redis decimal text (a TAT in microseconds has 16 digits, so the two never meet).
fn decode(v: &[u8]) -> Option<i64> {
    match <[u8; 8]>::try_from(v) {
        Ok(bytes) => Some(i64::from_le_bytes(bytes)),
        Err(_) => std::str::from_utf8(v).ok()?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemAtomics;

    fn limits(per_minute: u64, burst: u64) -> Limits {
        let rule = Rule { per_minute, burst };
        Limits {
            action: Action::Comment,
            user: rule,
            address: rule.times(4),
        }
    }

    const S: i64 = 1_000_000;

    #[test]
    fn a_burst_passes_then_one_per_interval() {
        let kv = MemAtomics::default();
        let l = limits(6, 3); // one per 10 s
        let t0 = 1_700_000_000 * S;
        for _ in 0..3 {
            admit(&kv, &l, Some(1), "", t0).unwrap();
        }
        let r = admit(&kv, &l, Some(1), "", t0).unwrap_err();
        assert_eq!(r.retry_after_secs, 10);
        assert_eq!(r.error.code, crate::api::RATE_LIMITED);
        assert_eq!(r.error.msg, "too many comments, try again in 10 s");
        // A refusal spends nothing: 9.9 s later still refused (1 s), at 10 s admitted once.
        assert_eq!(admit(&kv, &l, Some(1), "", t0 + 9 * S + S / 2).unwrap_err().retry_after_secs, 1);
        admit(&kv, &l, Some(1), "", t0 + 10 * S).unwrap();
        assert!(admit(&kv, &l, Some(1), "", t0 + 10 * S).is_err());
        // Idle for long: the burst is back, not more.
        let later = t0 + 3600 * S;
        for _ in 0..3 {
            admit(&kv, &l, Some(1), "", later).unwrap();
        }
        assert!(admit(&kv, &l, Some(1), "", later).is_err());
    }

    #[test]
    fn users_do_not_share_and_the_address_bucket_is_wider() {
        let kv = MemAtomics::default();
        let l = limits(60, 2);
        let t0 = 1_700_000_000 * S;
        for user in 1..=4 {
            admit(&kv, &l, Some(user), "10.0.0.1", t0).unwrap();
            admit(&kv, &l, Some(user), "10.0.0.1", t0).unwrap();
            assert!(admit(&kv, &l, Some(user), "10.0.0.2", t0).is_err(), "user {user}");
        }
        // Eight from 10.0.0.1 spent its 2 × 4; a fifth user is refused by the address.
        assert!(admit(&kv, &l, Some(5), "10.0.0.1", t0).is_err());
        assert!(admit(&kv, &l, Some(6), "10.0.0.3", t0).is_ok());
    }

    #[test]
    fn concurrent_steps_are_taken_back_past_the_limit_and_an_outage_admits() {
        let kv = MemAtomics::default();
        let l = limits(60, 1);
        let t0 = 1_700_000_000 * S;
        // Another request takes the only token between this one's read and its increment:
        // the increment's answer refuses, the step is taken back, and the second look refuses
        // without writing.
        kv.step_before_next_increment("limit:comment:u:1", t0 + S);
        assert!(admit(&kv, &l, Some(1), "", t0).is_err());
        assert_eq!(kv.value("limit:comment:u:1"), Some(t0 + S));
        // Another request of an idle bucket adds the idle gap it saw, as this one does: this
        // one finds the TAT past the limit, gives back, looks again and is admitted.
        kv.step_before_next_increment("limit:comment:u:7", t0 + S);
        admit(&kv, &l, Some(7), "", t0 + 10 * S).unwrap();
        assert_eq!(kv.value("limit:comment:u:7"), Some(t0 + 11 * S));
        // The address refuses: the user's step is given back.
        let l = Limits { address: Rule { per_minute: 60, burst: 1 }, user: Rule { per_minute: 60, burst: 5 }, ..l };
        admit(&kv, &l, Some(2), "10.0.0.9", t0).unwrap();
        let before = kv.value("limit:comment:u:3");
        assert!(admit(&kv, &l, Some(3), "10.0.0.9", t0).is_err());
        assert_eq!(kv.value("limit:comment:u:3"), before.or(Some(0)));
        kv.fail(true);
        for _ in 0..5 {
            admit(&kv, &l, Some(1), "", t0).unwrap();
        }
    }

    #[test]
    fn redis_text_and_sqlite_bytes_both_decode() {
        assert_eq!(decode(&1_700_000_000_000_000i64.to_le_bytes()), Some(1_700_000_000_000_000));
        assert_eq!(decode(b"1700000000000000"), Some(1_700_000_000_000_000));
        assert_eq!(decode(b"x"), None);
    }

    #[test]
    fn variables_set_the_rules_and_bad_ones_name_themselves() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            }
        };
        let l = Limits::load(Action::Comment, vars(&[])).unwrap().unwrap();
        assert_eq!(l.user, Action::Comment.default_rule());
        assert_eq!(l.address, Action::Comment.default_rule().times(DEFAULT_ADDRESS_MULTIPLIER));
        let l = Limits::load(
            Action::Read,
            vars(&[("limit_read_per_minute", " 7 "), ("limit_read_burst", "3")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.address, Rule { per_minute: 7, burst: 3 });
        assert_eq!(Limits::load(Action::Read, vars(&[("limits_enabled", "false")])).unwrap(), None);
        for (name, value) in [
            ("limit_comment_burst", "lots"),
            ("limit_comment_per_minute", "0"),
            ("limit_comment_per_minute", "-5"),
            ("limit_address_multiplier", "2.5"),
            ("limits_enabled", "maybe"),
        ] {
            let pairs: &'static [(&str, &str)] =
                Box::leak(vec![(name, value)].into_boxed_slice());
            let e = Limits::load(Action::Comment, vars(pairs)).unwrap_err();
            assert_eq!(e.code, crate::api::MISCONFIGURED);
            assert!(e.msg.contains(name) && e.msg.contains(value), "{}", e.msg);
        }
    }

    #[test]
    fn paths_map_to_actions() {
        assert_eq!(Action::of_path("/douyin/comment/action"), Some(Action::Comment));
        assert_eq!(Action::of_path("/douyin/feed"), Some(Action::Read));
        assert_eq!(Action::of_path("/media/v/1"), None);
        assert_eq!(Action::of_path("/"), None);
    }
}
