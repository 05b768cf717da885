//! The outbox: background jobs as rows of the `jobs` table (ARCHITECTURE.md §3, §5).
//!
//! The row *is* the job. A request that needs background work inserts the job with
//! [`enqueue`] in the same transaction as the change that needs it (a rolled-back publish leaves
//! neither a video nor a job), and after COMMIT it may wake a worker (Redis pub/sub, or inline):
//! the wake-up carries only the job id and may be lost, the row may not.
//!
//! States: `pending` → (claim) → `running` → [`complete`] → `done`, or [`fail`] → `pending`
//! again with a later `run_at` (exponential backoff), or `dead` after [`MAX_ATTEMPTS`].
//!
//! Claiming is one conditional UPDATE (`WHERE id = ? AND (pending and due, or running with an
//! expired lease)`), so two workers woken for the same job cannot both take it: the database
//! lets exactly one UPDATE match. The claimer holds a lease (`locked_until`); a worker that
//! dies mid-job (an instance killed, a lost connection) simply never completes it, its lease
//! expires, and the next sweep ([`claim_due`], run periodically by the worker and by anyone who
//! wants to re-drive) takes the job again. So every job runs at least once, and handlers must be
//! idempotent (making a cover twice stores the same cover twice). A stuck job costs one lease,
//! not the job.
//!
//! [`complete`] and [`fail`] are idempotent and harmless on a job that already left `running`
//! (completing twice does nothing; failing a completed job does nothing).

use serde::{Deserialize, Serialize};

use crate::db::{execute_counted, insert};
use crate::ports::{Row, Sql, SqlError, Value};

/// The cover of a freshly published video: payload [`CoverJob`].
pub const COVER: &str = "cover";

/// Runs that may fail for the job itself (a bad payload, a crash that never reports) before it
/// is declared `dead` (kept for inspection, never retried).
pub const MAX_ATTEMPTS: i64 = 5;
/// How long a job that fails only because a dependency is unavailable (storage, database) keeps
/// being retried, counted from its creation, whatever its attempts: an outage shorter than this
/// costs a wait, never the real result.
pub const TRANSIENT_RETRY_WINDOW_MS: i64 = 60 * 60 * 1_000;
/// The first retry waits this long; each further retry twice as long, up to [`MAX_BACKOFF_MS`].
/// Capped low so a job waits at most this long after its dependency is back.
pub const FIRST_BACKOFF_MS: i64 = 2_000;
pub const MAX_BACKOFF_MS: i64 = 8_000;
/// The lease of a claimed job, sized to the cover job: covers of the sample videos take well
/// under 2 s (the worker logs each), so 10 s leaves room for a loaded machine while a job whose
/// runner died (a killed host) is re-driven about 10 s after its claim.
pub const DEFAULT_LEASE_MS: i64 = 10_000;
/// A pending job this long past due was not claimed by the worker its wake-up was sent to (the
/// message was lost, or nobody was listening): re-drive it. A received wake-up is claimed
/// within milliseconds.
pub const REDRIVE_GRACE_MS: i64 = 2_000;

pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";

/// The payload of a [`COVER`] job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverJob {
    pub video_id: i64,
    pub play_key: String,
}

/// A claimed job. `attempt` counts this run (1 for the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub attempt: i64,
    pub locked_until: i64,
}

impl Job {
    /// The payload as JSON of type `T`.
    pub fn payload_as<T: for<'de> Deserialize<'de>>(&self) -> Result<T, String> {
        serde_json::from_str(&self.payload)
            .map_err(|e| format!("job {} ({}): bad payload: {e}", self.id, self.kind))
    }
}

/// What [`fail`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// Back to `pending`, due again at `run_at`.
    Retry { run_at: i64 },
    /// Out of attempts: `dead`.
    Dead,
    /// The job was not `running` (already completed, failed, or unknown): nothing changed.
    Ignored,
}

/// Inserts a pending job due now; returns its id. Call it inside the transaction of the change
/// the job belongs to.
pub fn enqueue(tx: &dyn Sql, kind: &str, payload: &str, now_ms: i64) -> Result<i64, SqlError> {
    insert(
        tx,
        "INSERT INTO jobs (kind, payload, state, attempts, run_at, created_at) \
         VALUES (?, ?, 'pending', 0, ?, ?)",
        &[kind.into(), payload.into(), now_ms.into(), now_ms.into()],
    )
}

