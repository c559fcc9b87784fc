//! Rendering a job: a template bundle, one recipient, one language → an MP4 or a still.
//!
//! The frame loop is a three-stage pipeline on three threads joined by bounded channels:
//! a decode thread reads video layers ahead of time, the calling thread uploads them and keeps a
//! ring of frames in flight on the GPU, and an encoder thread feeds x264 and the muxer. Buffers
//! travel back through return channels, so the steady state allocates nothing per frame.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use lipsync::{Engine, LipsyncError, Track, VoiceParams};
use template::{Bundle, ResolvedContent, Timeline};

use crate::audio::{self, MixSpec, MusicTrack, Pcm, VoiceTrack};
use crate::gpu::{Compositor, GpuContext, Readback, DEFAULT_RING};
use crate::media::{self, EncoderSettings, H264Profile, Mp4Writer, RgbaImage, VideoReader};
use crate::scene::Scene;
use crate::text::TextEngine;
use crate::RenderError;

/// Output presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The template's own size (1920x1080 for HD templates), x264 veryfast CRF 23, High profile.
    P1080,
    /// 1280 pixels wide (height scaled to keep the aspect), x264 veryfast CRF 23, High profile.
    P720,
    /// For WhatsApp: 1280 wide, Main profile, VBV-capped at 3 Mb/s so 30 s stays well under 16 MB.
    Whatsapp,
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1080p" => Ok(Preset::P1080),
            "720p" => Ok(Preset::P720),
            "whatsapp" => Ok(Preset::Whatsapp),
            other => Err(format!(
                "unknown preset `{other}`; expected one of 1080p, 720p, whatsapp"
            )),
        }
    }
}

impl Preset {
    /// Output canvas size for a template of `width`x`height`.
    pub fn canvas(self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Preset::P1080 => (width, height),
            Preset::P720 | Preset::Whatsapp => {
                if width <= 1280 {
                    return (width, height);
                }
                let w = 1280u32;
                let h = (f64::from(height) * 1280.0 / f64::from(width) / 2.0).round() as u32 * 2;
                (w, h.max(2))
            }
        }
    }

    /// Encoder settings for this preset at `width`x`height` and `fps`.
    pub fn encoder(self, width: u32, height: u32, fps: u32) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            fps,
            crf: 23.0,
            preset: "veryfast".to_owned(),
            profile: match self {
                Preset::Whatsapp => H264Profile::Main,
                _ => H264Profile::High,
            },
            max_bitrate_kbps: match self {
                Preset::Whatsapp => Some(3000),
                _ => None,
            },
            gop_frames: fps * 2,
            threads: ENCODER_THREADS,
            audio_bitrate: 128_000,
        }
    }
}

/// x264 threads. Fixed, not the core count, so the same inputs give the same bytes on every
/// machine.
pub const ENCODER_THREADS: usize = 4;

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
}

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

impl RenderRequest {
    /// The voice file this request speaks with: its own, else the template's default for its
    /// language (or for any language), else none.
    pub fn voice_file(&self, bundle: &Bundle) -> Option<PathBuf> {
        if let Some(v) = &self.voice {
            return Some(v.clone());
        }
        let voice = bundle.manifest.audio.voice.as_ref()?;
        voice
            .default
            .get(&self.lang)
            .or_else(|| voice.default.get("*"))
            .map(|rel| bundle.media_path(rel))
    }
}

/// The job's voice, ready to mix, and the presenters' mouth track.
#[derive(Default)]
struct Voice {
    /// The voice for the mix; `None` when there is none.
    track: Option<VoiceTrack>,
    /// The mouth track, when the timeline has a presenter and something to follow.
    mouth: Option<Track>,
}

/// The first presenter layer of the timeline, if any.
fn first_presenter(timeline: &Timeline) -> Option<&template::ResolvedLayer> {
    timeline
        .layers
        .iter()
        .find(|l| matches!(l.content, ResolvedContent::Presenter { .. }))
}

