//! Rendering a job: a template bundle, one recipient, one language → an MP4 or a still.
//!
//! - [`Renderer`] and its entry points live here;
//! - `request`: what a render is asked for and what it reports;
//! - `voice`: the voice, the presenters' mouth track and the audio mix;
//! - `pipeline`: the frame loop, three stages on three threads (decode, GPU, encode);
//! - `smart`: the smart render, in cached and separately encoded segments, with a live stream;
//! - `preset`: the output presets.

mod pipeline;
mod preset;
mod request;
mod smart;
mod voice;

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime};

use lipsync::{Engine, Track};
use template::{Bundle, Timeline};

use crate::audio::{self, Pcm};
use crate::gpu::{Compositor, GpuContext, Readback};
use crate::media::{self, EncoderSettings, RgbaImage, VideoReader};
use crate::scene::Scene;
use crate::text::TextEngine;
use crate::RenderError;

use pipeline::{encode_frames, Pipeline};
pub use preset::{Preset, ENCODER_THREADS};
pub use request::{RenderReport, RenderRequest, StageTimings};
pub use smart::{
    segment_name, SegmentReport, SmartRender, StreamOutput, PLAYLIST, SEGMENT_ENCODER_THREADS,
};
use voice::{first_presenter, mix_audio, prepare_voice, track_warnings};

/// A job prepared up to the frame loop: its timeline and its scene (atlases, video slots and the
/// warnings so far, to which audio adds its own).
struct Prepared {
    timeline: Timeline,
    scene: Scene,
}

fn prepare(
    req: &RenderRequest,
    text: &mut TextEngine,
    timings: &mut StageTimings,
) -> Result<(Bundle, Prepared), RenderError> {
    let t = Instant::now();
    let bundle = Bundle::load(&req.template_dir)?;
    let tokens = template::resolve_tokens(&bundle.manifest, &req.lang, &req.tokens)?;
    let timeline = template::resolve(&bundle.manifest, &req.lang, &tokens)?;
    timings.prepare = t.elapsed();

    let t = Instant::now();
    let (w, h) = req.preset.canvas(timeline.width, timeline.height);
    let scene = Scene::build(&bundle, &timeline, text, w, h)?;
    timings.rasterize = t.elapsed();
    Ok((bundle, Prepared { timeline, scene }))
}

/// A job prepared up to the frame loop ([`Renderer::begin`]): the bundle, the timeline and
/// scene with the mouth track, the frames to render and the audio of those frames.
struct Begun {
    bundle: Bundle,
    job: Prepared,
    frames: std::ops::Range<u64>,
    audio: Pcm,
}

/// A reusable renderer: the GPU device, the font system and the lip-sync engine are set up
/// once.
pub struct Renderer {
    gpu: GpuContext,
    text: TextEngine,
    lipsync: Engine,
    /// Media files' content digests by path, size and modification time (segment keys).
    digests: HashMap<(PathBuf, u64, Option<SystemTime>), String>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("gpu", &self.gpu)
            .field("lipsync", &self.lipsync)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// Opens the GPU, loads the bundled fonts and sets up lip-sync with the built-in voice if
    /// its helper can be found ([`Engine::with_default_voice`]).
    pub fn new() -> Result<Self, RenderError> {
        media::init();
        Ok(Self {
            gpu: GpuContext::new()?,
            text: TextEngine::new(),
            lipsync: Engine::with_default_voice(),
            digests: HashMap::new(),
        })
    }

    /// This renderer with `engine` for lip-sync and the built-in voice instead of the default.
    pub fn with_lipsync_engine(mut self, engine: Engine) -> Self {
        self.lipsync = engine;
        self
    }

    /// Replaces the lip-sync engine (and so the built-in voice).
    pub fn set_lipsync_engine(&mut self, engine: Engine) {
        self.lipsync = engine;
    }

    /// The lip-sync engine in use.
    pub fn lipsync_engine(&self) -> &Engine {
        &self.lipsync
    }

    /// The GPU adapter in use.
    pub fn adapter(&self) -> String {
        self.gpu.adapter().to_string()
    }

    /// The GPU adapter in use, field by field (name, backend, device type, software or not).
    pub fn adapter_summary(&self) -> &crate::gpu::AdapterSummary {
        self.gpu.adapter()
    }

