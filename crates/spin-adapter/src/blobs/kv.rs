//! The embedded blob backend, on Spin's key-value store.
//!
//! Layout in KV: an object `K` is chunks `blob:K:0`, `blob:K:1`, … of [`CHUNK`] bytes (Spin's
//! stores promise values up to 1 MB) and a meta record `blob:K:meta` written LAST. The meta is
//! the commit point: an upload that fails or is abandoned never has one, is invisible to
//! readers, and [`KvUpload::abort`] deletes its chunks. Memory per upload is one chunk, whatever
//! the video's size.

use sha2::{Digest, Sha256};
use spin_sdk::key_value::Store;

use super::{BlobError, ObjectMeta};

pub const CHUNK: usize = 512 * 1024;

fn kv_err(e: spin_sdk::key_value::Error) -> BlobError {
    BlobError(format!("key-value: {e:?}"))
}

fn meta_key(key: &str) -> String {
    format!("blob:{key}:meta")
}

fn chunk_key(key: &str, index: u64) -> String {
    format!("blob:{key}:{index}")
}

pub struct KvBlobs {
    kv: Store,
}

impl KvBlobs {
    pub fn open() -> Result<Self, BlobError> {
        Ok(Self {
            kv: Store::open_default().map_err(kv_err)?,
        })
    }

    pub fn begin_upload(&self, key: &str) -> KvUpload<'_> {
        KvUpload {
            store: self,
            key: key.to_string(),
            buf: Vec::with_capacity(CHUNK),
            written: 0,
            size: 0,
            hash: Sha256::new(),
        }
    }

    /// Stores a small object in one go (covers).
    pub fn put(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<ObjectMeta, BlobError> {
        let mut upload = self.begin_upload(key);
        upload.write(bytes)?;
        upload.finish(content_type)
    }

    pub fn meta(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError> {
        match self.kv.get(&meta_key(key)).map_err(kv_err)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| BlobError(format!("meta of {key}: {e}"))),
            None => Ok(None),
        }
    }

    /// Bytes `[offset, offset + len)` of a committed object, clipped to its end.
    pub fn read_range(
        &self,
        key: &str,
        meta: &ObjectMeta,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BlobError> {
        let end = offset.saturating_add(len).min(meta.size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let chunk = meta.chunk as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / chunk;
            let bytes = self
                .kv
                .get(&chunk_key(key, index))
                .map_err(kv_err)?
                .ok_or_else(|| BlobError(format!("{key}: chunk {index} is missing")))?;
            let start = (pos - index * chunk) as usize;
            let stop = ((end - index * chunk) as usize).min(bytes.len());
            if start >= stop {
                return Err(BlobError(format!("{key}: chunk {index} is short")));
            }
            out.extend_from_slice(&bytes[start..stop]);
            pos = index * chunk + stop as u64;
        }
        Ok(out)
    }

    /// One stored chunk, for streaming a response chunk by chunk.
    pub fn chunk(&self, key: &str, index: u64) -> Result<Vec<u8>, BlobError> {
        self.kv
            .get(&chunk_key(key, index))
            .map_err(kv_err)?
            .ok_or_else(|| BlobError(format!("{key}: chunk {index} is missing")))
    }

    /// Removes an object: the meta first, so readers stop seeing it before its chunks go.
    pub fn delete(&self, key: &str) -> Result<(), BlobError> {
        let meta = self.meta(key)?;
        self.kv.delete(&meta_key(key)).map_err(kv_err)?;
        if let Some(meta) = meta {
            let chunks = meta.size.div_ceil(meta.chunk as u64);
            for i in 0..chunks {
                self.kv.delete(&chunk_key(key, i)).map_err(kv_err)?;
            }
        }
        Ok(())
    }
}

/// An upload in progress: chunks are written as data arrives; nothing is visible until
/// [`KvUpload::finish`].
pub struct KvUpload<'a> {
    store: &'a KvBlobs,
    key: String,
    buf: Vec<u8>,
    written: u64,
    size: u64,
    hash: Sha256,
}

impl KvUpload<'_> {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), BlobError> {
        self.size += data.len() as u64;
        self.hash.update(data);
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlobError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.store
            .kv
            .set(&chunk_key(&self.key, self.written), &self.buf)
            .map_err(kv_err)?;
        self.written += 1;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last chunk and then the meta record: from here on the object exists.
    pub fn finish(mut self, content_type: &str) -> Result<ObjectMeta, BlobError> {
        let result = (|| {
            self.flush()?;
            let digest = std::mem::take(&mut self.hash).finalize();
            let meta = ObjectMeta {
                size: self.size,
                content_type: content_type.to_string(),
                chunk: CHUNK,
                etag: digest[..16].iter().map(|b| format!("{b:02x}")).collect(),
            };
            let bytes = serde_json::to_vec(&meta).map_err(|e| BlobError(e.to_string()))?;
            self.store
                .kv
                .set(&meta_key(&self.key), &bytes)
                .map_err(kv_err)?;
            Ok(meta)
        })();
        if result.is_err() {
            self.discard();
        }
        result
    }

    /// Gives up: deletes every chunk written so far.
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        for i in 0..self.written {
            let _ = self.store.kv.delete(&chunk_key(&self.key, i));
        }
        self.written = 0;
        self.buf.clear();
    }
}
