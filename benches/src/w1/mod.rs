//! `reelfarm bench w1`: the reference workload W1 measured three ways in one run.
//!
//! 1. **reelfarm**: [`Renderer::render`] to an MP4, with its per-stage breakdown.
//! 2. **x264 alone**: the very frames reelfarm composites, collected first (in memory, or in a
//!    raw file when memory is short), then encoded on their own with [`Mp4Writer`] and the
//!    identical [`EncoderSettings`]. Only the encoding is timed: this is the floor for a full
//!    render on CPU.
//! 3. **FFmpeg CLI filtergraph**: the same video as one `ffmpeg` command, built from the resolved
//!    timeline by [`ffmpeg_command`], with text and other static layers pre-rendered to PNG
//!    (FFmpeg 5.1's `drawtext` cannot shape Indic scripts).
//!
//! Then, unless skipped, the **smart render** ([`Renderer::render_smart`]: segments, a cache,
//! a pool of encoders) of the same recipient three times, each with a fresh cache folder:
//! cold (empty), warm-template (filled by a recipient with another name, product and offer
//! code) and warm-shared (filled by one with the same product and offer code), each timed
//! against (1) in the same run (see `smart`).
//!
//! The run prints a table of wall time, frames per second, ratio to x264 alone and output size,
//! reelfarm's per-stage breakdown, what the filtergraph could not express, and how close each
//! output's video is to reelfarm's (PSNR, untimed); it writes the same figures to
//! `results.json` in the output folder.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use render_core::media::{self, EncoderSettings, Mp4Writer};
use render_core::{Preset, RenderReport, RenderRequest, Renderer, StageTimings};
use serde_json::{json, Value};
use template::{Animated, Bundle, Easing, ResolvedContent, ResolvedLayer, Timeline};

use template::{recipients, Recipient};

use crate::{default_template, progress_bar};

mod ffmpeg;
mod report;
mod smart;

pub use smart::other_recipient;

use ffmpeg::{run_ffmpeg, FfmpegRun};
use report::{psnr, Check, Summary};

/// Ratio of reelfarm's wall time to x264 alone that W1 aims to stay under.
const TARGET_RATIO: f64 = 1.30;

/// Memory left free when deciding whether the frames of (b) fit in memory.
const MEMORY_HEADROOM: u64 = 1 << 30;

/// What to run W1 on and where to write its outputs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Template folder; `None`: the bundled demo template.
    pub template: Option<PathBuf>,
    /// Output folder (the three videos and `results.json`).
    pub out: PathBuf,
    /// Leave out (c), the FFmpeg CLI filtergraph.
    pub skip_ffmpeg: bool,
    /// Leave out the smart render rows.
    pub skip_smart: bool,
}

/// The first entry of the template's `recipients.json`; without that file, the template's
/// default language with token fallbacks.
fn first_recipient(dir: &Path, bundle: &Bundle) -> Result<Recipient> {
    if !dir.join("recipients.json").is_file() {
        return Ok(Recipient {
            id: "default".to_owned(),
            lang: bundle.manifest.default_language.clone(),
            tokens: BTreeMap::new(),
        });
    }
    recipients(dir)?
        .into_iter()
        .next()
        .with_context(|| format!("{}: no recipients", dir.join("recipients.json").display()))
}

/// One way of producing the video, as measured.
struct Measured {
    way: &'static str,
    wall: Duration,
    frames: u64,
    bytes: u64,
    path: Option<PathBuf>,
}

