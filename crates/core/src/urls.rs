//! Absolute URLs the client can fetch: the client is a phone, so every media URL carries the
//! public base of this app (or of the object store), never a relative path.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    /// Scheme and authority (and any path prefix), without a trailing slash.
    pub public_base: String,
}

impl Urls {
    pub fn new(public_base: &str) -> Self {
        Urls {
            public_base: public_base.trim_end_matches('/').to_owned(),
        }
    }

    /// The default avatar: deterministic per user, served by the `media` component.
    pub fn default_avatar(&self, user_id: i64) -> String {
        format!("{}/media/avatar/{user_id}.png", self.public_base)
    }

    pub fn default_background(&self, user_id: i64) -> String {
        format!("{}/media/background/{user_id}.png", self.public_base)
    }

    /// A stored image reference as a URL: absolute URLs pass through, anything else is an
    /// object key served under `/media/`.
    pub fn media(&self, stored: &str) -> String {
        if stored.starts_with("http://") || stored.starts_with("https://") {
            stored.to_owned()
        } else {
            format!(
                "{}/media/{}",
                self.public_base,
                stored.trim_start_matches('/')
            )
        }
    }
}
