//! The process around a farm: the async runtime, the shutdown signal, and the order in which
//! GPU objects are destroyed.

use std::future::Future;

use anyhow::{Context, Result};
use worker::{Gpu, WorkerConfig};

/// A multi-threaded runtime for the async commands.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs `f` with a GPU pool for in-process workers on a new runtime, shuts the runtime down
/// (every one of its threads has exited), then destroys the renderers in the pool on this
/// thread: GPU objects go last, after every thread that used the driver (see [`Gpu`]).
pub fn run<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(Gpu) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let gpu = Gpu::new();
    let rt = runtime()?;
    let result = rt.block_on(f(gpu.clone()));
    drop(rt);
    tracing::debug!("async runtime shut down");
    gpu.close();
    result
}

/// Runs one worker process until SIGTERM or Ctrl-C, then drains it (see [`worker::run`]); a
/// second signal gives its running renders back at once (see [`worker::run_with_force`]).
pub fn work(config: WorkerConfig) -> Result<()> {
    run(|gpu| async move {
        let (count, signals) = tokio::sync::watch::channel(0u32);
        let counter = tokio::spawn(async move {
            loop {
                shutdown_signal().await;
                count.send_modify(|n| *n += 1);
                tracing::info!(
                    signals = *count.borrow(),
                    "shutdown signal received (a second one gives the running renders back at once)"
                );
            }
        });
        let nth = |n: u32| {
            let mut signals = signals.clone();
            async move {
                let _ = signals.wait_for(|seen| *seen >= n).await;
            }
        };
        let result = worker::run_with_force(config, gpu, nth(1), nth(2)).await;
        counter.abort();
        result
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
