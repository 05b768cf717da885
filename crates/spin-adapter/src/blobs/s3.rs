//! The S3/MinIO blob backend: path-style requests, SigV4-signed by `tikspin-s3`, sent with
//! Spin's outbound HTTP (the store's host must be in `allowed_outbound_hosts`).
//!
//! Uploads go up as S3 multipart uploads in [`PART`]-sized parts as the request body arrives
//! (one part in memory), or as one PutObject when the whole object fits in a part. A failed or
//! abandoned upload is aborted, so the bucket keeps no orphan parts or objects.

use sha2::{Digest, Sha256};
use spin_sdk::http::{Method, Request, Response};
use tikspin_s3::{ByteRange, Credentials, PayloadHash, S3Client, S3Config, S3Error, SignedRequest};

use super::{BlobError, ObjectMeta};
use crate::config::var;

/// S3's smallest part (all but the last part of a multipart upload must be at least this).
pub const PART: usize = 5 * 1024 * 1024;

pub struct S3Blobs {
    client: S3Client,
    /// Lifetime of presigned URLs, seconds.
    expiry: u64,
    /// A public-read bucket's base (e.g. behind a CDN): plain URLs instead of presigned ones.
    public_base: Option<String>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn signing_error(e: impl std::fmt::Display) -> BlobError {
    BlobError(format!("object store request: {e}"))
}

impl S3Blobs {
    /// `None` when no object store is configured (`s3_bucket` empty). The bucket is the switch,
    /// not the endpoint: `s3_endpoint` is also an `allowed_outbound_hosts` entry, which Spin
    /// requires to be a valid host with its default, so it cannot default to empty.
    pub fn from_variables() -> Result<Option<Self>, BlobError> {
        let bucket = var("s3_bucket");
        if bucket.trim().is_empty() {
            return Ok(None);
        }
        let region = var("s3_region");
        let config = S3Config {
            endpoint: var("s3_endpoint"),
            bucket,
            region: if region.is_empty() {
                "us-east-1".into()
            } else {
                region
            },
            credentials: Credentials::new(var("s3_access_key"), var("s3_secret_key")),
        };
        let client =
            S3Client::new(config).map_err(|e| BlobError(format!("object store settings: {e}")))?;
        let expiry = var("presign_expiry_secs")
            .trim()
            .parse::<u64>()
            .unwrap_or(3600)
            .clamp(60, 7 * 24 * 3600);
        let public = var("media_public_base_url");
        let public_base =
            (!public.trim().is_empty()).then(|| public.trim_end_matches('/').to_string());
        Ok(Some(Self {
            client,
            expiry,
            public_base,
        }))
    }

    async fn send(&self, req: SignedRequest, body: Vec<u8>) -> Result<Response, BlobError> {
        let method = match req.method.as_str() {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            other => Method::Other(other.to_string()),
        };
        let mut builder = Request::builder();
        builder.method(method).uri(req.url.as_str());
        for (name, value) in &req.headers {
            builder.header(name.as_str(), value.as_str());
        }
        builder.header("content-length", body.len().to_string());
        let request = builder.body(body).build();
        spin_sdk::http::send::<_, Response>(request)
            .await
            .map_err(|e| BlobError(format!("object store unreachable: {e}")))
    }

    /// Sends and insists on a 2xx answer; an S3 error body becomes a (secret-free) message.
    async fn expect_ok(&self, req: SignedRequest, body: Vec<u8>) -> Result<Response, BlobError> {
        let resp = self.send(req, body).await?;
        if (200..300).contains(resp.status()) {
            Ok(resp)
        } else {
            Err(BlobError(format!(
                "object store refused: {}",
                S3Error::from_response(*resp.status(), resp.body())
            )))
        }
    }

    pub fn begin_upload(&self, key: &str) -> S3Upload<'_> {
        S3Upload {
            store: self,
            key: key.to_string(),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            size: 0,
            hash: Sha256::new(),
        }
    }

