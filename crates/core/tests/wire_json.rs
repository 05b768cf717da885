//! The wire models and list payloads write their own JSON (`tikspin_core::json`); serde_json is
//! the reference. Every comparison here is byte for byte, on generated values whose strings
//! range over quotes, backslashes, every control character, DEL and non-ASCII text.

use proptest::prelude::*;
use serde::Serialize;
use tikspin_core::accounts::Profile;
use tikspin_core::api::{ApiError, Payload};
use tikspin_core::chat::MessageList;
use tikspin_core::comments::CommentList;
use tikspin_core::feed::FeedPage;
use tikspin_core::json::{self, WriteJson};
use tikspin_core::model::{Comment, FriendUser, Message, User, Video};
use tikspin_core::social::{FriendList, UserList};
use tikspin_core::videos::VideoList;
use tikspin_core::Reply;

/// Text with a good share of the characters JSON escapes, and some it must not.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x20\"\\\\/\\x7f a-z\u{e9}\u{4e2d}\u{1f600}]{0,24}",
    ]
}

fn user() -> impl Strategy<Value = User> {
    (
        (
            any::<i64>(),
            text(),
            any::<i64>(),
            any::<i64>(),
            any::<bool>(),
        ),
        (
            text(),
            text(),
            text(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (id, name, follow_count, follower_count, is_follow),
                (avatar, background_image, signature, total_favorited, work_count, favorite_count),
            )| User {
                id,
                name,
                follow_count,
                follower_count,
                is_follow,
                avatar,
                background_image,
                signature,
                total_favorited,
                work_count,
                favorite_count,
            },
        )
}

fn video() -> impl Strategy<Value = Video> {
    (
        any::<i64>(),
        user(),
        text(),
        text(),
        any::<i64>(),
        any::<i64>(),
        any::<bool>(),
        text(),
    )
        .prop_map(
            |(
                id,
                author,
                play_url,
                cover_url,
                favorite_count,
                comment_count,
                is_favorite,
                title,
            )| {
                Video {
                    id,
                    author,
                    play_url,
                    cover_url,
                    favorite_count,
                    comment_count,
                    is_favorite,
                    title,
                }
            },
        )
}

fn comment() -> impl Strategy<Value = Comment> {
    (any::<i64>(), user(), text(), text()).prop_map(|(id, user, content, create_date)| Comment {
        id,
        user,
        content,
        create_date,
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        text(),
        any::<i64>(),
    )
        .prop_map(
            |(id, to_user_id, from_user_id, content, create_time)| Message {
                id,
                to_user_id,
                from_user_id,
                content,
                create_time,
            },
        )
}

fn friend() -> impl Strategy<Value = FriendUser> {
    (user(), text(), 0i64..=1).prop_map(|(user, message, msg_type)| FriendUser {
        user,
        message,
        msg_type,
    })
}

fn written<T: WriteJson + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    value.write_json(&mut out);
    String::from_utf8(out).expect("the writer writes UTF-8")
}

fn serde<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

/// The envelope as it was before the payloads wrote their own fields: serde's flatten.
#[derive(Serialize)]
struct Envelope<'a, P> {
    status_code: i32,
    status_msg: &'a str,
    #[serde(flatten)]
    payload: &'a P,
}

fn reference_reply<P: Payload>(status_code: i32, status_msg: &str, payload: &P) -> String {
    serde(&Envelope {
        status_code,
        status_msg,
        payload,
    })
}

fn body(reply: &Reply) -> &str {
    std::str::from_utf8(reply.body()).unwrap()
}

#[test]
fn every_byte_below_0x80_is_written_as_serde_json_writes_it_wherever_it_stands() {
    // Anywhere in a string longer than the writer's eight-byte steps, next to non-ASCII text.
    for byte in 0u8..0x80 {
        for at in 0..20 {
            let mut s = "abcdefgh\u{e9}ijklmnopqrs".to_string();
            s.insert(at + usize::from(at > 8), char::from(byte));
            let mut out = Vec::new();
            json::string(&mut out, &s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde(&s),
                "byte {byte:#04x} at {at}"
            );
        }
    }
}

#[test]
fn a_failed_payload_keeps_its_fields_and_a_bare_one_has_only_the_envelope() {
    let reply = Reply::error::<FriendList>(ApiError::invalid_token());
    assert_eq!(
        body(&reply),
        reference_reply(
            reply.status_code(),
            &ApiError::invalid_token().msg,
            &FriendList::failed()
        )
    );
    assert!(body(&reply).ends_with(r#","user_list":[]}"#));
    let profile = Reply::error::<Profile>(ApiError::invalid_token());
    assert!(!body(&profile).contains("user"), "{}", body(&profile));
    let empty = Reply::ok(tikspin_core::api::Empty {});
    assert_eq!(body(&empty), r#"{"status_code":0,"status_msg":"success"}"#);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn strings(s in text()) {
        let mut out = Vec::new();
        json::string(&mut out, &s);
        prop_assert_eq!(String::from_utf8(out).unwrap(), serde(&s));
    }

    #[test]
    fn models(u in user(), v in video(), c in comment(), m in message(), f in friend()) {
        prop_assert_eq!(written(&u), serde(&u));
        prop_assert_eq!(written(&v), serde(&v));
        prop_assert_eq!(written(&c), serde(&c));
        prop_assert_eq!(written(&m), serde(&m));
        prop_assert_eq!(written(&f), serde(&f));
    }

    #[test]
    fn replies(
        users in prop::collection::vec(user(), 0..4),
        friends in prop::collection::vec(friend(), 0..4),
        videos in prop::collection::vec(video(), 0..3),
        comments in prop::collection::vec(comment(), 0..3),
        messages in prop::collection::vec(message(), 0..4),
        profile in prop::option::of(user()),
        next_time in any::<i64>(),
        msg in text(),
    ) {
        let ok = |r: Reply| body(&r).to_owned();
        let user_list = UserList { user_list: users };
        prop_assert_eq!(ok(Reply::ok(user_list.clone())), reference_reply(0, "success", &user_list));
        let friend_list = FriendList { user_list: friends };
        prop_assert_eq!(ok(Reply::ok(friend_list.clone())), reference_reply(0, "success", &friend_list));
        let feed = FeedPage { video_list: videos.clone(), next_time };
        prop_assert_eq!(ok(Reply::ok(feed.clone())), reference_reply(0, "success", &feed));
        let published = VideoList { video_list: videos };
        prop_assert_eq!(ok(Reply::ok(published.clone())), reference_reply(0, "success", &published));
        let comment_list = CommentList { comment_list: comments };
        prop_assert_eq!(ok(Reply::ok(comment_list.clone())), reference_reply(0, "success", &comment_list));
        let message_list = MessageList { message_list: messages };
        prop_assert_eq!(ok(Reply::ok(message_list.clone())), reference_reply(0, "success", &message_list));
        let profile = Profile { user: profile };
        prop_assert_eq!(ok(Reply::ok(profile.clone())), reference_reply(0, "success", &profile));

        // A status message is the one string every reply carries.
        let failed = Reply::error::<UserList>(ApiError::not_found(msg.clone()));
        prop_assert_eq!(body(&failed), reference_reply(failed.status_code(), &msg, &UserList::failed()));
    }
}
