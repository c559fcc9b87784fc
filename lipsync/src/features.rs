//! Audio front end: resampling to the analysis rate and per-frame features (MFCCs, energy,
//! zero crossings, autocorrelation voicing) every [`HOP_MS`] milliseconds.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::LipsyncError;

/// Analysis sample rate in Hz.
pub const RATE: u32 = 16_000;
/// Frame step in milliseconds.
pub const HOP_MS: f64 = 10.0;
const HOP: usize = 160;
const WIN: usize = 400;
const NFFT: usize = 512;
const MELS: usize = 26;
/// Cepstral coefficients kept, c0 included.
pub const CEPS: usize = 13;

/// Converts mono audio at `rate` to [`RATE`] with rubato's FFT resampler (delay removed).
pub fn to_analysis_rate(samples: &[f32], rate: u32) -> Result<Vec<f32>, LipsyncError> {
    if rate == 0 || rate > 384_000 {
        return Err(LipsyncError::BadSampleRate(rate));
    }
    if rate == RATE || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let wrap = |e: &dyn std::fmt::Display| LipsyncError::Resample(e.to_string());
    let frames = samples.len();
    let mut rs = Fft::<f32>::new_custom(
        rate as usize,
        RATE as usize,
        2048,
        2,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| wrap(&e))?;
    let input = InterleavedSlice::new(samples, 1, frames).map_err(|e| wrap(&e))?;
    let out = rs.process_all(&input, frames, None).map_err(|e| wrap(&e))?;
    let exact = (frames as u64 * u64::from(RATE)).div_ceil(u64::from(rate)) as usize;
    let mut data = out.take_data();
    data.resize(exact, 0.0);
    Ok(data)
}

/// Features of one frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct Frame {
    /// Mel-frequency cepstral coefficients c0..c12.
    pub mfcc: [f32; CEPS],
    /// Frame energy in dB (full-scale sine ≈ -3 dB).
    pub db: f32,
    /// Zero crossings per sample, 0..1.
    pub zcr: f32,
    /// Peak of the normalized autocorrelation at pitch lags (2.5–12.5 ms), 0..1: voicing.
    pub voicing: f32,
    /// Pitch estimate in Hz (meaningful where `voicing` is high).
    pub pitch_hz: f32,
    /// Share of spectral energy below 1 kHz, 0..1.
    pub low_ratio: f32,
    /// Spectral centroid in Hz.
    pub centroid: f32,
}

struct Mel {
    filters: Vec<Vec<(usize, f32)>>,
    dct: Vec<[f32; MELS]>,
}

fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

impl Mel {
    fn new() -> Self {
        let (lo, hi) = (hz_to_mel(60.0), hz_to_mel(7_600.0));
        let points: Vec<f64> = (0..MELS + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (MELS + 1) as f64))
            .map(|hz| hz * NFFT as f64 / f64::from(RATE))
            .collect();
        let filters = (0..MELS)
            .map(|m| {
                let (a, b, c) = (points[m], points[m + 1], points[m + 2]);
                (a.floor() as usize..=c.ceil() as usize)
                    .filter(|&k| k <= NFFT / 2)
                    .filter_map(|k| {
                        let k_f = k as f64;
                        let w = if k_f <= b {
                            (k_f - a) / (b - a)
                        } else {
                            (c - k_f) / (c - b)
                        };
                        (w > 0.0).then_some((k, w as f32))
                    })
                    .collect()
            })
            .collect();
        let dct = (0..CEPS)
            .map(|n| {
                let mut row = [0f32; MELS];
                for (m, v) in row.iter_mut().enumerate() {
                    *v = (std::f64::consts::PI * n as f64 * (m as f64 + 0.5) / MELS as f64).cos()
                        as f32;
                }
                row
            })
            .collect();
        Self { filters, dct }
    }
}

