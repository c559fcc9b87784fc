//! One assignment from acquisition to Complete or Fail: fetch the bundle, render, poster,
//! upload, report. A stopped or stale attempt is dropped without a report.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::v1::{Artifact, Assignment, CompleteRequest, FailRequest, FailureClass};
use tokio::sync::OwnedSemaphorePermit;
use tonic::Status;
use tracing::{debug, error, info, info_span, warn, Instrument as _};

use crate::client::{self, Backoff};
use crate::error::AttemptError;
use crate::metrics::seconds;
use crate::render::{self, Job};
use crate::running::{Running, Stage};
use crate::segments::StreamPublisher;
use crate::upload::upload;
use crate::Shared;

/// How long Complete and Fail are retried while the coordinator is unreachable.
const REPORT_RETRY_FOR: Duration = Duration::from_secs(60);

/// What a successful attempt reports.
struct Finished {
    warnings: Vec<String>,
    stage_seconds: BTreeMap<String, f64>,
}

/// Runs one assignment to its end. `permit` holds its slot; `acquired_at` is when the Acquire
/// answer that carried it arrived (its lease is taken to run from there).
pub(crate) async fn run(
    shared: Arc<Shared>,
    assignment: Assignment,
    permit: Option<OwnedSemaphorePermit>,
    acquired_at: Instant,
    worker_id: String,
    generation: u64,
) {
    let Some(attempt) = assignment.attempt.clone() else {
        warn!("the coordinator sent an assignment without an attempt reference; ignored");
        return;
    };
    let span = info_span!(
        "attempt",
        render_id = %attempt.render_id,
        attempt = %attempt.attempt_id,
        epoch = attempt.lease_epoch,
        number = assignment.attempt_number,
    );
    async move {
        let _permit = permit;
        let _busy = shared.metrics.busy_slot();
        let tracked = shared.running.track(Arc::new(Running::new(
            attempt,
            worker_id,
            generation,
            acquired_at,
        )));
        let running = &tracked.running;
        if shared.session().generation != generation {
            // Registered again between the Acquire and now: the attempt is gone with the old
            // registration.
            running.stop(crate::running::StopReason::Reregistered);
        }
        if shared.config.noop {
            let outcome = until_stopped(running, async {
                tokio::time::sleep(shared.config.noop_time).await;
                Ok(Finished {
                    warnings: Vec::new(),
                    stage_seconds: BTreeMap::new(),
                })
            })
            .await;
            report(&shared, running, outcome).await;
            return;
        }
        info!(
            template = %assignment.template_name,
            version = assignment.template_version,
            "attempt started"
        );
        // The attempt id names a folder: only accept ids that cannot point outside it.
        if !is_safe_name(&running.attempt.attempt_id) {
            let error = AttemptError::failed(
                FailureClass::Infrastructure,
                "the coordinator sent an attempt id that is not a plain name (letters, digits, `-`, `_`)",
            );
            report(&shared, running, Err(error)).await;
            return;
        }
        let work_dir = shared.work_dir.join(&running.attempt.attempt_id);
        let outcome = execute(&shared, &assignment, running, &work_dir).await;
        report(&shared, running, outcome).await;
        if let Err(e) = tokio::fs::remove_dir_all(&work_dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(dir = %work_dir.display(), "cannot remove the attempt's work folder: {e}");
            }
        }
    }
    .instrument(span)
    .await;
}

/// 1..=128 ASCII letters, digits, `-` and `_`: safe as a folder name.
fn is_safe_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Runs `work` until it ends or the attempt is stopped, whichever comes first.
async fn until_stopped<T>(
    running: &Running,
    work: impl Future<Output = Result<T, AttemptError>>,
) -> Result<T, AttemptError> {
    tokio::select! {
        result = work => result,
        reason = running.wait_stopped() => Err(AttemptError::Stopped(reason)),
    }
}

