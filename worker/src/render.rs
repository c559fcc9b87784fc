//! The blocking part of an attempt: the video with render-core, then the poster still, on a
//! blocking thread with a [`Renderer`] from the pool.

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;
use proto::v1::FailureClass;
use render_core::media::RgbaImage;
use render_core::segments::{EncoderPool, SegmentCache};
use render_core::{
    Preset, RenderError, RenderReport, RenderRequest, Renderer, SmartRender, StreamOutput,
};
use tracing::{info, info_span};

use crate::error::AttemptError;
use crate::running::{Running, Stage};
use crate::segments::StreamPublisher;

/// JPEG quality of posters.
const POSTER_QUALITY: u8 = 85;

/// The GPU renderers of one or more workers: idle renderers, one per slot at most, created on
/// first use. A `Renderer` holds a GPU device and a font system, so it is reused across
/// attempts. Cloning shares the pool.
///
/// The caller of [`crate::run`] owns it and destroys the renderers with [`Gpu::close`] *after*
/// its async runtime has shut down. Threads that used the GPU driver (the runtime's blocking
/// threads render) must exit while the driver is still loaded: destroying the last device and
/// instance lets the Vulkan loader unload the driver, and a thread that exits after that runs
/// the driver's thread-exit code from an unmapped library (a segmentation fault at exit, seen
/// with NVIDIA's driver).
#[derive(Clone, Default)]
pub struct Gpu {
    idle: std::sync::Arc<Mutex<Vec<Renderer>>>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Gpu").field("idle", &idle).finish()
    }
}

impl Gpu {
    /// An empty pool: renderers are opened when the worker starts and as slots need them.
    pub fn new() -> Gpu {
        Gpu::default()
    }

    /// Destroys the idle renderers (GPU devices, then their instances) on this thread, one
    /// after another. Call it after the runtime that ran the workers has shut down.
    pub fn close(&self) {
        drop(std::mem::take(
            &mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner),
        ));
    }

    /// An idle renderer, or a new one.
    pub(crate) fn take(&self) -> Result<Renderer, RenderError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(r) => Ok(r),
            None => Renderer::new(),
        }
    }

    pub(crate) fn put(&self, renderer: Renderer) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(renderer);
    }
}

/// What to render for one attempt.
pub(crate) struct Job {
    pub(crate) template_dir: PathBuf,
    pub(crate) lang: String,
    pub(crate) tokens: BTreeMap<String, String>,
    pub(crate) preset: Preset,
    /// Folder for this attempt's files.
    pub(crate) work_dir: PathBuf,
    /// Where the live stream goes; `None`: not published.
    pub(crate) stream: Option<StreamPublisher>,
    /// When the attempt was acquired (the live stream's first segment is timed from it).
    pub(crate) acquired: Instant,
}

/// What every render of the worker shares: the segment cache and the encoders.
#[derive(Clone, Copy)]
pub(crate) struct Smart<'a> {
    pub(crate) cache: Option<&'a SegmentCache>,
    pub(crate) encoders: &'a EncoderPool,
}

/// A rendered attempt, ready to upload.
pub(crate) struct Rendered {
    pub(crate) video: PathBuf,
    pub(crate) poster: PathBuf,
    pub(crate) report: RenderReport,
    pub(crate) render_time: Duration,
    pub(crate) poster_time: Duration,
    /// From acquisition to the first playable segment of the live stream, when one was
    /// published.
    pub(crate) first_playable: Option<Duration>,
}

/// The preset an assignment asks for; unset (or unknown) means 720p, as the protocol says.
pub(crate) fn preset(wire: i32) -> Preset {
    proto::convert::preset_from_wire(wire).unwrap_or(Preset::P720)
}

/// Renders the video and the poster of `job`. Blocking: run it on a blocking thread. Stops at
/// the next frame once `running` is stopped.
pub(crate) fn render_job(
    pool: &Gpu,
    smart: Smart<'_>,
    job: Job,
    running: &Running,
) -> Result<Rendered, AttemptError> {
    let mut renderer = pool.take().map_err(|e| {
        // No GPU, or it is gone: this machine cannot render now.
        AttemptError::failed(
            FailureClass::Infrastructure,
            format!("cannot open the GPU renderer: {e}"),
        )
    })?;
    let result = render_with(&mut renderer, smart, job, running);
    match &result {
        // A GPU error may have left the device unusable: start afresh next time.
        Err(RenderFailure::Render(RenderError::Gpu(_))) => drop(renderer),
        _ => pool.put(renderer),
    }
    result.map_err(|failure| match failure {
        RenderFailure::Render(RenderError::Cancelled) => AttemptError::Stopped(
            running
                .stopped()
                .unwrap_or(crate::running::StopReason::Coordinator),
        ),
        RenderFailure::Render(e) => AttemptError::render(&e),
        RenderFailure::Other(e) => e,
    })
}

enum RenderFailure {
    Render(RenderError),
    Other(AttemptError),
}

impl From<RenderError> for RenderFailure {
    fn from(e: RenderError) -> Self {
        RenderFailure::Render(e)
    }
}

