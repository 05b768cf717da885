//! Request builders for the S3 operations TikSpin uses (path-style addressing).

use std::fmt;

use crate::config::{ConfigError, Endpoint, S3Config};
use crate::sigv4::{
    canonical_query, encode_path, Credentials, PayloadHash, PresignError, RequestParts, Signer,
};

/// HTTP methods the builders use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed request, ready for an HTTP client. The caller supplies the body (the one whose
/// hash was given, or any body for [`PayloadHash::Unsigned`]).
///
/// `headers` does **not** include `Host`: the client must send the URL's authority as `Host`
/// (every client does; `wasi:http` forbids setting it by hand), and that is what was signed.
/// Nor does it include `Content-Length`, which is not signed and is the client's business.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl SignedRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for SignedRequest {
    /// Leaves out the `Authorization` value (it carries a signature).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let v = if n.eq_ignore_ascii_case("authorization") {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (n.as_str(), v)
            })
            .collect();
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .finish()
    }
}

/// A byte range for GetObject (inclusive, as in HTTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`
    FromTo(u64, u64),
    /// `bytes=first-`
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The `Range` header value; `None` for an empty range (`last < first`, or a suffix of 0).
    pub fn header_value(self) -> Option<String> {
        match self {
            ByteRange::FromTo(a, b) if a <= b => Some(format!("bytes={a}-{b}")),
            ByteRange::From(a) => Some(format!("bytes={a}-")),
            ByteRange::Suffix(n) if n > 0 => Some(format!("bytes=-{n}")),
            _ => None,
        }
    }
}