async fn execute(
    shared: &Arc<Shared>,
    assignment: &Assignment,
    running: &Arc<Running>,
    work_dir: &std::path::Path,
) -> Result<Finished, AttemptError> {
    let attempt = &running.attempt;
    let mut stage_seconds = BTreeMap::new();

    running.set_stage(Stage::FetchTemplate);
    let t = Instant::now();
    let template_dir = until_stopped(
        running,
        shared.templates.ensure(
            &shared.client,
            &running.worker_id,
            attempt,
            &assignment.template_digest,
        ),
    )
    .instrument(info_span!("stage", stage = "fetch_template"))
    .await?;
    stage_seconds.insert("fetch_template".to_owned(), seconds(t.elapsed()));

    tokio::fs::create_dir_all(work_dir).await.map_err(|e| {
        AttemptError::failed(
            FailureClass::Infrastructure,
            format!("cannot create {}: {e}", work_dir.display()),
        )
    })?;
    let job = Job {
        template_dir,
        lang: assignment.lang.clone(),
        tokens: assignment.tokens.clone(),
        preset: render::preset(assignment.preset),
        work_dir: work_dir.to_owned(),
        stream: Some(StreamPublisher {
            client: shared.client.clone(),
            worker_id: running.worker_id.clone(),
            attempt: attempt.clone(),
            handle: tokio::runtime::Handle::current(),
        }),
        acquired: running.acquired_at,
    };
    // Awaited to its end even when stopped: the render loop sees the stop at its next frame, and
    // the renderer goes back to the pool before the slot is freed.
    let blocking = {
        let shared = Arc::clone(shared);
        let running = Arc::clone(running);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let smart = render::Smart {
                cache: shared.segments.as_deref(),
                encoders: &shared.encoders,
            };
            span.in_scope(|| render::render_job(&shared.gpu, smart, job, &running))
        })
    };
    let rendered = blocking.await.map_err(|e| {
        AttemptError::failed(
            FailureClass::Application,
            format!("the render thread panicked: {e}"),
        )
    })??;
    let timings = &rendered.report.timings;
    stage_seconds.insert("render".to_owned(), seconds(rendered.render_time));
    stage_seconds.insert("poster".to_owned(), seconds(rendered.poster_time));
    if let Some(d) = rendered.first_playable {
        stage_seconds.insert("first_playable".to_owned(), seconds(d));
    }
    for (name, d) in [
        ("prepare", timings.prepare),
        ("rasterize", timings.rasterize),
        ("audio", timings.audio),
        ("decode", timings.decode),
        ("gpu", timings.gpu),
        ("encode", timings.encode),
    ] {
        stage_seconds.insert(name.to_owned(), seconds(d));
    }
    if let Some(reason) = running.stopped() {
        return Err(AttemptError::Stopped(reason));
    }

    running.set_stage(Stage::Upload);
    let t = Instant::now();
    until_stopped(running, async {
        for (artifact, path) in [
            (Artifact::Video, &rendered.video),
            (Artifact::Poster, &rendered.poster),
        ] {
            upload(&shared.client, &running.worker_id, attempt, artifact, path).await?;
        }
        Ok(())
    })
    .instrument(info_span!("stage", stage = "upload"))
    .await?;
    stage_seconds.insert("upload".to_owned(), seconds(t.elapsed()));

    Ok(Finished {
        warnings: rendered.report.warnings,
        stage_seconds,
    })
}

