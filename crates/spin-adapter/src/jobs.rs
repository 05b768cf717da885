//! Background jobs: running one, and getting it to a runner.
//!
//! The `jobs` row (written in the transaction of the change that needs it) is the job; a Redis
//! message only says "job N is waiting". So a message lost by Redis pub/sub loses nothing: the
//! sweep ([`sweep`], triggered by a `sweep` message on the jobs channel) claims every due job
//! and every job whose runner's lease expired.

use tikspin_core::jobs::{self, CoverJob, Failed, Failure, Job};
use tikspin_core::{publish, Env};
use tikspin_media::{extract_cover, generated_cover, MediaError, ReadAt, DEFAULT_MAX_LONG_SIDE};

use crate::blobs::{BlobStore, ObjectMeta};

/// The message that asks the worker to sweep instead of running one job.
pub const SWEEP_MESSAGE: &str = "sweep";

/// The ranges of a stored video that a cover extraction asked for, fetched ahead.
///
/// Extraction is synchronous (`ReadAt`) but storage may be remote (S3), so it runs against
/// this cache: a read it cannot answer records the range and fails; the caller fetches that
/// range (at least [`MIN_FETCH`]) and runs it again. A cover needs the moov and one key frame,
/// so this settles in two or three rounds.
struct Prefetched {
    size: u64,
    ranges: Vec<(u64, Vec<u8>)>,
    missing: Option<(u64, u64)>,
}

const MIN_FETCH: u64 = 256 * 1024;
const MAX_ROUNDS: usize = 8;

impl ReadAt for Prefetched {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let end = offset.saturating_add(len as u64).min(self.size);
        for (start, bytes) in &self.ranges {
            if *start <= offset && end <= start + bytes.len() as u64 {
                return Ok(bytes[(offset - start) as usize..(end - start) as usize].to_vec());
            }
        }
        self.missing = Some((offset, end.saturating_sub(offset)));
        Err(std::io::Error::other("range not fetched yet"))
    }
}

/// The cover, and how many bytes of the video it took to make it.
async fn extract(
    blobs: &BlobStore,
    key: &str,
    meta: &ObjectMeta,
) -> (Result<Vec<u8>, MediaError>, u64) {
    let mut source = Prefetched {
        size: meta.size,
        ranges: Vec::new(),
        missing: None,
    };
    let fetched = |s: &Prefetched| s.ranges.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
    for _ in 0..MAX_ROUNDS {
        match extract_cover(&mut source, DEFAULT_MAX_LONG_SIDE) {
            Ok(cover) => return (Ok(cover.jpeg), fetched(&source)),
            Err(e) => {
                let Some((offset, len)) = source.missing.take() else {
                    return (Err(e), fetched(&source));
                };
                match blobs
                    .read_range(key, meta, offset, len.max(MIN_FETCH))
                    .await
                {
                    Ok(bytes) => source.ranges.push((offset, bytes)),
                    Err(e) => return (Err(MediaError::Source(e.0)), fetched(&source)),
                }
            }
        }
    }
    (
        Err(MediaError::Source(
            "the cover needed more reads than expected".into(),
        )),
        fetched(&source),
    )
}

pub fn cover_key(video_id: i64) -> String {
    format!("covers/{video_id}.jpg")
}

/// Makes the cover of a video and marks it ready. A video whose frames cannot be decoded
/// (another codec, a damaged stream) gets a generated cover instead; only storage trouble is
/// an error worth retrying.
async fn make_cover(env: &Env<'_>, blobs: &BlobStore, job: &CoverJob) -> Result<(), String> {
    let meta = blobs.meta(&job.play_key).await.map_err(|e| e.0)?;
    let jpeg = match meta {
        Some(meta) => {
            let started = std::time::Instant::now();
            let (extracted, fetched) = extract(blobs, &job.play_key, &meta).await;
            // A measurement the operator can read in the component's log.
            println!(
                "video {}: cover extraction took {} ms, reading {fetched} of {} bytes",
                job.video_id,
                started.elapsed().as_millis(),
                meta.size
            );
            match extracted {
                Ok(jpeg) => jpeg,
                Err(e) if !e.is_permanent() => return Err(format!("reading the video: {e}")),
                Err(e) => {
                    eprintln!(
                        "video {}: no cover from the stream ({e}); using a generated one",
                        job.video_id
                    );
                    generated_cover(job.video_id as u64, 360, 640)
                }
            }
        }
        // The object is gone (deleted by hand?): the video still deserves to become ready.
        None => generated_cover(job.video_id as u64, 360, 640),
    };
    store_cover(env, blobs, job.video_id, &jpeg).await
}

