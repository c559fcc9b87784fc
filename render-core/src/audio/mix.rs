//! The program mix: looped music bed, voice, ducking, loudness normalization, peak limiting.

use std::f64::consts::FRAC_PI_2;

use super::loudness::{self, ceiling_f32};
use super::{AudioError, Pcm, CHANNELS, SAMPLE_RATE};

/// Longest program [`mix`] accepts, in seconds (30 minutes).
pub const MAX_PROGRAM_SECS: f64 = 1800.0;
/// Lowest track gain accepted, in dB.
pub const MIN_GAIN_DB: f64 = -120.0;
/// Highest track gain accepted, in dB.
pub const MAX_GAIN_DB: f64 = 60.0;
/// No sample of a mix exceeds this level, in dBFS.
pub const CEILING_DBFS: f64 = -1.0;

/// Lowest loudness target accepted, in LUFS (the absolute gate of BS.1770).
const MIN_TARGET_LUFS: f64 = -70.0;
/// Highest loudness target accepted, in LUFS.
const MAX_TARGET_LUFS: f64 = 0.0;
/// Largest ducking depth accepted, in dB.
const MAX_DUCK_DB: f64 = 60.0;

/// Length of the crossfade at each loop seam of the music, in frames (20 ms).
const LOOP_CROSSFADE: usize = 960;
/// Side-chain RMS window, in frames (20 ms).
const DUCK_WINDOW: usize = 960;
/// Side-chain look-ahead, in windows (100 ms): the music starts going down this long before
/// the voice.
const DUCK_LOOKAHEAD_WINDOWS: usize = 5;
/// Time for the music to go fully down, in seconds.
const DUCK_ATTACK_SECS: f64 = 0.05;
/// Time for the music to come fully back up, in seconds.
const DUCK_RELEASE_SECS: f64 = 0.3;
/// Voice RMS (before its gain) at which ducking begins, in dBFS.
const DUCK_THRESHOLD_DBFS: f64 = -50.0;
/// Width of the soft knee above the threshold, in dB: at threshold + knee the music is
/// fully ducked.
const DUCK_KNEE_DB: f64 = 10.0;

/// Loudness passes after the first when the limiter takes loudness away.
const MAX_MAKEUP_PASSES: usize = 4;
/// Most gain added beyond the first estimate to make up for the limiter, in dB.
const MAX_MAKEUP_DB: f64 = 6.0;
/// Loudness error below which no further pass is made, in LU.
const LOUDNESS_TOLERANCE: f64 = 0.05;
/// Shortfall against the target that is reported as a warning, in LU.
const SHORTFALL_WARNING: f64 = 0.5;
/// Limiter gain reduction that is reported as a warning, in dB.
const LIMITING_WARNING_DB: f64 = 6.0;

/// What to mix: the program length, the tracks, the loudness target.
#[derive(Clone, Debug)]
pub struct MixSpec {
    /// Program length in seconds, `0..=`[`MAX_PROGRAM_SECS`]. The mix has exactly
    /// `round(duration × 48000)` frames.
    pub duration: f64,
    /// Music bed, looped to cover the program.
    pub music: Option<MusicTrack>,
    /// Voice, placed at its start time.
    pub voice: Option<VoiceTrack>,
    /// Target integrated loudness (EBU R 128) in LUFS, `-70..=0`, e.g. `-16`.
    pub loudness_lufs: f64,
}

/// A music bed.
#[derive(Clone, Debug)]
pub struct MusicTrack {
    /// The music; looped with a 20 ms crossfade at each seam when shorter than the program.
    pub pcm: Pcm,
    /// Gain relative to the voice, in dB, [`MIN_GAIN_DB`]`..=`[`MAX_GAIN_DB`].
    pub gain_db: f64,
    /// How far the music drops while the voice is active, in dB, `0..=60`; 0 disables ducking.
    pub duck_db: f64,
    /// Fade-out at the end of the program, in seconds, `>= 0`; longer than the program fades
    /// over the whole program.
    pub fade_out: f64,
}

/// A voice (narration, spokesperson).
#[derive(Clone, Debug)]
pub struct VoiceTrack {
    /// The voice.
    pub pcm: Pcm,
    /// Program time at which the voice starts, in seconds, `>= 0`. Voice past the end of the
    /// program is cut, with a warning.
    pub start: f64,
    /// Gain relative to the music, in dB, [`MIN_GAIN_DB`]`..=`[`MAX_GAIN_DB`].
    pub gain_db: f64,
}

