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