async fn store_cover(
    env: &Env<'_>,
    blobs: &BlobStore,
    video_id: i64,
    jpeg: &[u8],
) -> Result<(), String> {
    let key = cover_key(video_id);
    blobs.put(&key, jpeg, "image/jpeg").await.map_err(|e| e.0)?;
    publish::cover_ready(env, video_id, &key).map_err(|e| e.msg)?;
    Ok(())
}

/// A failed run: what went wrong, and whether waiting can fix it.
type RunError = (String, Failure);

async fn run(env: &Env<'_>, blobs: &BlobStore, job: &Job) -> Result<(), RunError> {
    match job.kind.as_str() {
        jobs::COVER => {
            let cover = job
                .payload_as::<CoverJob>()
                .map_err(|e| (e, Failure::Permanent))?;
            // What is left to fail once the payload is good is storage and the database: a
            // video that cannot be decoded already gets a generated cover.
            make_cover(env, blobs, &cover)
                .await
                .map_err(|e| (e, Failure::Transient))
        }
        other => Err((format!("unknown job kind {other:?}"), Failure::Permanent)),
    }
}

/// Claims job `job_id` and runs it; a job someone else holds, or that is done, is left alone.
pub async fn run_job(env: &Env<'_>, blobs: &BlobStore, job_id: i64) -> Result<(), String> {
    let claimed = jobs::claim(env.sql, job_id, env.now_ms, jobs::DEFAULT_LEASE_MS)
        .map_err(|e| e.to_string())?;
    match claimed {
        Some(job) => {
            let outcome = run(env, blobs, &job).await;
            finish(env, blobs, &job, outcome).await
        }
        None => Ok(()),
    }
}

/// Claims and runs up to `limit` due or stuck jobs.
pub async fn sweep(env: &Env<'_>, blobs: &BlobStore, limit: usize) -> Result<usize, String> {
    let due = jobs::claim_due(env.sql, env.now_ms, limit, jobs::DEFAULT_LEASE_MS)
        .map_err(|e| e.to_string())?;
    let n = due.len();
    for job in due {
        let outcome = run(env, blobs, &job).await;
        // One job's failure is recorded on its row; the sweep goes on with the others.
        let _ = finish(env, blobs, &job, outcome).await;
    }
    Ok(n)
}

async fn finish(
    env: &Env<'_>,
    blobs: &BlobStore,
    job: &Job,
    outcome: Result<(), RunError>,
) -> Result<(), String> {
    match outcome {
        Ok(()) => jobs::complete(env.sql, job.id)
            .map(drop)
            .map_err(|e| e.to_string()),
        Err((error, failure)) => {
            eprintln!(
                "job {} ({}) attempt {} failed: {error}",
                job.id, job.kind, job.attempt
            );
            let failed = jobs::fail(env.sql, job.id, &error, failure, env.now_ms)
                .map_err(|e| e.to_string())?;
            // Out of attempts: a video must not stay invisible forever for want of a cover.
            if failed == Failed::Dead && job.kind == jobs::COVER {
                if let Ok(cover) = job.payload_as::<CoverJob>() {
                    let jpeg = generated_cover(cover.video_id as u64, 360, 640);
                    store_cover(env, blobs, cover.video_id, &jpeg).await?;
                }
            }
            Err(error)
        }
    }
}

