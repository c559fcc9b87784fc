//! Loudness measurement (EBU R 128 / ITU-R BS.1770 through `ebur128`) and a look-ahead peak
//! limiter.

use std::collections::VecDeque;

use ebur128::{EbuR128, Mode};

use super::{AudioError, CHANNELS, SAMPLE_RATE};

/// Integrated loudness and sample peak of interleaved stereo at 48 kHz.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measurement {
    /// Integrated loudness in LUFS; `-inf` when nothing is above the absolute gate (-70 LUFS)
    /// or the audio is shorter than one 400 ms gating block.
    pub lufs: f64,
    /// Largest absolute sample value, linear.
    pub peak: f64,
}

/// Measures `samples` with a fresh meter (mode I plus sample peak).
pub(crate) fn measure(samples: &[f32]) -> Result<Measurement, AudioError> {
    let mut meter = EbuR128::new(CHANNELS as u32, SAMPLE_RATE, Mode::I | Mode::SAMPLE_PEAK)
        .map_err(AudioError::Loudness)?;
    let whole = samples.len() / CHANNELS * CHANNELS;
    meter
        .add_frames_f32(&samples[..whole])
        .map_err(AudioError::Loudness)?;
    let lufs = meter.loudness_global().map_err(AudioError::Loudness)?;
    let mut peak = 0.0f64;
    for ch in 0..CHANNELS as u32 {
        peak = peak.max(meter.sample_peak(ch).map_err(AudioError::Loudness)?);
    }
    Ok(Measurement { lufs, peak })
}

/// Look-ahead of the limiter: gain reduction starts this long before a peak, in frames (5 ms).
const LIMITER_LOOKAHEAD: usize = 240;
/// Release time constant of the limiter, in seconds.
const LIMITER_RELEASE_SECS: f64 = 0.08;

/// The largest `f32` not above `ceiling`.
pub(crate) fn ceiling_f32(ceiling: f64) -> f32 {
    let c = ceiling as f32;
    if f64::from(c) > ceiling && c > 0.0 {
        f32::from_bits(c.to_bits() - 1)
    } else {
        c
    }
}

