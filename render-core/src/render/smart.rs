//! Smart render: the video as segments, each taken from the cache or composited and encoded
//! by its own encoder from the pool, joined by stream copy with the audio encoded once; the
//! finished segments, in order, as a live HLS stream while the rest renders.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{ControlFlow, Range};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use template::{Bundle, Timeline};

use crate::media::{self, AacTrack, EncodedSegment, EncoderSettings, SegmentEncoder, TsContinuity};
use crate::segments::{self, EncoderPool, KeyInputs, PlannedSegment, SegmentCache};
use crate::RenderError;

use super::pipeline::{Pipeline, StageBusy};
use super::{Begun, RenderReport, RenderRequest, Renderer, StageTimings};

/// x264 threads of each segment encoder. One: a render's parallelism comes from encoding
/// several segments at once, which scales further than threads inside one encoder, and the
/// bytes must not depend on the machine.
pub const SEGMENT_ENCODER_THREADS: usize = 1;

/// How a smart render finds and encodes its segments.
#[derive(Clone, Copy)]
pub struct SmartRender<'a> {
    /// Where segments are looked up and kept; `None` renders every segment.
    pub cache: Option<&'a SegmentCache>,
    /// The encoders segments are encoded by (shared by the process's renders).
    pub pool: &'a EncoderPool,
    /// Where the live stream goes; `None`: no stream.
    pub stream: Option<StreamOutput<'a>>,
}

impl std::fmt::Debug for SmartRender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartRender")
            .field("cache", &self.cache)
            .field("pool", &self.pool.size())
            .field("stream", &self.stream.map(|s| s.dir))
            .finish()
    }
}

/// A live HLS stream of a render: its files are written into `dir` (`seg-00000.ts`, …, then
/// `index.m3u8`, rewritten as segments are added and closed with `#EXT-X-ENDLIST` at the end),
/// and `published` is told each file's name and path as soon as it is complete: a media
/// segment before the playlist that first names it.
#[derive(Clone, Copy)]
pub struct StreamOutput<'a> {
    /// The folder the stream's files are written to.
    pub dir: &'a Path,
    /// Called with (file name, path) for every file written.
    pub published: &'a (dyn Fn(&str, &Path) + Sync),
}

/// The playlist's file name.
pub const PLAYLIST: &str = "index.m3u8";

/// How a smart render went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentReport {
    /// Segments in the render.
    pub total: usize,
    /// Segments taken from the cache.
    pub cached: usize,
    /// Encoder places in the pool the render used.
    pub encoders: usize,
    /// From the start of the render to its first playable segment (the first playlist
    /// written), when it had a stream.
    pub first_playable: Option<Duration>,
    /// Each segment's frames, the tokens it depends on, and whether it came from the cache.
    pub segments: Vec<(Range<u64>, BTreeSet<String>, bool)>,
}

/// A finished or failed segment, by its index in the plan.
type Ready = (usize, Result<EncodedSegment, RenderError>);

impl Renderer {
    /// Renders `req` into an MP4 at `out` as a smart render: cut into segments of
    /// [`segments::SEGMENT_SECONDS`], each from `smart.cache` when there, else composited and
    /// encoded on its own by an encoder of `smart.pool`; joined by stream copy with the audio
    /// encoded once. The bytes are the same whatever was cached and however many encoders
    /// ran. `progress` is called with (frames done, frames total), cached frames counting as
    /// done, and may stop the render as for [`Renderer::render_cancellable`].
    pub fn render_smart(
        &mut self,
        req: &RenderRequest,
        out: &Path,
        smart: SmartRender<'_>,
        progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<RenderReport, RenderError> {
        super::via_partial(req, out, |partial| {
            self.run_smart(req, partial, smart, progress)
        })
    }

    /// The renderer's part of every segment key: what, besides a segment's own inputs, its
    /// bytes depend on.
    fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let shaders = Sha256::new()
            .chain_update(shaders::RGBA_WGSL)
            .chain_update(shaders::YUV420_WGSL)
            .finalize();
        format!(
            "reelfarm {} shaders {} avcodec {} adapter {}",
            env!("CARGO_PKG_VERSION"),
            hex::encode(&shaders[..8]),
            ffmpeg_next::codec::version(),
            self.gpu.adapter()
        )
    }