/// A request that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Object keys must be 1–1024 bytes with no `.` or `..` segment (clients and proxies
    /// collapse those, which would sign one path and fetch another).
    InvalidKey(&'static str),
    /// Part numbers run from 1 to 10000.
    InvalidPartNumber(u32),
    EmptyUploadId,
    /// CompleteMultipartUpload needs at least one part, in ascending part-number order.
    InvalidPartList(&'static str),
    EmptyRange,
    Presign(PresignError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::InvalidKey(why) => write!(f, "invalid object key: {why}"),
            RequestError::InvalidPartNumber(n) => {
                write!(f, "invalid part number {n} (must be 1..=10000)")
            }
            RequestError::EmptyUploadId => f.write_str("the upload id is empty"),
            RequestError::InvalidPartList(why) => write!(f, "invalid part list: {why}"),
            RequestError::EmptyRange => f.write_str("the byte range is empty"),
            RequestError::Presign(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<PresignError> for RequestError {
    fn from(e: PresignError) -> Self {
        RequestError::Presign(e)
    }
}

/// Builds signed requests for one bucket. Holds the secret key; `Debug` does not show it.
#[derive(Clone, Debug)]
pub struct S3Client {
    endpoint: Endpoint,
    bucket: String,
    signer: Signer,
    credentials: Credentials,
}

impl S3Client {
    /// Validates `config` (see [`S3Config::validate`]).
    pub fn new(config: S3Config) -> Result<S3Client, ConfigError> {
        let endpoint = config.validate()?;
        Ok(S3Client {
            endpoint,
            bucket: config.bucket,
            signer: Signer::s3(config.region.trim()),
            credentials: config.credentials,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// PutObject. `payload` is the hash of the body the caller will send (or `Unsigned`).
    pub fn put_object(
        &self,
        key: &str,
        payload: PayloadHash,
        content_type: Option<&str>,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        let extra: Vec<(String, String)> = content_type
            .map(|t| ("content-type".to_string(), t.to_string()))
            .into_iter()
            .collect();
        self.object(Method::Put, key, Vec::new(), extra, payload, unix_secs)
    }

    /// GetObject, optionally of a byte range (the answer is then 206 Partial Content).
    pub fn get_object(
        &self,
        key: &str,
        range: Option<ByteRange>,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        let mut extra = Vec::new();
        if let Some(r) = range {
            extra.push((
                "range".to_string(),
                r.header_value().ok_or(RequestError::EmptyRange)?,
            ));
        }
        self.object(
            Method::Get,
            key,
            Vec::new(),
            extra,
            PayloadHash::empty(),
            unix_secs,
        )
    }

    /// HeadObject.
    pub fn head_object(&self, key: &str, unix_secs: u64) -> Result<SignedRequest, RequestError> {
        self.object(
            Method::Head,
            key,
            Vec::new(),
            Vec::new(),
            PayloadHash::empty(),
            unix_secs,
        )
    }

    /// DeleteObject (S3 answers 204 whether or not the key existed).
    pub fn delete_object(&self, key: &str, unix_secs: u64) -> Result<SignedRequest, RequestError> {
        self.object(
            Method::Delete,
            key,
            Vec::new(),
            Vec::new(),
            PayloadHash::empty(),
            unix_secs,
        )
    }

    /// CreateMultipartUpload (`POST /bucket/key?uploads`, empty body); read the id from the
    /// answer with [`crate::parse_upload_id`].
    pub fn create_multipart_upload(
        &self,
        key: &str,
        content_type: Option<&str>,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        let extra: Vec<(String, String)> = content_type
            .map(|t| ("content-type".to_string(), t.to_string()))
            .into_iter()
            .collect();
        let query = vec![("uploads".to_string(), String::new())];
        self.object(
            Method::Post,
            key,
            query,
            extra,
            PayloadHash::empty(),
            unix_secs,
        )
    }

    /// UploadPart (`PUT /bucket/key?partNumber=N&uploadId=…`). Every part but the last must be
    /// at least 5 MiB; keep the `ETag` of each answer ([`crate::etag`]).
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        payload: PayloadHash,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        check_part_number(part_number)?;
        let query = vec![
            ("partNumber".to_string(), part_number.to_string()),
            (
                "uploadId".to_string(),
                check_upload_id(upload_id)?.to_string(),
            ),
        ];
        self.object(Method::Put, key, query, Vec::new(), payload, unix_secs)
    }

    /// CompleteMultipartUpload (`POST /bucket/key?uploadId=…`). The body is
    /// [`complete_multipart_upload_body`]; `payload` is its hash. Check the answer with
    /// [`crate::complete_multipart_upload_result`]: S3 can answer 200 with an error inside.
    pub fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        payload: PayloadHash,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        let query = vec![(
            "uploadId".to_string(),
            check_upload_id(upload_id)?.to_string(),
        )];
        self.object(Method::Post, key, query, Vec::new(), payload, unix_secs)
    }

    /// AbortMultipartUpload (`DELETE /bucket/key?uploadId=…`): drops the uploaded parts.
    pub fn abort_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        let query = vec![(
            "uploadId".to_string(),
            check_upload_id(upload_id)?.to_string(),
        )];
        self.object(
            Method::Delete,
            key,
            query,
            Vec::new(),
            PayloadHash::empty(),
            unix_secs,
        )
    }

    /// CreateBucket for the configured bucket, with an empty body (fine for MinIO and in AWS's
    /// us-east-1; AWS elsewhere wants a `CreateBucketConfiguration` body). Meant for test setup.
    pub fn create_bucket(&self, unix_secs: u64) -> SignedRequest {
        self.sign(
            Method::Put,
            &format!("/{}", self.bucket),
            Vec::new(),
            Vec::new(),
            PayloadHash::empty(),
            unix_secs,
        )
    }

    /// A presigned GET URL for `key`, valid for `expires_secs` (1 s to 7 days) from `unix_secs`.
    pub fn presign_get(
        &self,
        key: &str,
        expires_secs: u64,
        unix_secs: u64,
    ) -> Result<String, RequestError> {
        let path = self.object_path(key)?;
        let query = self.signer.presign(
            &self.credentials,
            Method::Get.as_str(),
            &self.endpoint.host,
            &path,
            &[],
            expires_secs,
            unix_secs,
        )?;
        Ok(format!(
            "{}{}?{query}",
            self.endpoint.base_url(),
            encode_path(&path)
        ))
    }

    fn object_path(&self, key: &str) -> Result<String, RequestError> {
        check_key(key)?;
        Ok(format!("/{}/{key}", self.bucket))
    }

    fn object(
        &self,
        method: Method,
        key: &str,
        query: Vec<(String, String)>,
        extra_headers: Vec<(String, String)>,
        payload: PayloadHash,
        unix_secs: u64,
    ) -> Result<SignedRequest, RequestError> {
        let path = self.object_path(key)?;
        Ok(self.sign(method, &path, query, extra_headers, payload, unix_secs))
    }

    fn sign(
        &self,
        method: Method,
        path: &str,
        query: Vec<(String, String)>,
        mut headers: Vec<(String, String)>,
        payload: PayloadHash,
        unix_secs: u64,
    ) -> SignedRequest {
        headers.push(("x-amz-content-sha256".to_string(), payload.value()));
        let sig = self.signer.sign_headers(
            &self.credentials,
            &RequestParts {
                method: method.as_str(),
                host: &self.endpoint.host,
                path,
                query: &query,
                headers: &headers,
            },
            &payload,
            unix_secs,
        );
        headers.push(("x-amz-date".to_string(), sig.amz_date));
        headers.push(("authorization".to_string(), sig.authorization));
        let mut url = format!("{}{}", self.endpoint.base_url(), encode_path(path));
        if !query.is_empty() {
            url.push('?');
            url.push_str(&canonical_query(&query));
        }
        SignedRequest {
            method,
            url,
            headers,
        }
    }
}

fn check_key(key: &str) -> Result<(), RequestError> {
    if key.is_empty() {
        return Err(RequestError::InvalidKey("it is empty"));
    }
    if key.len() > 1024 {
        return Err(RequestError::InvalidKey("it is longer than 1024 bytes"));
    }
    if key.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(RequestError::InvalidKey("it has a '.' or '..' segment"));
    }
    Ok(())
}

fn check_part_number(n: u32) -> Result<(), RequestError> {
    if (1..=10_000).contains(&n) {
        Ok(())
    } else {
        Err(RequestError::InvalidPartNumber(n))
    }
}

fn check_upload_id(id: &str) -> Result<&str, RequestError> {
    if id.trim().is_empty() {
        Err(RequestError::EmptyUploadId)
    } else {
        Ok(id)
    }
}

/// The CompleteMultipartUpload body for `(part number, ETag)` pairs, which must be in strictly
/// ascending part-number order. ETags are sent quoted, as S3 returned them (quotes are added if
/// missing) and XML-escaped.
pub fn complete_multipart_upload_body<S: AsRef<str>>(
    parts: &[(u32, S)],
) -> Result<String, RequestError> {
    if parts.is_empty() {
        return Err(RequestError::InvalidPartList("no parts"));
    }
    let mut body =
        String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    let mut last = 0u32;
    for (number, etag) in parts {
        check_part_number(*number)?;
        if *number <= last {
            return Err(RequestError::InvalidPartList(
                "part numbers must be strictly ascending",
            ));
        }
        last = *number;
        let etag = etag.as_ref().trim();
        if etag.is_empty() || etag == "\"\"" {
            return Err(RequestError::InvalidPartList("an ETag is empty"));
        }
        let quoted = if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
            etag.to_string()
        } else {
            format!("\"{etag}\"")
        };
        body.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            crate::response::xml_escape(&quoted)
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> S3Client {
        S3Client::new(S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "videos".into(),
            region: "us-east-1".into(),
            credentials: Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
        })
        .unwrap()
    }

    const T: u64 = 1_440_938_160;

    #[test]
    fn urls_are_path_style_and_encoded() {
        let c = client();
        let r = c
            .get_object("a b/ü$.mp4", Some(ByteRange::FromTo(0, 9)), T)
            .unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.url, "http://127.0.0.1:9000/videos/a%20b/%C3%BC%24.mp4");
        assert_eq!(r.header("Range"), Some("bytes=0-9"));
        assert_eq!(r.header("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            r.header("x-amz-content-sha256"),
            Some(PayloadHash::empty().value().as_str())
        );
        let auth = r.header("authorization").unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature="
        ));
        assert!(r.header("host").is_none());
        assert!(!format!("{r:?}").contains("Signature="));
    }

    #[test]
    fn multipart_queries() {
        let c = client();
        let r = c
            .create_multipart_upload("v.mp4", Some("video/mp4"), T)
            .unwrap();
        assert_eq!(
            (r.method, r.url.as_str()),
            (Method::Post, "http://127.0.0.1:9000/videos/v.mp4?uploads=")
        );
        assert!(r
            .header("authorization")
            .unwrap()
            .contains("SignedHeaders=content-type;host;"));
        let r = c
            .upload_part("v.mp4", "id/+=", 2, PayloadHash::Unsigned, T)
            .unwrap();
        assert_eq!(
            r.url,
            "http://127.0.0.1:9000/videos/v.mp4?partNumber=2&uploadId=id%2F%2B%3D"
        );
        assert_eq!(r.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
        let r = c.abort_multipart_upload("v.mp4", "x", T).unwrap();
        assert_eq!(
            (r.method, r.url.as_str()),
            (
                Method::Delete,
                "http://127.0.0.1:9000/videos/v.mp4?uploadId=x"
            )
        );
        assert_eq!(
            c.upload_part("v.mp4", "x", 0, PayloadHash::Unsigned, T),
            Err(RequestError::InvalidPartNumber(0))
        );
        assert_eq!(
            c.upload_part("v.mp4", "x", 10_001, PayloadHash::Unsigned, T),
            Err(RequestError::InvalidPartNumber(10_001))
        );
        assert_eq!(
            c.complete_multipart_upload("v.mp4", " ", PayloadHash::empty(), T),
            Err(RequestError::EmptyUploadId)
        );
        assert_eq!(c.create_bucket(T).url, "http://127.0.0.1:9000/videos");
    }

    #[test]
    fn bad_keys_and_ranges() {
        let c = client();
        for key in ["", "a/../b", "./a", "a/.", ".."] {
            assert!(
                matches!(c.head_object(key, T), Err(RequestError::InvalidKey(_))),
                "{key:?}"
            );
        }
        assert!(c.head_object(&"k".repeat(1025), T).is_err());
        assert!(c.head_object("a/.../b", T).is_ok());
        assert_eq!(
            c.get_object("k", Some(ByteRange::FromTo(5, 4)), T),
            Err(RequestError::EmptyRange)
        );
        assert_eq!(
            c.get_object("k", Some(ByteRange::Suffix(0)), T),
            Err(RequestError::EmptyRange)
        );
        assert_eq!(ByteRange::Suffix(500).header_value().unwrap(), "bytes=-500");
        assert_eq!(ByteRange::From(7).header_value().unwrap(), "bytes=7-");
    }

    #[test]
    fn presign_limits() {
        let c = client();
        assert!(c.presign_get("k", 604_800, T).is_ok());
        for bad in [0, 604_801] {
            assert_eq!(
                c.presign_get("k", bad, T),
                Err(RequestError::Presign(PresignError::InvalidExpires(bad)))
            );
        }
        let url = c.presign_get("a b.mp4", 60, T).unwrap();
        assert!(url.starts_with("http://127.0.0.1:9000/videos/a%20b.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="), "{url}");
    }

    #[test]
    fn complete_body() {
        let body = complete_multipart_upload_body(&[(1, "\"a&b\""), (2, "c")]).unwrap();
        assert_eq!(
            body,
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Part><PartNumber>1</PartNumber><ETag>&quot;a&amp;b&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>&quot;c&quot;</ETag></Part>\
             </CompleteMultipartUpload>"
        );
        let none: [(u32, &str); 0] = [];
        assert!(complete_multipart_upload_body(&none).is_err());
        assert!(complete_multipart_upload_body(&[(2, "a"), (1, "b")]).is_err());
        assert!(complete_multipart_upload_body(&[(1, "a"), (1, "b")]).is_err());
        assert!(complete_multipart_upload_body(&[(1, "")]).is_err());
    }
}
