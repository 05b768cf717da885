//! AWS Signature Version 4, hand-written on `hmac` + `sha2`.
//!
//! Only the rules S3 uses are implemented: the canonical URI is the path with each segment
//! URI-encoded once (`/` kept, no dot-segment normalisation), which for a path of `/` is also
//! what every other service does. Header signing and query-string (presigned) signing share one
//! canonical-request routine.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload line and `x-amz-content-sha256` value of a request whose body is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The longest lifetime SigV4 allows a presigned URL: 7 days.
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 7 * 24 * 60 * 60;

/// An access key pair. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// What the last line of the canonical request (and, for S3, the `x-amz-content-sha256`
/// header) says about the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadHash {
    /// The SHA-256 of the exact body bytes that will be sent.
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature (lets a component stream a
    /// body it has not hashed; S3 still checks every header and the URL).
    Unsigned,
}

impl PayloadHash {
    /// The hash of `body`.
    pub fn of(body: &[u8]) -> Self {
        PayloadHash::Sha256(Sha256::digest(body).into())
    }

    /// The hash of an empty body (GET, HEAD, DELETE, …).
    pub fn empty() -> Self {
        Self::of(b"")
    }

    /// Parses a 64-digit hex SHA-256 (either case). `None` if it is not one.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(PayloadHash::Sha256(out))
    }

    /// The value as it appears on the wire: lowercase hex, or `UNSIGNED-PAYLOAD`.
    pub fn value(&self) -> String {
        match self {
            PayloadHash::Sha256(h) => hex(h),
            PayloadHash::Unsigned => UNSIGNED_PAYLOAD.to_string(),
        }
    }
}

/// The parts of an HTTP request that SigV4 covers.
///
/// `path` and the query pairs are given **decoded**; the signer encodes them (and the same
/// encoding must be used in the URL actually sent: [`encode_path`], [`canonical_query`]).
/// `host` is the `Host` header exactly as the HTTP client will send it (`host` or `host:port`);
/// a `host`, `x-amz-date` or `authorization` entry in `headers` is ignored.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
}

/// The result of header signing: the two headers to add to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderSignature {
    /// Value for `x-amz-date` (`YYYYMMDDTHHMMSSZ`); it is one of the signed headers.
    pub amz_date: String,
    /// Value for `Authorization`.
    pub authorization: String,
}

/// Why a presigned URL could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresignError {
    /// `X-Amz-Expires` must be between 1 second and 7 days.
    InvalidExpires(u64),
}

impl fmt::Display for PresignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresignError::InvalidExpires(s) => write!(
                f,
                "presigned URL lifetime must be 1..={MAX_PRESIGN_EXPIRES_SECS} seconds (7 days), got {s}"
            ),
        }
    }
}

impl std::error::Error for PresignError {}

/// Signs requests for one region and service (`"s3"` for S3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    pub region: String,
    pub service: String,
}

impl Signer {
    pub fn new(region: impl Into<String>, service: impl Into<String>) -> Self {
        Signer {
            region: region.into(),
            service: service.into(),
        }
    }

    /// A signer for S3 in `region`.
    pub fn s3(region: impl Into<String>) -> Self {
        Self::new(region, "s3")
    }

    /// Header signing: returns `x-amz-date` and `Authorization` for `req` at `unix_secs`.
    ///
    /// Signed headers are `host`, `x-amz-date` and every entry of `req.headers`. For S3, put
    /// `x-amz-content-sha256: payload.value()` into `req.headers` (S3 requires it).
    pub fn sign_headers(
        &self,
        creds: &Credentials,
        req: &RequestParts<'_>,
        payload: &PayloadHash,
        unix_secs: u64,
    ) -> HeaderSignature {
        let (date, amz_date) = format_amz_date(unix_secs);
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .filter(|(n, _)| {
                !["host", "x-amz-date", "authorization"]
                    .iter()
                    .any(|x| n.eq_ignore_ascii_case(x))
            })
            .cloned()
            .collect();
        headers.push(("host".into(), req.host.into()));
        headers.push(("x-amz-date".into(), amz_date.clone()));
        let (canonical_headers, signed_headers) = canonical_headers(&headers);
        let creq = canonical_request(
            req.method,
            &encode_path(req.path),
            &canonical_query(req.query),
            &canonical_headers,
            &signed_headers,
            &payload.value(),
        );
        let signature = self.signature(creds, &date, &amz_date, &creq);
        let authorization = format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key,
            self.scope(&date)
        );
        HeaderSignature {
            amz_date,
            authorization,
        }
    }

    /// Query-string signing (a presigned URL) with `host` as the only signed header and an
    /// unsigned payload. Returns the complete encoded query string, `X-Amz-Signature` last; the
    /// URL is `scheme://host` + [`encode_path`]`(path)` + `?` + this.
    #[allow(clippy::too_many_arguments)]
    pub fn presign(
        &self,
        creds: &Credentials,
        method: &str,
        host: &str,
        path: &str,
        query: &[(String, String)],
        expires_secs: u64,
        unix_secs: u64,
    ) -> Result<String, PresignError> {
        if expires_secs == 0 || expires_secs > MAX_PRESIGN_EXPIRES_SECS {
            return Err(PresignError::InvalidExpires(expires_secs));
        }
        let (date, amz_date) = format_amz_date(unix_secs);
        let mut q: Vec<(String, String)> = query.to_vec();
        q.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
        q.push((
            "X-Amz-Credential".into(),
            format!("{}/{}", creds.access_key, self.scope(&date)),
        ));
        q.push(("X-Amz-Date".into(), amz_date.clone()));
        q.push(("X-Amz-Expires".into(), expires_secs.to_string()));
        q.push(("X-Amz-SignedHeaders".into(), "host".into()));
        let query_string = canonical_query(&q);
        let (canonical_headers, signed_headers) =
            canonical_headers(&[("host".into(), host.into())]);
        let creq = canonical_request(
            method,
            &encode_path(path),
            &query_string,
            &canonical_headers,
            &signed_headers,
            UNSIGNED_PAYLOAD,
        );
        let signature = self.signature(creds, &date, &amz_date, &creq);
        Ok(format!("{query_string}&X-Amz-Signature={signature}"))
    }

    fn scope(&self, date: &str) -> String {
        format!("{date}/{}/{}/aws4_request", self.region, self.service)
    }

    fn signature(&self, creds: &Credentials, date: &str, amz_date: &str, creq: &str) -> String {
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}\n{}",
            self.scope(date),
            hex(&Sha256::digest(creq.as_bytes()))
        );
        let k_date = hmac(
            format!("AWS4{}", creds.secret_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");
        hex(&hmac(&k_signing, string_to_sign.as_bytes()))
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &str,
    signed_headers: &str,
    payload: &str,
) -> String {
    format!("{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{payload}")
}

/// URI-encodes `s` the SigV4 way: everything but the RFC 3986 unreserved set
/// (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` (uppercase hex, per UTF-8 byte); `/` is kept when
/// `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(DIGITS[(b >> 4) as usize] as char);
            out.push(DIGITS[(b & 15) as usize] as char);
        }
    }
    out
}