    pub async fn put(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<ObjectMeta, BlobError> {
        let req = self
            .client
            .put_object(key, PayloadHash::of(bytes), Some(content_type), unix_now())
            .map_err(signing_error)?;
        let resp = self.expect_ok(req, bytes.to_vec()).await?;
        let etag = tikspin_s3::etag(resp.headers().map(|(k, v)| (k, v.as_str().unwrap_or(""))))
            .unwrap_or_default();
        Ok(ObjectMeta {
            size: bytes.len() as u64,
            content_type: content_type.to_string(),
            chunk: 0,
            etag: etag.trim_matches('"').to_string(),
        })
    }

    pub async fn meta(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError> {
        let req = self
            .client
            .head_object(key, unix_now())
            .map_err(signing_error)?;
        let resp = self.send(req, Vec::new()).await?;
        match *resp.status() {
            404 => Ok(None),
            200 => {
                let header = |name: &str| {
                    resp.header(name)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                Ok(Some(ObjectMeta {
                    size: header("content-length").parse().unwrap_or(0),
                    content_type: header("content-type"),
                    chunk: 0,
                    etag: header("etag").trim_matches('"').to_string(),
                }))
            }
            status => Err(BlobError(format!("object store HEAD answered {status}"))),
        }
    }

    pub async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, BlobError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let range = ByteRange::FromTo(offset, offset + len - 1);
        let req = self
            .client
            .get_object(key, Some(range), unix_now())
            .map_err(signing_error)?;
        Ok(self.expect_ok(req, Vec::new()).await?.into_body())
    }

    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let req = self
            .client
            .delete_object(key, unix_now())
            .map_err(signing_error)?;
        self.expect_ok(req, Vec::new()).await.map(drop)
    }

    /// Presigned URLs are signed at the start of a window of half their lifetime, so every
    /// URL handed out stays valid for at least half of `expiry`, and all URLs of one window
    /// are identical (cacheable pages). [`Self::url_scope`] names the window.
    fn window_start(&self) -> u64 {
        let window = (self.expiry / 2).max(1);
        let now = unix_now();
        now - now % window
    }

    pub fn url_for(&self, key: &str) -> String {
        match &self.public_base {
            Some(base) => format!("{base}/{key}"),
            None => self
                .client
                .presign_get(key, self.expiry, self.window_start())
                .unwrap_or_else(|e| {
                    eprintln!("presigning failed: {e}");
                    String::new()
                }),
        }
    }

    pub fn url_scope(&self) -> String {
        match &self.public_base {
            Some(base) => format!("public:{base}"),
            None => format!("s3:{}:{}", self.client.bucket(), self.window_start()),
        }
    }
}

/// An upload in progress.
pub struct S3Upload<'a> {
    store: &'a S3Blobs,
    key: String,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<(u32, String)>,
    size: u64,
    hash: Sha256,
}

impl S3Upload<'_> {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills the part buffer up to exactly [`PART`] (never past it, so it never reallocates)
    /// and sends each full part before taking more.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), BlobError> {
        self.size += data.len() as u64;
        self.hash.update(data);
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(PART);
            }
            let take = (PART - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == PART {
                let part = std::mem::take(&mut self.buf);
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<(), BlobError> {
        let store = self.store;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                // The type is fixed at creation; uploads are sniffed as MP4 (MOV plays as such).
                let req = store
                    .client
                    .create_multipart_upload(&self.key, Some("video/mp4"), unix_now())
                    .map_err(signing_error)?;
                let resp = store.expect_ok(req, Vec::new()).await?;
                let id = tikspin_s3::parse_upload_id(resp.body())
                    .map_err(|e| BlobError(format!("object store: {e}")))?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as u32 + 1;
        let req = store
            .client
            .upload_part(
                &self.key,
                &upload_id,
                number,
                PayloadHash::of(&part),
                unix_now(),
            )
            .map_err(signing_error)?;
        let resp = store.expect_ok(req, part).await?;
        let etag = tikspin_s3::etag(resp.headers().map(|(k, v)| (k, v.as_str().unwrap_or(""))))
            .ok_or_else(|| BlobError("object store: a part came back without an ETag".into()))?;
        self.parts.push((number, etag));
        Ok(())
    }

    pub async fn finish(mut self, content_type: &str) -> Result<ObjectMeta, BlobError> {
        let result = self.complete(content_type).await;
        if result.is_err() {
            self.discard().await;
        }
        result
    }

    async fn complete(&mut self, content_type: &str) -> Result<ObjectMeta, BlobError> {
        let store = self.store;
        let Some(upload_id) = self.upload_id.clone() else {
            // Small enough for one request.
            let body = std::mem::take(&mut self.buf);
            return store.put(&self.key, &body, content_type).await;
        };
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.send_part(last).await?;
        }
        let xml = tikspin_s3::complete_multipart_upload_body(&self.parts).map_err(signing_error)?;
        let req = store
            .client
            .complete_multipart_upload(
                &self.key,
                &upload_id,
                PayloadHash::of(xml.as_bytes()),
                unix_now(),
            )
            .map_err(signing_error)?;
        let resp = store.send(req, xml.into_bytes()).await?;
        let etag = tikspin_s3::complete_multipart_upload_result(*resp.status(), resp.body())
            .map_err(|e| BlobError(format!("object store refused to complete the upload: {e}")))?;
        self.upload_id = None; // completed: nothing left to abort
        Ok(ObjectMeta {
            size: self.size,
            content_type: "video/mp4".into(),
            chunk: 0,
            etag: etag.trim_matches('"').to_string(),
        })
    }

    pub async fn abort(mut self) {
        self.discard().await;
    }

    async fn discard(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            if let Ok(req) =
                self.store
                    .client
                    .abort_multipart_upload(&self.key, &upload_id, unix_now())
            {
                if let Err(e) = self.store.expect_ok(req, Vec::new()).await {
                    eprintln!("aborting the upload of {} failed: {e}", self.key);
                }
            }
        }
        self.buf = Vec::new();
    }
}
