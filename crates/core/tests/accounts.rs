mod common;

use std::sync::{Arc, Barrier};

use common::{params, World, BASE, NOW, SECRET};
use serde_json::{json, Value};
use tikspin_core::accounts::{self, Profile, Session};
use tikspin_core::api::{self, Reply};
use tikspin_core::auth::{self, jwt};
use tikspin_core::testing::SqliteSql;
use tikspin_core::ApiError;

fn body(reply: Reply) -> Value {
    serde_json::from_slice(reply.body()).unwrap()
}

#[test]
fn register_then_login_then_profile() {
    let w = World::new(); // unmigrated: register must migrate by itself
    let session = w.register("小明😀", "secret1").unwrap();
    assert!(session.user_id > 0);
    assert_eq!(
        jwt::verify(SECRET, &session.token, NOW),
        Ok(session.user_id)
    );

    let login = w.login("小明😀", "secret1").unwrap();
    assert_eq!(login.user_id, session.user_id);
    assert!(!login.token.is_empty());

    let reply = Reply::from_result(accounts::profile(
        &w.env(),
        &params(&[("token", &login.token)]),
    ));
    let id = session.user_id;
    assert_eq!(
        body(reply),
        json!({
            "status_code": 0, "status_msg": "success",
            "user": {
                "id": id, "name": "小明😀", "follow_count": 0, "follower_count": 0, "is_follow": false,
                "avatar": format!("{BASE}/media/avatar/{id}.png"),
                "background_image": format!("{BASE}/media/background/{id}.png"),
                "signature": "", "total_favorited": 0, "work_count": 0, "favorite_count": 0
            }
        })
    );
}

#[test]
fn register_reply_carries_user_id_and_token_even_on_failure() {
    let w = World::new();
    let ok = body(Reply::from_result(w.register("alice", "secret1")));
    assert_eq!(ok["status_code"], 0);
    assert!(ok["user_id"].as_i64().unwrap() > 0);
    assert!(!ok["token"].as_str().unwrap().is_empty());

    let dup = w.register("alice", "another1");
    assert_eq!(dup.as_ref().unwrap_err().code, api::USERNAME_TAKEN);
    let dup = body(Reply::from_result(dup));
    assert_eq!(dup["user_id"], 0);
    assert_eq!(dup["token"], "");
    assert_ne!(dup["status_code"], 0);

    // Byte-wise uniqueness: another case is another user.
    assert!(w.register("Alice", "secret1").is_ok());
}

#[test]
fn register_refuses_bad_input() {
    let w = World::new();
    let long_name = "a".repeat(33);
    let long_password = "x".repeat(33);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("password", "secret1")], "username"),
        (vec![("username", ""), ("password", "secret1")], "username"),
        (vec![("username", "bob")], "password"),
        (vec![("username", "bob"), ("password", "")], "password"),
        (
            vec![("username", &long_name), ("password", "secret1")],
            "username must be 1-32",
        ),
        (
            vec![("username", "bob"), ("password", "12345")],
            "password must be 6-32",
        ),
        (
            vec![("username", "bob"), ("password", &long_password)],
            "password must be 6-32",
        ),
        (
            vec![("username", " bob"), ("password", "secret1")],
            "whitespace",
        ),
        (
            vec![("username", "b\nob"), ("password", "secret1")],
            "control",
        ),
    ];
    for (pairs, needle) in cases {
        let result = accounts::register(&w.env(), &params(&pairs));
        let err = result.clone().unwrap_err();
        assert_eq!(err.code, api::BAD_PARAMETER, "{pairs:?}");
        assert!(err.msg.contains(needle), "{pairs:?}: {}", err.msg);
        let reply = body(Reply::from_result(result));
        assert_eq!(
            (reply["user_id"].clone(), reply["token"].clone()),
            (json!(0), json!(""))
        );
    }
    // Characters, not bytes: 32 CJK characters (96 bytes) are a valid name, 6 CJK a valid password.
    assert!(w.register(&"字".repeat(32), "密码密码密码").is_ok());
    assert!(w.register(&"字".repeat(33), "secret1").is_err());
    assert!(w.register("exactly32", &"p".repeat(32)).is_ok());
}

#[test]
fn concurrent_registrations_of_one_name_make_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let barrier = Arc::new(Barrier::new(2));
    // A fresh file: both requests also race to migrate it.
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let w = World::with_sql(SqliteSql::open(&path).unwrap());
                barrier.wait();
                w.register("same-name", "secret1")
            })
        })
        .collect();
    let results: Vec<Result<Session, ApiError>> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code == api::USERNAME_TAKEN))
        .count();
    assert_eq!((ok, taken), (1, 1), "{results:?}");
    let sql = SqliteSql::open(&path).unwrap();
    // Ordinary users: the migration made the system user too.
    let users = tikspin_core::Sql::query(
        &sql,
        "SELECT COUNT(*) FROM users WHERE system_role IS NULL",
        &[],
    )
    .unwrap()
    .scalar_i64()
    .unwrap();
    assert_eq!(users, 1);
}

#[test]
fn login_gives_one_message_for_unknown_user_and_wrong_password() {
    let w = World::new();
    w.register("carol", "secret1").unwrap();
    let wrong_password = w.login("carol", "secret2").unwrap_err();
    let unknown_user = w.login("nobody", "secret1").unwrap_err();
    assert_eq!(wrong_password, unknown_user);
    assert_eq!(wrong_password.code, api::WRONG_CREDENTIALS);
    let reply = body(Reply::from_result(w.login("carol", "nope123")));
    assert_eq!(
        (reply["user_id"].clone(), reply["token"].clone()),
        (json!(0), json!(""))
    );
    assert_eq!(w.login("", "secret1").unwrap_err().code, api::BAD_PARAMETER);
    assert_eq!(
        accounts::login(&w.env(), &params(&[("username", "carol")]))
            .unwrap_err()
            .code,
        api::BAD_PARAMETER
    );
}

