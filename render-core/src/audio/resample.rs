//! Sample-rate conversion to [`SAMPLE_RATE`] with rubato's synchronous FFT resampler.
//!
//! The FFT resampler is exact for rational ratios, deterministic, and its delay is a known
//! number of output frames, which `process_all` trims: an event at input time `t` lands at
//! output time `t`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use super::{AudioError, CHANNELS, SAMPLE_RATE};

/// Lowest input rate accepted, in Hz.
pub(crate) const MIN_INPUT_RATE: u32 = 1_000;
/// Highest input rate accepted, in Hz.
pub(crate) const MAX_INPUT_RATE: u32 = 768_000;

/// Input frames per processing chunk.
const CHUNK_FRAMES: usize = 4096;
/// Sub-chunks per chunk: FFT blocks of about 1024 input frames, a long anti-aliasing filter
/// with a cut-off close to Nyquist.
const SUB_CHUNKS: usize = 4;

/// Converts interleaved stereo at `rate` Hz to interleaved stereo at [`SAMPLE_RATE`].
///
/// The output holds `ceil(frames × 48000 / rate)` frames, aligned with the input (the
/// resampler's delay is removed). `rate` must be within
/// [`MIN_INPUT_RATE`]`..=`[`MAX_INPUT_RATE`]; the caller checks it.
pub(crate) fn to_output_rate(stereo: Vec<f32>, rate: u32) -> Result<Vec<f32>, AudioError> {
    if rate == SAMPLE_RATE {
        return Ok(stereo);
    }
    let frames = stereo.len() / CHANNELS;
    if frames == 0 {
        return Ok(Vec::new());
    }
    let wrap = |source: Box<dyn std::error::Error + Send + Sync>| AudioError::Resample {
        from_hz: rate,
        source,
    };
    let mut resampler = Fft::<f32>::new_custom(
        rate as usize,
        SAMPLE_RATE as usize,
        CHUNK_FRAMES,
        SUB_CHUNKS,
        CHANNELS,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| wrap(Box::new(e)))?;
    let input = InterleavedSlice::new(&stereo[..frames * CHANNELS], CHANNELS, frames)
        .map_err(|e| wrap(Box::new(e)))?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|e| wrap(Box::new(e)))?;
    // rubato sizes the output with a floating-point ratio, which can round up one frame too
    // many; the exact length is ceil(frames × 48000 / rate).
    let exact = (frames as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(rate)) as usize;
    let mut samples = output.take_data();
    samples.resize(exact * CHANNELS, 0.0);
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_util::{estimate_frequency, peak_frame};

    fn sine(rate: u32, freq: f64, frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let v = (0.5 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin())
                    as f32;
                [v, -v]
            })
            .collect()
    }

    #[test]
    fn identity_at_output_rate() {
        let s = sine(48_000, 440.0, 1000);
        assert_eq!(to_output_rate(s.clone(), 48_000).ok(), Some(s));
    }

    #[test]
    fn length_frequency_and_alignment() {
        for rate in [8_000, 11_025, 22_050, 44_100, 88_200, 96_000, 7_999] {
            let frames = rate as usize * 2;
            let out = to_output_rate(sine(rate, 440.0, frames), rate).expect("resample");
            let expect = (frames as f64 * 48_000.0 / f64::from(rate)).ceil() as usize;
            assert_eq!(out.len(), expect * 2, "rate {rate}");
            let f = estimate_frequency(&out, 0, 4_800, 91_200);
            assert!((f - 440.0).abs() < 0.5, "rate {rate}: {f} Hz");
            // Amplitude kept (mid-signal, away from the edges).
            let peak = out[4_800 * 2..91_200 * 2]
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!((peak - 0.5).abs() < 0.01, "rate {rate}: peak {peak}");

            // An impulse half-way lands at the same time in the output.
            let mut click = vec![0.0f32; frames * 2];
            click[rate as usize] = 0.9;
            click[rate as usize + 1] = 0.9;
            let out = to_output_rate(click, rate).expect("resample");
            let at = peak_frame(&out, 0);
            assert!(
                at.abs_diff(24_000) <= 1,
                "rate {rate}: impulse at frame {at}"
            );
        }
    }

    #[test]
    fn deterministic() {
        let a = to_output_rate(sine(44_100, 1234.0, 50_000), 44_100).expect("resample");
        let b = to_output_rate(sine(44_100, 1234.0, 50_000), 44_100).expect("resample");
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }

    #[test]
    fn tiny_inputs() {
        for frames in [1, 2, 7, 147, 4095, 4096, 4097] {
            let out = to_output_rate(sine(44_100, 440.0, frames), 44_100).expect("resample");
            let expect = (frames as f64 * 48_000.0 / 44_100.0).ceil() as usize;
            assert_eq!(out.len(), expect * 2, "{frames} frames");
        }
    }
}
