//! Helpers for the tests of stores built on this crate.

use std::future::Future;
use std::task::Poll;

/// Polls `fut` until it has been suspended `k` times, then drops it where it stands: `true`
/// when it finished first. Dropping at the `k`-th suspension for every `k` drops a call at each
/// of its await points in turn, as a caller that stops waiting would.
pub async fn drop_at_suspension<F: Future>(k: usize, fut: F) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut suspended = 0;
    std::future::poll_fn(|cx| {
        if suspended == k {
            return Poll::Ready(false);
        }
        match fut.as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(true),
            Poll::Pending => {
                suspended += 1;
                Poll::Pending
            }
        }
    })
    .await
}
