//! The JSON objects of the API, exactly as the client reads them.

use serde::{Deserialize, Serialize};

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
