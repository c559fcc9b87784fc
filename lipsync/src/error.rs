//! Errors of the lipsync crate.

/// Why a track could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LipsyncError {
    /// The audio has no samples.
    #[error("the audio is empty")]
    EmptyAudio,
    /// The audio holds NaN or infinite samples.
    #[error("the audio is corrupt (it holds samples that are not finite numbers)")]
    CorruptAudio,
    /// A sample rate of 0 or beyond 384 kHz.
    #[error("sample rate {0} Hz out of range 1..=384000")]
    BadSampleRate(u32),
    /// The language has no phoneme → mouth-shape table or no voice.
    #[error("language `{lang}` is not supported for lip-sync (supported: {supported})")]
    UnsupportedLanguage {
        /// The requested code.
        lang: String,
        /// The supported codes, comma-separated.
        supported: String,
    },
    /// Speaking or aligning needs a voice provider and none is configured.
    #[error("no text-to-speech voice is available (the `reelfarm-espeak` helper was not found; set REELFARM_ESPEAK to its path)")]
    NoVoice,
    /// The text to speak is empty after trimming.
    #[error("the text to speak is empty")]
    EmptyText,
    /// The voice provider failed.
    #[error("voice `{provider}` failed: {message}")]
    Voice {
        /// Provider name.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// Resampling failed.
    #[error("resampling the audio failed: {0}")]
    Resample(String),
}
