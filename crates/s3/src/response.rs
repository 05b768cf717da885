//! Reading S3's answers.
//!
//! XML is read by a tiny targeted scanner, not a general parser: S3's answers here are small,
//! flat, unprefixed documents, and we only need the text of a few named elements (`UploadId`,
//! `Code`, `Message`, `ETag`). The scanner finds `<Name>` or `<Name attr…>` (not `<NameMore>`)
//! and the next `</Name>`, and decodes the five predefined entities and numeric character
//! references. It does not handle CDATA, comments containing such tags, or namespace prefixes —
//! none of which S3 or MinIO send.

use std::borrow::Cow;
use std::fmt;

/// An S3 error `Code`, with the ones TikSpin acts on spelled out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3ErrorCode {
    NoSuchKey,
    NoSuchBucket,
    NoSuchUpload,
    /// A HEAD (or other bodiless) answer of 404: the key or the bucket does not exist.
    NotFound,
    AccessDenied,
    InvalidAccessKeyId,
    SignatureDoesNotMatch,
    RequestTimeTooSkewed,
    /// A presigned URL past its expiry (AWS says `AccessDenied` with a message; some servers
    /// say this).
    ExpiredToken,
    BucketAlreadyOwnedByYou,
    BucketAlreadyExists,
    InvalidPart,
    InvalidPartOrder,
    EntityTooSmall,
    InvalidRange,
    PreconditionFailed,
    SlowDown,
    InternalError,
    /// Any other code (sanitised: letters, digits and `.` only, at most 64 characters), or
    /// `"Unknown"` when the answer had none.
    Other(String),
}

impl S3ErrorCode {
    fn parse(code: &str) -> S3ErrorCode {
        use S3ErrorCode::*;
        match code {
            "NoSuchKey" => NoSuchKey,
            "NoSuchBucket" => NoSuchBucket,
            "NoSuchUpload" => NoSuchUpload,
            "NotFound" => NotFound,
            "AccessDenied" => AccessDenied,
            "InvalidAccessKeyId" => InvalidAccessKeyId,
            "SignatureDoesNotMatch" => SignatureDoesNotMatch,
            "RequestTimeTooSkewed" => RequestTimeTooSkewed,
            "ExpiredToken" => ExpiredToken,
            "BucketAlreadyOwnedByYou" => BucketAlreadyOwnedByYou,
            "BucketAlreadyExists" => BucketAlreadyExists,
            "InvalidPart" => InvalidPart,
            "InvalidPartOrder" => InvalidPartOrder,
            "EntityTooSmall" => EntityTooSmall,
            "InvalidRange" => InvalidRange,
            "PreconditionFailed" => PreconditionFailed,
            "SlowDown" => SlowDown,
            "InternalError" => InternalError,
            other => {
                let clean: String = other
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .take(64)
                    .collect();
                Other(if clean.is_empty() {
                    "Unknown".into()
                } else {
                    clean
                })
            }
        }
    }

    /// The code as S3 spells it.
    pub fn as_str(&self) -> &str {
        use S3ErrorCode::*;
        match self {
            NoSuchKey => "NoSuchKey",
            NoSuchBucket => "NoSuchBucket",
            NoSuchUpload => "NoSuchUpload",
            NotFound => "NotFound",
            AccessDenied => "AccessDenied",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            ExpiredToken => "ExpiredToken",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketAlreadyExists => "BucketAlreadyExists",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            EntityTooSmall => "EntityTooSmall",
            InvalidRange => "InvalidRange",
            PreconditionFailed => "PreconditionFailed",
            SlowDown => "SlowDown",
            InternalError => "InternalError",
            Other(s) => s,
        }
    }
}

/// An error answer from S3: HTTP status, `Code` and `Message`.
///
/// Only those are kept — never the `StringToSign`, `CanonicalRequest`, `SignatureProvided` or
/// `AWSAccessKeyId` some servers add — and the message is sanitised (control characters
/// dropped, at most 200 characters, and any run of 16+ key-like characters containing a digit
/// replaced by `[redacted]`), so `Display` is safe to show users and to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Error {
    status: u16,
    code: S3ErrorCode,
    message: String,
}