/// A finished mix.
#[derive(Clone, Debug)]
pub struct Mix {
    /// The program's audio: exactly `round(duration × 48000)` frames, no sample above
    /// [`CEILING_DBFS`].
    pub pcm: Pcm,
    /// Integrated loudness of `pcm` in LUFS, measured after all processing; `-inf` for a
    /// silent mix or one shorter than a 400 ms gating block.
    pub measured_lufs: f64,
    /// Degradations worth showing on the job: voice cut at the end, loudness target not
    /// reached, heavy limiting, loudness not measurable.
    pub warnings: Vec<String>,
}

/// Mixes the program's soundtrack.
///
/// 1. The music is looped to the program length (20 ms equal-power crossfade at each seam),
///    its gain applied and faded out over its last `fade_out` seconds.
/// 2. The voice is placed at `start` with its gain; whatever falls past the end is cut.
/// 3. The music is ducked by up to `duck_db` under the voice. The side-chain is the voice's
///    RMS over 20 ms windows (before the voice gain): from -50 dBFS the ducking grows over a
///    10 dB soft knee to the full `duck_db`. A 100 ms look-ahead with a 50 ms attack has the
///    music fully down before the voice starts; it comes back up over 300 ms after the voice
///    stops.
/// 4. The sum is measured (BS.1770 integrated loudness) and one gain brings it to
///    `loudness_lufs`.
/// 5. If that pushes a sample past -1 dBFS, a look-ahead limiter (5 ms look-ahead, 80 ms
///    release) holds peaks at -1 dBFS, and the gain is raised in up to four more passes to
///    make up the loudness the limiter took. A target still missed by more than 0.5 LU is
///    reported in `warnings`.
///
/// A program without tracks is silence, without error or warning. The result is
/// deterministic.
///
/// # Errors
/// [`AudioError::InvalidParameter`] for a NaN, infinite or out-of-range number;
/// [`AudioError::InvalidTrack`] for a track with no samples, an odd number of samples, or NaN
/// or infinite samples; [`AudioError::Loudness`] if the meter fails.
#[tracing::instrument(level = "debug", skip_all, fields(duration = spec.duration))]
pub fn mix(spec: &MixSpec) -> Result<Mix, AudioError> {
    validate(spec)?;
    let frames = (spec.duration * f64::from(SAMPLE_RATE)).round() as usize;
    let mut warnings = Vec::new();
    let mut out = vec![0.0f32; frames * CHANNELS];

    let voice = spec
        .voice
        .as_ref()
        .map(|v| place_voice(v, frames, &mut warnings));

    if let Some(music) = &spec.music {
        let mut bed = loop_to_length(&music.pcm.samples, frames);
        let gain = db_to_gain(music.gain_db);
        let fade = ((music.fade_out * f64::from(SAMPLE_RATE)).round() as usize).min(frames);
        for (t, f) in bed.chunks_exact_mut(CHANNELS).enumerate() {
            let remaining = frames - t;
            let g = if remaining <= fade {
                // Half-cosine from 1 down to exactly 0 on the last frame.
                let x = (remaining - 1) as f64 / fade as f64;
                gain * (0.5 - 0.5 * (std::f64::consts::PI * x).cos())
            } else {
                gain
            };
            for v in f {
                *v = (f64::from(*v) * g) as f32;
            }
        }
        if let Some(voice) = &voice {
            if music.duck_db > 0.0 {
                duck(&mut bed, &voice.samples, music.duck_db);
            }
        }
        out.copy_from_slice(&bed);
    }
    if let (Some(voice), Some(track)) = (&voice, &spec.voice) {
        let gain = db_to_gain(track.gain_db);
        for (o, v) in out.iter_mut().zip(&voice.samples) {
            *o = (f64::from(*o) + f64::from(*v) * gain) as f32;
        }
    }

    let measured_lufs = normalize(&mut out, spec.loudness_lufs, &mut warnings)?;
    let has_tracks = spec.music.is_some() || spec.voice.is_some();
    if has_tracks && frames > 0 && measured_lufs == f64::NEG_INFINITY {
        if out.iter().all(|&v| v == 0.0) {
            warnings.push("the mix is silent; loudness target not applied".to_owned());
        } else {
            warnings.push(format!(
                "the mix is too short or too quiet to measure loudness (under 0.4 s or below \
                 -70 LUFS); loudness target {:.1} LUFS not applied",
                spec.loudness_lufs
            ));
        }
    }
    for w in &warnings {
        tracing::debug!(warning = %w, "mix");
    }
    Ok(Mix {
        pcm: Pcm { samples: out },
        measured_lufs,
        warnings,
    })
}

fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

fn check_range(
    name: &'static str,
    value: f64,
    min: f64,
    max: f64,
    expected: &'static str,
) -> Result<(), AudioError> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(AudioError::InvalidParameter {
            name,
            value,
            expected,
        })
    }
}