    /// Content digests of the media files `timeline` draws, remembered by path, size and
    /// modification time so a file is read once per change.
    fn media_digests(
        &mut self,
        bundle: &Bundle,
        timeline: &Timeline,
    ) -> Result<BTreeMap<String, String>, RenderError> {
        let mut out = BTreeMap::new();
        for layer in &timeline.layers {
            let srcs = segments::media_of(&layer.content);
            for src in srcs {
                if out.contains_key(src) {
                    continue;
                }
                let path = bundle.media_path(src);
                let io = |error| RenderError::Io {
                    path: path.clone(),
                    error,
                };
                let meta = std::fs::metadata(&path).map_err(io)?;
                let stamp = (path.clone(), meta.len(), meta.modified().ok());
                let digest = match self.digests.get(&stamp) {
                    Some(d) => d.clone(),
                    None => {
                        let d = segments::file_digest(&path).map_err(io)?;
                        self.digests.insert(stamp, d.clone());
                        d
                    }
                };
                out.insert(src.to_owned(), digest);
            }
        }
        Ok(out)
    }

    fn run_smart(
        &mut self,
        req: &RenderRequest,
        out: &Path,
        smart: SmartRender<'_>,
        progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<RenderReport, RenderError> {
        let start = Instant::now();
        let mut timings = StageTimings::default();
        let Begun {
            bundle,
            job,
            frames,
            audio,
        } = self.begin(req, &mut timings)?;
        let (timeline, scene) = (&job.timeline, &job.scene);
        let total = frames.end - frames.start;
        let mut settings =
            EncoderSettings::for_preset(req.preset, scene.width, scene.height, timeline.fps);
        settings.threads = SEGMENT_ENCODER_THREADS;

        let t = Instant::now();
        let aac = AacTrack::encode(&audio.samples, &settings, out)?;
        timings.audio += t.elapsed();
        let media = self.media_digests(&bundle, timeline)?;
        let identity = self.identity();
        let plan = segments::plan(
            timeline,
            scene,
            frames.clone(),
            &KeyInputs {
                renderer: &identity,
                settings: &settings,
                media: &media,
            },
        );
        let have: Vec<Option<EncodedSegment>> = plan
            .iter()
            .map(|p| {
                smart
                    .cache
                    .and_then(|c| c.get(&p.key, p.frames.end - p.frames.start))
            })
            .collect();
        let missing: Vec<&PlannedSegment> = plan
            .iter()
            .zip(&have)
            .filter(|(_, h)| h.is_none())
            .map(|(p, _)| p)
            .collect();
        let cached_flags: Vec<bool> = have.iter().map(Option::is_some).collect();
        let cached_frames: u64 = plan
            .iter()
            .zip(&cached_flags)
            .filter(|(_, c)| **c)
            .map(|(p, _)| p.frames.end - p.frames.start)
            .sum();
        if progress(cached_frames, total).is_break() {
            return Err(RenderError::Cancelled);
        }

        let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
        let encode_busy = AtomicU64::new(0);
        let collector = Collector {
            plan: &plan,
            base: frames.start,
            settings: &settings,
            audio: &aac,
            stream: smart.stream,
            start,
        };
        let (busy, collected) = thread::scope(|s| {
            let collected = s.spawn(|| collector.collect(have, ready_rx));
            let busy = if missing.is_empty() {
                drop(ready_tx);
                Ok(StageBusy::default())
            } else {
                let encoders = SegmentEncoders {
                    jobs: &missing,
                    pool: smart.pool,
                    cache: smart.cache,
                    settings: &settings,
                    label: out,
                    busy: &encode_busy,
                };
                Pipeline {
                    gpu: &self.gpu,
                    scene,
                    timeline,
                    frames: missing.iter().map(|p| p.frames.clone()).collect(),
                }
                .run(
                    &mut |done, _| progress(cached_frames + done, total),
                    move |rx, recycle| encoders.run(rx, recycle, ready_tx),
                )
            };
            (busy, collected.join())
        });
        let collected = collected.map_err(|_| RenderError::EncoderStopped)?;
        // A segment encoder's own error says more than the frame loop's "encoder stopped".
        let (segments, first_playable) = match (busy, collected) {
            (_, (Err(e), _)) if !matches!(e, RenderError::EncoderStopped) => return Err(e),
            (Err(e), _) | (_, (Err(e), _)) => return Err(e),
            (Ok(busy), (Ok(segments), first)) => {
                timings.decode = busy.decode;
                timings.gpu = busy.gpu;
                (segments, first)
            }
        };
        let t = Instant::now();
        let joined: Vec<&EncodedSegment> = segments.iter().collect();
        let bytes = media::mux_mp4(out, &settings, &joined, &aac)?;
        timings.encode = Duration::from_nanos(encode_busy.load(Ordering::Relaxed)) + t.elapsed();
        timings.total = start.elapsed();
        Ok(RenderReport {
            frames: total,
            seconds: total as f64 / f64::from(timeline.fps),
            bytes,
            size: (scene.width, scene.height),
            timings,
            adapter: self.adapter(),
            warnings: job.scene.warnings.clone(),
            segments: Some(SegmentReport {
                total: plan.len(),
                cached: cached_flags.iter().filter(|c| **c).count(),
                encoders: smart.pool.size(),
                first_playable,
                segments: plan
                    .iter()
                    .zip(cached_flags)
                    .map(|(p, c)| (p.frames.clone(), p.tokens.clone(), c))
                    .collect(),
            }),
        })
    }
}

/// The encoder side of a smart render's pipeline: hands each missing segment's frames to an
/// encoder of its own, one pool place each.
struct SegmentEncoders<'a> {
    jobs: &'a [&'a PlannedSegment],
    pool: &'a EncoderPool,
    cache: Option<&'a SegmentCache>,
    settings: &'a EncoderSettings,
    label: &'a Path,
    /// Nanoseconds the encoders were busy, all together.
    busy: &'a AtomicU64,
}