/// Finds the job's voice and, when the timeline has presenters, its mouth track. The voice is,
/// in order: the request's own file, the template's default file for the language, the voice
/// script spoken by the built-in voice (`audio.voice.tts`), or none.
fn prepare_voice(
    engine: &Engine,
    bundle: &Bundle,
    req: &RenderRequest,
    timeline: &Timeline,
    warnings: &mut Vec<String>,
    timings: &mut StageTimings,
) -> Result<Voice, RenderError> {
    let presenter = first_presenter(timeline);
    let lang = timeline.lang.as_str();
    let script = timeline.voice_script.as_deref();
    let injected = presenter.and(req.mouth_track.clone());
    let slot = match (&bundle.manifest.audio.voice, req.voice_file(bundle)) {
        (None, Some(_)) => return Err(RenderError::NoVoiceSlot),
        (None, None) => {
            if let (Some(p), None) = (presenter, &injected) {
                warnings.push(format!(
                    "presenter layer `{}`: the template has no voice slot (audio.voice); the mouth rests",
                    p.id
                ));
            }
            return Ok(Voice {
                track: None,
                mouth: injected,
            });
        }
        (Some(slot), Some(path)) => {
            let pcm = audio::decode_file(&path)?;
            if pcm.duration_secs() > slot.max_duration + 1e-3 {
                return Err(RenderError::VoiceTooLong {
                    seconds: pcm.duration_secs(),
                    max: slot.max_duration,
                });
            }
            let mouth = match (presenter, injected) {
                (Some(_), Some(track)) => Some(track),
                (Some(p), None) => {
                    let t = Instant::now();
                    let mono = audio::to_mono(&pcm);
                    let analyze =
                        |transcript| engine.analyze(&mono, audio::SAMPLE_RATE, lang, transcript);
                    let result = match analyze(script) {
                        // Aligning to the script needs the built-in voice; the audio alone
                        // needs nothing.
                        Err(LipsyncError::NoVoice) if script.is_some() => {
                            warnings.push(format!(
                                "presenter layer `{}`: no text-to-speech helper to align the voice script; mouth shapes estimated from the audio alone",
                                p.id
                            ));
                            analyze(None)
                        }
                        other => other,
                    };
                    let track = result.map_err(|error| RenderError::LipSync {
                        layer: p.id.clone(),
                        lang: lang.to_owned(),
                        error,
                    })?;
                    timings.lipsync += t.elapsed();
                    Some(track)
                }
                (None, _) => None,
            };
            return Ok(Voice {
                track: Some(VoiceTrack {
                    pcm,
                    start: slot.start,
                    gain_db: slot.gain_db,
                }),
                mouth,
            });
        }
        (Some(slot), None) => slot,
    };
    if let (Some(tts), Some(script)) = (&slot.tts, script) {
        let t = Instant::now();
        let params = VoiceParams {
            variant: tts.variant.clone(),
            rate_wpm: tts.rate,
            pitch: tts.pitch,
        };
        let (speech, track) =
            engine
                .speak(script, lang, &params)
                .map_err(|error| RenderError::Speech {
                    lang: lang.to_owned(),
                    error,
                })?;
        timings.lipsync += t.elapsed();
        let seconds = speech.duration_ms() / 1000.0;
        if seconds > slot.max_duration + 1e-3 {
            return Err(RenderError::ScriptTooLong {
                lang: lang.to_owned(),
                seconds,
                max: slot.max_duration,
            });
        }
        let pcm = audio::from_mono("built-in voice", &speech.samples, speech.sample_rate)?;
        return Ok(Voice {
            track: Some(VoiceTrack {
                pcm,
                start: slot.start,
                gain_db: slot.gain_db,
            }),
            mouth: presenter.map(|_| injected.unwrap_or(track)),
        });
    }
    if let (Some(p), None) = (presenter, &injected) {
        warnings.push(format!(
            "presenter layer `{}`: no voice for language `{lang}` (no voice file, no default voice and no spoken script); the mouth rests",
            p.id
        ));
    }
    Ok(Voice {
        track: None,
        mouth: injected,
    })
}

/// Adds a mouth track's warnings to the job's.
fn track_warnings(track: Option<&Track>, timeline: &Timeline, warnings: &mut Vec<String>) {
    if let (Some(track), Some(p)) = (track, first_presenter(timeline)) {
        warnings.extend(
            track
                .warnings
                .iter()
                .map(|w| format!("presenter layer `{}`: lip-sync: {w}", p.id)),
        );
    }
}

fn mix_audio(
    bundle: &Bundle,
    voice: Option<VoiceTrack>,
    duration: f64,
    warnings: &mut Vec<String>,
) -> Result<Pcm, RenderError> {
    let spec = &bundle.manifest.audio;
    let music = match &spec.music {
        Some(m) => Some(MusicTrack {
            pcm: audio::decode_file(&bundle.media_path(&m.src))?,
            gain_db: m.gain_db,
            duck_db: m.duck_db,
            fade_out: m.fade_out,
        }),
        None => None,
    };
    let mix = audio::mix(&MixSpec {
        duration,
        music,
        voice,
        loudness_lufs: spec.loudness_lufs,
    })?;
    warnings.extend(mix.warnings);
    Ok(mix.pcm)
}

