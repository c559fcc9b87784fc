//! `reelfarm lipsync`: the mouth track of a voice file (`reelfarm bench lipsync`, its accuracy
//! in every supported language, is in the benches crate).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use lipsync::Engine;
use render_core::audio;

use crate::cli::LipsyncArgs;

/// Mono samples at the render rate of any file FFmpeg decodes.
fn decode_mono(path: &Path) -> Result<Vec<f32>> {
    let pcm = audio::decode_file(path).with_context(|| format!("reading {}", path.display()))?;
    let mono = audio::to_mono(&pcm);
    if mono.is_empty() {
        bail!("{}: the file holds no audio samples", path.display());
    }
    Ok(mono)
}

pub fn run(args: LipsyncArgs) -> Result<()> {
    let engine = Engine::with_default_voice();
    let samples = decode_mono(&args.audio)?;
    let t = Instant::now();
    let track = engine
        .analyze(
            &samples,
            audio::SAMPLE_RATE,
            &args.lang,
            args.text.as_deref(),
        )
        .with_context(|| format!("lip-sync of {}", args.audio.display()))?;
    let took = t.elapsed();
    for w in &track.warnings {
        eprintln!("warning: {w}");
    }
    match print_track(&track, args.json) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    tracing::info!(
        method = ?track.method,
        cues = track.cues.len(),
        ms = took.as_secs_f64() * 1e3,
        "lip-sync done"
    );
    Ok(())
}

fn print_track(track: &lipsync::Track, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &track.cues)?;
        writeln!(out)?;
    } else {
        for c in &track.cues {
            writeln!(out, "{:.3}\t{}", f64::from(c.start_ms) / 1000.0, c.shape)?;
        }
        writeln!(out, "{:.3}\tX", f64::from(track.duration_ms()) / 1000.0)?;
    }
    out.flush()
}