/// The canonical URI of a decoded S3 path: each segment encoded once, `/` kept, `/` if empty.
pub fn encode_path(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        uri_encode(path, true)
    }
}

/// The canonical query string of decoded pairs: names and values encoded, sorted by encoded
/// name then value, `name=value` joined by `&` (a name alone gets `name=`).
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Canonical headers block (each `name:value\n`, names lowercase and sorted, values trimmed with
/// inner runs of spaces collapsed, repeated names joined by `,`) and the signed-headers list.
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut normalized: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.trim().to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    // Stable sort: values of a repeated header keep their order.
    normalized.sort_by(|a, b| a.0.cmp(&b.0));
    let mut block = String::new();
    let mut names: Vec<&str> = Vec::new();
    for (name, value) in &normalized {
        if names.last() == Some(&name.as_str()) {
            block.pop(); // the '\n'
            block.push(',');
        } else {
            names.push(name);
            block.push_str(name);
            block.push(':');
        }
        block.push_str(value);
        block.push('\n');
    }
    (block, names.join(";"))
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` for a Unix time (UTC; years up to 9999, later times read
/// as the last second of 9999).
pub fn format_amz_date(unix_secs: u64) -> (String, String) {
    let t = i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
    let date = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    let stamp = format!("{date}T{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
    (date, stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            format_amz_date(0),
            ("19700101".into(), "19700101T000000Z".into())
        );
        assert_eq!(format_amz_date(1_440_938_160).1, "20150830T123600Z");
        assert_eq!(format_amz_date(1_369_353_600).1, "20130524T000000Z");
        // Leap day and the last second of a century leap year.
        assert_eq!(format_amz_date(951_782_400).1, "20000229T000000Z");
        assert_eq!(format_amz_date(978_307_199).1, "20001231T235959Z");
        assert_eq!(format_amz_date(4_107_542_400).1, "21000301T000000Z");
        assert_eq!(format_amz_date(u64::MAX).1, "99991231T235959Z");
    }

    #[test]
    fn encoding() {
        assert_eq!(
            uri_encode("a b/c~d+e$é*", true),
            "a%20b/c~d%2Be%24%C3%A9%2A"
        );
        assert_eq!(uri_encode("a/b=c&d", false), "a%2Fb%3Dc%26d");
        assert_eq!(encode_path(""), "/");
        let q = vec![
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "x y".to_string()),
            ("B".to_string(), String::new()),
            ("a".to_string(), "1".to_string()),
        ];
        assert_eq!(canonical_query(&q), "B=&a=1&a=x%20y&b=2");
    }

    #[test]
    fn headers_block() {
        let h = vec![
            ("My-Header1".to_string(), "  a   b  c ".to_string()),
            ("host".to_string(), "example.com".to_string()),
            ("my-header1".to_string(), "second".to_string()),
        ];
        let (block, signed) = canonical_headers(&h);
        assert_eq!(block, "host:example.com\nmy-header1:a b c,second\n");
        assert_eq!(signed, "host;my-header1");
    }

    #[test]
    fn payload_hash_hex_round_trip() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(PayloadHash::empty().value(), empty);
        assert_eq!(PayloadHash::from_hex(empty), Some(PayloadHash::empty()));
        assert_eq!(
            PayloadHash::from_hex(&empty.to_uppercase()),
            Some(PayloadHash::empty())
        );
        assert_eq!(PayloadHash::from_hex(&empty[1..]), None);
        assert_eq!(PayloadHash::from_hex(&format!("g{}", &empty[1..])), None);
        assert_eq!(PayloadHash::Unsigned.value(), "UNSIGNED-PAYLOAD");
    }

    #[test]
    fn debug_hides_secret() {
        let c = Credentials::new("AKID", "very-secret-1234");
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