fn check_pcm(track: &'static str, pcm: &Pcm) -> Result<(), AudioError> {
    let invalid = |detail: String| AudioError::InvalidTrack { track, detail };
    if pcm.samples.is_empty() {
        return Err(invalid("contains no samples".to_owned()));
    }
    if !pcm.samples.len().is_multiple_of(CHANNELS) {
        return Err(invalid(format!(
            "{} samples is not a whole number of stereo frames",
            pcm.samples.len()
        )));
    }
    if let Some(i) = pcm.samples.iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "sample {i} (frame {}) is {}",
            i / CHANNELS,
            pcm.samples[i]
        )));
    }
    Ok(())
}

fn validate(spec: &MixSpec) -> Result<(), AudioError> {
    check_range(
        "duration",
        spec.duration,
        0.0,
        MAX_PROGRAM_SECS,
        "seconds in 0..=1800",
    )?;
    check_range(
        "loudness_lufs",
        spec.loudness_lufs,
        MIN_TARGET_LUFS,
        MAX_TARGET_LUFS,
        "LUFS in -70..=0",
    )?;
    if let Some(m) = &spec.music {
        check_range(
            "music.gain_db",
            m.gain_db,
            MIN_GAIN_DB,
            MAX_GAIN_DB,
            "dB in -120..=60",
        )?;
        check_range("music.duck_db", m.duck_db, 0.0, MAX_DUCK_DB, "dB in 0..=60")?;
        check_range(
            "music.fade_out",
            m.fade_out,
            0.0,
            f64::MAX,
            "finite seconds >= 0",
        )?;
        check_pcm("music", &m.pcm)?;
    }
    if let Some(v) = &spec.voice {
        check_range("voice.start", v.start, 0.0, f64::MAX, "finite seconds >= 0")?;
        check_range(
            "voice.gain_db",
            v.gain_db,
            MIN_GAIN_DB,
            MAX_GAIN_DB,
            "dB in -120..=60",
        )?;
        check_pcm("voice", &v.pcm)?;
    }
    Ok(())
}

/// The voice on the program timeline (before its gain), `frames` long; pushes a warning when
/// part of it falls past the end.
fn place_voice(voice: &VoiceTrack, frames: usize, warnings: &mut Vec<String>) -> Pcm {
    let mut placed = Pcm::silence(frames);
    let start_secs = voice.start;
    let program_secs = frames as f64 / f64::from(SAMPLE_RATE);
    let start = (start_secs * f64::from(SAMPLE_RATE)).round();
    let start = if start >= frames as f64 {
        frames
    } else {
        start as usize
    };
    let len = voice.pcm.frames();
    let kept = len.min(frames - start);
    placed.samples[start * CHANNELS..(start + kept) * CHANNELS]
        .copy_from_slice(&voice.pcm.samples[..kept * CHANNELS]);
    if kept == 0 {
        warnings.push(format!(
            "voice starts at {start_secs:.3} s, at or after the end of the program \
             ({program_secs:.3} s); it is not in the mix"
        ));
    } else if kept < len {
        warnings.push(format!(
            "voice runs {:.3} s past the end of the program ({program_secs:.3} s); the last \
             {:.3} s of the voice were cut",
            (len - kept) as f64 / f64::from(SAMPLE_RATE),
            (len - kept) as f64 / f64::from(SAMPLE_RATE),
        ));
    }
    placed
}

/// Interleaved `music` repeated to exactly `frames` frames. Each repeat starts
/// [`LOOP_CROSSFADE`] frames before the previous one ends and the two overlap with an
/// equal-power crossfade; the first repeat starts at full level.
fn loop_to_length(music: &[f32], frames: usize) -> Vec<f32> {
    let len = music.len() / CHANNELS;
    if len >= frames {
        return music[..frames * CHANNELS].to_vec();
    }
    if len == 0 {
        return vec![0.0; frames * CHANNELS];
    }
    let xfade = LOOP_CROSSFADE.min(len / 2);
    let period = len - xfade; // >= 1 since len >= 1
    let fade_in: Vec<f32> = (0..xfade)
        .map(|i| (FRAC_PI_2 * (i as f64 + 0.5) / xfade as f64).sin() as f32)
        .collect();
    let mut out = Vec::with_capacity(frames * CHANNELS);
    for t in 0..frames {
        let pos = t % period;
        if t >= period && pos < xfade {
            // Head of this repeat over the tail of the previous one.
            let (a, b) = (fade_in[pos], fade_in[xfade - 1 - pos]);
            for c in 0..CHANNELS {
                let head = music[pos * CHANNELS + c];
                let tail = music[(period + pos) * CHANNELS + c];
                out.push(head * a + tail * b);
            }
        } else {
            out.extend_from_slice(&music[pos * CHANNELS..(pos + 1) * CHANNELS]);
        }
    }
    out
}

