//! Helpers for the audio tests: temporary directories, the `ffmpeg` CLI, signal analysis.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Pcm, CHANNELS, SAMPLE_RATE};

/// A directory under the system temp dir, unique to this process and call, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "reelfarm-audio-{}-{tag}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `ffmpeg -y <args> <out>` and panics with its stderr on failure.
pub(crate) fn ffmpeg(args: &[&str], out: &Path) -> PathBuf {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .output()
        .expect("run the ffmpeg CLI (is it installed?)");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.to_path_buf()
}

/// One channel of interleaved stereo, frames `start..end` (clamped).
pub(crate) fn channel(samples: &[f32], ch: usize, start: usize, end: usize) -> Vec<f64> {
    let frames = samples.len() / CHANNELS;
    let end = end.min(frames);
    (start.min(end)..end)
        .map(|i| f64::from(samples[i * CHANNELS + ch]))
        .collect()
}

/// Frequency of a tone in `channel` over frames `start..end`, from interpolated rising zero
/// crossings.
pub(crate) fn estimate_frequency(samples: &[f32], ch: usize, start: usize, end: usize) -> f64 {
    let x = channel(samples, ch, start, end);
    let crossings: Vec<f64> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + w[0] / (w[0] - w[1]))
        .collect();
    match (crossings.first(), crossings.last()) {
        (Some(a), Some(b)) if b > a => {
            (crossings.len() - 1) as f64 / (b - a) * f64::from(SAMPLE_RATE)
        }
        _ => 0.0,
    }
}

/// Frame of the largest absolute sample in `channel`.
pub(crate) fn peak_frame(samples: &[f32], ch: usize) -> usize {
    let mut best = (0, 0.0f32);
    for (i, f) in samples.chunks_exact(CHANNELS).enumerate() {
        if f[ch].abs() > best.1 {
            best = (i, f[ch].abs());
        }
    }
    best.0
}

/// RMS of `channel` over frames `start..end`.
pub(crate) fn rms(samples: &[f32], ch: usize, start: usize, end: usize) -> f64 {
    let x = channel(samples, ch, start, end);
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
}

/// Amplitude of the `freq` Hz component of `channel` over frames `start..end` (lock-in
/// detection; other tones average out over whole cycles).
pub(crate) fn tone_amplitude(
    samples: &[f32],
    ch: usize,
    start: usize,
    end: usize,
    freq: f64,
) -> f64 {
    let x = channel(samples, ch, start, end);
    let w = std::f64::consts::TAU * freq / f64::from(SAMPLE_RATE);
    let (mut re, mut im) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let p = w * (start + i) as f64;
        re += v * p.cos();
        im += v * p.sin();
    }
    2.0 * (re * re + im * im).sqrt() / x.len().max(1) as f64
}

/// Largest absolute sample.
pub(crate) fn peak(samples: &[f32]) -> f64 {
    samples
        .iter()
        .fold(0.0f64, |m, v| m.max(f64::from(v.abs())))
}

/// A stereo sine at 48 kHz: `amp · sin(2π f t)` on the left, the same on the right.
pub(crate) fn sine(freq: f64, amp: f64, secs: f64) -> Pcm {
    let frames = (secs * f64::from(SAMPLE_RATE)).round() as usize;
    Pcm::new(
        (0..frames)
            .flat_map(|i| {
                let v = (amp
                    * (std::f64::consts::TAU * freq * i as f64 / f64::from(SAMPLE_RATE)).sin())
                    as f32;
                [v, v]
            })
            .collect(),
    )
}

/// Deterministic pseudo-random bytes (xorshift64).
pub(crate) fn noise_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}