/// Sends Complete or Fail for a finished attempt (retrying while the coordinator is away), or
/// drops a stopped or stale one, and counts the outcome.
async fn report(shared: &Shared, running: &Running, outcome: Result<Finished, AttemptError>) {
    let attempt = &running.attempt;
    let outcome_label = match outcome {
        Ok(finished) => {
            let request = CompleteRequest {
                worker_id: running.worker_id.clone(),
                attempt: Some(attempt.clone()),
                warnings: finished.warnings,
                stage_seconds: finished.stage_seconds,
            };
            let stages = request.stage_seconds.clone();
            let sent = send_report(shared, running, "Complete", move |mut c| {
                let request = request.clone();
                async move {
                    c.complete(client::request(request, client::UNARY_TIMEOUT))
                        .await
                        .map(|r| r.into_inner().duplicate)
                }
            })
            .await;
            match sent {
                Reported::Yes(duplicate) => {
                    if shared.config.noop {
                        // Benchmarks run thousands of these a second.
                        debug!(duplicate, "attempt completed");
                    } else {
                        info!(duplicate, "attempt completed");
                    }
                    for (stage, secs) in &stages {
                        shared.metrics.stage(stage, *secs);
                    }
                    "completed"
                }
                Reported::No(label) => label,
            }
        }
        Err(AttemptError::Failed { class, message }) => {
            warn!(class = class.as_str_name(), detail = %message, "attempt failed");
            let request = FailRequest {
                worker_id: running.worker_id.clone(),
                attempt: Some(attempt.clone()),
                class: class as i32,
                message,
            };
            let sent = send_report(shared, running, "Fail", move |mut c| {
                let request = request.clone();
                async move {
                    c.fail(client::request(request, client::UNARY_TIMEOUT))
                        .await
                        .map(|r| r.into_inner().will_retry)
                }
            })
            .await;
            match sent {
                Reported::Yes(will_retry) => {
                    info!(will_retry, "failure reported");
                    "failed"
                }
                Reported::No(label) => label,
            }
        }
        Err(AttemptError::Stopped(reason)) => {
            info!(%reason, "attempt stopped; its work is discarded");
            reason.outcome()
        }
        Err(AttemptError::Stale(message)) => {
            info!(detail = %message, "attempt is no longer this worker's; its work is discarded");
            "discarded"
        }
    };
    shared.metrics.attempt(outcome_label);
}

enum Reported<T> {
    Yes(T),
    /// Not reported; the outcome label to count.
    No(&'static str),
}

/// Sends a report, retrying transient failures for up to [`REPORT_RETRY_FOR`]; gives up at once
/// on a stale attempt, or when the attempt is stopped meanwhile.
async fn send_report<T, F, Fut>(
    shared: &Shared,
    running: &Running,
    what: &'static str,
    mut call: F,
) -> Reported<T>
where
    F: FnMut(crate::client::Client) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(8));
    loop {
        if let Some(reason) = running.stopped() {
            info!(%reason, "attempt stopped before it could be reported; discarded");
            return Reported::No(reason.outcome());
        }
        let result =
            client::with_deadline(client::UNARY_TIMEOUT, call(shared.client.clone())).await;
        let status = match result {
            Ok(value) => return Reported::Yes(value),
            Err(status) => status,
        };
        if client::is_stale(&status) {
            info!(
                code = ?status.code(),
                detail = status.message(),
                "{what} refused: the attempt is no longer this worker's; discarded"
            );
            return Reported::No("discarded");
        }
        if !client::is_transient(&status) || started.elapsed() >= REPORT_RETRY_FOR {
            error!(
                code = ?status.code(),
                detail = status.message(),
                "{what} failed; giving up on this attempt"
            );
            return Reported::No("discarded");
        }
        let delay = backoff.after(&status);
        warn!(code = ?status.code(), detail = status.message(), ?delay, "{what} failed; retrying");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            reason = running.wait_stopped() => {
                info!(%reason, "attempt stopped before it could be reported; discarded");
                return Reported::No(reason.outcome());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_ids_must_be_plain_names() {
        assert!(is_safe_name("0b5d7c3e-5f0e-4c1e-9f55-1b2d3c4d5e6f"));
        assert!(!is_safe_name(""));
        assert!(!is_safe_name(".."));
        assert!(!is_safe_name("../templates"));
        assert!(!is_safe_name("a/b"));
        assert!(!is_safe_name(&"a".repeat(129)));
    }
}
