//! Where the objects live and the keys to reach them. Nothing has a default: a missing or blank
//! value is an error naming the setting (never its value when it is a key).

use std::fmt;

use crate::sigv4::Credentials;

/// S3 settings. `endpoint` is scheme + host + optional port, e.g. `http://127.0.0.1:9000`;
/// requests are path-style (`endpoint/bucket/key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub credentials: Credentials,
}

/// A config setting that is missing or unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    MissingEndpoint,
    /// The endpoint is not `http(s)://host[:port]`; the text says what is wrong.
    InvalidEndpoint(&'static str),
    MissingBucket,
    /// The bucket name breaks S3's naming rules (3–63 of `a-z 0-9 . -`, starting and ending with
    /// a letter or digit).
    InvalidBucket,
    MissingRegion,
    /// The region is not made of `a-z 0-9 -`.
    InvalidRegion,
    MissingAccessKey,
    MissingSecretKey,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingEndpoint => {
                f.write_str("S3 endpoint is not set (expected e.g. http://127.0.0.1:9000)")
            }
            ConfigError::InvalidEndpoint(why) => write!(f, "S3 endpoint is invalid: {why}"),
            ConfigError::MissingBucket => f.write_str("S3 bucket is not set"),
            ConfigError::InvalidBucket => f.write_str(
                "S3 bucket name is invalid (3-63 characters of a-z, 0-9, '.', '-', \
                 starting and ending with a letter or digit)",
            ),
            ConfigError::MissingRegion => {
                f.write_str("S3 region is not set (MinIO accepts e.g. us-east-1)")
            }
            ConfigError::InvalidRegion => {
                f.write_str("S3 region is invalid (expected a-z, 0-9 and '-', e.g. us-east-1)")
            }
            ConfigError::MissingAccessKey => f.write_str("S3 access key is not set"),
            ConfigError::MissingSecretKey => f.write_str("S3 secret key is not set"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A parsed endpoint: `scheme` is `http` or `https`; `host` is the `Host` header value
/// (`host` or `host:port`, lowercase, default ports dropped so it matches what HTTP clients
/// send).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: &'static str,
    pub host: String,
}

impl Endpoint {
    pub fn parse(endpoint: &str) -> Result<Endpoint, ConfigError> {
        let e = endpoint.trim();
        if e.is_empty() {
            return Err(ConfigError::MissingEndpoint);
        }
        let (scheme, rest) = if let Some(r) = strip_prefix_ci(e, "http://") {
            ("http", r)
        } else if let Some(r) = strip_prefix_ci(e, "https://") {
            ("https", r)
        } else {
            return Err(ConfigError::InvalidEndpoint(
                "it must start with http:// or https://",
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(ConfigError::InvalidEndpoint(
                "it must be scheme://host[:port] with no path, query or fragment \
                 (the bucket is a separate setting)",
            ));
        }
        if authority.contains('@') {
            return Err(ConfigError::InvalidEndpoint(
                "it must not contain user info",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or(ConfigError::InvalidEndpoint("unterminated [IPv6] host"))?;
            let after = &v6[end + 1..];
            let port = match after {
                "" => None,
                p if p.starts_with(':') => Some(&p[1..]),
                _ => return Err(ConfigError::InvalidEndpoint("junk after the [IPv6] host")),
            };
            (&authority[..end + 2], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(ConfigError::InvalidEndpoint("the host is empty"));
        }
        if !host.starts_with('[') && host.contains([':', '[', ']']) {
            return Err(ConfigError::InvalidEndpoint(
                "an IPv6 host must be in [brackets]",
            ));
        }
        if !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        }) {
            return Err(ConfigError::InvalidEndpoint(
                "the host has characters a host cannot have",
            ));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => {
                    return Err(ConfigError::InvalidEndpoint(
                        "the port is not a number 1-65535",
                    ))
                }
            },
        };
        let default_port = if scheme == "http" { 80 } else { 443 };
        let host = host.to_ascii_lowercase();
        let host = match port {
            Some(p) if p != default_port => format!("{host}:{p}"),
            _ => host,
        };
        Ok(Endpoint { scheme, host })
    }

    /// `scheme://host[:port]`
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

impl S3Config {
    /// Checks every setting, in the order endpoint, bucket, region, access key, secret key, and
    /// returns the parsed endpoint.
    pub fn validate(&self) -> Result<Endpoint, ConfigError> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        validate_bucket(&self.bucket)?;
        let region = self.region.trim();
        if region.is_empty() {
            return Err(ConfigError::MissingRegion);
        }
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ConfigError::InvalidRegion);
        }
        if self.credentials.access_key.trim().is_empty() {
            return Err(ConfigError::MissingAccessKey);
        }
        if self.credentials.secret_key.trim().is_empty() {
            return Err(ConfigError::MissingSecretKey);
        }
        Ok(endpoint)
    }
}

fn validate_bucket(bucket: &str) -> Result<(), ConfigError> {
    if bucket.trim().is_empty() {
        return Err(ConfigError::MissingBucket);
    }
    let b = bucket.as_bytes();
    let edge_ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = (3..=63).contains(&b.len())
        && b.iter().all(|&c| edge_ok(c) || c == b'.' || c == b'-')
        && edge_ok(b[0])
        && edge_ok(b[b.len() - 1])
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidBucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> S3Config {
        S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "videos".into(),
            region: "us-east-1".into(),
            credentials: Credentials::new("AK", "SK"),
        }
    }

    #[test]
    fn valid() {
        let e = config().validate().unwrap();
        assert_eq!(
            e,
            Endpoint {
                scheme: "http",
                host: "127.0.0.1:9000".into()
            }
        );
        assert_eq!(e.base_url(), "http://127.0.0.1:9000");
    }

    #[test]
    fn endpoints() {
        let p = |s: &str| Endpoint::parse(s);
        assert_eq!(
            p("HTTPS://S3.Example.com/").unwrap().base_url(),
            "https://s3.example.com"
        );
        assert_eq!(p("http://minio:80").unwrap().host, "minio");
        assert_eq!(p("https://minio:443").unwrap().host, "minio");
        assert_eq!(p("https://minio:80").unwrap().host, "minio:80");
        assert_eq!(p("http://[::1]:9000").unwrap().host, "[::1]:9000");
        assert_eq!(p(""), Err(ConfigError::MissingEndpoint));
        assert_eq!(p("   "), Err(ConfigError::MissingEndpoint));
        for bad in [
            "127.0.0.1:9000",
            "ftp://x",
            "http://",
            "http://:9000",
            "http://host:0",
            "http://host:99999",
            "http://host:+90",
            "http://host/bucket",
            "http://host?x",
            "http://u:p@host",
            "http://ho st",
            "http://[::1",
            "http://a:b:9000",
        ] {
            assert!(
                matches!(p(bad), Err(ConfigError::InvalidEndpoint(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_and_invalid_fields() {
        let with = |f: fn(&mut S3Config)| {
            let mut c = config();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(with(|c| c.endpoint.clear()), ConfigError::MissingEndpoint);
        assert_eq!(with(|c| c.bucket.clear()), ConfigError::MissingBucket);
        assert_eq!(with(|c| c.bucket = " ".into()), ConfigError::MissingBucket);
        for bad in [
            "ab",
            "Videos",
            "-videos",
            "videos-",
            "vid..eos",
            "vid_eos",
            &"a".repeat(64),
        ] {
            let mut c = config();
            c.bucket = bad.to_string();
            assert_eq!(c.validate(), Err(ConfigError::InvalidBucket), "{bad}");
        }
        assert_eq!(with(|c| c.region.clear()), ConfigError::MissingRegion);
        assert_eq!(
            with(|c| c.region = "US East".into()),
            ConfigError::InvalidRegion
        );
        assert_eq!(
            with(|c| c.credentials.access_key.clear()),
            ConfigError::MissingAccessKey
        );
        assert_eq!(
            with(|c| c.credentials.secret_key = "\t".into()),
            ConfigError::MissingSecretKey
        );
    }

    #[test]
    fn messages_name_the_setting() {
        assert!(ConfigError::MissingSecretKey
            .to_string()
            .contains("secret key"));
        assert!(ConfigError::MissingEndpoint
            .to_string()
            .contains("endpoint"));
    }
}
