//! The fallback without a transcript: mouth shapes from the sound alone.
//!
//! Per 10 ms frame: silence → rest; short silences inside speech → closed lips (stop
//! closures); noisy unvoiced frames → teeth (fricatives); voiced frames by their spectral
//! balance, normalized over the utterance's own voiced frames so the speaker's pitch and
//! timbre cancel out: much energy low in the spectrum → rounded, a spread spectrum with little
//! low energy → narrow, otherwise open (wide open when also loud). Language-independent and much
//! coarser than the transcript path.

use crate::features::Frame;
use crate::Shape;

/// Frames of speech louder than this below the loudest frame count as silence.
const RANGE_DB: f32 = 38.0;
/// Silences shorter than this inside speech are closures, not pauses.
const CLOSURE_MAX_FRAMES: usize = 15;

/// Whether each frame holds speech.
pub fn speech_mask(frames: &[Frame]) -> Vec<bool> {
    if frames.is_empty() {
        return Vec::new();
    }
    let mut sorted: Vec<f32> = frames.iter().map(|f| f.db).collect();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[sorted.len() / 10];
    let peak = sorted[sorted.len() - 1];
    let threshold = (floor + 12.0).max(peak - RANGE_DB).min(peak - 6.0);
    frames.iter().map(|f| f.db > threshold).collect()
}

/// The loudest frame's level, dB.
pub fn peak_db(frames: &[Frame]) -> f32 {
    frames
        .iter()
        .map(|f| f.db)
        .fold(f32::NEG_INFINITY, f32::max)
}

fn zscores(values: &[f32]) -> (f32, f32) {
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
    (mean, var.sqrt().max(1e-3))
}

/// One shape per frame.
pub fn shapes(frames: &[Frame]) -> Vec<Shape> {
    let speech = speech_mask(frames);
    let voiced: Vec<&Frame> = frames
        .iter()
        .zip(&speech)
        .filter(|(f, s)| **s && f.voicing > 0.5)
        .map(|(f, _)| f)
        .collect();
    let (low_mean, low_sd) = zscores(&voiced.iter().map(|f| f.low_ratio).collect::<Vec<_>>());
    let (c1_mean, c1_sd) = zscores(&voiced.iter().map(|f| f.mfcc[1]).collect::<Vec<_>>());
    let (c2_mean, c2_sd) = zscores(&voiced.iter().map(|f| f.mfcc[2]).collect::<Vec<_>>());
    let (db_mean, db_sd) = zscores(&voiced.iter().map(|f| f.db).collect::<Vec<_>>());
    let mut out: Vec<Shape> = frames
        .iter()
        .zip(&speech)
        .map(|(f, &s)| {
            if !s {
                return Shape::X;
            }
            if f.voicing < 0.45 && f.zcr > 0.18 {
                return Shape::B;
            }
            let low = (f.low_ratio - low_mean) / low_sd;
            let c1 = (f.mfcc[1] - c1_mean) / c1_sd;
            let c2 = (f.mfcc[2] - c2_mean) / c2_sd;
            let loud = (f.db - db_mean) / db_sd;
            if low > 0.6 && c2 > 0.3 && loud < 0.5 {
                Shape::F
            } else if low < -0.8 || c1 < -1.0 {
                Shape::B
            } else if loud > 0.6 && c1 > 0.0 {
                Shape::D
            } else {
                Shape::C
            }
        })
        .collect();
    // Short silences between speech are closures.
    let mut i = 0;
    while i < out.len() {
        if out[i] != Shape::X {
            i += 1;
            continue;
        }
        let start = i;
        while i < out.len() && out[i] == Shape::X {
            i += 1;
        }
        if start > 0 && i < out.len() && i - start <= CLOSURE_MAX_FRAMES {
            for s in &mut out[start..i] {
                *s = Shape::B;
            }
        }
    }
    out
}

/// Per-frame shapes as `(start_ms, end_ms, shape)` runs.
pub fn runs(shapes: &[Shape], hop_ms: f64) -> Vec<(f64, f64, Shape)> {
    let mut out: Vec<(f64, f64, Shape)> = Vec::new();
    for (i, &s) in shapes.iter().enumerate() {
        let (a, b) = (i as f64 * hop_ms, (i + 1) as f64 * hop_ms);
        match out.last_mut() {
            Some(last) if last.2 == s => last.1 = b,
            _ => out.push((a, b, s)),
        }
    }
    out
}