impl S3Error {
    /// Reads an error answer. A body without `<Error><Code>` (HEAD answers have no body) gets a
    /// code from the status: 404 → `NotFound`, 403 → `AccessDenied`, 412 → `PreconditionFailed`,
    /// 416 → `InvalidRange`, 503 → `SlowDown`, else `Other("Unknown")`.
    pub fn from_response(status: u16, body: &[u8]) -> S3Error {
        let text = String::from_utf8_lossy(body);
        let parsed = element_text(&text, "Error").and_then(|inner| {
            let code = element_text(&inner, "Code")?;
            let message = element_text(&inner, "Message").unwrap_or_default();
            Some((S3ErrorCode::parse(code.trim()), sanitize_message(&message)))
        });
        let (code, message) = parsed.unwrap_or_else(|| {
            let code = match status {
                404 => S3ErrorCode::NotFound,
                403 => S3ErrorCode::AccessDenied,
                412 => S3ErrorCode::PreconditionFailed,
                416 => S3ErrorCode::InvalidRange,
                503 => S3ErrorCode::SlowDown,
                _ => S3ErrorCode::Other("Unknown".into()),
            };
            (code, String::new())
        });
        S3Error {
            status,
            code,
            message,
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn code(&self) -> &S3ErrorCode {
        &self.code
    }

    /// The sanitised message (may be empty).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "storage error {} (HTTP {})",
            self.code.as_str(),
            self.status
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for S3Error {}

/// An answer that should have carried an element and did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedResponse {
    pub missing: &'static str,
}

impl fmt::Display for MalformedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed storage response: no <{}> element",
            self.missing
        )
    }
}

impl std::error::Error for MalformedResponse {}

/// The `UploadId` of a CreateMultipartUpload answer (check the status first).
pub fn parse_upload_id(body: &[u8]) -> Result<String, MalformedResponse> {
    let text = String::from_utf8_lossy(body);
    match element_text(&text, "UploadId") {
        Some(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => Err(MalformedResponse {
            missing: "UploadId",
        }),
    }
}

/// Checks a CompleteMultipartUpload answer, which S3 may send as `200 OK` with an `<Error>`
/// body, and returns the new object's `ETag` (empty if the answer had none).
pub fn complete_multipart_upload_result(status: u16, body: &[u8]) -> Result<String, S3Error> {
    let text = String::from_utf8_lossy(body);
    if !(200..300).contains(&status) || element_text(&text, "Error").is_some() {
        return Err(S3Error::from_response(status, body));
    }
    Ok(element_text(&text, "ETag")
        .map(|e| e.trim().to_string())
        .unwrap_or_default())
}

/// The `ETag` header (any case), as sent — quotes included, as CompleteMultipartUpload wants.
pub fn etag<I, K, V>(headers: I) -> Option<String>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<[u8]>,
{
    headers
        .into_iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case("etag"))
        .and_then(|(_, v)| {
            std::str::from_utf8(v.as_ref())
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
}

/// The decoded text between `<name…>` and the next `</name>`; `""` for `<name/>`.
fn element_text<'a>(xml: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let after = from + i + open.len();
        let rest = &xml[after..];
        match rest.chars().next() {
            Some('>') | Some(' ') | Some('\t') | Some('\r') | Some('\n') | Some('/') => {
                let gt = rest.find('>')?;
                if rest[..gt].ends_with('/') {
                    return Some(Cow::Borrowed(""));
                }
                let content = &rest[gt + 1..];
                let end = content.find(&format!("</{name}>"))?;
                return Some(xml_unescape(&content[..end]));
            }
            _ => from = after,
        }
    }
    None
}

