//! Videos and covers: the blob port, with two backends chosen by variables, not by rebuild.
//!
//! - **Embedded** (no `s3_bucket`): chunks in Spin's key-value store ([`kv`]); the `media`
//!   component serves them.
//! - **S3/MinIO** (`s3_bucket` set): objects in a bucket over outbound HTTP, SigV4-signed
//!   ([`s3`]); clients fetch them by presigned or public URLs.
//!
//! Either way an upload is streamed with memory bounded by one chunk/part, and nothing is
//! visible until it is finished: a failed or abandoned upload is aborted and leaves no object.

pub mod kv;
pub mod s3;

use serde::{Deserialize, Serialize};
use tikspin_core::videos::MediaLinks;
use tikspin_core::Urls;

/// What is known about a stored object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub content_type: String,
    /// The KV backend's chunk size (0 for S3).
    #[serde(default)]
    pub chunk: usize,
    /// A strong validator (quoted by whoever sends it as a header).
    pub etag: String,
}

/// A storage failure. Its text is for logs: it never carries keys or signatures, but users get
/// the generic `storage_failed` message, not this.
#[derive(Debug)]
pub struct BlobError(pub String);

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fresh object key that owes nothing to the client's filename.
pub fn new_key(prefix: &str, extension: &str) -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("wasi:random");
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}/{id}.{extension}")
}

pub enum BlobStore {
    Kv(kv::KvBlobs),
    S3(s3::S3Blobs),
}

pub enum Upload<'a> {
    Kv(kv::KvUpload<'a>),
    S3(s3::S3Upload<'a>),
}

impl BlobStore {
    /// The backend the deployment chose: S3 when `s3_bucket` is set, else KV.
    pub fn open() -> Result<Self, BlobError> {
        match s3::S3Blobs::from_variables()? {
            Some(s3) => Ok(Self::S3(s3)),
            None => Ok(Self::Kv(kv::KvBlobs::open()?)),
        }
    }

    pub fn begin_upload(&self, key: &str) -> Upload<'_> {
        match self {
            Self::Kv(b) => Upload::Kv(b.begin_upload(key)),
            Self::S3(b) => Upload::S3(b.begin_upload(key)),
        }
    }

    /// Stores a small object in one go (covers).
    pub async fn put(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<ObjectMeta, BlobError> {
        match self {
            Self::Kv(b) => b.put(key, bytes, content_type),
            Self::S3(b) => b.put(key, bytes, content_type).await,
        }
    }

    pub async fn meta(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError> {
        match self {
            Self::Kv(b) => b.meta(key),
            Self::S3(b) => b.meta(key).await,
        }
    }

    /// Bytes `[offset, offset + len)` of an object, clipped to its end.
    pub async fn read_range(
        &self,
        key: &str,
        meta: &ObjectMeta,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BlobError> {
        match self {
            Self::Kv(b) => b.read_range(key, meta, offset, len),
            Self::S3(b) => b.read_range(key, offset, len).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self {
            Self::Kv(b) => b.delete(key),
            Self::S3(b) => b.delete(key).await,
        }
    }

    /// Where a client fetches object `key`: `None` means "from this app" (the `media`
    /// component), `Some(url)` a presigned or public object-store URL.
    pub fn direct_url(&self, key: &str) -> Option<String> {
        match self {
            Self::Kv(_) => None,
            Self::S3(b) => Some(b.url_for(key)),
        }
    }
}

impl Upload<'_> {
    pub fn size(&self) -> u64 {
        match self {
            Self::Kv(u) => u.size(),
            Self::S3(u) => u.size(),
        }
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        match self {
            Self::Kv(u) => u.write(data),
            Self::S3(u) => u.write(data).await,
        }
    }

    /// From here on the object exists; on error nothing is left behind.
    pub async fn finish(self, content_type: &str) -> Result<ObjectMeta, BlobError> {
        match self {
            Self::Kv(u) => u.finish(content_type),
            Self::S3(u) => u.finish(content_type).await,
        }
    }

    /// Gives up: whatever was written is deleted (or the multipart upload aborted).
    pub async fn abort(self) {
        match self {
            Self::Kv(u) => u.abort(),
            Self::S3(u) => u.abort().await,
        }
    }
}

/// The URLs the core puts in `Video`: play URLs straight from the object store when there is
/// one; the cover URL always this app's stable `/media/cover/<id>.jpg`, which serves the
/// placeholder until the cover exists and then the cover (or a redirect to it).
pub struct Links<'a> {
    pub urls: Urls,
    pub store: &'a BlobStore,
}

impl MediaLinks for Links<'_> {
    fn play_url(&self, video_id: i64, play_key: &str) -> String {
        self.store
            .direct_url(play_key)
            .unwrap_or_else(|| self.urls.play_url(video_id, play_key))
    }

    fn cover_url(&self, video_id: i64) -> String {
        self.urls.cover_url(video_id)
    }

    fn cache_scope(&self) -> String {
        match self.store {
            BlobStore::Kv(_) => self.urls.cache_scope(),
            BlobStore::S3(s3) => format!("{}|{}", self.urls.cache_scope(), s3.url_scope()),
        }
    }
}