    /// Renders `req` into an MP4 at `out`. `progress` is called with (frames done, frames total).
    pub fn render(
        &mut self,
        req: &RenderRequest,
        out: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RenderReport, RenderError> {
        self.render_cancellable(req, out, &mut |done, total| {
            progress(done, total);
            ControlFlow::Continue(())
        })
    }

    /// Renders `req` into an MP4 at `out` as [`Renderer::render`] does, but `progress` may stop
    /// it: once it returns [`ControlFlow::Break`] (it is called after each frame), the frame loop
    /// ends, the partial output is removed and the render fails with [`RenderError::Cancelled`].
    pub fn render_cancellable(
        &mut self,
        req: &RenderRequest,
        out: &Path,
        progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<RenderReport, RenderError> {
        via_partial(req, out, |partial| {
            self.run(req, progress, |settings, audio, rx, recycle| {
                encode_frames(partial, settings, &audio, rx, recycle)
            })
        })
    }

    /// Composites `req` and hands each YUV 4:2:0 frame, in order, to `sink` instead of the
    /// encoder (benchmarks use this to time the encoder alone on the very same frames).
    pub fn render_frames(
        &mut self,
        req: &RenderRequest,
        mut sink: impl FnMut(&[u8]) + Send,
    ) -> Result<RenderReport, RenderError> {
        self.run(
            req,
            &mut |_, _| ControlFlow::Continue(()),
            move |_, _, rx, recycle| {
                let t = Instant::now();
                for frame in rx {
                    sink(&frame);
                    // The frame loop may have finished; a closed recycle channel is fine.
                    let _ = recycle.try_send(frame);
                }
                Ok((t.elapsed(), 0))
            },
        )
        .map_err(|e| e.renamed(|p| in_template(&req.template_dir, p)))
    }

    /// Prepares `req` and runs its frames through the pipeline ([`Pipeline::run`]); `consume`,
    /// on the encoder's thread, gets the encoder settings, the audio of the range, the frames
    /// and a channel to return buffers; it returns its busy time and a byte count.
    fn run<C>(
        &mut self,
        req: &RenderRequest,
        progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
        consume: C,
    ) -> Result<RenderReport, RenderError>
    where
        C: FnOnce(
                EncoderSettings,
                Pcm,
                Receiver<Vec<u8>>,
                SyncSender<Vec<u8>>,
            ) -> Result<(Duration, u64), RenderError>
            + Send,
    {
        let start = Instant::now();
        let mut timings = StageTimings::default();
        let Begun {
            job, frames, audio, ..
        } = self.begin(req, &mut timings)?;
        let timeline = &job.timeline;
        let total = frames.end - frames.start;
        let scene = &job.scene;
        let settings =
            EncoderSettings::for_preset(req.preset, scene.width, scene.height, timeline.fps);
        let busy = Pipeline {
            gpu: &self.gpu,
            scene,
            timeline,
            frames: vec![frames],
        }
        .run(progress, move |rx, recycle| {
            consume(settings, audio, rx, recycle)
        })?;
        timings.encode = busy.encode;
        timings.decode = busy.decode;
        timings.gpu = busy.gpu;
        timings.total = start.elapsed();
        Ok(RenderReport {
            frames: total,
            seconds: total as f64 / f64::from(timeline.fps),
            bytes: busy.bytes,
            size: (scene.width, scene.height),
            timings,
            adapter: self.adapter(),
            warnings: job.scene.warnings,
            segments: None,
        })
    }

    /// Prepares `req` up to its frames: checks its range, finds the voice and the mouth track,
    /// mixes the audio and cuts it to the range.
    fn begin(
        &mut self,
        req: &RenderRequest,
        timings: &mut StageTimings,
    ) -> Result<Begun, RenderError> {
        let (bundle, mut job) = prepare(req, &mut self.text, timings)?;
        let timeline = &job.timeline;
        let (t0, t1) = req.range.unwrap_or((0.0, timeline.duration));
        if !(t0.is_finite()
            && t1.is_finite()
            && 0.0 <= t0
            && t0 < t1
            && t1 <= timeline.duration + 1e-9)
        {
            return Err(RenderError::Range {
                t0,
                t1,
                duration: timeline.duration,
            });
        }
        let frames = timeline.frame_range(t0, t1);

        let t = Instant::now();
        let voice = prepare_voice(
            &self.lipsync,
            &bundle,
            req,
            timeline,
            &mut job.scene.warnings,
            timings,
        )?;
        track_warnings(voice.mouth.as_ref(), timeline, &mut job.scene.warnings);
        job.scene.mouth_track = voice.mouth;
        let program = mix_audio(
            &bundle,
            voice.track,
            timeline.duration,
            &mut job.scene.warnings,
        )?;
        let audio = audio::slice(
            &program,
            timeline.frame_time(frames.start),
            timeline.frame_time(frames.end),
        );
        timings.audio = t.elapsed().saturating_sub(timings.lipsync);
        Ok(Begun {
            bundle,
            job,
            frames,
            audio,
        })
    }

    /// The job's static layers (text, images, shapes) exactly as rasterized for the GPU, by
    /// layer id, at output resolution; video layers are absent. Tools that rebuild a template
    /// elsewhere (the W1 benchmark's FFmpeg filtergraph) draw from these.
    pub fn layer_images(
        &mut self,
        req: &RenderRequest,
    ) -> Result<Vec<(String, RgbaImage)>, RenderError> {
        let mut timings = StageTimings::default();
        let (_bundle, job) = prepare(req, &mut self.text, &mut timings)?;
        let mut out = Vec::new();
        for (layer, placed) in job.timeline.layers.iter().zip(&job.scene.layers) {
            if placed.source != shaders::source::ATLAS {
                continue;
            }
            let [_, _, w, h] = placed.rect;
            let pixels = job.scene.atlas.image(placed.rect).to_vec();
            out.push((
                layer.id.clone(),
                RgbaImage {
                    width: w,
                    height: h,
                    pixels,
                },
            ));
        }
        Ok(out)
    }

    /// The mouth track a render of `req` would follow (in the voice's own time, which starts
    /// at `audio.voice.start`), with its warnings; `None` when the template has no presenter.
    pub fn mouth_track(&mut self, req: &RenderRequest) -> Result<Option<Track>, RenderError> {
        let mut timings = StageTimings::default();
        let (bundle, mut job) = prepare(req, &mut self.text, &mut timings)?;
        self.attach_mouth_track(&bundle, req, &mut job, &mut timings)?;
        Ok(job.scene.mouth_track)
    }

    /// Computes the mouth track into `job.scene` when the timeline has a presenter.
    fn attach_mouth_track(
        &self,
        bundle: &Bundle,
        req: &RenderRequest,
        job: &mut Prepared,
        timings: &mut StageTimings,
    ) -> Result<(), RenderError> {
        if first_presenter(&job.timeline).is_none() {
            return Ok(());
        }
        let voice = prepare_voice(
            &self.lipsync,
            bundle,
            req,
            &job.timeline,
            &mut job.scene.warnings,
            timings,
        )?;
        track_warnings(voice.mouth.as_ref(), &job.timeline, &mut job.scene.warnings);
        job.scene.mouth_track = voice.mouth;
        Ok(())
    }

    /// Renders the frame at `at` seconds as a straight-alpha-free RGBA image (premultiplied).
    /// With a presenter layer, the voice is found (and analysed or spoken) as for a render, so
    /// the mouth shows the shape of that instant; the returned warnings include lip-sync's.
    pub fn still(
        &mut self,
        req: &RenderRequest,
        at: f64,
    ) -> Result<(RgbaImage, Vec<String>), RenderError> {
        self.still_frame(req, at)
            .map_err(|e| e.renamed(|p| in_template(&req.template_dir, p)))
    }

    fn still_frame(
        &mut self,
        req: &RenderRequest,
        at: f64,
    ) -> Result<(RgbaImage, Vec<String>), RenderError> {
        let mut timings = StageTimings::default();
        let (bundle, mut job) = prepare(req, &mut self.text, &mut timings)?;
        let duration = job.timeline.duration;
        if !(at.is_finite() && at >= 0.0 && at < duration) {
            return Err(RenderError::Range {
                t0: at,
                t1: at,
                duration,
            });
        }
        self.attach_mouth_track(&bundle, req, &mut job, &mut timings)?;
        let timeline = &job.timeline;
        let frame = timeline.frame_range(at, timeline.duration).start;
        let t = timeline.frame_time(frame);
        let scene = &job.scene;
        let mut comp = Compositor::new(
            &self.gpu,
            scene.width,
            scene.height,
            &scene.atlas,
            &scene.video,
            1,
        )?;
        for (slot, local) in scene.active_videos(timeline, t) {
            let mut reader =
                VideoReader::open(&scene.videos[slot].path, scene.videos[slot].options.clone())?;
            let px = reader.frame_at(local)?;
            comp.upload_video(scene.videos[slot].rect, px);
        }
        let mut layers = Vec::new();
        scene.frame_layers(timeline, t, &mut layers);
        comp.submit(scene.background, &layers, Readback::Rgba, frame)?;
        let mut pixels = Vec::new();
        comp.read_oldest(&mut pixels)?;
        Ok((
            RgbaImage {
                width: scene.width,
                height: scene.height,
                pixels,
            },
            job.scene.warnings,
        ))
    }
}

/// `path` relative to the template folder `dir`, when it is inside it: errors name a template's
/// files as its author wrote them (`media/background.mp4`), not where a worker unpacked them.
fn in_template(dir: &Path, path: &Path) -> Option<PathBuf> {
    path.strip_prefix(dir).ok().map(Path::to_path_buf)
}

/// Runs `write`, which writes the output of `req` to the path it is given: a partial file
/// beside `out`, renamed to `out` on success and removed on failure, so a failed render never
/// leaves a truncated file where a good one was. Errors name `out` for the partial file and the
/// template's files relative to its folder.
fn via_partial<T>(
    req: &RenderRequest,
    out: &Path,
    write: impl FnOnce(&Path) -> Result<T, RenderError>,
) -> Result<T, RenderError> {
    let partial = partial_path(out);
    let result = write(&partial).map_err(|e| {
        e.renamed(|p| {
            if p == partial {
                Some(out.to_owned())
            } else {
                in_template(&req.template_dir, p)
            }
        })
    });
    match result {
        Ok(done) => {
            std::fs::rename(&partial, out).map_err(|error| RenderError::Io {
                path: out.to_owned(),
                error,
            })?;
            Ok(done)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "render.mp4".to_owned());
    out.with_file_name(format!(".{name}.partial.mp4"))
}