#[test]
fn profile_of_another_user_and_bad_user_ids() {
    let w = World::new();
    let me = w.register("dave", "secret1").unwrap();
    let other = w.register("erin", "secret1").unwrap();
    let get = |pairs: &[(&str, &str)]| accounts::profile(&w.env(), &params(pairs));

    let other_id = other.user_id.to_string();
    let seen = get(&[("token", &me.token), ("user_id", &other_id)])
        .unwrap()
        .user
        .unwrap();
    assert_eq!((seen.id, seen.name.as_str()), (other.user_id, "erin"));
    let own = get(&[("token", &me.token), ("user_id", "0")])
        .unwrap()
        .user
        .unwrap();
    assert_eq!(own.id, me.user_id);

    for bad in ["abc", "-1", "1.5", "9007199254740993"] {
        let err = get(&[("token", &me.token), ("user_id", bad)]).unwrap_err();
        assert_eq!(err.code, api::BAD_PARAMETER, "{bad}");
        assert!(err.msg.contains("user_id"), "{bad}: {}", err.msg);
    }
    let missing = get(&[("token", &me.token), ("user_id", "424242")]);
    assert_eq!(missing.clone().unwrap_err().code, api::NOT_FOUND);
    assert_eq!(
        body(Reply::from_result::<Profile>(missing)),
        json!({"status_code": api::NOT_FOUND, "status_msg": "user not found"})
    );
    assert_eq!(
        get(&[("user_id", &other_id)]).unwrap_err().code,
        api::AUTH_REQUIRED
    );
}

#[test]
fn bad_tokens_are_refused() {
    let w = World::new();
    let me = w.register("frank", "secret1").unwrap();
    let id = me.user_id;
    let claims = format!(r#"{{"sub":"{id}","iat":1700000000,"exp":1900000000}}"#);
    let payload = common::b64url(claims.as_bytes());
    let signature = me.token.rsplit('.').next().unwrap();

    let forged = jwt::issue("some-other-secret", id, NOW).unwrap();
    let expired = jwt::issue(SECRET, id, NOW - (jwt::TOKEN_LIFETIME_SECS + 1) * 1000).unwrap();
    let alg_none = format!(
        "{}.{payload}.",
        common::b64url(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let alg_hs512 = format!(
        "{}.{payload}.{signature}",
        common::b64url(br#"{"alg":"HS512","typ":"JWT"}"#)
    );
    let tampered = {
        let mut parts: Vec<&str> = me.token.split('.').collect();
        parts[1] = &payload;
        parts.join(".")
    };
    let unknown_user = jwt::issue(SECRET, id + 1000, NOW).unwrap();
    let cases = [
        ("forged", forged.as_str()),
        ("expired", &expired),
        ("alg none", &alg_none),
        ("alg HS512", &alg_hs512),
        ("tampered", &tampered),
        ("garbage", "not.a.jwt"),
        ("nonexistent user", &unknown_user),
    ];
    for (what, token) in cases {
        let err = accounts::profile(&w.env(), &params(&[("token", token)])).unwrap_err();
        assert_eq!(err.code, api::INVALID_TOKEN, "{what}");
        assert_eq!(
            auth::authenticate(&w.env(), &params(&[("token", token)]))
                .unwrap_err()
                .code,
            api::INVALID_TOKEN,
            "{what}"
        );
        assert_eq!(
            auth::viewer(&w.env(), &params(&[("token", token)]))
                .filter(|_| what != "nonexistent user"),
            None,
            "{what}"
        );
    }
    assert_eq!(
        jwt::verify(SECRET, &expired, NOW),
        Err(jwt::TokenError::Expired)
    );
    assert_eq!(
        jwt::verify(SECRET, &forged, NOW),
        Err(jwt::TokenError::BadSignature)
    );
    assert!(jwt::verify(SECRET, &alg_none, NOW).is_err());
    assert_eq!(
        jwt::verify(SECRET, &alg_hs512, NOW),
        Err(jwt::TokenError::WrongAlgorithm)
    );
    // Just inside the lifetime is still valid.
    let old = jwt::issue(SECRET, id, NOW - (jwt::TOKEN_LIFETIME_SECS - 1) * 1000).unwrap();
    assert_eq!(
        auth::authenticate(&w.env(), &params(&[("token", &old)])),
        Ok(id)
    );
    // The bearer header works like the parameter.
    let bearer = params(&[]).with_authorization(Some(&format!("Bearer {}", me.token)));
    assert_eq!(auth::authenticate(&w.env(), &bearer), Ok(id));
    assert_eq!(auth::viewer(&w.env(), &params(&[])), None);
    assert_eq!(
        auth::authenticate(&w.env(), &params(&[])).unwrap_err().code,
        api::AUTH_REQUIRED
    );
}

#[test]
fn an_empty_secret_is_a_server_error_not_a_valid_token() {
    let mut w = World::new();
    w.config.jwt_secret.clear();
    let err = w.register("gina", "secret1").unwrap_err();
    assert_eq!(err.code, api::INTERNAL);
    assert_eq!(
        jwt::verify("", "a.b.c", NOW),
        Err(jwt::TokenError::NoSecret)
    );
}
