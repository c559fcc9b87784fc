//! Smart render: a video cut into segments on fixed GOP boundaries, each keyed by exactly what
//! its pixels depend on, cached, and encoded by a pool of encoders.
//!
//! - [`plan`]: the segments of a render, each with the tokens it depends on and its key;
//! - `cache`: [`SegmentCache`], encoded segments by key on local disk, optionally backed by a
//!   store shared by the farm ([`SharedSegments`]);
//! - `pool`: [`EncoderPool`], how many segment encoders run at once in a process.
//!
//! A segment's key is a SHA-256 of everything its encoded bytes are a function of: the
//! renderer (version, shader source, libavcodec, GPU adapter: different GPUs may round
//! differently), the encoder settings, the canvas, the segment's frames, and every layer shown
//! during them as resolved for this recipient (its text with the tokens substituted, its
//! animation, the content digest of each media file it draws) and, for a presenter, the mouth
//! shape at each of its frames. A segment that shows no token has the same key for every
//! recipient; one that shows only `product` is shared by every recipient with that product.
//! Because the key covers all of a segment's inputs, a cached segment is byte for byte the one
//! a render would make, and the output cannot depend on the cache.

mod cache;
mod pool;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use sha2::{Digest, Sha256};
use template::{ResolvedContent, Timeline};

use crate::media::EncoderSettings;
use crate::scene::Scene;

pub use cache::{is_key, CacheStats, SegmentCache, SharedSegments};
pub use pool::{EncoderPermit, EncoderPool};

/// Length of a segment in seconds (the last one may be shorter).
///
/// One second: W1's personal parts start and end on whole seconds (0–8, 8–14, 24–30), so
/// longer segments would not make more of it shared, while shorter ones would add an IDR frame
/// per half second (larger files) for nothing. One-second segments give 30 pieces of work to
/// spread over the cores of one box for a 30 s video, and a first playable piece one second
/// long.
pub const SEGMENT_SECONDS: u32 = 1;

/// Version of the segment key's recipe and of the stored format; changing either changes it.
const KEY_VERSION: &str = "reelfarm-segment-key/1";

/// One segment of a render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSegment {
    /// Its position in the render, from 0.
    pub index: usize,
    /// Its frames, in the timeline's numbering.
    pub frames: Range<u64>,
    /// The tokens whose values change its pixels.
    pub tokens: BTreeSet<String>,
    /// Its cache key: 64 lowercase hex digits.
    pub key: String,
}

/// What, besides the timeline and scene, a segment's bytes are a function of.
#[derive(Debug, Clone)]
pub struct KeyInputs<'a> {
    /// The renderer's identity: version, shader source, codec library, GPU adapter.
    pub renderer: &'a str,
    /// The settings every segment is encoded with.
    pub settings: &'a EncoderSettings,
    /// Content digests of the template's media files, by path inside the bundle.
    pub media: &'a BTreeMap<String, String>,
}

/// The segments of `frames` of `timeline`: cut at every multiple of [`SEGMENT_SECONDS`] ×
/// fps frames (so the cuts of a range render fall where a whole render's do), each with its
/// tokens and key. `scene` must carry the mouth track already.
pub fn plan(
    timeline: &Timeline,
    scene: &Scene,
    frames: Range<u64>,
    inputs: &KeyInputs<'_>,
) -> Vec<PlannedSegment> {
    let step = u64::from(timeline.fps * SEGMENT_SECONDS).max(1);
    let mut out = Vec::new();
    let mut start = frames.start;
    while start < frames.end {
        let end = ((start / step + 1) * step).min(frames.end);
        let range = start..end;
        let (key, tokens) = segment_key(timeline, scene, range.clone(), inputs);
        out.push(PlannedSegment {
            index: out.len(),
            frames: range,
            tokens,
            key,
        });
        start = end;
    }
    out
}

/// The key of the segment of `frames`, and the tokens its layers use.
fn segment_key(
    timeline: &Timeline,
    scene: &Scene,
    frames: Range<u64>,
    inputs: &KeyInputs<'_>,
) -> (String, BTreeSet<String>) {
    let mut text = String::new();
    // `{:?}` of floats prints the shortest string that reads back exactly, so equal text means
    // equal values.
    let _ = writeln!(text, "{KEY_VERSION}\n{}", inputs.renderer);
    let _ = writeln!(text, "{:?}", inputs.settings);
    let _ = writeln!(
        text,
        "canvas {}x{} scale {:?} background {:?} fps {} frames {}..{}",
        scene.width,
        scene.height,
        scene.scale,
        scene.background,
        timeline.fps,
        frames.start,
        frames.end
    );
    let first = timeline.frame_time(frames.start);
    let last = timeline.frame_time(frames.end.saturating_sub(1).max(frames.start));
    let mut tokens = BTreeSet::new();
    for (i, layer) in timeline.layers.iter().enumerate() {
        if !(layer.start <= last && layer.end > first) {
            continue;
        }
        tokens.extend(layer.tokens.iter().cloned());
        let _ = writeln!(text, "layer {:?}", layer);
        // A stacked text layer's place depends on the layer above it, which may not be shown.
        if let Some(shift) = scene.layers.get(i).map(|l| l.shift).filter(|s| *s != 0.0) {
            let _ = writeln!(text, "shift {shift:?}");
        }
        for src in media_of(&layer.content) {
            let digest = inputs.media.get(src).map(String::as_str).unwrap_or("?");
            let _ = writeln!(text, "media {src} {digest}");
        }
        if let ResolvedContent::Presenter { mouth, .. } = &layer.content {
            let _ = write!(text, "mouth");
            for f in frames.clone() {
                let (a, b, k) = scene.mouth_at(timeline.frame_time(f), mouth.crossfade);
                let _ = write!(text, " {a:?}{b:?}{k:?}");
            }
            text.push('\n');
        }
    }
    (hex::encode(Sha256::digest(text.as_bytes())), tokens)
}

/// The media files `content` draws, by path inside the bundle (a text's brand font included).
pub(crate) fn media_of(content: &ResolvedContent) -> Vec<&str> {
    match content {
        ResolvedContent::Video { src, .. } | ResolvedContent::Image { src, .. } => vec![src],
        ResolvedContent::Presenter { src, mouths, .. } => vec![src, mouths],
        ResolvedContent::Text { font, .. } => font.iter().map(String::as_str).collect(),
        ResolvedContent::Solid { .. } => Vec::new(),
    }
}

/// SHA-256 of a file, in lowercase hex.
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}