/// Takes job `job_id` if it is due (pending with `run_at <= now`) or its previous lease expired
/// with attempts left; `None` if someone else holds it, it is not due, finished, or unknown.
/// Atomic: one UPDATE.
pub fn claim(
    sql: &dyn Sql,
    job_id: i64,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Job>, SqlError> {
    let locked_until = now_ms.saturating_add(lease_ms.max(1));
    let claimed = execute_counted(
        sql,
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = ? \
         WHERE id = ? AND ((state = 'pending' AND run_at <= ?) \
                        OR (state = 'running' AND locked_until <= ? \
                            AND (attempts < ? OR (last_error IS NOT NULL AND created_at > ?))))",
        &[
            locked_until.into(),
            job_id.into(),
            now_ms.into(),
            now_ms.into(),
            MAX_ATTEMPTS.into(),
            now_ms.saturating_sub(TRANSIENT_RETRY_WINDOW_MS).into(),
        ],
    )?;
    if claimed == 0 {
        return Ok(None);
    }
    let rows = sql.query(
        "SELECT id, kind, payload, attempts, locked_until FROM jobs WHERE id = ?",
        &[job_id.into()],
    )?;
    rows.first().map(|row| job_from_row(&row)).transpose()
}

/// The sweep: buries jobs whose last allowed run lost its lease (`dead`), then claims up to
/// `limit` due jobs (pending and due, or running with an expired lease), oldest due first. Each is claimed with [`claim`], so a job another worker took between the
/// scan and the claim is skipped, never run twice.
pub fn claim_due(
    sql: &dyn Sql,
    now_ms: i64,
    limit: usize,
    lease_ms: i64,
) -> Result<Vec<Job>, SqlError> {
    // A job whose runs keep dying without a word (a trap, an out-of-memory kill) never reaches
    // `fail`: after its last lease it is buried here instead of being re-driven forever.
    bury_crashed(sql, now_ms)?;
    let mut jobs = Vec::new();
    for id in due_ids(sql, now_ms, now_ms, limit)? {
        if let Some(job) = claim(sql, id, now_ms, lease_ms)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// A job whose runs keep dying without a word (a trap, an out-of-memory kill) never reaches
/// [`fail`]: after [`MAX_ATTEMPTS`] lost leases it is buried instead of being re-driven for ever
/// — unless its failures so far were recorded ones (a dependency down) and its retry window is
/// still open, in which case a lost lease is just one more of them (the host was killed).
fn bury_crashed(sql: &dyn Sql, now_ms: i64) -> Result<(), SqlError> {
    sql.execute(
        "UPDATE jobs SET state = 'dead', locked_until = NULL, \
         last_error = 'lease expired on the last attempt' \
         WHERE state = 'running' AND locked_until <= ? AND attempts >= ? \
           AND (last_error IS NULL OR created_at <= ?)",
        &[
            now_ms.into(),
            MAX_ATTEMPTS.into(),
            now_ms.saturating_sub(TRANSIENT_RETRY_WINDOW_MS).into(),
        ],
    )?;
    Ok(())
}

/// Up to `limit` jobs someone should run: pending with `run_at <= due_by`, or running with a
/// lease expired at `now_ms`; oldest due first.
fn due_ids(sql: &dyn Sql, due_by: i64, now_ms: i64, limit: usize) -> Result<Vec<i64>, SqlError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = sql.query(
        "SELECT id FROM jobs \
         WHERE (state = 'pending' AND run_at <= ?) OR (state = 'running' AND locked_until <= ?) \
         ORDER BY run_at, id LIMIT ?",
        &[due_by.into(), now_ms.into(), Value::Int(limit as i64)],
    )?;
    rows.iter().map(|r| r.i64(0)).collect()
}

/// Jobs whose wake-up went astray: pending [`REDRIVE_GRACE_MS`] past due (a lost or unheard
/// message, a retry come due) or running under an expired lease (a dead runner). Not claimed:
/// the caller wakes a runner for each (or runs it), and the claim decides who runs it.
pub fn stranded(sql: &dyn Sql, now_ms: i64, limit: usize) -> Result<Vec<i64>, SqlError> {
    bury_crashed(sql, now_ms)?;
    due_ids(sql, now_ms - REDRIVE_GRACE_MS, now_ms, limit)
}

/// Marks a running job done. Returns whether this call did it (false: already done, dead,
/// pending again, or unknown); either way the outcome is the same, so completing twice is fine.
pub fn complete(sql: &dyn Sql, job_id: i64) -> Result<bool, SqlError> {
    Ok(execute_counted(
        sql,
        "UPDATE jobs SET state = 'done', locked_until = NULL, last_error = NULL \
         WHERE id = ? AND state = 'running'",
        &[job_id.into()],
    )? > 0)
}

/// Why a run failed, which decides how long the job keeps being retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A dependency was unavailable (storage, network): retried within
    /// [`TRANSIENT_RETRY_WINDOW_MS`] of the job's creation, however many attempts that takes.
    Transient,
    /// The job itself is at fault: retried until [`MAX_ATTEMPTS`].
    Permanent,
}

/// Records a failed run: back to pending after an exponential backoff
/// ([`FIRST_BACKOFF_MS`] × 2^(attempt−1), capped), or `dead` when its retries are spent (see
/// [`Failure`]).
pub fn fail(
    sql: &dyn Sql,
    job_id: i64,
    error: &str,
    failure: Failure,
    now_ms: i64,
) -> Result<Failed, SqlError> {
    let rows = sql.query(
        "SELECT attempts, created_at FROM jobs WHERE id = ? AND state = 'running'",
        &[job_id.into()],
    )?;
    let Some((attempts, created_at)) = rows
        .first()
        .map(|r| Ok::<_, SqlError>((r.i64(0)?, r.i64(1)?)))
        .transpose()?
    else {
        return Ok(Failed::Ignored);
    };
    let error: String = error.chars().take(2_000).collect();
    let spent = match failure {
        Failure::Transient => now_ms.saturating_sub(created_at) >= TRANSIENT_RETRY_WINDOW_MS,
        Failure::Permanent => attempts >= MAX_ATTEMPTS,
    };
    let (state, run_at, outcome) = if spent {
        (DEAD, now_ms, Failed::Dead)
    } else {
        let run_at = now_ms.saturating_add(backoff_ms(attempts));
        (PENDING, run_at, Failed::Retry { run_at })
    };
    // `attempts = ?` makes the read-then-write safe: if another worker re-claimed the job in
    // between (our lease had expired), its run owns the job now and this failure is stale.
    let changed = execute_counted(
        sql,
        "UPDATE jobs SET state = ?, run_at = ?, locked_until = NULL, last_error = ? \
         WHERE id = ? AND state = 'running' AND attempts = ?",
        &[
            state.into(),
            run_at.into(),
            error.into(),
            job_id.into(),
            attempts.into(),
        ],
    )?;
    Ok(if changed > 0 {
        outcome
    } else {
        Failed::Ignored
    })
}

/// The wait before the retry that follows run number `attempts` (1-based).
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = (attempts - 1).clamp(0, 30) as u32;
    FIRST_BACKOFF_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

/// A job's state (`pending`, `running`, `done`, `dead`), `None` if unknown: for tests and admin.
pub fn state(sql: &dyn Sql, job_id: i64) -> Result<Option<String>, SqlError> {
    let rows = sql.query("SELECT state FROM jobs WHERE id = ?", &[job_id.into()])?;
    rows.first()
        .map(|r| r.text(0).map(str::to_owned))
        .transpose()
}

fn job_from_row(row: &Row<'_>) -> Result<Job, SqlError> {
    Ok(Job {
        id: row.i64(0)?,
        kind: row.text(1)?.to_owned(),
        payload: row.text(2)?.to_owned(),
        attempt: row.i64(3)?,
        locked_until: row.opt_i64(4)?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1), FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(2), 2 * FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(3), 4 * FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(0), FIRST_BACKOFF_MS);
    }
}