impl SegmentEncoders<'_> {
    /// Runs on the pipeline's consumer thread: takes the frames in order and routes them,
    /// segment by segment, to encoder threads (each waits for a place in the pool first).
    /// Finished segments are kept in the cache and sent to `ready`.
    fn run(
        self,
        rx: Receiver<Vec<u8>>,
        recycle: SyncSender<Vec<u8>>,
        ready: Sender<Ready>,
    ) -> Result<(Duration, u64), RenderError> {
        let started = Instant::now();
        let this = &self;
        thread::scope(|s| {
            for &job in self.jobs {
                let n = job.frames.end - job.frames.start;
                let permit = self.pool.acquire();
                // Room for the whole segment: the frame loop never waits on one slow encoder
                // while others have places free.
                let (tx, frames) = mpsc::sync_channel::<Vec<u8>>(n as usize);
                let (ready, recycle) = (ready.clone(), recycle.clone());
                s.spawn(move || {
                    let _permit = permit;
                    let t = Instant::now();
                    let result = this.encode(frames, &recycle, n);
                    this.busy
                        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    if let (Ok(seg), Some(cache)) = (&result, this.cache) {
                        cache.put(&job.key, seg);
                    }
                    let _ = ready.send((job.index, result));
                });
                for _ in 0..n {
                    // A closed channel: the frame loop stopped, and reports why itself.
                    let frame = rx.recv().map_err(|_| RenderError::EncoderStopped)?;
                    // A closed encoder: it failed, and its error goes to the collector.
                    tx.send(frame).map_err(|_| RenderError::EncoderStopped)?;
                }
            }
            Ok::<(), RenderError>(())
        })?;
        Ok((started.elapsed(), 0))
    }

    /// Encodes one segment of `n` frames; fewer frames (the render stopped) is not a segment.
    fn encode(
        &self,
        frames: Receiver<Vec<u8>>,
        recycle: &SyncSender<Vec<u8>>,
        n: u64,
    ) -> Result<EncodedSegment, RenderError> {
        let mut enc = SegmentEncoder::new(self.settings, self.label)?;
        let mut got = 0u64;
        for frame in frames {
            enc.push(&frame)?;
            got += 1;
            // The frame loop may have finished; a closed recycle channel is fine.
            let _ = recycle.try_send(frame);
        }
        if got != n {
            return Err(RenderError::Cancelled);
        }
        Ok(enc.finish()?)
    }
}

/// Gathers a smart render's segments as they come, and streams the finished ones in order.
struct Collector<'a> {
    plan: &'a [PlannedSegment],
    /// The render's first frame.
    base: u64,
    settings: &'a EncoderSettings,
    audio: &'a AacTrack,
    stream: Option<StreamOutput<'a>>,
    start: Instant,
}