/// Limits interleaved stereo in place so that no sample exceeds `ceiling` (linear), with
/// stereo-linked gain: a 5 ms look-ahead ramp into each peak and an 80 ms exponential release.
///
/// The gain curve is the minimum required gain over the look-ahead window, smoothed by a
/// moving average of the same length (which never exceeds the required gain at any frame),
/// then released exponentially. Returns the largest gain reduction applied, in dB (≥ 0).
pub(crate) fn limit(samples: &mut [f32], ceiling: f64) -> f64 {
    let frames = samples.len() / CHANNELS;
    if frames == 0 {
        return 0.0;
    }
    // Gain each frame needs on its own.
    let required: Vec<f64> = samples
        .chunks_exact(CHANNELS)
        .map(|f| {
            let peak = f.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
            if peak > ceiling {
                ceiling / peak
            } else {
                1.0
            }
        })
        .collect();
    if required.iter().all(|&g| g >= 1.0) {
        return 0.0;
    }

    // Minimum over [t, t + W]: by a monotonic deque, scanning backwards.
    let w = LIMITER_LOOKAHEAD;
    let mut window_min = vec![1.0f64; frames];
    let mut deque: VecDeque<usize> = VecDeque::new();
    for t in (0..frames).rev() {
        while deque.back().is_some_and(|&i| required[i] >= required[t]) {
            deque.pop_back();
        }
        deque.push_back(t);
        while deque.front().is_some_and(|&i| i > t + w) {
            deque.pop_front();
        }
        if let Some(&i) = deque.front() {
            window_min[t] = required[i];
        }
    }

    // Moving average over [t - W, t] (1.0 before the start), then exponential release.
    let release = 1.0 - (-1.0 / (LIMITER_RELEASE_SECS * f64::from(SAMPLE_RATE))).exp();
    let len = (w + 1) as f64;
    let mut sum = len; // w + 1 frames of gain 1.0 before the start.
    let mut gain = 1.0f64;
    let mut max_reduction = 1.0f64;
    let c32 = ceiling_f32(ceiling);
    for t in 0..frames {
        sum += window_min[t];
        sum -= if t > w { window_min[t - w - 1] } else { 1.0 };
        // The average never exceeds `required[t]`; the `min` only absorbs rounding.
        let smooth = (sum / len).min(required[t]).min(1.0);
        gain = smooth.min(gain + (1.0 - gain) * release);
        max_reduction = max_reduction.min(gain);
        for v in &mut samples[t * CHANNELS..(t + 1) * CHANNELS] {
            *v = ((f64::from(*v) * gain) as f32).clamp(-c32, c32);
        }
    }
    -20.0 * max_reduction.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_reads_a_reference_sine() {
        let tone = |amp: f64| -> Vec<f32> {
            (0..96_000)
                .flat_map(|i| {
                    let v = (amp * (std::f64::consts::TAU * 997.0 * f64::from(i) / 48_000.0).sin())
                        as f32;
                    [v, v]
                })
                .collect()
        };
        let a = measure(&tone(0.5)).expect("measure");
        let b = measure(&tone(0.05)).expect("measure");
        assert!(
            (a.lufs - b.lufs - 20.0).abs() < 0.01,
            "{} {}",
            a.lufs,
            b.lufs
        );
        assert!((a.peak - 0.5).abs() < 1e-3);
        // BS.1770 is calibrated so that a full-scale 997 Hz sine in one channel reads -3.01
        // LUFS: the K-filter's gain there cancels the -0.691 offset. Two channels of
        // amplitude A read 10 log10(2 · A²/2).
        let expect = 10.0 * (0.25f64).log10();
        assert!((a.lufs - expect).abs() < 0.1, "{} vs {expect}", a.lufs);
    }

    #[test]
    fn silence_and_short_audio_read_minus_infinity() {
        assert_eq!(
            measure(&vec![0.0; 96_000]).expect("measure").lufs,
            f64::NEG_INFINITY
        );
        assert_eq!(measure(&[]).expect("measure").lufs, f64::NEG_INFINITY);
    }

    #[test]
    fn limiter_caps_peaks_and_leaves_quiet_parts() {
        let ceiling = 10f64.powf(-1.0 / 20.0);
        let level = 0.3f32;
        let mut s: Vec<f32> = (0..48_000)
            .flat_map(|i| {
                let v = if (24_000..24_010).contains(&i) {
                    1.8
                } else {
                    level
                };
                [v, -v]
            })
            .collect();
        let before = s.clone();
        let reduction = limit(&mut s, ceiling);
        let expect = 20.0 * (1.8 / ceiling).log10();
        assert!((reduction - expect).abs() < 0.01, "{reduction} vs {expect}");
        assert!(s.iter().all(|v| f64::from(v.abs()) <= ceiling));
        // Before the look-ahead nothing changes; after the release the level is back.
        assert!(s[..23_700 * 2] == before[..23_700 * 2]);
        assert!(s[44_000 * 2..]
            .iter()
            .all(|v| (v.abs() / level - 1.0).abs() < 5e-3));
        // The gain ramps down over the 5 ms look-ahead: unchanged 6 ms before the burst,
        // part-way 2.5 ms before it, and back near unity 0.5 s after it.
        assert_eq!(s[(24_000 - 288) * 2], level);
        let mid = s[(24_000 - 120) * 2] / level;
        assert!(mid < 0.9 && mid > 0.6, "{mid}");
        assert!(s[(24_010 + 12_000) * 2] / level > 0.97);
    }

    #[test]
    fn limiter_is_identity_below_ceiling() {
        let mut s = vec![0.5f32; 1000];
        assert_eq!(limit(&mut s, 0.9), 0.0);
        assert!(s.iter().all(|&v| v == 0.5));
    }

    #[test]
    fn ceiling_rounds_down() {
        let c = 10f64.powf(-1.0 / 20.0);
        assert!(f64::from(ceiling_f32(c)) <= c);
        assert!(c - f64::from(ceiling_f32(c)) < 1e-7);
    }
}
