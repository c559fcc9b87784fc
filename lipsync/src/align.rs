//! Dynamic time warping of a reference utterance onto the supplied audio.
//!
//! Both sides are sequences of normalized MFCC vectors ([`crate::features`]). The warp is the
//! least-cost monotonic path from (0, 0) to the last frames, with steps (1, 1), (1, 0) and
//! (0, 1), restricted to a band around the diagonal for long inputs so cost stays linear in
//! practice. The path maps every reference time to a time in the supplied audio.

use crate::features::CEPS;

/// Band half-width in frames: the whole matrix up to this many frames, else this share of the
/// longer side (at least 2 s).
const FULL_UP_TO: usize = 2_000;

/// A warp from reference frames to target frames.
#[derive(Debug, Clone)]
pub struct Warp {
    /// For each reference frame, the mean target frame it aligned to.
    map: Vec<f64>,
    /// Mean frame distance along the path.
    pub path_cost: f64,
}

impl Warp {
    /// The target time (ms) for a reference time (ms), interpolated between frame centres.
    pub fn map_ms(&self, ms: f64, hop_ms: f64) -> f64 {
        if self.map.is_empty() {
            return ms;
        }
        let x = ms / hop_ms - 0.5;
        let last = self.map.len() - 1;
        if x <= 0.0 {
            return (self.map[0] + x.max(-0.5)) * hop_ms + hop_ms / 2.0;
        }
        if x >= last as f64 {
            return (self.map[last] + (x - last as f64).min(0.5)) * hop_ms + hop_ms / 2.0;
        }
        let i = x.floor() as usize;
        let f = x - i as f64;
        let j = self.map[i] + (self.map[i + 1] - self.map[i]) * f;
        j * hop_ms + hop_ms / 2.0
    }
}

/// Euclidean distance over c1..c9: c0 (loudness) and the upper cepstrum (pitch harmonics,
/// speaker detail) differ between voices more than between sounds.
fn dist(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0f32;
    for k in 1..10 {
        let d = a[k] - b[k];
        s += d * d;
    }
    s.sqrt()
}

/// Aligns `reference` (n × CEPS) onto `target` (m × CEPS).
pub fn dtw(reference: &[f32], target: &[f32]) -> Warp {
    let n = reference.len() / CEPS;
    let m = target.len() / CEPS;
    if n == 0 || m == 0 {
        return Warp {
            map: Vec::new(),
            path_cost: 0.0,
        };
    }
    let r = |i: usize| &reference[i * CEPS..(i + 1) * CEPS];
    let t = |j: usize| &target[j * CEPS..(j + 1) * CEPS];
    // Band: for row i, columns around the diagonal i·m/n.
    let longest = n.max(m);
    let radius = if longest <= FULL_UP_TO {
        longest
    } else {
        (longest / 5).max(200)
    };
    let lo = |i: usize| -> usize {
        let c = (i as f64 * m as f64 / n as f64) as isize - radius as isize;
        c.max(0) as usize
    };
    let hi = |i: usize| -> usize {
        let c = (i as f64 * m as f64 / n as f64) as usize + radius + 1;
        c.min(m)
    };
    // Accumulated cost per row band; back-pointers kept as steps (0 diag, 1 up, 2 left).
    let inf = f32::INFINITY;
    let mut rows_lo = Vec::with_capacity(n);
    let mut back: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut prev: Vec<f32> = Vec::new();
    let mut prev_lo = 0usize;
    for i in 0..n {
        let (a, b) = (lo(i), hi(i));
        let mut cur = vec![inf; b - a];
        let mut bp = vec![0u8; b - a];
        for j in a..b {
            let d = dist(r(i), t(j));
            let get_prev = |jj: usize| -> f32 {
                if i == 0 || jj < prev_lo || jj >= prev_lo + prev.len() {
                    inf
                } else {
                    prev[jj - prev_lo]
                }
            };
            let (best, step) = if i == 0 && j == 0 {
                (0.0, 0u8)
            } else {
                let diag = if j > 0 { get_prev(j - 1) } else { inf };
                let up = get_prev(j);
                let left = if j > a { cur[j - 1 - a] } else { inf };
                // Diagonal steps cost the same as one straight step: no bias to stretch.
                if diag <= up && diag <= left {
                    (diag, 0)
                } else if up <= left {
                    (up, 1)
                } else {
                    (left, 2)
                }
            };
            cur[j - a] = best + d;
            bp[j - a] = step;
        }
        rows_lo.push(a);
        back.push(bp);
        prev = cur;
        prev_lo = a;
    }
    let total = prev.last().copied().unwrap_or(inf);
    // Walk back from (n-1, m-1).
    let mut sum = vec![0f64; n];
    let mut count = vec![0u32; n];
    let (mut i, mut j) = (n - 1, m - 1);
    let mut steps = 0usize;
    loop {
        sum[i] += j as f64;
        count[i] += 1;
        steps += 1;
        if i == 0 && j == 0 {
            break;
        }
        let a = rows_lo[i];
        let step = if j >= a && j - a < back[i].len() {
            back[i][j - a]
        } else {
            0
        };
        match step {
            0 if i > 0 && j > 0 => {
                i -= 1;
                j -= 1;
            }
            1 if i > 0 => i -= 1,
            2 if j > 0 => j -= 1,
            _ => {
                if i > 0 {
                    i -= 1;
                } else {
                    j -= 1;
                }
            }
        }
    }
    let map = sum
        .iter()
        .zip(&count)
        .map(|(s, c)| if *c > 0 { s / f64::from(*c) } else { 0.0 })
        .collect();
    Warp {
        map,
        path_cost: f64::from(total) / steps as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(values: &[f32]) -> Vec<f32> {
        values
            .iter()
            .flat_map(|&v| {
                let mut f = [0f32; CEPS];
                f[0] = v;
                f[1] = -v;
                f
            })
            .collect()
    }

    #[test]
    fn stretched_copy_maps_back() {
        // The target is the reference with every frame doubled.
        let reference: Vec<f32> = (0..50).map(|i| (i as f32 * 0.7).sin() * 3.0).collect();
        let target: Vec<f32> = reference.iter().flat_map(|&v| [v, v]).collect();
        let w = dtw(&seq(&reference), &seq(&target));
        // Reference frame i sits on target frames 2i and 2i+1: centre 2i + 0.5.
        for i in [5usize, 20, 40] {
            let ms = i as f64 * 10.0 + 5.0;
            let got = w.map_ms(ms, 10.0);
            let want = (2 * i) as f64 * 10.0 + 10.0;
            assert!((got - want).abs() <= 10.0, "frame {i}: {got} vs {want}");
        }
        assert!(w.path_cost < 1e-6, "{}", w.path_cost);
    }
}