/// Decoded video frames for one output frame: (slot, rgba) pairs.
type DecodedFrame = (u64, Vec<(usize, Vec<u8>)>);

/// The decode stage: reads every active video layer for each frame of `frames`, in order.
/// Returns the time it was busy.
fn decode_frames(
    scene: &Scene,
    timeline: &Timeline,
    frames: std::ops::Range<u64>,
    tx: SyncSender<Result<DecodedFrame, RenderError>>,
    recycle: Receiver<Vec<u8>>,
) -> Duration {
    let slots = &scene.videos;
    let mut busy = Duration::ZERO;
    let mut readers: Vec<Option<VideoReader>> = slots.iter().map(|_| None).collect();
    for frame in frames {
        let t0 = Instant::now();
        let t = timeline.frame_time(frame);
        let mut out = Vec::new();
        for (slot, local) in scene.active_videos(timeline, t) {
            let reader = match &mut readers[slot] {
                Some(r) => r,
                empty => match VideoReader::open(&slots[slot].path, slots[slot].options.clone()) {
                    Ok(r) => empty.insert(r),
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return busy;
                    }
                },
            };
            match reader.frame_at(local) {
                Ok(px) => {
                    let mut buf = recycle.try_recv().unwrap_or_default();
                    buf.clear();
                    buf.extend_from_slice(px);
                    out.push((slot, buf));
                }
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return busy;
                }
            }
        }
        busy += t0.elapsed();
        if tx.send(Ok((frame, out))).is_err() {
            break;
        }
    }
    busy
}

/// Encodes frames from `rx` with the range's `audio` into an MP4 at `out`. Returns the time
/// spent in the encoder and muxer and the file size.
fn encode_frames(
    out: &Path,
    settings: EncoderSettings,
    audio: &Pcm,
    rx: Receiver<Vec<u8>>,
    recycle: SyncSender<Vec<u8>>,
) -> Result<(Duration, u64), RenderError> {
    let mut busy = Duration::ZERO;
    let t = Instant::now();
    let mut writer = Mp4Writer::create(out, &settings)?;
    let fps = f64::from(settings.fps);
    let total_audio = audio.frames();
    let mut audio_pos = 0usize;
    let mut index = 0u64;
    busy += t.elapsed();
    for frame in rx {
        let t = Instant::now();
        writer.write_video_frame(&frame)?;
        index += 1;
        let until = ((index as f64 / fps) * f64::from(audio::SAMPLE_RATE)).round() as usize;
        let until = until.min(total_audio);
        if until > audio_pos {
            writer.write_audio(&audio.samples[audio_pos * 2..until * 2])?;
            audio_pos = until;
        }
        busy += t.elapsed();
        // The frame loop may have finished; a closed recycle channel is fine.
        let _ = recycle.try_send(frame);
    }
    let t = Instant::now();
    if audio_pos < total_audio {
        writer.write_audio(&audio.samples[audio_pos * 2..])?;
    }
    writer.finish()?;
    busy += t.elapsed();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok((busy, bytes))
}

/// A reusable renderer: the GPU device, the font system and the lip-sync engine are set up
/// once.
pub struct Renderer {
    gpu: GpuContext,
    text: TextEngine,
    lipsync: Engine,
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
        // Written beside the target and renamed on success, so a failed render never leaves a
        // truncated file where a good one was.
        let partial = partial_path(out);
        let result = self
            .run(req, progress, |settings, audio, rx, recycle| {
                encode_frames(&partial, settings, &audio, rx, recycle)
            })
            .map_err(|e| {
                e.renamed(|p| {
                    if p == partial {
                        Some(out.to_owned())
                    } else {
                        in_template(&req.template_dir, p)
                    }
                })
            });
        match result {
            Ok(report) => {
                std::fs::rename(&partial, out).map_err(|error| RenderError::Io {
                    path: out.to_owned(),
                    error,
                })?;
                Ok(report)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                Err(e)
            }
        }
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

    /// The pipeline: decode thread → this thread (GPU) → `consume` on its own thread, which
    /// gets the encoder settings, the audio of the range, frames, and a channel to return
    /// buffers; it returns its busy time and a byte count.
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
        let (bundle, mut job) = prepare(req, &mut self.text, &mut timings)?;
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
        let total = frames.end - frames.start;

