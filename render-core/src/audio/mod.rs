//! Audio decoding, resampling, mixing and loudness.
//!
//! Every signal in this module has one format: [`SAMPLE_RATE`] (48 kHz), [`CHANNELS`] (stereo),
//! interleaved `f32` ([`Pcm`]).
//!
//! - [`decode_file`] turns any file FFmpeg can decode into that format: any container, codec,
//!   sample format and rate; mono is duplicated to both channels, more than two channels are
//!   downmixed, and the rate is converted with rubato's FFT resampler (its delay is removed, so
//!   an event at `t` in the file is at `t` in the output).
//! - [`mix`] builds the program's soundtrack: a music bed looped to the program length, faded
//!   out and ducked under a voice track; the sum is normalized to a target integrated loudness
//!   (EBU R 128) and peak-limited to -1 dBFS.
//! - [`slice()`] cuts the frames of a time range, for rendering part of a video.
//! - [`from_mono`] brings synthesized mono speech at any rate into that format (the same
//!   resampler as [`decode_file`]); [`to_mono`] downmixes a [`Pcm`] for lip-sync analysis.
//!
//! Everything here is synchronous and deterministic: the same inputs give bit-identical
//! samples on the same machine.

mod decode;
mod error;
mod loudness;
mod mix;
mod resample;
#[cfg(test)]
mod test_util;

use std::fmt;

pub use decode::{decode_file, MAX_DECODED_SECS};
pub use error::AudioError;
pub use mix::{
    mix, Mix, MixSpec, MusicTrack, VoiceTrack, CEILING_DBFS, MAX_GAIN_DB, MAX_PROGRAM_SECS,
    MIN_GAIN_DB,
};

/// Output sample rate of every [`Pcm`], in Hz.
pub const SAMPLE_RATE: u32 = 48_000;

/// Channels of every [`Pcm`]: left, right.
pub const CHANNELS: usize = 2;

/// Interleaved stereo audio at [`SAMPLE_RATE`]: `samples[2 * i]` is the left channel of frame
/// `i`, `samples[2 * i + 1]` the right. Full scale is ±1.0.
#[derive(Clone, Default, PartialEq)]
pub struct Pcm {
    /// Interleaved samples, `2 × frames` long.
    pub samples: Vec<f32>,
}

impl Pcm {
    /// Wraps interleaved stereo samples at [`SAMPLE_RATE`].
    pub fn new(samples: Vec<f32>) -> Self {
        Self { samples }
    }

    /// `frames` frames of digital silence.
    pub fn silence(frames: usize) -> Self {
        Self {
            samples: vec![0.0; frames * CHANNELS],
        }
    }

    /// Number of frames (samples per channel). A trailing odd sample is not counted.
    pub fn frames(&self) -> usize {
        self.samples.len() / CHANNELS
    }

    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / f64::from(SAMPLE_RATE)
    }
}

impl fmt::Debug for Pcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pcm")
            .field("frames", &self.frames())
            .field("duration_secs", &self.duration_secs())
            .finish()
    }
}

/// Mono samples at `rate` Hz (text-to-speech output) as a [`Pcm`]: each sample on both
/// channels, converted to [`SAMPLE_RATE`] with the resampler [`decode_file`] uses, aligned
/// (an event at `t` stays at `t`).
///
/// # Errors
/// [`AudioError::Unsupported`] for a rate outside 1 kHz..=768 kHz or non-finite samples;
/// [`AudioError::Resample`] if the converter fails.
pub fn from_mono(name: &str, samples: &[f32], rate: u32) -> Result<Pcm, AudioError> {
    use resample::{MAX_INPUT_RATE, MIN_INPUT_RATE};
    if !(MIN_INPUT_RATE..=MAX_INPUT_RATE).contains(&rate) {
        return Err(AudioError::Unsupported {
            file: name.to_owned(),
            detail: format!(
                "sample rate {rate} Hz out of range {MIN_INPUT_RATE}..={MAX_INPUT_RATE}"
            ),
        });
    }
    if samples.iter().any(|v| !v.is_finite()) {
        return Err(AudioError::NonFiniteSamples {
            file: name.to_owned(),
        });
    }
    let stereo: Vec<f32> = samples.iter().flat_map(|&v| [v, v]).collect();
    Ok(Pcm::new(resample::to_output_rate(stereo, rate)?))
}

/// The mean of the two channels of `pcm`, one sample per frame at [`SAMPLE_RATE`].
pub fn to_mono(pcm: &Pcm) -> Vec<f32> {
    pcm.samples
        .chunks_exact(CHANNELS)
        .map(|f| (f[0] + f[1]) * 0.5)
        .collect()
}

