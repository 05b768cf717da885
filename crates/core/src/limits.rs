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
//! bucket (`limit:<action>:u:<id>` or `limit:<action>:a:<address>`), rewritten in place: the
//! store holds one key per subject that ever acted, never one per window.
//!
//! **Exactness.** The TAT is updated with `wasi:keyvalue/atomics` compare-and-swap, retried on
//! conflict, and each write adds a random tag to the value (the last 8 writers' tags are kept),
//! looked for after the swap: Spin's Redis swap reports success for a transaction its `WATCH`
//! aborted, so the read-back is what proves the write landed. What remains inexact (see `docs/api-decisions.md`):
//! - the very first write of a bucket on Spin's SQLite store overwrites a key created in the
//!   same instant (Spin inserts with `ON CONFLICT DO UPDATE`), so N simultaneous first requests
//!   of one subject can overshoot by at most N − 1, once;
//! - after [`MAX_ATTEMPTS`] lost races in a row the request is admitted uncounted (fail open);
//! - the user and address buckets are two keys, not one transaction: a request the address
//!   bucket refuses has already spent the user's token.
//!
//! **Store down.** Every limit fails open (logged): the limits guard against abuse, and a
//! key-value outage must not take every read and write down with it. Login's failure back-off
//! ([`crate::throttle`]) keeps failing closed, as before.

use crate::api::ApiError;
use crate::ports::Atomics;

/// Lost compare-and-swap races tolerated before a request is admitted uncounted.
pub const MAX_ATTEMPTS: u32 = 32;

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
    if let Some(user) = user.filter(|_| action.per_user()) {
        take(store, &format!("limit:{}:u:{user}", action.name()), limits.user, now_us)
            .map_err(|wait| refusal(action, wait))?;
    }
    if !address.is_empty() {
        take(store, &format!("limit:{}:a:{address}", action.name()), limits.address, now_us)
            .map_err(|wait| refusal(action, wait))?;
    }
    Ok(())
}

fn refusal(action: Action, wait_us: i64) -> Refusal {
    // Rounded up, at least 1 s: a client that waits that long is admitted.
    let secs = ((wait_us.max(1) + 999_999) / 1_000_000) as u64;
    Refusal {
        error: ApiError::new(
            crate::api::RATE_LIMITED,
            format!("{}, try again in {secs} s", action.what()),
        ),
        retry_after_secs: secs,
    }
}

/// One token from the bucket at `key`; `Err(wait)`: refused, the next token is `wait` µs away.
/// A store failure admits (fail open, logged).
fn take(store: &dyn Atomics, key: &str, rule: Rule, now_us: i64) -> Result<(), i64> {
    let t = rule.interval_us();
    let tolerance = t.saturating_mul(rule.burst as i64);
    for _ in 0..MAX_ATTEMPTS {
        let step = (|| -> Result<Step, String> {
            let mut cas = store.cas(key)?;
            let seen = cas.current()?;
            let (tat, tags) = seen.as_deref().and_then(decode).unwrap_or((i64::MIN, Vec::new()));
            let tat = tat.max(now_us);
            let next = tat.saturating_add(t);
            if next - now_us > tolerance {
                return Ok(Step::Refused(next - tolerance - now_us));
            }
            let tag = store.unique();
            if !cas.swap(&encode(next, tag, &tags))? {
                return Ok(Step::Lost);
            }
            // The read-back: Spin's Redis swap cannot report a lost race. Our tag is in the
            // value if our write landed, also after later writers (each keeps the last tags).
            let landed = store
                .get(key)?
                .as_deref()
                .and_then(decode)
                .is_some_and(|(_, tags)| tags.contains(&tag));
            Ok(if landed { Step::Admitted } else { Step::Lost })
        })();
        match step {
            Ok(Step::Admitted) => return Ok(()),
            Ok(Step::Refused(wait)) => return Err(wait),
            Ok(Step::Lost) => continue,
            Err(e) => {
                eprintln!("tikspin: limit {key}: key-value store failed, admitting: {e}");
                return Ok(());
            }
        }
    }
    eprintln!("tikspin: limit {key}: {MAX_ATTEMPTS} lost races in a row, admitting");
    Ok(())
}

enum Step {
    Admitted,
    Refused(i64),
    Lost,
}

/// Writers remembered in a value: a read-back finds its own tag after this many later writes.
const TAGS: usize = 8;

/// The stored value: the TAT (µs, little-endian), then the random tags of the last [`TAGS`]
/// writes, newest first, so the read-back can tell whether ours landed.
fn encode(tat_us: i64, tag: u64, previous: &[u64]) -> Vec<u8> {
    let mut v = tat_us.to_le_bytes().to_vec();
    for t in std::iter::once(&tag).chain(previous).take(TAGS) {
        v.extend_from_slice(&t.to_le_bytes());
    }
    v
}

/// A value this module did not write (a length that is not 8 + 8·k, 1 ≤ k ≤ [`TAGS`]) counts
/// as an empty bucket, and is overwritten by the next admitted request.
fn decode(v: &[u8]) -> Option<(i64, Vec<u64>)> {
    let k = v.len().checked_sub(8)? / 8;
    if v.len() != 8 + 8 * k || !(1..=TAGS).contains(&k) {
        return None;
    }
    let word = |i: usize| <[u8; 8]>::try_from(&v[8 * i..8 * i + 8]).ok();
    let tat = i64::from_le_bytes(word(0)?);
    let tags = (1..=k).map(|i| word(i).map(u64::from_le_bytes)).collect::<Option<_>>()?;
    Some((tat, tags))
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
    fn lost_races_retry_and_a_store_outage_admits() {
        let kv = MemAtomics::default();
        let l = limits(60, 1);
        let t0 = 1_700_000_000 * S;
        kv.lose_next_swaps(3);
        admit(&kv, &l, Some(1), "", t0).unwrap();
        assert!(admit(&kv, &l, Some(1), "", t0).is_err(), "counted once despite the retries");
        // A swap that says yes but did not write (Spin's Redis) is caught by the read-back.
        kv.drop_next_writes(2);
        admit(&kv, &l, Some(2), "", t0).unwrap();
        assert!(admit(&kv, &l, Some(2), "", t0).is_err());
        kv.fail(true);
        for _ in 0..5 {
            admit(&kv, &l, Some(1), "", t0).unwrap();
        }
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
