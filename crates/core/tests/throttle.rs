mod common;

use common::World;
use tikspin_core::api;
use tikspin_core::throttle::{PER_ADDRESS, PER_USERNAME};

#[test]
fn login_is_throttled_after_repeated_failures_and_reset_by_success() {
    let mut w = World::new();
    w.register("henry", "secret1").unwrap();
    for _ in 0..PER_USERNAME.free_failures {
        assert_eq!(
            w.login("henry", "wrong-pw").unwrap_err().code,
            api::WRONG_CREDENTIALS
        );
    }
    // Even the right password is refused while throttled: the refusal must not be an oracle.
    let refused = w.login("henry", "secret1").unwrap_err();
    assert_eq!(refused.code, api::TOO_MANY_ATTEMPTS);
    assert_eq!(refused.msg, "too many attempts, try again in 1 s");

    // From another address the username is still throttled.
    w.addr = "198.51.100.1:1".into();
    assert_eq!(
        w.login("henry", "secret1").unwrap_err().code,
        api::TOO_MANY_ATTEMPTS
    );

    w.now_ms += 1_000;
    assert_eq!(
        w.login("henry", "wrong-pw").unwrap_err().code,
        api::WRONG_CREDENTIALS
    );
    let refused = w.login("henry", "secret1").unwrap_err();
    assert_eq!(
        refused.msg, "too many attempts, try again in 2 s",
        "the wait doubles"
    );

    w.now_ms += 2_000;
    assert!(w.login("henry", "secret1").is_ok());
    // The success cleared the username's failures: a failure now is free again.
    assert_eq!(
        w.login("henry", "wrong-pw").unwrap_err().code,
        api::WRONG_CREDENTIALS
    );
    assert!(w.login("henry", "secret1").is_ok());
}

#[test]
fn failures_are_forgotten_after_a_quiet_hour() {
    let mut w = World::new();
    w.register("iris", "secret1").unwrap();
    for _ in 0..PER_USERNAME.free_failures {
        w.login("iris", "wrong-pw").unwrap_err();
    }
    w.now_ms += PER_USERNAME.forget_after_ms + 1;
    for _ in 0..PER_USERNAME.free_failures {
        assert_eq!(
            w.login("iris", "wrong-pw").unwrap_err().code,
            api::WRONG_CREDENTIALS
        );
    }
    assert_eq!(
        w.login("iris", "secret1").unwrap_err().code,
        api::TOO_MANY_ATTEMPTS
    );
}

#[test]
fn one_address_guessing_many_usernames_is_throttled() {
    let mut w = World::new();
    w.register("jack", "secret1").unwrap();
    for i in 0..PER_ADDRESS.free_failures {
        // A new source port per connection must not give a fresh counter.
        w.addr = format!("203.0.113.9:{}", 50_000 + i);
        assert_eq!(
            w.login(&format!("user{i}"), "guess-pw").unwrap_err().code,
            api::WRONG_CREDENTIALS
        );
    }
    assert_eq!(
        w.login("jack", "secret1").unwrap_err().code,
        api::TOO_MANY_ATTEMPTS
    );
    w.addr = "198.51.100.2:1".into();
    assert!(
        w.login("jack", "secret1").is_ok(),
        "other addresses are unaffected"
    );
}
