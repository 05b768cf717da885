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

/// Attempts before a job is declared `dead` (kept for inspection, never retried).
pub const MAX_ATTEMPTS: i64 = 5;
/// The first retry waits this long; each further retry twice as long, up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 5_000;
pub const MAX_BACKOFF_MS: i64 = 10 * 60 * 1_000;
/// A sensible lease for the cover job: long enough for a decode, short enough to re-drive soon.
pub const DEFAULT_LEASE_MS: i64 = 60_000;

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
                        OR (state = 'running' AND locked_until <= ? AND attempts < ?))",
        &[
            locked_until.into(),
            job_id.into(),
            now_ms.into(),
            now_ms.into(),
            MAX_ATTEMPTS.into(),
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
    sql.execute(
        "UPDATE jobs SET state = 'dead', locked_until = NULL, \
         last_error = 'lease expired on the last attempt' \
         WHERE state = 'running' AND locked_until <= ? AND attempts >= ?",
        &[now_ms.into(), MAX_ATTEMPTS.into()],
    )?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let candidates = sql.query(
        "SELECT id FROM jobs \
         WHERE (state = 'pending' AND run_at <= ?) OR (state = 'running' AND locked_until <= ?) \
         ORDER BY run_at, id LIMIT ?",
        &[now_ms.into(), now_ms.into(), Value::Int(limit as i64)],
    )?;
    let mut jobs = Vec::new();
    for row in candidates.iter() {
        if let Some(job) = claim(sql, row.i64(0)?, now_ms, lease_ms)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
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

/// Records a failed run: back to pending after an exponential backoff
/// ([`FIRST_BACKOFF_MS`] × 2^(attempt−1), capped), or `dead` after [`MAX_ATTEMPTS`] runs.
pub fn fail(sql: &dyn Sql, job_id: i64, error: &str, now_ms: i64) -> Result<Failed, SqlError> {
    let rows = sql.query(
        "SELECT attempts FROM jobs WHERE id = ? AND state = 'running'",
        &[job_id.into()],
    )?;
    let Some(attempts) = rows.first().map(|r| r.i64(0)).transpose()? else {
        return Ok(Failed::Ignored);
    };
    let error: String = error.chars().take(2_000).collect();
    let (state, run_at, outcome) = if attempts >= MAX_ATTEMPTS {
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
