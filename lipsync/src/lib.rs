//! lipsync: speech → mouth shapes.
//!
//! A [`Track`] is a list of [`Cue`]s, each one of Rhubarb Lip Sync's nine mouth shapes
//! ([`Shape`]: A–H and X) over a time range, covering the whole audio. [`Engine`] makes tracks
//! three ways, in order of preference:
//!
//! 1. **Spoken by the built-in voice** ([`Engine::speak`]): the text-to-speech provider reports
//!    the time of every phoneme it speaks, so the track is exact.
//! 2. **Supplied audio with its transcript** ([`Engine::analyze`] with `Some(text)`): the text is
//!    synthesized as a reference with known phoneme times, the reference is aligned to the
//!    supplied audio by dynamic time warping over MFCCs, and the reference's phonemes are carried
//!    across the warp.
//! 3. **Supplied audio alone** (`None`): an acoustic estimate from energy, voicing and formants.
//!    The result carries a warning, since it is much coarser.
//!
//! Every path ends in the same phoneme → shape mapping ([`viseme`]) and timing rules.
//!
//! Voices are [`VoiceProvider`]s; the eSpeak NG provider ([`EspeakVoice`]) runs a separate
//! helper program (`reelfarm-espeak`, GPL-3.0-or-later), so this crate links no GPL code.

mod acoustic;
mod align;
mod error;
mod espeak;
pub mod eval;
pub mod features;
pub mod score;
mod shape;
pub mod viseme;
mod voice;

pub use error::LipsyncError;
pub use espeak::EspeakVoice;
pub use shape::{Coarse, Cue, MouthParams, Shape, Track};
pub use voice::{Phone, Synthesis, VoiceParams, VoiceProvider};

use std::sync::Arc;

/// How a track was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// From the text-to-speech provider's own phoneme times.
    Tts,
    /// Supplied audio aligned to a synthesized reference of its transcript.
    Aligned,
    /// Supplied audio analysed without a transcript.
    Acoustic,
}

/// Makes mouth tracks. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Engine {
    voice: Option<Arc<dyn VoiceProvider>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("voice", &self.voice.as_ref().map(|v| v.name()))
            .finish()
    }
}

impl Engine {
    /// An engine with `voice` for speaking and for synthesizing alignment references; without
    /// one, only the acoustic path is available.
    pub fn new(voice: Option<Arc<dyn VoiceProvider>>) -> Self {
        Self { voice }
    }

    /// An engine with the eSpeak NG helper if it can be found (see [`EspeakVoice::locate`]).
    pub fn with_default_voice() -> Self {
        Self::new(
            EspeakVoice::locate()
                .ok()
                .map(|v| Arc::new(v) as Arc<dyn VoiceProvider>),
        )
    }

    /// The voice provider, if any.
    pub fn voice(&self) -> Option<&Arc<dyn VoiceProvider>> {
        self.voice.as_ref()
    }

    /// Speaks `text` in `lang` with the engine's voice and returns the audio with its exact track.
    pub fn speak(
        &self,
        text: &str,
        lang: &str,
        params: &VoiceParams,
    ) -> Result<(Synthesis, Track), LipsyncError> {
        check_language(lang)?;
        if text.trim().is_empty() {
            return Err(LipsyncError::EmptyText);
        }
        let voice = self.voice.as_ref().ok_or(LipsyncError::NoVoice)?;
        let synth = voice.synthesize(text, lang, params)?;
        let track = track_of_phones(&synth.phones, synth.duration_ms(), Method::Tts);
        Ok((synth, track))
    }