/// Lowers `bed` under the voice (both interleaved, same length) by up to `duck_db`.
fn duck(bed: &mut [f32], voice: &[f32], duck_db: f64) {
    let frames = bed.len() / CHANNELS;
    if frames == 0 {
        return;
    }
    // Side-chain: activity 0..=1 per 20 ms window.
    let activity: Vec<f64> = voice
        .chunks(DUCK_WINDOW * CHANNELS)
        .map(|w| {
            let ms = w.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / w.len() as f64;
            let db = 10.0 * ms.max(1e-20).log10();
            ((db - DUCK_THRESHOLD_DBFS) / DUCK_KNEE_DB).clamp(0.0, 1.0)
        })
        .collect();
    // Look-ahead: a window is as ducked as the most active window up to 100 ms ahead.
    let target: Vec<f64> = (0..activity.len())
        .map(|b| {
            let end = (b + DUCK_LOOKAHEAD_WINDOWS + 1).min(activity.len());
            duck_db * activity[b..end].iter().fold(0.0f64, |m, &a| m.max(a))
        })
        .collect();
    if target.iter().all(|&t| t == 0.0) {
        return;
    }
    // Envelope in dB with linear attack and release ramps, per frame.
    let attack = duck_db / (DUCK_ATTACK_SECS * f64::from(SAMPLE_RATE));
    let release = duck_db / (DUCK_RELEASE_SECS * f64::from(SAMPLE_RATE));
    let mut env = target[0];
    let mut gain = 1.0f64;
    let mut gain_env = f64::NAN;
    for (t, f) in bed.chunks_exact_mut(CHANNELS).enumerate() {
        let want = target[t / DUCK_WINDOW];
        env = if want > env {
            (env + attack).min(want)
        } else {
            (env - release).max(want)
        };
        if env == 0.0 {
            continue;
        }
        if env != gain_env {
            gain = db_to_gain(-env);
            gain_env = env;
        }
        for v in f {
            *v = (f64::from(*v) * gain) as f32;
        }
    }
}

