//! The JSON objects of the API, exactly as the client reads them.

use serde::{Deserialize, Serialize};

use crate::json::{Object, WriteJson};

/// `User` on the wire. `is_follow` is viewer-relative: false for anonymous viewers and for
/// oneself. `avatar`/`background_image` are absolute URLs, a per-user default when unset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub follow_count: i64,
    pub follower_count: i64,
    pub is_follow: bool,
    pub avatar: String,
    pub background_image: String,
    pub signature: String,
    pub total_favorited: i64,
    pub work_count: i64,
    pub favorite_count: i64,
}

/// `Video` on the wire. `play_url`/`cover_url` are absolute; `cover_url` is stable for the video
/// (a placeholder is served under it until the real cover exists). `is_favorite` is
/// viewer-relative: false for anonymous viewers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    pub id: i64,
    pub author: User,
    pub play_url: String,
    pub cover_url: String,
    pub favorite_count: i64,
    pub comment_count: i64,
    pub is_favorite: bool,
    pub title: String,
}

/// `Comment` on the wire: the commenter as a full [`User`], `create_date` as `"MM-DD"` in the
/// deployment's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: i64,
    pub user: User,
    pub content: String,
    pub create_date: String,
}

/// `Message` on the wire. `create_time` is epoch ms, strictly increasing within a conversation
/// (see [`crate::schema`]), so it doubles as the chat poll's cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: i64,
    pub to_user_id: i64,
    pub from_user_id: i64,
    pub content: String,
    pub create_time: i64,
}

/// `FriendUser` on the wire: every [`User`] field, flat, plus the latest message between the
/// *viewer* and this friend (`""` if none) and `msgType` (0 = the viewer received it, 1 = the
/// viewer sent it; 0 when there is no message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendUser {
    #[serde(flatten)]
    pub user: User,
    pub message: String,
    #[serde(rename = "msgType")]
    pub msg_type: i64,
}

// The wire models write themselves (see `crate::json` for why); field order and names are the
// derives' above, which the tests in `crate::json` hold them to.

impl User {
    fn write_fields(&self, o: &mut Object<'_>) {
        o.int("id", self.id);
        o.str("name", &self.name);
        o.int("follow_count", self.follow_count);
        o.int("follower_count", self.follower_count);
        o.bool("is_follow", self.is_follow);
        o.str("avatar", &self.avatar);
        o.str("background_image", &self.background_image);
        o.str("signature", &self.signature);
        o.int("total_favorited", self.total_favorited);
        o.int("work_count", self.work_count);
        o.int("favorite_count", self.favorite_count);
    }
}

impl WriteJson for User {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out);
        self.write_fields(&mut o);
        o.end();
    }
}

impl WriteJson for Video {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out);
        o.int("id", self.id);
        o.value("author", &self.author);
        o.str("play_url", &self.play_url);
        o.str("cover_url", &self.cover_url);
        o.int("favorite_count", self.favorite_count);
        o.int("comment_count", self.comment_count);
        o.bool("is_favorite", self.is_favorite);
        o.str("title", &self.title);
        o.end();
    }
}

impl WriteJson for Comment {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out);
        o.int("id", self.id);
        o.value("user", &self.user);
        o.str("content", &self.content);
        o.str("create_date", &self.create_date);
        o.end();
    }
}

impl WriteJson for Message {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out);
        o.int("id", self.id);
        o.int("to_user_id", self.to_user_id);
        o.int("from_user_id", self.from_user_id);
        o.str("content", &self.content);
        o.int("create_time", self.create_time);
        o.end();
    }
}

impl WriteJson for FriendUser {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::begin(out);
        self.user.write_fields(&mut o);
        o.str("message", &self.message);
        o.int("msgType", self.msg_type);
        o.end();
    }
}
