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
        self.numbered("/media/avatar/", user_id, ".png")
    }

    pub fn default_background(&self, user_id: i64) -> String {
        self.numbered("/media/background/", user_id, ".png")
    }

    /// `{public_base}{prefix}{n}{suffix}`. Lists build two of these per user; plain pushes cost
    /// a fraction of `format!`'s machinery in the guest.
    fn numbered(&self, prefix: &str, n: i64, suffix: &str) -> String {
        let mut digits = itoa::Buffer::new();
        let n = digits.format(n);
        let mut url =
            String::with_capacity(self.public_base.len() + prefix.len() + n.len() + suffix.len());
        url.push_str(&self.public_base);
        url.push_str(prefix);
        url.push_str(n);
        url.push_str(suffix);
        url
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
