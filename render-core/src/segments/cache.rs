//! The segment cache: encoded segments by key, on local disk (bounded, least recently used
//! first out) and, optionally, in a store shared by a whole farm.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::media::EncodedSegment;

/// A store of segments shared by many workers (the farm's blob store, through the
/// coordinator). Entries are immutable: a key always names the same bytes.
pub trait SharedSegments: Send + Sync {
    /// The entry stored under `key`, `None` when there is none.
    fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Stores `bytes` under `key`; storing a key already present is not an error.
    fn store(&self, key: &str, bytes: &[u8]) -> Result<(), String>;
}

/// Counters of a [`SegmentCache`] since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Segments found on local disk.
    pub local_hits: u64,
    /// Segments found in the shared store (and then kept locally).
    pub shared_hits: u64,
    /// Segments found nowhere, so rendered.
    pub misses: u64,
    /// Entries that could not be read back (damaged, truncated) and were treated as misses.
    pub corrupt: u64,
    /// Entries removed to stay under the size limit.
    pub evictions: u64,
    /// Bytes of entries written to local disk.
    pub bytes_written: u64,
    /// Bytes of entries read from local disk or the shared store.
    pub bytes_read: u64,
    /// Bytes on local disk now.
    pub bytes_stored: u64,
    /// Entries on local disk now.
    pub entries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    local_hits: AtomicU64,
    shared_hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    evictions: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
}

#[derive(Debug, Default)]
struct Index {
    /// Size and last use (a tick of `clock`) by key.
    entries: HashMap<String, (u64, u64)>,
    total: u64,
    clock: u64,
}

/// Encoded segments by key in a folder (`<key>.seg` files), at most `limit` bytes; the least
/// recently used go first. Safe to share between concurrent renders (and processes: entries
/// are written to a temporary name and renamed, so a reader sees a whole entry or none).
/// A damaged or missing entry is a miss, never a failure.
pub struct SegmentCache {
    dir: PathBuf,
    limit: u64,
    index: Mutex<Index>,
    shared: Option<Arc<dyn SharedSegments>>,
    counters: Counters,
}

impl std::fmt::Debug for SegmentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentCache")
            .field("dir", &self.dir)
            .field("limit", &self.limit)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// True for a key as the renderer makes them: 64 lowercase hex digits.