impl Measured {
    fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs W1 three ways, prints the table and writes `results.json`.
pub fn run(args: &Config) -> Result<()> {
    let dir = args.template.clone().unwrap_or_else(default_template);
    let bundle =
        Bundle::load(&dir).with_context(|| format!("loading template {}", dir.display()))?;
    let recipient = first_recipient(&dir, &bundle)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let req = RenderRequest {
        template_dir: dir.clone(),
        lang: recipient.lang.clone(),
        tokens: recipient.tokens.clone(),
        voice: None,
        preset: Preset::P1080,
        range: None,
        mouth_track: None,
    };
    let m = &bundle.manifest;
    println!(
        "W1: template `{}`, recipient `{}` ({}), {} s at {}x{}, {} fps",
        m.name, recipient.id, recipient.lang, m.duration, m.width, m.height, m.fps
    );
    let mut renderer = Renderer::new().context("starting the renderer")?;
    let adapter = renderer.adapter();
    println!("GPU adapter: {adapter}");

    // (a) reelfarm, end to end.
    let reel_path = args.out.join("reelfarm.mp4");
    let bar = progress_bar("reelfarm");
    let report = renderer
        .render(&req, &reel_path, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .context("(a) reelfarm render")?;
    bar.finish_and_clear();
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let reelfarm = Measured {
        way: "reelfarm",
        wall: report.timings.total,
        frames: report.frames,
        bytes: report.bytes,
        path: Some(reel_path),
    };

    // The smart render of the same recipient: cold, warm-template, warm-shared.
    let smart = if args.skip_smart {
        None
    } else {
        Some(
            smart::run(&mut renderer, &dir, &bundle, &recipient, &req, &args.out)
                .context("smart render rows")?,
        )
    };

    // (b) the same frames, collected, then x264 alone on them.
    let settings = EncoderSettings::for_preset(req.preset, report.size.0, report.size.1, m.fps);
    let (frames, frames_only) = collect_frames(&mut renderer, &req, &report, &settings, &args.out)
        .context("(b) collecting reelfarm's frames")?;
    let x264_path = args.out.join("x264-alone.mp4");
    let x264 = encode_alone(&frames, &settings, &x264_path).context("(b) x264 alone")?;
    let storage = frames.describe();
    drop(frames);

    // (c) the FFmpeg CLI filtergraph.
    let ffmpeg = if args.skip_ffmpeg {
        None
    } else {
        Some(
            run_ffmpeg(&mut renderer, &req, &bundle, &report, &settings, &args.out)
                .context("(c) FFmpeg CLI filtergraph")?,
        )
    };

    let frames_only_row = Measured {
        way: "reelfarm frames, no encoder",
        wall: frames_only.timings.total,
        frames: frames_only.frames,
        bytes: 0,
        path: None,
    };
    let mut rows = vec![&reelfarm, &x264];
    if let Some(f) = &ffmpeg {
        rows.push(&f.measured);
    }
    rows.push(&frames_only_row);
    if let Some(s) = &smart {
        rows.extend(s.rows.iter().map(|r| &r.measured));
    }

    // Untimed: are the outputs the same video?
    let mut checks = Vec::new();
    for row in [Some(&x264), ffmpeg.as_ref().map(|f| &f.measured)]
        .into_iter()
        .flatten()
    {
        if let (Some(a), Some(b)) = (&reelfarm.path, &row.path) {
            checks.push(Check {
                way: row.way,
                psnr_db: psnr(a, b)
                    .with_context(|| format!("comparing {} with reelfarm", row.way))?,
            });
        }
    }

    let summary = Summary {
        recipient: &recipient,
        bundle: &bundle,
        report: &report,
        adapter: &adapter,
        rows,
        floor: &x264,
        storage,
        ffmpeg: ffmpeg.as_ref(),
        checks,
        smart: smart.as_ref(),
    };
    summary.print();
    let path = args.out.join("results.json");
    let text = serde_json::to_string_pretty(&summary.to_json())?;
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Where the frames of (b) wait between compositing and encoding.
enum Frames {
    /// One buffer per frame.
    Memory(Vec<Vec<u8>>),
    /// Raw I420 frames back to back in a file.
    File {
        path: PathBuf,
        count: u64,
        frame_bytes: usize,
    },
}

impl Frames {
    fn len(&self) -> u64 {
        match self {
            Frames::Memory(v) => v.len() as u64,
            Frames::File { count, .. } => *count,
        }
    }

    fn describe(&self) -> String {
        match self {
            Frames::Memory(v) => format!("{} frames held in memory", v.len()),
            Frames::File { count, path, .. } => {
                format!(
                    "{count} frames in a raw file ({}), read untimed",
                    path.display()
                )
            }
        }
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        if let Frames::File { path, .. } = self {
            // Best effort: the raw file is scratch space several GB large.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What the frame sink accumulates on the encoder thread.
#[derive(Default)]
struct Sink {
    memory: Vec<Vec<u8>>,
    file: Option<BufWriter<File>>,
    count: u64,
    error: Option<std::io::Error>,
}

/// `MemAvailable` from `/proc/meminfo`, in bytes; `None` where it cannot be read.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Composites the job again with [`Renderer::render_frames`] and keeps every YUV frame. Returns
/// the frames and the report of that encoder-less run.
fn collect_frames(
    renderer: &mut Renderer,
    req: &RenderRequest,
    report: &RenderReport,
    settings: &EncoderSettings,
    out: &Path,
) -> Result<(Frames, RenderReport)> {
    let frame_bytes = settings.frame_bytes();
    let needed = report.frames * frame_bytes as u64;
    let in_memory = available_memory().is_some_and(|avail| avail >= needed + MEMORY_HEADROOM);
    let raw_path = out.join("frames.yuv");
    let mut sink = Sink::default();
    if in_memory {
        sink.memory.reserve_exact(report.frames as usize);
    } else {
        let file = File::create(&raw_path)
            .with_context(|| format!("cannot create {}", raw_path.display()))?;
        sink.file = Some(BufWriter::with_capacity(8 << 20, file));
    }
    let bar = progress_bar("frames");
    bar.set_length(report.frames);
    let frames_report = renderer.render_frames(req, |frame| {
        if sink.error.is_some() {
            return;
        }
        let result = match &mut sink.file {
            Some(file) => file.write_all(frame),
            None => {
                sink.memory.push(frame.to_vec());
                Ok(())
            }
        };
        match result {
            Ok(()) => sink.count += 1,
            Err(e) => sink.error = Some(e),
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if let Some(e) = sink.error.take() {
        return Err(e).with_context(|| format!("writing {}", raw_path.display()));
    }
    let frames = match sink.file.take() {
        Some(mut file) => {
            file.flush()
                .with_context(|| format!("writing {}", raw_path.display()))?;
            Frames::File {
                path: raw_path,
                count: sink.count,
                frame_bytes,
            }
        }
        None => Frames::Memory(sink.memory),
    };
    if frames.len() != report.frames {
        bail!(
            "collected {} frames, but the render wrote {}",
            frames.len(),
            report.frames
        );
    }
    Ok((frames, frames_report))
}

/// Encodes `frames` (video only) with `settings` into `path`, timing only the encoder: opening
/// it, every frame, and finishing the file. Reading frames from a raw file is not counted.
fn encode_alone(frames: &Frames, settings: &EncoderSettings, path: &Path) -> Result<Measured> {
    let bar = progress_bar("x264 alone");
    bar.set_length(frames.len());
    let mut busy = Duration::ZERO;
    let t = Instant::now();
    let mut writer = Mp4Writer::create(path, settings)?;
    busy += t.elapsed();
    match frames {
        Frames::Memory(list) => {
            let t = Instant::now();
            for frame in list {
                writer.write_video_frame(frame)?;
                bar.inc(1);
            }
            busy += t.elapsed();
        }
        Frames::File {
            path: raw,
            count,
            frame_bytes,
        } => {
            let mut reader = BufReader::with_capacity(
                8 << 20,
                File::open(raw).with_context(|| format!("cannot open {}", raw.display()))?,
            );
            let mut buf = vec![0u8; *frame_bytes];
            for i in 0..*count {
                reader
                    .read_exact(&mut buf)
                    .with_context(|| format!("{}: reading frame {i}", raw.display()))?;
                let t = Instant::now();
                writer.write_video_frame(&buf)?;
                busy += t.elapsed();
                bar.inc(1);
            }
        }
    }
    let t = Instant::now();
    let stats = writer.finish()?;
    busy += t.elapsed();
    bar.finish_and_clear();
    Ok(Measured {
        way: "x264 alone (same frames)",
        wall: busy,
        frames: stats.frames,
        bytes: stats.bytes,
        path: Some(path.to_owned()),
    })
}
