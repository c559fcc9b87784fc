//! Deletes the files of losing attempts once their render has finished.
//!
//! An attempt that uploaded its output and then lost its lease (its worker died or stalled, the
//! render went to another attempt) leaves files that nothing references. Every finished render
//! writes an outbox row; this task follows the outbox from a stored position, and for each
//! finished render that may have such files (more than one attempt, or failed or cancelled
//! after one) deletes every attempt's files but the committed attempt's, then forgets their
//! rows. The position is stored after the files are gone, so a crash in between only repeats
//! deletions. An upload refused as stale is deleted by the upload itself.
//!
//! **Invariant:** the committed attempt's files are never touched: they are the render's
//! output, and the listing keeps everything under that attempt's prefix.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::service::Shared;

/// The outbox position of the cleanup.
const CURSOR: &str = "output-cleanup";

/// Outbox rows looked at per store query.
const BATCH: u32 = 200;

/// How often the task looks for finished renders.
const EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop` says so.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        match pass(&shared).await {
            Ok(0) => {}
            Ok(files) => {
                tracing::info!(files, "deleted the files of losing attempts");
                shared.metrics.leftovers_deleted(files as u64);
            }
            Err(e) => tracing::warn!(error = %e, "cleaning up losing attempts' files failed"),
        }
    }
}

/// Cleans every finished render the outbox has recorded since the last pass; returns how many
/// files were deleted.
pub(crate) async fn pass(shared: &Shared) -> anyhow::Result<usize> {
    let mut files = 0;
    loop {
        let after = shared.store.cursor(CURSOR).await?;
        let (leftovers, last) = shared.store.leftovers_after(after, BATCH).await?;
        if last == after {
            return Ok(files);
        }
        for l in &leftovers {
            let keep = l.keep_attempt.as_deref();
            files += shared
                .blobs
                .delete_attempts_except(&l.tenant_id, &l.job_id, keep)
                .await?;
            shared.store.forget_outputs(&l.job_id, keep).await?;
        }
        shared.store.set_cursor(CURSOR, last).await?;
    }
}