        let t = Instant::now();
        let voice = prepare_voice(
            &self.lipsync,
            &bundle,
            req,
            timeline,
            &mut job.scene.warnings,
            &mut timings,
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

        let scene = &job.scene;
        let settings = req.preset.encoder(scene.width, scene.height, timeline.fps);
        let (dec_tx, dec_rx) = mpsc::sync_channel(4);
        let (dec_recycle_tx, dec_recycle_rx) = mpsc::sync_channel(16);
        let (enc_tx, enc_rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let (enc_recycle_tx, enc_recycle_rx) = mpsc::sync_channel(8);
        let gpu = &self.gpu;
        // Scoped threads borrow the scene and timeline instead of copying them per job.
        let (loop_result, decode_busy, consumed) = thread::scope(|s| {
            let decoder =
                s.spawn(|| decode_frames(scene, timeline, frames.clone(), dec_tx, dec_recycle_rx));
            let consumer = s.spawn(move || consume(settings, audio, enc_rx, enc_recycle_tx));
            let loop_result = frame_loop(
                gpu,
                scene,
                timeline,
                total,
                dec_rx,
                dec_recycle_tx,
                enc_tx,
                enc_recycle_rx,
                progress,
            );
            (
                loop_result,
                decoder.join().unwrap_or_default(),
                consumer.join(),
            )
        });
        let consumed = consumed.map_err(|_| RenderError::EncoderStopped)?;
        // Report the first failure: a decode or GPU error stops the encoder, not the reverse.
        let (gpu_busy, (encode_busy, bytes)) = match (loop_result, consumed) {
            (Ok(g), Ok(c)) => (g, c),
            (Err(RenderError::EncoderStopped), Err(e)) | (Ok(_), Err(e)) | (Err(e), _) => {
                return Err(e)
            }
        };
        timings.encode = encode_busy;
        timings.decode = decode_busy;
        timings.gpu = gpu_busy;
        timings.total = start.elapsed();
        Ok(RenderReport {
            frames: total,
            seconds: total as f64 / f64::from(timeline.fps),
            bytes,
            size: (scene.width, scene.height),
            timings,
            adapter: self.adapter(),
            warnings: job.scene.warnings,
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

    /// Renders the frame at `at` seconds as a straight-alpha-free RGBA image (premultiplied).
    /// With a presenter layer, the voice is found (and analysed or spoken) as for a render, so
    /// the mouth shows the shape of that instant; the returned warnings include lip-sync's.
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

fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "render.mp4".to_owned());
    out.with_file_name(format!(".{name}.partial.mp4"))
}

/// The GPU stage: uploads decoded frames, composites, and hands YUV frames to the encoder.
/// Returns the time this thread was busy. Dropping `enc_tx` on return ends the encoder.
#[allow(clippy::too_many_arguments)]
fn frame_loop(
    gpu: &GpuContext,
    scene: &Scene,
    timeline: &Timeline,
    total: u64,
    decoded: Receiver<Result<DecodedFrame, RenderError>>,
    decode_recycle: SyncSender<Vec<u8>>,
    enc_tx: SyncSender<Vec<u8>>,
    enc_recycle: Receiver<Vec<u8>>,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> Result<Duration, RenderError> {
    let mut busy = Duration::ZERO;
    let mut comp = Compositor::new(
        gpu,
        scene.width,
        scene.height,
        &scene.atlas,
        &scene.video,
        DEFAULT_RING,
    )?;
    let mut layers = Vec::new();
    let mut done = 0u64;
    let mut flush = |comp: &mut Compositor<'_>| -> Result<bool, RenderError> {
        let mut buf = enc_recycle.try_recv().unwrap_or_default();
        if comp.read_oldest(&mut buf)?.is_none() {
            return Ok(false);
        }
        // A closed channel means the encoder failed; its own error is reported by the caller.
        enc_tx.send(buf).map_err(|_| RenderError::EncoderStopped)?;
        done += 1;
        if progress(done, total).is_break() {
            // Dropping the channels on return stops the decoder and ends the encoder.
            return Err(RenderError::Cancelled);
        }
        Ok(true)
    };
    for item in decoded {
        let (frame, videos) = item?;
        let t = Instant::now();
        for (slot, px) in videos {
            comp.upload_video(scene.videos[slot].rect, &px);
            // The decoder may already be done; then the buffer is simply freed.
            let _ = decode_recycle.try_send(px);
        }
        scene.frame_layers(timeline, timeline.frame_time(frame), &mut layers);
        if comp.is_full() {
            flush(&mut comp)?;
        }
        comp.submit(scene.background, &layers, Readback::Yuv420, frame)?;
        busy += t.elapsed();
    }
    let t = Instant::now();
    while flush(&mut comp)? {}
    busy += t.elapsed();
    Ok(busy)
}