impl Collector<'_> {
    /// Waits for every missing segment; returns all of them in order (or the first error) and
    /// when the first segment became playable.
    fn collect(
        &self,
        mut have: Vec<Option<EncodedSegment>>,
        ready: Receiver<Ready>,
    ) -> (Result<Vec<EncodedSegment>, RenderError>, Option<Duration>) {
        let mut stream = self.stream.map(|out| Stream::new(out, self.settings.fps));
        let mut first = None;
        let mut error = None;
        self.publish(&have, &mut stream, &mut first);
        for (index, result) in ready {
            match result {
                Ok(seg) => have[index] = Some(seg),
                Err(e) => {
                    // Keep the first real failure over the "stopped" of the others.
                    let stopped = |e: &RenderError| {
                        matches!(e, RenderError::Cancelled | RenderError::EncoderStopped)
                    };
                    if error
                        .as_ref()
                        .is_none_or(|old| stopped(old) && !stopped(&e))
                    {
                        error = Some(e);
                    }
                    continue;
                }
            }
            if error.is_none() {
                self.publish(&have, &mut stream, &mut first);
            }
        }
        if let Some(e) = error {
            return (Err(e), first);
        }
        let all: Option<Vec<EncodedSegment>> = have.into_iter().collect();
        match all {
            Some(all) => (Ok(all), first),
            None => (Err(RenderError::EncoderStopped), first),
        }
    }

    /// Streams every segment of the finished prefix not streamed yet.
    fn publish(
        &self,
        have: &[Option<EncodedSegment>],
        stream: &mut Option<Stream<'_>>,
        first: &mut Option<Duration>,
    ) {
        let Some(s) = stream else { return };
        let mut added = false;
        while let Some(Some(seg)) = have.get(s.next) {
            let planned = &self.plan[s.next];
            let last = s.next + 1 == self.plan.len();
            if let Err(e) = s.add(
                seg,
                planned.frames.start - self.base,
                self.settings,
                self.audio,
                last,
            ) {
                tracing::warn!(error = %e, "live stream stopped");
                *stream = None;
                return;
            }
            added = true;
        }
        if added {
            let done = s.next == self.plan.len();
            if let Err(e) = s.write_playlist(done) {
                tracing::warn!(error = %e, "live stream stopped");
                *stream = None;
                return;
            }
            first.get_or_insert_with(|| self.start.elapsed());
        }
    }
}

/// A live HLS stream being written.
struct Stream<'a> {
    out: StreamOutput<'a>,
    fps: u32,
    /// The next segment to add.
    next: usize,
    /// Lengths in frames of the segments added.
    lengths: Vec<u64>,
    continuity: TsContinuity,
}

impl<'a> Stream<'a> {
    fn new(out: StreamOutput<'a>, fps: u32) -> Self {
        Self {
            out,
            fps,
            next: 0,
            lengths: Vec::new(),
            continuity: TsContinuity::default(),
        }
    }

    fn add(
        &mut self,
        seg: &EncodedSegment,
        first_frame: u64,
        settings: &EncoderSettings,
        audio: &AacTrack,
        last: bool,
    ) -> Result<(), RenderError> {
        let name = segment_name(self.next);
        let path = self.out.dir.join(&name);
        media::write_ts(
            &path,
            settings,
            seg,
            first_frame,
            audio,
            last,
            &mut self.continuity,
        )?;
        (self.out.published)(&name, &path);
        self.lengths.push(seg.frames);
        self.next += 1;
        Ok(())
    }

    fn write_playlist(&self, done: bool) -> Result<(), RenderError> {
        let text = playlist(&self.lengths, self.fps, done);
        let path = self.out.dir.join(PLAYLIST);
        let tmp = self.out.dir.join(".index.m3u8.tmp");
        let io = |error| RenderError::Io {
            path: path.clone(),
            error,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        (self.out.published)(PLAYLIST, &path);
        Ok(())
    }
}

/// The name of media segment `index` of a stream.
pub fn segment_name(index: usize) -> String {
    format!("seg-{index:05}.ts")
}

/// An HLS media playlist of segments `lengths` frames long at `fps`; `done` closes it.
fn playlist(lengths: &[u64], fps: u32, done: bool) -> String {
    let secs: Vec<f64> = lengths.iter().map(|n| *n as f64 / f64::from(fps)).collect();
    let target = secs.iter().fold(1.0f64, |a, b| a.max(*b)).round() as u64;
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n",
        if done { "VOD" } else { "EVENT" }
    );
    for (i, s) in secs.iter().enumerate() {
        text.push_str(&format!("#EXTINF:{s:.3},\n{}\n", segment_name(i)));
    }
    if done {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_grows_then_closes() {
        let open = playlist(&[30, 30], 30, false);
        assert!(open.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
        assert!(open.contains("#EXTINF:1.000,\nseg-00001.ts\n"));
        assert!(!open.contains("ENDLIST"));
        let closed = playlist(&[30, 30, 15], 30, true);
        assert!(closed.ends_with("#EXTINF:0.500,\nseg-00002.ts\n#EXT-X-ENDLIST\n"));
        assert!(closed.contains("#EXT-X-TARGETDURATION:1\n"));
    }
}