pub fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl SegmentCache {
    /// Opens (creating it if needed) the cache in `dir`, keeping at most `limit` bytes.
    /// Entries already there count, oldest-modified first out.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".seg") else {
                // A temporary file left by a process that died while writing.
                if name.starts_with(".tmp-") {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            };
            if !is_key(key) {
                continue;
            }
            let meta = entry.metadata()?;
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            found.push((modified, key.to_owned(), meta.len()));
        }
        found.sort();
        let mut index = Index::default();
        for (_, key, size) in found {
            index.clock += 1;
            index.total += size;
            index.entries.insert(key, (size, index.clock));
        }
        let cache = Self {
            dir: dir.to_owned(),
            limit,
            index: Mutex::new(index),
            shared: None,
            counters: Counters::default(),
        };
        cache.evict();
        Ok(cache)
    }

    /// This cache, also reading from and writing to `shared`.
    pub fn with_shared(mut self, shared: Arc<dyn SharedSegments>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.seg"))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The segment under `key` with `frames` frames: from local disk, else from the shared
    /// store (then kept locally). `None` when neither has a good one.
    pub fn get(&self, key: &str, frames: u64) -> Option<EncodedSegment> {
        if let Some(seg) = self.get_local(key, frames) {
            self.counters.local_hits.fetch_add(1, Ordering::Relaxed);
            return Some(seg);
        }
        if let Some(shared) = &self.shared {
            match shared.fetch(key) {
                Ok(Some(bytes)) => match decode(&bytes, frames) {
                    Ok(seg) => {
                        self.counters
                            .bytes_read
                            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        self.counters.shared_hits.fetch_add(1, Ordering::Relaxed);
                        self.put_local(key, &bytes);
                        return Some(seg);
                    }
                    Err(e) => {
                        self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(key, error = %e, "shared segment entry unreadable; rendering it");
                    }
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(key, error = %e, "shared segment store unavailable"),
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    fn get_local(&self, key: &str, frames: u64) -> Option<EncodedSegment> {
        if !self.index().entries.contains_key(key) {
            return None;
        }
        let path = self.path(key);
        let read = std::fs::read(&path).map_err(|e| e.to_string());
        match read.and_then(|bytes| decode(&bytes, frames).map(|s| (s, bytes.len()))) {
            Ok((seg, n)) => {
                self.counters
                    .bytes_read
                    .fetch_add(n as u64, Ordering::Relaxed);
                let mut index = self.index();
                index.clock += 1;
                let tick = index.clock;
                if let Some(e) = index.entries.get_mut(key) {
                    e.1 = tick;
                }
                Some(seg)
            }
            Err(e) => {
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(key, error = %e, "segment cache entry unreadable; rendering it");
                let _ = std::fs::remove_file(&path);
                self.forget(key);
                None
            }
        }
    }

    fn forget(&self, key: &str) {
        let mut index = self.index();
        if let Some((size, _)) = index.entries.remove(key) {
            index.total -= size;
        }
    }

    /// Keeps `seg` under `key`, locally and in the shared store. Failures are logged, never
    /// returned: a cache that cannot write only makes later renders slower.
    pub fn put(&self, key: &str, seg: &EncodedSegment) {
        let bytes = seg.to_bytes();
        self.put_local(key, &bytes);
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.store(key, &bytes) {
                tracing::warn!(key, error = %e, "cannot share a segment");
            }
        }
    }

    fn put_local(&self, key: &str, bytes: &[u8]) {
        if bytes.len() as u64 > self.limit {
            return;
        }
        let tmp = self.dir.join(format!(
            ".tmp-{key}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| std::fs::rename(&tmp, self.path(key)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(key, dir = %self.dir.display(), error = %e, "cannot write a segment cache entry");
            return;
        }
        self.counters
            .bytes_written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        {
            let mut index = self.index();
            index.clock += 1;
            let tick = index.clock;
            let size = bytes.len() as u64;
            if let Some(old) = index.entries.insert(key.to_owned(), (size, tick)) {
                index.total -= old.0;
            }
            index.total += size;
        }
        self.evict();
    }

    /// Removes least recently used entries until the total is within the limit.
    fn evict(&self) {
        loop {
            let victim = {
                let mut index = self.index();
                if index.total <= self.limit {
                    return;
                }
                let Some(key) = index
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, tick))| *tick)
                    .map(|(k, _)| k.clone())
                else {
                    return;
                };
                if let Some((size, _)) = index.entries.remove(&key) {
                    index.total -= size;
                }
                key
            };
            let _ = std::fs::remove_file(self.path(&victim));
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let (bytes_stored, entries) = {
            let index = self.index();
            (index.total, index.entries.len() as u64)
        };
        CacheStats {
            local_hits: c.local_hits.load(Ordering::Relaxed),
            shared_hits: c.shared_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            bytes_stored,
            entries,
        }
    }
}

/// Reads an entry, which must hold `frames` frames.
fn decode(bytes: &[u8], frames: u64) -> Result<EncodedSegment, String> {
    let seg = EncodedSegment::from_bytes(bytes)?;
    if seg.frames != frames {
        return Err(format!("holds {} frames, not {frames}", seg.frames));
    }
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::EncodedPacket;

    fn seg(n: u8, size: usize) -> EncodedSegment {
        EncodedSegment {
            frames: 1,
            extradata: vec![1, 2, 3],
            packets: vec![EncodedPacket {
                pts: 0,
                dts: -1,
                duration: 1,
                key: true,
                data: vec![n; size],
            }],
        }
    }

    fn key(n: u8) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn round_trip_lru_eviction_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = seg(1, 1000).to_bytes().len() as u64;
        let cache = SegmentCache::open(dir.path(), one * 2).expect("open");
        assert!(cache.get(&key(1), 1).is_none());
        cache.put(&key(1), &seg(1, 1000));
        cache.put(&key(2), &seg(2, 1000));
        assert_eq!(cache.get(&key(1), 1), Some(seg(1, 1000)));
        // 1 was used last: 2 goes when 3 comes.
        cache.put(&key(3), &seg(3, 1000));
        assert!(cache.get(&key(2), 1).is_none());
        assert!(cache.get(&key(1), 1).is_some());
        let s = cache.stats();
        assert_eq!((s.evictions, s.entries, s.bytes_stored), (1, 2, one * 2));
        // A wrong frame count is a miss.
        assert!(cache.get(&key(3), 2).is_none());
        // A damaged entry is a miss, and is removed.
        cache.put(&key(4), &seg(4, 1000));
        let path = dir.path().join(format!("{}.seg", key(4)));
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).expect("write");
        assert!(cache.get(&key(4), 1).is_none());
        assert!(!path.exists());
        assert!(cache.stats().corrupt >= 2);
        // Reopening finds what is there.
        let again = SegmentCache::open(dir.path(), one * 2).expect("reopen");
        assert!(again.get(&key(1), 1).is_some());
    }

    #[test]
    fn truncated_bytes_are_refused() {
        let bytes = seg(7, 100).to_bytes();
        for cut in [0, 5, 20, 40, bytes.len() - 1] {
            assert!(
                EncodedSegment::from_bytes(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        assert_eq!(EncodedSegment::from_bytes(&bytes), Ok(seg(7, 100)));
    }

    struct Map(Mutex<HashMap<String, Vec<u8>>>);

    impl SharedSegments for Map {
        fn fetch(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.lock().map_err(|e| e.to_string())?.get(key).cloned())
        }
        fn store(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
            self.0
                .lock()
                .map_err(|e| e.to_string())?
                .insert(key.to_owned(), bytes.to_vec());
            Ok(())
        }
    }

    #[test]
    fn shared_store_fills_other_caches() {
        let shared: Arc<dyn SharedSegments> = Arc::new(Map(Mutex::new(HashMap::new())));
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        let first = SegmentCache::open(a.path(), 1 << 20)
            .expect("open")
            .with_shared(Arc::clone(&shared));
        let second = SegmentCache::open(b.path(), 1 << 20)
            .expect("open")
            .with_shared(shared);
        first.put(&key(9), &seg(9, 10));
        assert_eq!(second.get(&key(9), 1), Some(seg(9, 10)));
        assert_eq!(second.stats().shared_hits, 1);
        // Now local.
        assert!(second.get(&key(9), 1).is_some());
        assert_eq!(second.stats().local_hits, 1);
    }
}
