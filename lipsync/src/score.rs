//! Scoring a track against a reference, as the accuracy tests and benchmarks do.

use crate::{Shape, Track};

/// Frame accuracy of a track against a reference.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Score {
    /// Share of frames whose shape matches the reference within the tolerance (9 shapes).
    pub exact: f64,
    /// Share of frames whose coarse class (closed, narrow, open, round) matches within the
    /// tolerance.
    pub coarse: f64,
    /// Frames scored.
    pub frames: usize,
}

/// Scores `predicted` against `reference` every 10 ms over the reference's length: a frame at
/// `t` counts as correct when the reference holds the predicted shape (or coarse class)
/// somewhere within `t ± tolerance_ms`.
pub fn score(reference: &Track, predicted: &Track, tolerance_ms: f64) -> Score {
    let step = 10.0;
    let truth = reference.sample(step);
    let guess: Vec<Shape> = (0..truth.len())
        .map(|i| predicted.shape_at((i as f64 + 0.5) * step))
        .collect();
    let k = (tolerance_ms / step).round() as usize;
    let (mut exact, mut coarse) = (0usize, 0usize);
    for (i, g) in guess.iter().enumerate() {
        let window = &truth[i.saturating_sub(k)..(i + k + 1).min(truth.len())];
        if window.contains(g) {
            exact += 1;
        }
        if window.iter().any(|t| t.coarse() == g.coarse()) {
            coarse += 1;
        }
    }
    let n = truth.len().max(1) as f64;
    Score {
        exact: exact as f64 / n,
        coarse: coarse as f64 / n,
        frames: truth.len(),
    }
}
