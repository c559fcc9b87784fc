//! What a render is asked for ([`RenderRequest`]) and what it reports back ([`RenderReport`],
//! [`StageTimings`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lipsync::Track;
use template::Bundle;

use super::Preset;

/// One recipient's render.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    /// The template folder.
    pub template_dir: PathBuf,
    /// Language code; must be one of the template's.
    pub lang: String,
    /// Token values by name (raw: they are sanitized and checked here).
    pub tokens: BTreeMap<String, String>,
    /// A voice file for this recipient; `None` uses the template's default voice, if any.
    pub voice: Option<PathBuf>,
    /// Output preset.
    pub preset: Preset,
    /// Time range `[t0, t1)` in seconds; `None` renders the whole video.
    pub range: Option<(f64, f64)>,
    /// A precomputed mouth track for the template's presenter layers, timed from the start of
    /// the voice (`audio.voice.start`); it replaces the one the renderer would compute from the
    /// voice (the voice is still heard). `None`: computed from the voice.
    pub mouth_track: Option<Track>,
}

/// Wall-clock time per stage of a render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    /// Loading and validating the template, resolving tokens and the timeline.
    pub prepare: Duration,
    /// Shaping and rasterizing text, loading images, building atlases.
    pub rasterize: Duration,
    /// Decoding voice and music, mixing, loudness.
    pub audio: Duration,
    /// Making the presenters' mouth track: analysing the voice, or speaking the voice script
    /// with the built-in voice (the speech synthesis is counted here, not in `audio`). Zero
    /// without a presenter and without a spoken script.
    pub lipsync: Duration,
    /// Decoding video layers (on the decode thread).
    pub decode: Duration,
    /// Uploading, compositing and reading back frames (time the GPU thread was busy or waiting on the GPU).
    pub gpu: Duration,
    /// Encoding and muxing (on the encoder thread).
    pub encode: Duration,
    /// The whole render, wall clock.
    pub total: Duration,
}

/// What a finished render reports.
#[derive(Debug, Clone)]
pub struct RenderReport {
    /// Frames written.
    pub frames: u64,
    /// Seconds of video written.
    pub seconds: f64,
    /// Output size in bytes.
    pub bytes: u64,
    /// Output canvas size.
    pub size: (u32, u32),
    /// Per-stage timings.
    pub timings: StageTimings,
    /// GPU adapter used.
    pub adapter: String,
    /// Partial degradations: text shrunk below its minimum, a voice cut at the end...
    pub warnings: Vec<String>,
    /// For a smart render: its segments, what came from the cache, the first playable time.
    pub segments: Option<super::SegmentReport>,
}

impl RenderRequest {
    /// The voice file this request speaks with: its own, else the template's default for its
    /// language (or for any language), else none.
    pub fn voice_file(&self, bundle: &Bundle) -> Option<PathBuf> {
        if let Some(v) = &self.voice {
            return Some(v.clone());
        }
        let voice = bundle.manifest.audio.voice.as_ref()?;
        let lang = template::template_language(&bundle.manifest, &self.lang).unwrap_or(&self.lang);
        voice
            .default
            .get(lang)
            .or_else(|| voice.default.get("*"))
            .map(|rel| bundle.media_path(rel))
    }
}
