//! Voices: text-to-speech providers that report when each phoneme is spoken.

use crate::LipsyncError;

/// One phoneme of synthesized speech.
#[derive(Debug, Clone, PartialEq)]
pub struct Phone {
    /// Start, milliseconds from the start of the audio.
    pub start_ms: f64,
    /// End, milliseconds (the next phoneme's start, or the end of the audio).
    pub end_ms: f64,
    /// The phoneme in IPA as the provider names it; `_` is a pause.
    pub ipa: String,
}

/// Synthesized speech: mono samples and the phonemes in them.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesis {
    /// Mono samples, full scale ±1.0.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Phonemes in time order.
    pub phones: Vec<Phone>,
}

impl Synthesis {
    /// Length of the audio in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 * 1000.0 / f64::from(self.sample_rate)
    }
}

/// How a voice should sound; `None` keeps the provider's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoiceParams {
    /// Provider-specific voice variant (for eSpeak NG: `f3`, `m3`, `klatt4`...).
    pub variant: Option<String>,
    /// Speaking rate in words per minute (eSpeak NG: 80..=450, default 175).
    pub rate_wpm: Option<u32>,
    /// Pitch, 0..=99 (eSpeak NG default 50).
    pub pitch: Option<u32>,
}

/// A text-to-speech provider that reports phoneme times.
pub trait VoiceProvider: Send + Sync {
    /// Short name for messages (`espeak-ng`).
    fn name(&self) -> &str;

    /// Whether the provider speaks `lang` (a BCP 47 primary subtag such as `hi`).
    fn supports(&self, lang: &str) -> bool;

    /// Speaks `text` in `lang`.
    fn synthesize(
        &self,
        text: &str,
        lang: &str,
        params: &VoiceParams,
    ) -> Result<Synthesis, LipsyncError>;
}