fn render_with(
    renderer: &mut Renderer,
    smart: Smart<'_>,
    job: Job,
    running: &Running,
) -> Result<Rendered, RenderFailure> {
    let lang = if job.lang.is_empty() {
        // The coordinator resolves the language; fall back to the template's default.
        template::Bundle::load(&job.template_dir)
            .map_err(RenderError::from)?
            .manifest
            .default_language
    } else {
        job.lang
    };
    let req = RenderRequest {
        template_dir: job.template_dir,
        lang,
        tokens: job.tokens,
        voice: None,
        preset: job.preset,
        range: None,
        mouth_track: None,
    };

    running.set_stage(Stage::Render);
    let video = job.work_dir.join("video.mp4");
    let stream_dir = job.work_dir.join("stream");
    let first_playable: Mutex<Option<Duration>> = Mutex::new(None);
    let acquired = job.acquired;
    let publisher = job.stream;
    let publish = |name: &str, path: &Path| {
        let Some(p) = &publisher else { return };
        if p.publish(name, path) && name == render_core::PLAYLIST {
            first_playable
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| acquired.elapsed());
        }
    };
    let stream = match &publisher {
        Some(_) => match std::fs::create_dir_all(&stream_dir) {
            Ok(()) => Some(StreamOutput {
                dir: &stream_dir,
                published: &publish,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the live stream folder");
                None
            }
        },
        None => None,
    };
    let t = Instant::now();
    let report = info_span!("stage", stage = "render").in_scope(|| {
        renderer.render_smart(
            &req,
            &video,
            SmartRender {
                cache: smart.cache,
                pool: smart.encoders,
                stream,
            },
            &mut |done, total| {
                running.set_render_progress(done, total);
                if running.is_cancelled() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
    })?;
    let render_time = t.elapsed();
    let (segments, cached) = report
        .segments
        .as_ref()
        .map_or((0, 0), |s| (s.total, s.cached));
    info!(
        frames = report.frames,
        bytes = report.bytes,
        seconds = render_time.as_secs_f64(),
        segments,
        cached,
        "video rendered"
    );
    if running.is_cancelled() {
        return Err(RenderError::Cancelled.into());
    }

    running.set_stage(Stage::Poster);
    let t = Instant::now();
    let poster = job.work_dir.join("poster.jpg");
    info_span!("stage", stage = "poster").in_scope(|| -> Result<(), RenderFailure> {
        let at = poster_time(&req, report.seconds);
        let (still, _warnings) = renderer.still(&req, at)?;
        write_jpeg(&still, &poster).map_err(|e| {
            RenderFailure::Other(AttemptError::failed(
                FailureClass::Infrastructure,
                format!("cannot write the poster {}: {e}", poster.display()),
            ))
        })
    })?;
    Ok(Rendered {
        video,
        poster,
        report,
        render_time,
        poster_time: t.elapsed(),
        first_playable: first_playable
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner),
    })
}

/// Where the poster is taken: the middle of the first range that depends on the recipient (so
/// the poster shows their name), else a third into the video.
pub(crate) fn poster_time(req: &RenderRequest, video_seconds: f64) -> f64 {
    let from_timeline = || -> Option<f64> {
        let bundle = template::Bundle::load(&req.template_dir).ok()?;
        let tokens = template::resolve_tokens(&bundle.manifest, &req.lang, &req.tokens).ok()?;
        let timeline = template::resolve(&bundle.manifest, &req.lang, &tokens).ok()?;
        let duration = timeline.duration;
        let at = match timeline.dependent_ranges().first() {
            Some(&(start, end)) => (start + end.min(duration)) / 2.0,
            None => duration / 3.0,
        };
        let last_frame = (duration - 1.0 / f64::from(timeline.fps.max(1))).max(0.0);
        Some(at.clamp(0.0, last_frame))
    };
    from_timeline().unwrap_or(video_seconds / 3.0)
}

/// Writes a premultiplied RGBA still as an RGB JPEG (composited over black, which is what
/// premultiplied colour channels already are).
fn write_jpeg(still: &RgbaImage, path: &Path) -> std::io::Result<()> {
    let rgb: Vec<u8> = still
        .pixels
        .chunks_exact(4)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    let file = std::fs::File::create(path)?;
    let mut out = BufWriter::new(file);
    JpegEncoder::new_with_quality(&mut out, POSTER_QUALITY)
        .encode(&rgb, still.width, still.height, ExtendedColorType::Rgb8)
        .map_err(std::io::Error::other)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_default_to_720p() {
        assert_eq!(preset(proto::v1::Preset::Unspecified as i32), Preset::P720);
        assert_eq!(preset(proto::v1::Preset::Preset1080p as i32), Preset::P1080);
        assert_eq!(preset(proto::v1::Preset::Preset720p as i32), Preset::P720);
        assert_eq!(preset(proto::v1::Preset::Whatsapp as i32), Preset::Whatsapp);
        assert_eq!(preset(99), Preset::P720);
    }

    #[test]
    fn poster_sits_in_the_first_personalized_range() {
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../assets/templates/order-delivered"
        ));
        let req = RenderRequest {
            template_dir: dir,
            lang: "en".to_owned(),
            tokens: BTreeMap::from([("first_name".to_owned(), "Ana".to_owned())]),
            voice: None,
            preset: Preset::P720,
            range: None,
            mouth_track: None,
        };
        let at = poster_time(&req, 30.0);
        assert!((0.5..7.5).contains(&at), "{at}");
        let mut missing = req.clone();
        missing.template_dir = PathBuf::from("/nonexistent");
        assert_eq!(poster_time(&missing, 30.0), 10.0);
    }

    #[test]
    fn jpeg_round_trips() {
        let still = RgbaImage {
            width: 4,
            height: 2,
            pixels: vec![200; 4 * 2 * 4],
        };
        let dir = std::env::temp_dir().join(format!("worker-jpeg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("p.jpg");
        write_jpeg(&still, &path).expect("jpeg");
        let img = image::open(&path).expect("decodes");
        assert_eq!((img.width(), img.height()), (4, 2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