/// Per-frame features of 16 kHz mono audio: frame `i` is centred at `i × 10 ms + 5 ms`.
pub fn frames(audio: &[f32]) -> Vec<Frame> {
    let n = audio.len() / HOP;
    if n == 0 {
        return Vec::new();
    }
    let mel = Mel::new();
    let mut planner = RealFftPlanner::<f32>::new();
    let fft: Arc<dyn RealToComplex<f32>> = planner.plan_fft_forward(NFFT);
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let window: Vec<f32> = (0..WIN)
        .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / WIN as f64).cos()) as f32)
        .collect();
    let mut raw = vec![0f32; WIN];
    let mut power = vec![0f32; NFFT / 2 + 1];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // Window centred on the frame centre.
        let centre = i * HOP + HOP / 2;
        let start = centre as isize - (WIN / 2) as isize;
        for (k, r) in raw.iter_mut().enumerate() {
            let j = start + k as isize;
            *r = if j >= 0 && (j as usize) < audio.len() {
                audio[j as usize]
            } else {
                0.0
            };
        }
        let mean = raw.iter().sum::<f32>() / WIN as f32;
        let mut energy = 0f32;
        let mut crossings = 0u32;
        for k in 0..WIN {
            let v = raw[k] - mean;
            energy += v * v;
            if k > 0 && ((raw[k - 1] - mean) >= 0.0) != (v >= 0.0) {
                crossings += 1;
            }
        }
        let db = 10.0 * (energy / WIN as f32 + 1e-10).log10();
        // Pre-emphasis and window into the FFT input.
        input.iter_mut().for_each(|v| *v = 0.0);
        for k in 0..WIN {
            let prev = if k > 0 { raw[k - 1] } else { raw[0] };
            input[k] = (raw[k] - 0.97 * prev) * window[k];
        }
        if fft
            .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
            .is_err()
        {
            out.push(Frame::default());
            continue;
        }
        let mut total = 0f32;
        let mut low = 0f32;
        let mut weighted = 0f32;
        for (k, c) in spectrum.iter().enumerate() {
            let p = c.norm_sqr();
            power[k] = p;
            total += p;
            let hz = k as f32 * RATE as f32 / NFFT as f32;
            weighted += p * hz;
            if hz < 1_000.0 {
                low += p;
            }
        }
        let mut logmel = [0f32; MELS];
        for (m, f) in mel.filters.iter().enumerate() {
            let e: f32 = f.iter().map(|&(k, w)| power[k] * w).sum();
            logmel[m] = (e + 1e-8).ln();
        }
        let mut mfcc = [0f32; CEPS];
        for (c, row) in mfcc.iter_mut().zip(&mel.dct) {
            *c = row.iter().zip(&logmel).map(|(a, b)| a * b).sum();
        }
        let (v, lag) = voicing(&raw, mean);
        out.push(Frame {
            mfcc,
            db,
            zcr: crossings as f32 / WIN as f32,
            voicing: v,
            pitch_hz: RATE as f32 / lag as f32,
            low_ratio: if total > 0.0 { low / total } else { 0.0 },
            centroid: if total > 0.0 { weighted / total } else { 0.0 },
        });
    }
    out
}

/// Normalized autocorrelation peak over pitch lags 40..=200 samples (80–400 Hz), and its lag.
fn voicing(raw: &[f32], mean: f32) -> (f32, usize) {
    let x: Vec<f32> = raw.iter().map(|v| v - mean).collect();
    let e0: f32 = x.iter().map(|v| v * v).sum();
    if e0 <= 1e-9 {
        return (0.0, 200);
    }
    let mut best = 0f32;
    let mut best_lag = 200;
    let mut lag = 40;
    while lag <= 200 {
        let mut num = 0f32;
        let mut e1 = 0f32;
        let mut e2 = 0f32;
        for k in 0..x.len() - lag {
            num += x[k] * x[k + lag];
            e1 += x[k] * x[k];
            e2 += x[k + lag] * x[k + lag];
        }
        let r = num / (e1 * e2).sqrt().max(1e-9);
        if r > best {
            best = r;
            best_lag = lag;
        }
        lag += 2;
    }
    (best, best_lag)
}

/// Median pitch of clearly voiced frames, Hz; `None` without voiced frames.
pub fn median_pitch(frames: &[Frame]) -> Option<f32> {
    let mut p: Vec<f32> = frames
        .iter()
        .filter(|f| f.voicing > 0.7)
        .map(|f| f.pitch_hz)
        .collect();
    if p.len() < 5 {
        return None;
    }
    p.sort_by(f32::total_cmp);
    Some(p[p.len() / 2])
}

/// MFCC vectors with per-utterance mean and variance normalization, flattened `n × CEPS`.
pub fn normalized_mfcc(frames: &[Frame]) -> Vec<f32> {
    let n = frames.len();
    let mut out = vec![0f32; n * CEPS];
    if n == 0 {
        return out;
    }
    for c in 0..CEPS {
        let mean = frames.iter().map(|f| f.mfcc[c]).sum::<f32>() / n as f32;
        let var = frames
            .iter()
            .map(|f| (f.mfcc[c] - mean).powi(2))
            .sum::<f32>()
            / n as f32;
        let sd = var.sqrt().max(1e-3);
        for (i, f) in frames.iter().enumerate() {
            out[i * CEPS + c] = (f.mfcc[c] - mean) / sd;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_length_and_frequency() {
        let rate = 22_050;
        let s: Vec<f32> = (0..rate)
            .map(|i| (std::f64::consts::TAU * 440.0 * f64::from(i) / f64::from(rate)).sin() as f32)
            .collect();
        let out = to_analysis_rate(&s, rate as u32).expect("resample");
        assert_eq!(out.len(), 16_000);
        let crossings = out
            .windows(2)
            .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
            .count();
        assert!((crossings as i64 - 880).abs() <= 4, "{crossings}");
        assert!(matches!(
            to_analysis_rate(&s, 0),
            Err(LipsyncError::BadSampleRate(0))
        ));
    }

    #[test]
    fn voiced_tone_and_noise_differ() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (std::f64::consts::TAU * 150.0 * f64::from(i) / 16_000.0).sin() as f32 * 0.3)
            .collect();
        let mut x = 1u32;
        let noise: Vec<f32> = (0..16_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 - 0.5) * 0.3
            })
            .collect();
        let ft = frames(&tone);
        let fnz = frames(&noise);
        assert_eq!(ft.len(), 100);
        assert!(ft[50].voicing > 0.9 && fnz[50].voicing < 0.5);
        assert!(ft[50].zcr < 0.05 && fnz[50].zcr > 0.3);
        assert!(ft[50].low_ratio > 0.9);
    }
}
