//! `reelfarm lipsync` (mouth track of a voice file) and `reelfarm bench lipsync` (accuracy and
//! speed in every supported language).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use lipsync::{eval, Engine};
use render_core::audio;

use crate::cli::{LipsyncArgs, LipsyncBenchArgs};

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

pub fn bench(args: LipsyncBenchArgs) -> Result<()> {
    let engine = Engine::with_default_voice();
    if engine.voice().is_none() {
        bail!("the reelfarm-espeak helper was not found (build it with `cargo build --release -p tts-espeak`, or set REELFARM_ESPEAK)");
    }
    let langs: Vec<&str> = match &args.lang {
        Some(l) => l.split(',').map(str::trim).collect(),
        None => lipsync::viseme::LANGUAGES.to_vec(),
    };
    let t = Instant::now();
    let cases = eval::run(&engine, &langs)?;
    println!(
        "lip-sync accuracy, ±{:.0} ms tolerance, {} voices per language ({}) against the synthesizer's phoneme times",
        eval::TOLERANCE_MS,
        eval::test_voices().len(),
        eval::test_voices().iter().map(|v| v.label).collect::<Vec<_>>().join(", ")
    );
    println!("| lang | audio s | transcript exact | transcript coarse | audio-only exact | audio-only coarse | s per s (transcript) | s per s (audio-only) |");
    println!("|---|---|---|---|---|---|---|---|");
    let rows = eval::by_language(&cases);
    for r in &rows {
        println!(
            "| {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.4} |",
            r.lang,
            r.seconds,
            r.aligned.exact,
            r.aligned.coarse,
            r.acoustic.exact,
            r.acoustic.coarse,
            r.aligned_cost,
            r.acoustic_cost
        );
    }
    let n = rows.len() as f64;
    let mean = |f: &dyn Fn(&eval::Summary) -> f64| rows.iter().map(f).sum::<f64>() / n;
    println!(
        "| mean | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.4} |",
        rows.iter().map(|r| r.seconds).sum::<f64>(),
        mean(&|r| r.aligned.exact),
        mean(&|r| r.aligned.coarse),
        mean(&|r| r.acoustic.exact),
        mean(&|r| r.acoustic.coarse),
        mean(&|r| r.aligned_cost),
        mean(&|r| r.acoustic_cost)
    );
    let fallbacks = cases
        .iter()
        .filter(|c| c.aligned_method != lipsync::Method::Aligned)
        .count();
    println!(
        "transcript path fell back to audio-only in {fallbacks} of {} utterances; total {:.1} s",
        cases.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