/// The frame index at time `t` seconds: `round(t × 48000)`, clamped to `0..=max`.
/// `NaN` maps to 0.
fn frame_at(t: f64, max: usize) -> usize {
    let f = (t * f64::from(SAMPLE_RATE)).round();
    if f.is_nan() || f <= 0.0 {
        0
    } else if f >= max as f64 {
        max
    } else {
        f as usize
    }
}

/// The frames of `pcm` in the time range `[t0, t1)` seconds.
///
/// Boundaries are rounded to the nearest frame (`round(t × 48000)`), so adjacent ranges tile
/// exactly: `slice(p, a, b)` followed by `slice(p, b, c)` equals `slice(p, a, c)`. The range is
/// clamped to the audio: times before 0 or past the end select nothing, an empty or inverted
/// range, or one with a `NaN` bound, yields an empty `Pcm`.
pub fn slice(pcm: &Pcm, t0: f64, t1: f64) -> Pcm {
    if t0.is_nan() || t1.is_nan() {
        return Pcm::default();
    }
    let frames = pcm.frames();
    let start = frame_at(t0, frames);
    let end = frame_at(t1, frames);
    if end <= start {
        return Pcm::default();
    }
    Pcm {
        samples: pcm.samples[start * CHANNELS..end * CHANNELS].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(frames: usize) -> Pcm {
        Pcm::new((0..frames * CHANNELS).map(|i| i as f32).collect())
    }

    #[test]
    fn mono_in_and_out() {
        let tone: Vec<f32> = (0..22_050)
            .map(|i| (0.5 * (std::f64::consts::TAU * 440.0 * f64::from(i) / 22_050.0).sin()) as f32)
            .collect();
        let pcm = from_mono("tts", &tone, 22_050).expect("resample");
        assert_eq!(pcm.frames(), 48_000);
        assert!(pcm.samples.chunks_exact(2).all(|f| f[0] == f[1]));
        let peak = pcm.samples[4_800..43_200]
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.01, "peak {peak}");
        let mono = to_mono(&Pcm::new(vec![1.0, 0.0, -0.5, 0.5]));
        assert_eq!(mono, vec![0.5, 0.0]);
        assert!(from_mono("tts", &tone, 10).is_err());
        assert!(from_mono("tts", &[f32::NAN], 22_050).is_err());
        assert_eq!(from_mono("tts", &[], 22_050).expect("empty").frames(), 0);
    }

    #[test]
    fn pcm_frames_and_duration() {
        let p = Pcm::silence(24_000);
        assert_eq!(p.frames(), 24_000);
        assert_eq!(p.samples.len(), 48_000);
        assert!((p.duration_secs() - 0.5).abs() < 1e-12);
        assert_eq!(
            format!("{p:?}"),
            "Pcm { frames: 24000, duration_secs: 0.5 }"
        );
    }

    #[test]
    fn slice_selects_rounded_frames() {
        let p = ramp(48_000);
        let s = slice(&p, 0.25, 0.5);
        assert_eq!(s.frames(), 12_000);
        assert_eq!(s.samples[0], (12_000 * 2) as f32);
        assert_eq!(s.samples[1], (12_000 * 2 + 1) as f32);
        // 1/3 s is 16000 frames exactly; 1/7 s rounds to 6857.
        assert_eq!(slice(&p, 1.0 / 7.0, 1.0 / 3.0).frames(), 16_000 - 6_857);
    }

    #[test]
    fn slices_tile_exactly() {
        let p = ramp(48_000);
        let cuts = [0.0, 0.1234, 1.0 / 3.0, 0.5, 0.77777, 1.0];
        let mut joined = Vec::new();
        for w in cuts.windows(2) {
            joined.extend_from_slice(&slice(&p, w[0], w[1]).samples);
        }
        assert_eq!(joined, p.samples);
    }

    #[test]
    fn slice_clamps_and_rejects_bad_ranges() {
        let p = ramp(4_800);
        assert_eq!(slice(&p, -1.0, 0.05).frames(), 2_400);
        assert_eq!(slice(&p, 0.05, 99.0).frames(), 2_400);
        assert_eq!(slice(&p, 0.2, 0.3).frames(), 0);
        assert_eq!(slice(&p, 0.05, 0.01).frames(), 0);
        assert_eq!(slice(&p, f64::NAN, 0.05).frames(), 0);
        assert_eq!(slice(&p, 0.0, f64::NAN).frames(), 0);
        assert_eq!(slice(&p, f64::NEG_INFINITY, f64::INFINITY), p);
        assert_eq!(slice(&Pcm::default(), 0.0, 1.0).frames(), 0);
    }
}
