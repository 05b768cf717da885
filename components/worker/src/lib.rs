//! The worker: runs jobs whose ids arrive on the jobs channel (`[[trigger.redis]]`), and sweeps
//! on a `sweep` message — claiming every due job and every job whose runner's lease expired.
//! Pub/sub may drop a message; the `jobs` row never is, so a periodic `sweep` (see the README)
//! makes every job run.

use bytes::Bytes;
use spin_sdk::redis_component;
use tikspin_spin::blobs::BlobStore;
use tikspin_spin::config::var;
use tikspin_spin::http::{Ports, RequestHead};
use tikspin_spin::jobs::{self, SWEEP_MESSAGE};

/// Jobs one sweep message runs at most (the next sweep takes the rest).
const SWEEP_BATCH: usize = 50;

#[redis_component]
async fn on_message(message: Bytes) -> anyhow::Result<()> {
    let text = String::from_utf8_lossy(&message).trim().to_string();
    // No request here: the ports come from the component's variables alone.
    let head = RequestHead::background();
    let ports = Ports::open(&head).map_err(|e| anyhow::anyhow!(e.msg))?;
    let env = ports.env();
    let blobs = BlobStore::open().map_err(|e| anyhow::anyhow!(e.0))?;
    if text == SWEEP_MESSAGE {
        let n = jobs::sweep(&env, &blobs, SWEEP_BATCH)
            .await
            .map_err(anyhow::Error::msg)?;
        eprintln!("sweep ran {n} job(s)");
        return Ok(());
    }
    // `<id>` or `<id> <traceparent>` (the host's span links to the trace; the id is all we need).
    let job_id = jobs::job_id_of(&text).ok_or_else(|| anyhow::anyhow!("not a job id: {text:?}"))?;
    let ran = jobs::run_job(&env, &blobs, job_id).await;
    // After a restart the first messages are the first chance to notice jobs stranded under the
    // dead worker's leases.
    jobs::redrive_stranded(&env, &blobs, &var("redis_address"), &var("jobs_channel")).await;
    ran.map_err(anyhow::Error::msg)
}
