//! `tikspin-s3`: a sans-IO S3 client core for TikSpin's Spin components.
//!
//! The crate builds SigV4-signed requests and reads S3's answers; the component does the I/O
//! (Spin outbound HTTP). Nothing here reads a clock, the environment or the network: the time
//! is passed in as Unix seconds.
//!
//! ```
//! use tikspin_s3::{Credentials, PayloadHash, S3Client, S3Config};
//!
//! let s3 = S3Client::new(S3Config {
//!     endpoint: "http://127.0.0.1:9000".into(),
//!     bucket: "videos".into(),
//!     region: "us-east-1".into(),
//!     credentials: Credentials::new("minio", "minio-secret"),
//! })?;
//! let body = b"hello";
//! let req = s3.put_object("u/1/clip.mp4", PayloadHash::of(body), Some("video/mp4"), 1_700_000_000)?;
//! assert_eq!(req.url, "http://127.0.0.1:9000/videos/u/1/clip.mp4");
//! // Send req.method to req.url with req.headers and `body`; Host comes from the URL.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`sigv4`]: [`Signer`] (header signing and presigned URLs), [`Credentials`], [`PayloadHash`].
//! * Builders on [`S3Client`] return a [`SignedRequest`]: PutObject, GetObject (optional
//!   [`ByteRange`]), HeadObject, DeleteObject, CreateMultipartUpload, UploadPart,
//!   CompleteMultipartUpload (body from [`complete_multipart_upload_body`]),
//!   AbortMultipartUpload, CreateBucket, and [`S3Client::presign_get`].
//! * Answers: [`S3Error::from_response`], [`parse_upload_id`], [`etag`],
//!   [`complete_multipart_upload_result`]. XML is read by a small targeted scanner (see
//!   [`response`] for what it does and does not handle).
//!
//! # Tests
//!
//! `cargo test -p tikspin-s3` checks the signer against AWS's published SigV4 test-suite and
//! S3-documentation examples. The live test against a real signature-verifying server is behind
//! the cargo feature **`live`**: `cargo test -p tikspin-s3 --features live`. It runs the
//! `s3s-fs` binary named by the env var `TIKSPIN_S3S_FS` (a path), else `s3s-fs` on `PATH`, and
//! **fails** (it does not skip) when there is none; install it with
//! `cargo install s3s-fs@0.14.1 --features binary --locked` (~4.5 min).

pub mod config;
pub mod ops;
pub mod response;
pub mod sigv4;

pub use config::{ConfigError, Endpoint, S3Config};
pub use ops::{
    complete_multipart_upload_body, ByteRange, Method, RequestError, S3Client, SignedRequest,
};
pub use response::{
    complete_multipart_upload_result, etag, parse_upload_id, MalformedResponse, S3Error,
    S3ErrorCode,
};
pub use sigv4::{
    Credentials, HeaderSignature, PayloadHash, PresignError, RequestParts, Signer,
    MAX_PRESIGN_EXPIRES_SECS, UNSIGNED_PAYLOAD,
};