fn xml_unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let n = if let Some(h) = entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                    {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = entity.strip_prefix('#') {
                        d.parse().ok()
                    } else {
                        None
                    };
                    n.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

const MAX_MESSAGE_CHARS: usize = 200;

/// Control characters become spaces, the text is cut to 200 characters, and every run of 16 or
/// more characters from `A-Z a-z 0-9 + / = _ -` that contains a digit (access keys, secret keys,
/// signatures, hashes) becomes `[redacted]`.
fn sanitize_message(message: &str) -> String {
    let cleaned: String = message
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    let keyish = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-');
    let mut out = String::with_capacity(cleaned.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 16 && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in cleaned.chars() {
        if keyish(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_id() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket><Key>example-object</Key>
  <UploadIdMarker>nope</UploadIdMarker>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA&amp;x</UploadId>
</InitiateMultipartUploadResult>"#;
        assert_eq!(
            parse_upload_id(body).unwrap(),
            "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA&x"
        );
        assert_eq!(
            parse_upload_id(b"<UploadId></UploadId>"),
            Err(MalformedResponse {
                missing: "UploadId"
            })
        );
        assert!(parse_upload_id(b"<UploadIdMarker>x</UploadIdMarker>").is_err());
        assert!(parse_upload_id(b"").is_err());
    }

    #[test]
    fn error_with_secrets_in_it() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY sig f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41</Message>
<AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20130524T000000Z</StringToSign><SignatureProvided>f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41</SignatureProvided></Error>"#;
        let e = S3Error::from_response(403, body);
        assert_eq!(e.code(), &S3ErrorCode::SignatureDoesNotMatch);
        assert_eq!(e.status(), 403);
        let shown = e.to_string();
        assert!(shown.starts_with("storage error SignatureDoesNotMatch (HTTP 403): The request signature we calculated"), "{shown}");
        for secret in [
            "wJalrXUtnFEMI",
            "AKIAIOSFODNN7EXAMPLE",
            "f0e8bdb87c",
            "20130524T000000Z",
            "AWS4-HMAC",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
            assert!(!format!("{e:?}").contains(secret), "{secret} in Debug");
        }
        assert!(shown.contains("Key [redacted] sig [redacted]"), "{shown}");
    }

    #[test]
    fn error_codes() {
        let e = S3Error::from_response(404, b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>");
        assert_eq!(e.code(), &S3ErrorCode::NoSuchKey);
        assert_eq!(
            e.to_string(),
            "storage error NoSuchKey (HTTP 404): The specified key does not exist."
        );
        assert_eq!(
            S3Error::from_response(404, b"").code(),
            &S3ErrorCode::NotFound
        );
        assert_eq!(
            S3Error::from_response(404, b"").to_string(),
            "storage error NotFound (HTTP 404)"
        );
        assert_eq!(
            S3Error::from_response(500, b"oops").code(),
            &S3ErrorCode::Other("Unknown".into())
        );
        let odd = S3Error::from_response(400, b"<Error><Code>Weird<script>\n</Code></Error>");
        assert_eq!(odd.code(), &S3ErrorCode::Other("Weirdscript".into()));
        let long = format!(
            "<Error><Code>X</Code><Message>{}\u{7}</Message></Error>",
            "word ".repeat(100)
        );
        let e = S3Error::from_response(400, long.as_bytes());
        assert_eq!(e.message().chars().count(), 200);
        assert!(!e.message().contains('\u{7}'));
    }

    #[test]
    fn complete_result() {
        let ok = b"<CompleteMultipartUploadResult><Location>x</Location><ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag></CompleteMultipartUploadResult>";
        assert_eq!(
            complete_multipart_upload_result(200, ok).unwrap(),
            "\"3858f62230ac3c915f300c664312c11f-9\""
        );
        let hidden = b"<?xml version=\"1.0\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>";
        let e = complete_multipart_upload_result(200, hidden).unwrap_err();
        assert_eq!((e.status(), e.code()), (200, &S3ErrorCode::InternalError));
        assert_eq!(
            complete_multipart_upload_result(400, b"")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn etag_header() {
        let h = vec![
            ("Content-Length", b"3".to_vec()),
            ("ETag", b" \"abc\" ".to_vec()),
        ];
        assert_eq!(etag(h).as_deref(), Some("\"abc\""));
        let h = [("etag".to_string(), "\"x\"".to_string())];
        assert_eq!(
            etag(h.iter().map(|(k, v)| (k, v))).as_deref(),
            Some("\"x\"")
        );
        assert_eq!(etag([("content-type", "x")]), None);
    }

    #[test]
    fn entities() {
        assert_eq!(xml_unescape("a&lt;b&#62;&#x41;&bogus;&"), "a<b>A&bogus;&");
        assert_eq!(xml_escape("<\"a&b'>"), "&lt;&quot;a&amp;b&apos;&gt;");
        assert_eq!(element_text("<A/>", "A").as_deref(), Some(""));
        assert_eq!(element_text("<A x=\"1\">t</A>", "A").as_deref(), Some("t"));
    }
}