/// Brings `out` to `target_lufs` and holds its peaks at [`CEILING_DBFS`]; returns the final
/// integrated loudness.
fn normalize(
    out: &mut [f32],
    target_lufs: f64,
    warnings: &mut Vec<String>,
) -> Result<f64, AudioError> {
    if out.iter().all(|&v| v == 0.0) {
        return Ok(f64::NEG_INFINITY);
    }
    let ceiling = db_to_gain(CEILING_DBFS);
    let first = loudness::measure(out)?;
    if !first.lufs.is_finite() {
        // Too short or too quiet to measure: only keep the peaks in bounds.
        if first.peak > ceiling {
            let g = ceiling / first.peak;
            for v in out.iter_mut() {
                *v = (f64::from(*v) * g) as f32;
            }
        }
        return Ok(f64::NEG_INFINITY);
    }
    let base_db = target_lufs - first.lufs;
    if first.peak * db_to_gain(base_db) <= ceiling {
        let g = db_to_gain(base_db);
        let c32 = ceiling_f32(ceiling);
        for v in out.iter_mut() {
            *v = ((f64::from(*v) * g) as f32).clamp(-c32, c32);
        }
        return Ok(loudness::measure(out)?.lufs);
    }

    // Peaks would pass the ceiling: limit, and make up the loudness the limiter takes.
    let source = out.to_vec();
    let mut gain_db = base_db;
    let mut result = (f64::NEG_INFINITY, 0.0);
    for pass in 0..=MAX_MAKEUP_PASSES {
        let g = db_to_gain(gain_db);
        for (o, s) in out.iter_mut().zip(&source) {
            *o = (f64::from(*s) * g) as f32;
        }
        let reduction = loudness::limit(out, ceiling);
        let lufs = loudness::measure(out)?.lufs;
        result = (lufs, reduction);
        let short = target_lufs - lufs;
        if short <= LOUDNESS_TOLERANCE
            || pass == MAX_MAKEUP_PASSES
            || gain_db >= base_db + MAX_MAKEUP_DB
        {
            break;
        }
        gain_db = (gain_db + short).min(base_db + MAX_MAKEUP_DB);
    }
    let (lufs, reduction) = result;
    if target_lufs - lufs > SHORTFALL_WARNING {
        warnings.push(format!(
            "loudness target {target_lufs:.1} LUFS not reached: the mix measures {lufs:.1} \
             LUFS ({:.1} LU short) with peaks limited to {CEILING_DBFS} dBFS",
            target_lufs - lufs
        ));
    }
    if reduction > LIMITING_WARNING_DB {
        warnings.push(format!(
            "peak limiter reduced the mix by up to {reduction:.1} dB to keep peaks at \
             {CEILING_DBFS} dBFS"
        ));
    }
    Ok(lufs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_util::{peak, rms, sine, tone_amplitude};

    const TARGET: f64 = -16.0;

    fn ceiling() -> f64 {
        10f64.powf(CEILING_DBFS / 20.0)
    }

    /// Integrated loudness measured by a fresh `ebur128` meter.
    fn fresh_lufs(pcm: &Pcm) -> f64 {
        let mut meter = ebur128::EbuR128::new(2, SAMPLE_RATE, ebur128::Mode::I).expect("meter");
        meter.add_frames_f32(&pcm.samples).expect("add frames");
        meter.loudness_global().expect("loudness")
    }

    fn db(ratio: f64) -> f64 {
        20.0 * ratio.log10()
    }

    fn music(pcm: Pcm) -> MusicTrack {
        MusicTrack {
            pcm,
            gain_db: 0.0,
            duck_db: 0.0,
            fade_out: 0.0,
        }
    }

    fn spec(duration: f64, music: Option<MusicTrack>, voice: Option<VoiceTrack>) -> MixSpec {
        MixSpec {
            duration,
            music,
            voice,
            loudness_lufs: TARGET,
        }
    }

    /// Speech-like test signal: a 150 Hz harmonic "vowel" in 180 ms syllables with 70 ms
    /// gaps and varying level.
    fn speech(secs: f64) -> Pcm {
        let frames = (secs * 48_000.0) as usize;
        Pcm::new(
            (0..frames)
                .flat_map(|i| {
                    let t = i as f64 / 48_000.0;
                    let syllable = (t / 0.25) as usize;
                    let in_syllable = t % 0.25 < 0.18;
                    let level = [0.3, 0.22, 0.35, 0.18, 0.27][syllable % 5];
                    let v = if in_syllable {
                        level
                            * (1..=10)
                                .map(|h| {
                                    (std::f64::consts::TAU * 150.0 * h as f64 * t).sin() / h as f64
                                })
                                .sum::<f64>()
                            / 2.0
                    } else {
                        0.0
                    };
                    [v as f32, v as f32]
                })
                .collect(),
        )
    }

    #[test]
    fn a_program_without_tracks_is_silence() {
        let m = mix(&spec(2.5, None, None)).expect("mix");
        assert_eq!(m.pcm.frames(), 120_000);
        assert!(m.pcm.samples.iter().all(|&v| v == 0.0));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.measured_lufs, f64::NEG_INFINITY);

        let m = mix(&spec(0.0, None, None)).expect("mix");
        assert_eq!(m.pcm.frames(), 0);
    }

    #[test]
    fn length_is_exactly_the_program() {
        for duration in [0.0, 0.001, 1.2345, 7.777_77, 30.0] {
            let m = mix(&spec(duration, Some(music(sine(440.0, 0.2, 0.9))), None)).expect("mix");
            assert_eq!(
                m.pcm.frames(),
                (duration * 48_000.0).round() as usize,
                "duration {duration}"
            );
            assert_eq!(m.pcm.samples.len(), m.pcm.frames() * 2);
        }
    }

    #[test]
    fn music_loops_with_a_smooth_seam() {
        // 0.7013 s is not a whole number of 440 Hz cycles: a plain loop would jump.
        let bed = sine(440.0, 0.25, 0.7013);
        let len = bed.frames();
        let m = mix(&spec(3.0, Some(music(bed.clone())), None)).expect("mix");
        let out = &m.pcm.samples;
        let gain = out[1000 * 2] / bed.samples[1000 * 2];
        // Before the first seam the output is the music, scaled by the loudness gain.
        let period = len - LOOP_CROSSFADE;
        for i in (0..period).step_by(97) {
            assert!(
                (out[i * 2] - gain * bed.samples[i * 2]).abs() < 1e-5,
                "frame {i}"
            );
        }
        // After the crossfade the second pass plays the music again from 20 ms in.
        for k in (0..5_000).step_by(89) {
            let o = out[(period + LOOP_CROSSFADE + k) * 2];
            let b = gain * bed.samples[(LOOP_CROSSFADE + k) * 2];
            assert!((o - b).abs() < 1e-5, "frame {k} of the second pass");
        }
        // No step anywhere: the largest frame-to-frame change stays near a sine's.
        let amplitude = f64::from(gain) * 0.25;
        let sine_step = amplitude * 2.0 * (std::f64::consts::PI * 440.0 / 48_000.0).sin();
        let max_step = out
            .chunks_exact(2)
            .zip(out.chunks_exact(2).skip(1))
            .map(|(a, b)| f64::from((b[0] - a[0]).abs()))
            .fold(0.0, f64::max);
        assert!(
            max_step < 1.3 * sine_step,
            "step {max_step} vs sine {sine_step}"
        );
    }

    #[test]
    fn loop_handles_tiny_music() {
        let one = [0.5f32, -0.5];
        assert_eq!(
            loop_to_length(&one, 3),
            vec![0.5, -0.5, 0.5, -0.5, 0.5, -0.5]
        );
        let three = [0.1f32, 0.1, 0.2, 0.2, 0.3, 0.3];
        let out = loop_to_length(&three, 7);
        assert_eq!(out.len(), 14);
        assert!(out.iter().all(|v| v.is_finite() && v.abs() <= 0.5));
    }

    #[test]
    fn music_fades_out() {
        let mut track = music(sine(440.0, 0.25, 5.0));
        track.fade_out = 1.0;
        let m = mix(&spec(3.0, Some(track), None)).expect("mix");
        let s = &m.pcm.samples;
        let steady = tone_amplitude(s, 0, 48_000, 86_400, 440.0);
        let middle = tone_amplitude(s, 0, 118_800, 121_200, 440.0);
        assert!((middle / steady - 0.5).abs() < 0.03, "{}", middle / steady);
        assert!(rms(s, 0, 139_200, 144_000) < 0.05 * rms(s, 0, 48_000, 86_400));
        assert_eq!(s[s.len() - 1], 0.0);
        assert_eq!(s[s.len() - 2], 0.0);
    }

    /// Music 440 Hz throughout a 6 s program; voice 1 kHz from 2 s to 4 s.
    fn ducking_mix(duck_db: f64) -> Pcm {
        let mut track = music(sine(440.0, 0.25, 6.0));
        track.duck_db = duck_db;
        let voice = VoiceTrack {
            pcm: sine(1000.0, 0.3, 2.0),
            start: 2.0,
            gain_db: 0.0,
        };
        let mut s = spec(6.0, Some(track), Some(voice));
        s.loudness_lufs = -20.0;
        let m = mix(&s).expect("mix");
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        m.pcm
    }

    #[test]
    fn music_ducks_under_the_voice() {
        let pcm = ducking_mix(12.0);
        let s = &pcm.samples;
        let music_at = |from: f64, to: f64| {
            tone_amplitude(
                s,
                0,
                (from * 48_000.0) as usize,
                (to * 48_000.0) as usize,
                440.0,
            )
        };
        let outside = music_at(0.5, 1.5);
        let under = music_at(2.5, 3.5);
        let depth = db(outside / under);
        assert!((depth - 12.0).abs() < 0.5, "ducked by {depth} dB");
        // Already down when the voice starts (look-ahead), not long before.
        let just_before = db(outside / music_at(1.96, 2.0));
        assert!(
            just_before > 11.5,
            "{just_before} dB down just before the voice"
        );
        let well_before = db(outside / music_at(1.75, 1.8));
        assert!(
            well_before.abs() < 0.3,
            "{well_before} dB down 200 ms before the voice"
        );
        // Back up within the release time after the voice.
        let after = db(outside / music_at(4.45, 5.5));
        assert!(after.abs() < 0.3, "{after} dB down after the voice");
        // The voice itself is not ducked.
        let voice = tone_amplitude(s, 0, 120_000, 168_000, 1000.0);
        assert!((db(voice / under) - db(0.3 / 0.25) - 12.0).abs() < 0.5);
    }

    #[test]
    fn voice_at_the_start_has_the_music_down_from_the_first_frame() {
        let mut track = music(sine(440.0, 0.25, 4.0));
        track.duck_db = 10.0;
        let voice = VoiceTrack {
            pcm: sine(1000.0, 0.3, 1.0),
            start: 0.0,
            gain_db: 0.0,
        };
        let m = mix(&spec(4.0, Some(track), Some(voice))).expect("mix");
        let s = &m.pcm.samples;
        let first = tone_amplitude(s, 0, 0, 2_400, 440.0);
        let later = tone_amplitude(s, 0, 96_000, 144_000, 440.0);
        assert!(
            (db(later / first) - 10.0).abs() < 0.3,
            "{}",
            db(later / first)
        );
    }

    #[test]
    fn no_ducking_when_duck_db_is_zero() {
        let pcm = ducking_mix(0.0);
        let s = &pcm.samples;
        let outside = tone_amplitude(s, 0, 24_000, 72_000, 440.0);
        let under = tone_amplitude(s, 0, 120_000, 168_000, 440.0);
        assert!(db(outside / under).abs() < 0.05);
    }

    #[test]
    fn quiet_voice_noise_does_not_duck() {
        // A voice track whose level stays below the side-chain threshold (-50 dBFS RMS).
        let mut track = music(sine(440.0, 0.25, 4.0));
        track.duck_db = 12.0;
        let voice = VoiceTrack {
            pcm: sine(1000.0, 0.003, 2.0),
            start: 1.0,
            gain_db: 0.0,
        };
        let m = mix(&spec(4.0, Some(track), Some(voice))).expect("mix");
        let s = &m.pcm.samples;
        let outside = tone_amplitude(s, 0, 144_000, 190_000, 440.0);
        let under = tone_amplitude(s, 0, 72_000, 120_000, 440.0);
        assert!(db(outside / under).abs() < 0.05);
    }

    #[test]
    fn mix_reaches_the_loudness_target_under_the_ceiling() {
        let cases: Vec<(&str, Option<MusicTrack>, Option<VoiceTrack>, f64)> = vec![
            ("music", Some(music(sine(220.0, 0.1, 7.0))), None, -16.0),
            (
                "music loud target",
                Some(music(sine(220.0, 0.1, 7.0))),
                None,
                -6.0,
            ),
            (
                "voice",
                None,
                Some(VoiceTrack {
                    pcm: speech(4.0),
                    start: 0.5,
                    gain_db: 0.0,
                }),
                -23.0,
            ),
            (
                "voice limited",
                None,
                Some(VoiceTrack {
                    pcm: speech(4.0),
                    start: 0.5,
                    gain_db: 0.0,
                }),
                -7.0,
            ),
            (
                "both",
                Some(MusicTrack {
                    pcm: sine(330.0, 0.5, 3.3),
                    gain_db: -12.0,
                    duck_db: 9.0,
                    fade_out: 1.5,
                }),
                Some(VoiceTrack {
                    pcm: speech(5.0),
                    start: 0.6,
                    gain_db: 0.0,
                }),
                -16.0,
            ),
            (
                "both hot",
                Some(MusicTrack {
                    pcm: sine(330.0, 0.5, 3.3),
                    gain_db: -6.0,
                    duck_db: 6.0,
                    fade_out: 1.0,
                }),
                Some(VoiceTrack {
                    pcm: speech(5.0),
                    start: 0.6,
                    gain_db: 3.0,
                }),
                -10.0,
            ),
        ];
        for (name, music, voice, target) in cases {
            let mut s = spec(8.0, music, voice);
            s.loudness_lufs = target;
            let m = mix(&s).expect("mix");
            if name.ends_with("limited") {
                // The limiter is working: peaks sit at the ceiling.
                assert!(
                    db(peak(&m.pcm.samples) / ceiling()) > -0.01,
                    "{name}: not limited"
                );
            }
            let lufs = fresh_lufs(&m.pcm);
            assert!(
                (lufs - target).abs() <= 0.5,
                "{name}: {lufs} LUFS for {target}"
            );
            assert!(
                (lufs - m.measured_lufs).abs() < 1e-6,
                "{name}: reported {}",
                m.measured_lufs
            );
            assert!(
                peak(&m.pcm.samples) <= ceiling(),
                "{name}: peak {}",
                peak(&m.pcm.samples)
            );
            assert!(
                m.warnings.iter().all(|w| !w.contains("not reached")),
                "{name}: {:?}",
                m.warnings
            );
        }
    }

    #[test]
    fn unreachable_target_is_a_warning_and_peaks_stay_under_the_ceiling() {
        // A sparse click track has far more peak than loudness: 0 LUFS is out of reach.
        let clicks = Pcm::new(
            (0..96_000)
                .flat_map(|i| {
                    let v = if i % 4_800 < 4 { 0.9f32 } else { 0.0 };
                    [v, v]
                })
                .collect(),
        );
        let mut s = spec(4.0, Some(music(clicks)), None);
        s.loudness_lufs = 0.0;
        let m = mix(&s).expect("mix");
        assert!(peak(&m.pcm.samples) <= ceiling());
        let warning = m
            .warnings
            .iter()
            .find(|w| w.contains("not reached"))
            .unwrap_or_else(|| panic!("no shortfall warning in {:?}", m.warnings));
        assert!(warning.starts_with("loudness target 0.0 LUFS not reached: the mix measures "));
        assert!(m.measured_lufs < -0.5);
        assert!((fresh_lufs(&m.pcm) - m.measured_lufs).abs() < 1e-6);
    }

    #[test]
    fn voice_past_the_end_is_cut_with_a_warning() {
        let voice = VoiceTrack {
            pcm: speech(2.0),
            start: 1.5,
            gain_db: 0.0,
        };
        let m = mix(&spec(2.5, None, Some(voice))).expect("mix");
        assert_eq!(m.pcm.frames(), 120_000);
        assert_eq!(
            m.warnings,
            vec![
                "voice runs 1.000 s past the end of the program (2.500 s); the last 1.000 s of \
                 the voice were cut"
                    .to_owned()
            ]
        );
        // Silent before the voice.
        assert!(m.pcm.samples[..72_000 * 2].iter().all(|&v| v == 0.0));
        assert!(rms(&m.pcm.samples, 0, 72_000, 120_000) > 0.01);
    }

    #[test]
    fn voice_after_the_end_is_left_out_with_a_warning() {
        let voice = VoiceTrack {
            pcm: speech(1.0),
            start: 3.0,
            gain_db: 0.0,
        };
        let m = mix(&spec(2.0, Some(music(sine(440.0, 0.2, 1.0))), Some(voice))).expect("mix");
        assert_eq!(m.pcm.frames(), 96_000);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(m.warnings[0].starts_with("voice starts at 3.000 s, at or after the end"));
    }

    #[test]
    fn short_program_keeps_peaks_and_warns() {
        let m = mix(&spec(0.2, Some(music(sine(440.0, 0.99, 1.0))), None)).expect("mix");
        assert_eq!(m.pcm.frames(), 9_600);
        assert!(peak(&m.pcm.samples) <= ceiling());
        assert_eq!(m.measured_lufs, f64::NEG_INFINITY);
        assert!(
            m.warnings[0].contains("too short or too quiet"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn invalid_parameters_are_errors() {
        let good = || {
            spec(
                2.0,
                Some(music(sine(440.0, 0.2, 1.0))),
                Some(VoiceTrack {
                    pcm: speech(1.0),
                    start: 0.5,
                    gain_db: 0.0,
                }),
            )
        };
        assert!(mix(&good()).is_ok());
        type Edit = fn(&mut MixSpec);
        let param_cases: Vec<(&str, Edit)> = vec![
            ("duration", |s| s.duration = f64::NAN),
            ("duration", |s| s.duration = -1.0),
            ("duration", |s| s.duration = f64::INFINITY),
            ("duration", |s| s.duration = 1e9),
            ("loudness_lufs", |s| s.loudness_lufs = f64::NAN),
            ("loudness_lufs", |s| s.loudness_lufs = 3.0),
            ("loudness_lufs", |s| s.loudness_lufs = -100.0),
            ("music.gain_db", |s| {
                if let Some(m) = &mut s.music {
                    m.gain_db = f64::INFINITY;
                }
            }),
            ("music.duck_db", |s| {
                if let Some(m) = &mut s.music {
                    m.duck_db = -3.0;
                }
            }),
            ("music.fade_out", |s| {
                if let Some(m) = &mut s.music {
                    m.fade_out = f64::NAN;
                }
            }),
            ("voice.start", |s| {
                if let Some(v) = &mut s.voice {
                    v.start = -0.1;
                }
            }),
            ("voice.gain_db", |s| {
                if let Some(v) = &mut s.voice {
                    v.gain_db = 500.0;
                }
            }),
        ];
        for (name, edit) in param_cases {
            let mut s = good();
            edit(&mut s);
            match mix(&s) {
                Err(AudioError::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: expected InvalidParameter, got {other:?}"),
            }
        }
        let err = {
            let mut s = good();
            s.duration = f64::NAN;
            mix(&s).expect_err("NaN duration")
        };
        assert_eq!(
            err.to_string(),
            "mix parameter `duration` = NaN is invalid: expected seconds in 0..=1800"
        );

        let track_cases: Vec<(&str, Edit)> = vec![
            ("music", |s| {
                if let Some(m) = &mut s.music {
                    m.pcm.samples.clear();
                }
            }),
            ("music", |s| {
                if let Some(m) = &mut s.music {
                    m.pcm.samples.push(0.0);
                }
            }),
            ("voice", |s| {
                if let Some(v) = &mut s.voice {
                    v.pcm.samples[100] = f32::NAN;
                }
            }),
            ("voice", |s| {
                if let Some(v) = &mut s.voice {
                    v.pcm.samples[7] = f32::NEG_INFINITY;
                }
            }),
        ];
        for (track, edit) in track_cases {
            let mut s = good();
            edit(&mut s);
            match mix(&s) {
                Err(AudioError::InvalidTrack { track: t, .. }) => assert_eq!(t, track),
                other => panic!("{track}: expected InvalidTrack, got {other:?}"),
            }
        }
    }

    #[test]
    fn mixing_is_deterministic() {
        let make = || {
            spec(
                6.0,
                Some(MusicTrack {
                    pcm: sine(330.0, 0.5, 1.3),
                    gain_db: -3.0,
                    duck_db: 10.0,
                    fade_out: 2.0,
                }),
                Some(VoiceTrack {
                    pcm: speech(4.0),
                    start: 0.6,
                    gain_db: 2.0,
                }),
            )
        };
        let a = mix(&make()).expect("mix");
        let b = mix(&make()).expect("mix");
        assert_eq!(a.pcm.samples.len(), b.pcm.samples.len());
        assert!(a
            .pcm
            .samples
            .iter()
            .zip(&b.pcm.samples)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(a.measured_lufs.to_bits(), b.measured_lufs.to_bits());
        assert_eq!(a.warnings, b.warnings);
    }
}
