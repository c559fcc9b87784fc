//! `reelfarm bench lipsync`: lip-sync accuracy per language against the synthesizer's phoneme
//! times, on the transcript path and the audio-only path, with the cost of each.

use std::time::Instant;

use anyhow::{bail, Result};
use lipsync::{eval, Engine};

/// Runs the accuracy benchmark on `langs` (`None`: every language with a viseme table) and
/// prints a table per language.
pub fn run(langs: Option<&str>) -> Result<()> {
    let engine = Engine::with_default_voice();
    if engine.voice().is_none() {
        bail!("the reelfarm-espeak helper was not found (build it with `cargo build --release -p tts-espeak`, or set REELFARM_ESPEAK)");
    }
    let langs: Vec<&str> = match langs {
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
