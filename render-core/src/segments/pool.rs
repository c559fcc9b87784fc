//! The encoder pool: how many segment encoders run at once in this process.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A bounded, first-come-first-served pool of encoder places shared by every render of a
/// process. A render takes a place for each segment it encodes, in segment order, and gives it
/// back when the segment is encoded: alone, a render fills every place (the whole machine on
/// one video); with others, places go round in the order they were asked for, so concurrent
/// renders share the encoders evenly instead of the first one starving the rest.
#[derive(Debug, Clone)]
pub struct EncoderPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// The next ticket to hand out, and the ticket whose turn it is.
    next: u64,
    serving: u64,
}

/// A place in the pool, given back on drop.
#[derive(Debug)]
pub struct EncoderPermit {
    inner: Arc<Inner>,
}

impl EncoderPool {
    /// A pool of `size` places (at least 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            inner: Arc::new(Inner {
                size,
                state: Mutex::new(State {
                    free: size,
                    next: 0,
                    serving: 0,
                }),
                freed: Condvar::new(),
            }),
        }
    }

    /// The default size: one encoder per CPU core the process may use (each segment encoder
    /// runs one x264 thread).
    pub fn default_size() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }

    /// Places in the pool.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Waits for a place, in the order asked.
    pub fn acquire(&self) -> EncoderPermit {
        let inner = &self.inner;
        let mut state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = state.next;
        state.next += 1;
        while !(state.serving == ticket && state.free > 0) {
            state = inner
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.free -= 1;
        state.serving += 1;
        drop(state);
        // The next ticket may be able to go too.
        inner.freed.notify_all();
        EncoderPermit {
            inner: Arc::clone(inner),
        }
    }
}

impl Default for EncoderPool {
    fn default() -> Self {
        Self::new(Self::default_size())
    }
}

impl Drop for EncoderPermit {
    fn drop(&mut self) {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.free += 1;
        drop(state);
        self.inner.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_size_at_once() {
        let pool = EncoderPool::new(3);
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    let _p = pool.acquire();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(pool.inner.state.lock().map(|s| s.free).ok(), Some(3));
    }

    #[test]
    fn places_go_in_the_order_asked() {
        let pool = EncoderPool::new(1);
        let held = pool.acquire();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for i in 0..4 {
                let (pool, order) = (&pool, &order);
                s.spawn(move || {
                    let _p = pool.acquire();
                    order.lock().map(|mut o| o.push(i)).ok();
                });
                // Each waiter takes its ticket before the next one starts.
                while pool.inner.state.lock().map(|s| s.next).unwrap_or(0) < i + 2 {
                    std::thread::yield_now();
                }
            }
            drop(held);
        });
        assert_eq!(order.into_inner().ok(), Some(vec![0, 1, 2, 3]));
    }
}