/// Where a new job goes: with no queue configured (`redis_address` empty) it runs here and now;
/// otherwise its id is published for the worker. A publish that fails, or that no worker hears
/// (Redis answers 0 receivers: the worker is between subscriptions after a Redis restart, or not
/// running), falls back to running the job inline — the row is pending either way, so the job is
/// never lost, and this way it is not late either.
///
/// `trace` is the publishing request's W3C `traceparent`, if it came with a well-formed one: it
/// rides after the job id (`<id> <traceparent>`) so that the worker's span can link to the
/// request's trace (docs/observability.md, "Traces"). The worker reads the first word only.
pub async fn dispatch(
    env: &Env<'_>,
    blobs: &BlobStore,
    job_id: i64,
    redis_address: &str,
    channel: &str,
    trace: Option<&str>,
) {
    if !redis_address.is_empty() {
        match publish(redis_address, channel, &job_message(job_id, trace)) {
            Ok(receivers) if receivers > 0 => return,
            Ok(_) => {
                eprintln!("job {job_id}: no worker is listening on {channel}; running it inline")
            }
            Err(e) => {
                eprintln!("job {job_id}: publishing to Redis failed ({e}); running it inline")
            }
        }
    }
    if let Err(e) = run_job(env, blobs, job_id).await {
        eprintln!("job {job_id}: {e} (it stays queued and will be retried)");
    }
}

/// The job message: the id, then the `traceparent` when it has the W3C shape (version `00`,
/// 32 and 16 lower-case hex digits, flags), so nothing else from a header reaches the queue.
pub fn job_message(job_id: i64, trace: Option<&str>) -> String {
    match trace.filter(|t| is_traceparent(t)) {
        Some(t) => format!("{job_id} {t}"),
        None => job_id.to_string(),
    }
}

fn is_traceparent(t: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = t.split('-').collect();
    matches!(parts.as_slice(), ["00", trace, span, flags]
        if hex(trace, 32) && hex(span, 16) && hex(flags, 2))
}

/// The job id a message names (its first word), whatever follows it.
pub fn job_id_of(message: &str) -> Option<i64> {
    message.split_whitespace().next()?.parse().ok()
}

/// `PUBLISH channel message`, returning how many subscribers received it (Spin's `publish` does
/// not say; `execute` returns Redis's own reply).
fn publish(redis_address: &str, channel: &str, message: &str) -> Result<i64, String> {
    use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
    let reply = Connection::open(redis_address)
        .and_then(|c| {
            c.execute(
                "PUBLISH",
                &[
                    RedisParameter::Binary(channel.as_bytes().to_vec()),
                    RedisParameter::Binary(message.as_bytes().to_vec()),
                ],
            )
        })
        .map_err(|e| format!("{e:?}"))?;
    match reply.first() {
        Some(RedisResult::Int64(n)) => Ok(*n),
        other => Err(format!("unexpected PUBLISH reply {other:?}")),
    }
}

/// How often requests look for stranded jobs ([`redrive_stranded`]), at most.
pub const REDRIVE_EVERY_MS: i64 = 3_000;
/// Stranded jobs one request re-drives at most (the next look takes the rest).
const REDRIVE_BATCH: usize = 4;
/// When the next look for stranded jobs is due (a millisecond timestamp), shared by every
/// instance through the key-value store.
const NEXT_REDRIVE_KEY: &str = "tikspin:jobs:next-redrive";

/// Re-drives jobs whose wake-up went astray ([`jobs::stranded`]): a message lost or unheard, a
/// retry come due, a runner killed under its lease. Called by ordinary requests (the feed,
/// publish) and by the worker after each message, at most once every [`REDRIVE_EVERY_MS`]
/// across instances, so recovery needs no cron and no host-side timer: Spin has neither.
/// Best effort: whatever fails here is left for the next look, and the request goes on.
pub async fn redrive_stranded(
    env: &Env<'_>,
    blobs: &BlobStore,
    redis_address: &str,
    channel: &str,
) {
    let due = match env.kv.get(NEXT_REDRIVE_KEY) {
        Ok(Some(v)) => String::from_utf8_lossy(&v)
            .parse::<i64>()
            .map_or(true, |next| env.now_ms >= next),
        Ok(None) => true,
        // Key-value down: looking would only pile more work on a struggling system.
        Err(_) => false,
    };
    if !due {
        return;
    }
    let next = (env.now_ms + REDRIVE_EVERY_MS).to_string();
    if env.kv.set(NEXT_REDRIVE_KEY, next.as_bytes()).is_err() {
        return;
    }
    let stranded = match jobs::stranded(env.sql, env.now_ms, REDRIVE_BATCH) {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("looking for stranded jobs failed: {e}");
            return;
        }
    };
    for job_id in stranded {
        eprintln!("job {job_id}: stranded; re-driving it");
        dispatch(env, blobs, job_id, redis_address, channel, None).await;
    }
}