    /// The track of supplied mono audio at `sample_rate`, aligned to `transcript` when given.
    ///
    /// Without a transcript, or when the transcript cannot be used (no voice to synthesize the
    /// reference, or it does not match the audio), the acoustic estimate is returned with a
    /// warning saying why.
    pub fn analyze(
        &self,
        samples: &[f32],
        sample_rate: u32,
        lang: &str,
        transcript: Option<&str>,
    ) -> Result<Track, LipsyncError> {
        check_language(lang)?;
        if sample_rate == 0 || sample_rate > 384_000 {
            return Err(LipsyncError::BadSampleRate(sample_rate));
        }
        if samples.is_empty() {
            return Err(LipsyncError::EmptyAudio);
        }
        if samples.iter().any(|v| !v.is_finite()) {
            return Err(LipsyncError::CorruptAudio);
        }
        let duration_ms = samples.len() as f64 * 1000.0 / f64::from(sample_rate);
        let audio = features::to_analysis_rate(samples, sample_rate)?;
        let frames = features::frames(&audio);
        if frames.is_empty() || acoustic::peak_db(&frames) < SILENCE_DB {
            let mut track = Track::from_cues(Vec::new(), duration_ms, Method::Acoustic);
            track
                .warnings
                .push("lip-sync: the voice audio is silent; the mouth rests throughout".into());
            return Ok(track);
        }
        let mut warnings = Vec::new();
        match transcript.map(str::trim).filter(|t| !t.is_empty()) {
            None => warnings.push(
                "lip-sync: no transcript for the voice; mouth shapes estimated from the sound alone (coarser)"
                    .to_owned(),
            ),
            Some(text) => match &self.voice {
                None => warnings.push(
                    "lip-sync: no text-to-speech voice to align the transcript with; mouth shapes estimated from the sound alone (coarser)"
                        .to_owned(),
                ),
                Some(voice) => {
                    let reference = voice.synthesize(text, lang, &reference_voice(&frames))?;
                    let ref_audio =
                        features::to_analysis_rate(&reference.samples, reference.sample_rate)?;
                    let ref_frames = features::frames(&ref_audio);
                    let ref_mfcc = features::normalized_mfcc(&ref_frames);
                    let target = features::normalized_mfcc(&frames);
                    let warp = align::dtw(&ref_mfcc, &target);
                    // The same reference played backwards has the same sounds in the wrong
                    // order: aligning it costs what an unrelated transcript would.
                    let reversed: Vec<f32> = ref_mfcc
                        .chunks_exact(features::CEPS)
                        .rev()
                        .flatten()
                        .copied()
                        .collect();
                    let chance = align::dtw(&reversed, &target).path_cost;
                    let ratio = if chance > 0.0 { warp.path_cost / chance } else { 1.0 };
                    let stretch = duration_ms / reference.duration_ms().max(1.0);
                    tracing::debug!(ratio, stretch, "transcript alignment");
                    if ratio <= MAX_MATCH_RATIO && (0.33..=3.0).contains(&stretch) {
                        let phones: Vec<viseme::Timed> = reference
                            .phones
                            .iter()
                            .map(|p| viseme::Timed {
                                start_ms: warp.map_ms(p.start_ms, features::HOP_MS),
                                end_ms: warp.map_ms(p.end_ms, features::HOP_MS),
                                ipa: p.ipa.clone(),
                            })
                            .collect();
                        return Ok(track_of_timed(&phones, duration_ms, Method::Aligned));
                    }
                    warnings.push(format!(
                        "lip-sync: the transcript does not appear to match the voice audio (alignment cost {ratio:.2} of chance, length ratio {stretch:.2}); mouth shapes estimated from the sound alone (coarser)"
                    ));
                }
            },
        }
        let shapes = acoustic::shapes(&frames);
        let segs = acoustic::runs(&shapes, features::HOP_MS);
        let mut track = Track::from_cues(
            viseme::animate(&segs, &viseme::Timing::default()),
            duration_ms,
            Method::Acoustic,
        );
        track.warnings = warnings;
        Ok(track)
    }
}

/// Audio whose loudest 25 ms frame is below this level (dBFS) is treated as silence.
const SILENCE_DB: f32 = -60.0;

/// Alignments costing more than this share of aligning the reversed reference are taken as a
/// transcript that does not match the audio. Measured on the evaluation set: matching
/// transcripts 0.25–0.71, other sentences 0.80 and above.
const MAX_MATCH_RATIO: f64 = 0.76;

/// The reference voice for aligning supplied audio: eSpeak NG's default voice, or for a high
/// voice (median pitch above 165 Hz) its female variant `f2`, whose formants lie closer.
fn reference_voice(frames: &[features::Frame]) -> VoiceParams {
    let high = features::median_pitch(frames).is_some_and(|hz| hz > HIGH_VOICE_HZ);
    VoiceParams {
        variant: high.then(|| "f2".to_owned()),
        ..VoiceParams::default()
    }
}

/// Median pitch above which the female reference voice is used.
const HIGH_VOICE_HZ: f32 = 165.0;

fn check_language(lang: &str) -> Result<(), LipsyncError> {
    if viseme::supported(lang) {
        Ok(())
    } else {
        Err(LipsyncError::UnsupportedLanguage {
            lang: lang.to_owned(),
            supported: viseme::LANGUAGES.join(", "),
        })
    }
}

/// The track for phonemes with known times: the phoneme → shape table, then the timing rules.
pub fn track_of_phones(phones: &[Phone], duration_ms: f64, method: Method) -> Track {
    track_of_timed(&timed(phones), duration_ms, method)
}

fn timed(phones: &[Phone]) -> Vec<viseme::Timed> {
    phones
        .iter()
        .map(|p| viseme::Timed {
            start_ms: p.start_ms,
            end_ms: p.end_ms,
            ipa: p.ipa.clone(),
        })
        .collect()
}

fn track_of_timed(phones: &[viseme::Timed], duration_ms: f64, method: Method) -> Track {
    let segs = viseme::segments(phones);
    Track::from_cues(
        viseme::animate(&segs, &viseme::Timing::default()),
        duration_ms,
        method,
    )
}

/// The reference a track is scored against: each phoneme's own shape, without timing rules.
pub fn reference_track(phones: &[Phone], duration_ms: f64) -> Track {
    let cues = viseme::segments(&timed(phones))
        .into_iter()
        .map(|(s, e, shape)| Cue {
            start_ms: s.max(0.0).round() as u32,
            end_ms: e.max(0.0).round() as u32,
            shape,
        })
        .collect();
    Track::from_cues(cues, duration_ms, Method::Tts)
}
