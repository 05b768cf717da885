mod common;

use std::collections::BTreeSet;

use common::{World, BASE};
use tikspin_core::db::transaction;
use tikspin_core::migrate::migrate;
use tikspin_core::testing::{CountingSql, SqliteSql};
use tikspin_core::{users, Sql, SqlError, Urls};

/// 100 users without argon2 (load_many never reads the hash); user i+1 is followed by user 1
/// when i is odd.
fn populate(sql: &dyn Sql) -> Vec<i64> {
    migrate(sql).unwrap();
    transaction(sql, |tx| {
        let ids = (0..100)
            .map(|i| users::insert(tx, &format!("user{i}"), "$argon2id$unused", 0))
            .collect::<Result<Vec<_>, SqlError>>()?;
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            tx.execute(
                "INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)",
                &[ids[0].into(), (*id).into(), (i as i64).into()],
            )?;
        }
        Ok::<_, SqlError>(ids)
    })
    .unwrap()
}

#[test]
fn load_many_runs_a_constant_number_of_queries() {
    let sql = SqliteSql::memory();
    let ids = populate(&sql);
    let urls = Urls::new(BASE);
    let counting = CountingSql::new(&sql);
    let viewer = Some(ids[0]);

    let one = users::load_many(&counting, &ids[1..2], viewer, &urls).unwrap();
    let for_one = counting.calls();
    counting.reset();
    let mut many_ids = ids.clone();
    many_ids.extend_from_slice(&ids[..10]); // duplicates are fine
    let many = users::load_many(&counting, &many_ids, viewer, &urls).unwrap();
    assert_eq!(counting.calls(), for_one);
    assert_eq!(for_one, 2, "one users query and one follows query");
    assert_eq!((one.len(), many.len()), (1, 100));

    counting.reset();
    users::load_many(&counting, &ids, None, &urls).unwrap();
    assert_eq!(
        counting.calls(),
        1,
        "anonymous viewers need no follows query"
    );
    counting.reset();
    assert!(users::load_many(&counting, &[], viewer, &urls)
        .unwrap()
        .is_empty());
    assert_eq!(counting.calls(), 0);

    let followed: BTreeSet<i64> = many
        .values()
        .filter(|u| u.is_follow)
        .map(|u| u.id)
        .collect();
    let expected: BTreeSet<i64> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(followed, expected);
    assert!(!many[&ids[0]].is_follow, "never following oneself");
    assert!(users::load_many(&sql, &ids, None, &urls)
        .unwrap()
        .values()
        .all(|u| !u.is_follow));
    assert!(
        users::load_many(&sql, &[ids[0], 999_999], viewer, &urls)
            .unwrap()
            .len()
            == 1
    );
}

#[test]
fn user_json_has_every_field_as_the_client_reads_it() {
    let w = World::new();
    let id = w.register("kate", "secret1").unwrap().user_id;
    w.sql
        .execute(
            "UPDATE users SET follow_count = 3, follower_count = 4, total_favorited = 5, work_count = 6, \
             favorite_count = 7, signature = 'hi 👋', avatar = 'avatars/k.png' WHERE id = ?",
            &[id.into()],
        )
        .unwrap();
    let user = users::load_one(&w.sql, id, None, &w.env().urls())
        .unwrap()
        .unwrap();
    let json = serde_json::to_value(&user).unwrap();
    let keys: BTreeSet<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "id",
        "name",
        "follow_count",
        "follower_count",
        "is_follow",
        "avatar",
        "background_image",
        "signature",
        "total_favorited",
        "work_count",
        "favorite_count",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(json["id"], id);
    for (key, n) in [
        ("follow_count", 3),
        ("follower_count", 4),
        ("total_favorited", 5),
        ("work_count", 6),
        ("favorite_count", 7),
    ] {
        assert_eq!(json[key].as_i64(), Some(n), "{key} must be a JSON number");
    }
    assert_eq!(json["is_follow"], false);
    assert_eq!(json["signature"], "hi 👋");
    assert_eq!(json["avatar"], format!("{BASE}/media/avatars/k.png"));
    assert_eq!(
        json["background_image"],
        format!("{BASE}/media/background/{id}.png")
    );
}
