//! Background jobs: running one, and getting it to a runner.
//!
//! The `jobs` row (written in the transaction of the change that needs it) is the job; a Redis
//! message only says "job N is waiting". So a message lost by Redis pub/sub loses nothing: the
//! sweep ([`sweep`], triggered by a `sweep` message on the jobs channel) claims every due job
//! and every job whose runner's lease expired.

use tikspin_core::jobs::{self, CoverJob, Failed, Job};
use tikspin_core::{publish, Env};
use tikspin_media::{extract_cover, generated_cover, ReadAt, DEFAULT_MAX_LONG_SIDE};

use crate::blobs::{BlobStore, ObjectMeta};

/// The message that asks the worker to sweep instead of running one job.
pub const SWEEP_MESSAGE: &str = "sweep";

/// A stored video read by ranges, so a cover job fetches the moov and one key frame only.
struct StoredVideo<'a> {
    blobs: &'a BlobStore,
    key: &'a str,
    meta: ObjectMeta,
}

impl ReadAt for StoredVideo<'_> {
    fn len(&self) -> u64 {
        self.meta.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.blobs
            .read_range(self.key, &self.meta, offset, len as u64)
            .map_err(|e| std::io::Error::other(e.0))
    }
}

pub fn cover_key(video_id: i64) -> String {
    format!("covers/{video_id}.jpg")
}

/// Makes the cover of a video and marks it ready. A video whose frames cannot be decoded
/// (another codec, a damaged stream) gets a generated cover instead; only storage trouble is
/// an error worth retrying.
fn make_cover(env: &Env<'_>, blobs: &BlobStore, job: &CoverJob) -> Result<(), String> {
    let meta = blobs.meta(&job.play_key).map_err(|e| e.0)?;
    let jpeg = match meta {
        Some(meta) => {
            let mut source = StoredVideo { blobs, key: &job.play_key, meta };
            match extract_cover(&mut source, DEFAULT_MAX_LONG_SIDE) {
                Ok(cover) => cover.jpeg,
                Err(e) if !e.is_permanent() => return Err(format!("reading the video: {e}")),
                Err(e) => {
                    eprintln!("video {}: no cover from the stream ({e}); using a generated one", job.video_id);
                    generated_cover(job.video_id as u64, 360, 640)
                }
            }
        }
        // The object is gone (deleted by hand?): the video still deserves to become ready.
        None => generated_cover(job.video_id as u64, 360, 640),
    };
    store_cover(env, blobs, job.video_id, &jpeg)
}

fn store_cover(env: &Env<'_>, blobs: &BlobStore, video_id: i64, jpeg: &[u8]) -> Result<(), String> {
    let key = cover_key(video_id);
    blobs.put(&key, jpeg, "image/jpeg").map_err(|e| e.0)?;
    publish::cover_ready(env, video_id, &key).map_err(|e| e.msg)?;
    Ok(())
}

fn run(env: &Env<'_>, blobs: &BlobStore, job: &Job) -> Result<(), String> {
    match job.kind.as_str() {
        jobs::COVER => make_cover(env, blobs, &job.payload_as::<CoverJob>()?),
        other => Err(format!("unknown job kind {other:?}")),
    }
}

/// Claims job `job_id` and runs it; a job someone else holds, or that is done, is left alone.
pub fn run_job(env: &Env<'_>, blobs: &BlobStore, job_id: i64) -> Result<(), String> {
    let claimed = jobs::claim(env.sql, job_id, env.now_ms, jobs::DEFAULT_LEASE_MS).map_err(|e| e.to_string())?;
    match claimed {
        Some(job) => finish(env, blobs, &job, run(env, blobs, &job)),
        None => Ok(()),
    }
}

/// Claims and runs up to `limit` due or stuck jobs.
pub fn sweep(env: &Env<'_>, blobs: &BlobStore, limit: usize) -> Result<usize, String> {
    let due = jobs::claim_due(env.sql, env.now_ms, limit, jobs::DEFAULT_LEASE_MS).map_err(|e| e.to_string())?;
    let n = due.len();
    for job in due {
        let outcome = run(env, blobs, &job);
        finish(env, blobs, &job, outcome)?;
    }
    Ok(n)
}

fn finish(env: &Env<'_>, blobs: &BlobStore, job: &Job, outcome: Result<(), String>) -> Result<(), String> {
    match outcome {
        Ok(()) => jobs::complete(env.sql, job.id).map(drop).map_err(|e| e.to_string()),
        Err(error) => {
            eprintln!("job {} ({}) attempt {} failed: {error}", job.id, job.kind, job.attempt);
            let failed = jobs::fail(env.sql, job.id, &error, env.now_ms).map_err(|e| e.to_string())?;
            // Out of attempts: a video must not stay invisible forever for want of a cover.
            if failed == Failed::Dead && job.kind == jobs::COVER {
                if let Ok(cover) = job.payload_as::<CoverJob>() {
                    let jpeg = generated_cover(cover.video_id as u64, 360, 640);
                    store_cover(env, blobs, cover.video_id, &jpeg)?;
                }
            }
            Err(error)
        }
    }
}

/// Where a new job goes: with no queue configured (`redis_address` empty) it runs here and now;
/// otherwise its id is published for the worker. A failed publish falls back to running inline
/// (the row is pending either way, so the job is never lost).
pub fn dispatch(env: &Env<'_>, blobs: &BlobStore, job_id: i64, redis_address: &str, channel: &str) {
    if !redis_address.is_empty() {
        let published = spin_sdk::redis::Connection::open(redis_address)
            .and_then(|c| c.publish(channel, &job_id.to_string().into_bytes()));
        match published {
            Ok(()) => return,
            Err(e) => eprintln!("job {job_id}: publishing to Redis failed ({e:?}); running it inline"),
        }
    }
    if let Err(e) = run_job(env, blobs, job_id) {
        eprintln!("job {job_id}: {e} (it stays queued and will be retried)");
    }
}
