//! The error type of the audio module.

use std::path::PathBuf;

/// Why decoding or mixing audio failed.
///
/// Decoding errors name the file by its file name (`voice.mp3`), not its full path, so that
/// messages can be shown to template authors without leaking the farm's directory layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The path does not exist.
    #[error("audio file `{}` not found", .path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },

    /// The path exists but cannot be read as a file (permissions, a directory, ...).
    #[error("audio file `{file}` cannot be read: {source}")]
    Io {
        /// File name.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// FFmpeg does not recognise the file as a media container it can read.
    #[error("`{file}`: not a decodable media file: {source}")]
    Open {
        /// File name.
        file: String,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },

    /// The container holds no audio stream (an image, a video without sound, ...).
    #[error("`{file}`: no audio stream")]
    NoAudioStream {
        /// File name.
        file: String,
    },

    /// The audio stream's codec cannot be decoded.
    #[error("`{file}`: cannot decode {codec} audio: {source}")]
    Codec {
        /// File name.
        file: String,
        /// FFmpeg's name for the codec.
        codec: String,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },

    /// Reading or decoding failed part-way through the stream.
    #[error("`{file}`: corrupt audio data after {at_secs:.3} s: {source}")]
    Corrupt {
        /// File name.
        file: String,
        /// Seconds of audio decoded successfully before the failure.
        at_secs: f64,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },

    /// The decoder produced audio this module cannot interpret (no sample format, zero
    /// channels, a sample rate out of range, frames shorter than they claim).
    #[error("`{file}`: unsupported audio: {detail}")]
    Unsupported {
        /// File name.
        file: String,
        /// What is wrong, with the offending value.
        detail: String,
    },

    /// The file decodes to zero samples.
    #[error("audio file `{file}` contains no samples")]
    Empty {
        /// File name.
        file: String,
    },

    /// The file decodes to more audio than [`MAX_DECODED_SECS`](super::MAX_DECODED_SECS).
    #[error("audio file `{file}` is longer than the limit of {max_secs} s")]
    TooLong {
        /// File name.
        file: String,
        /// The limit in seconds.
        max_secs: f64,
    },

    /// A floating-point file contains NaN or infinite samples.
    #[error("audio file `{file}` contains non-finite samples (NaN or infinity)")]
    NonFiniteSamples {
        /// File name.
        file: String,
    },

    /// The rate converter could not be built or failed.
    #[error("resampling from {from_hz} Hz to 48000 Hz failed: {source}")]
    Resample {
        /// Input sample rate in Hz.
        from_hz: u32,
        /// rubato's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A mix parameter is NaN, infinite or out of range.
    #[error("mix parameter `{name}` = {value} is invalid: expected {expected}")]
    InvalidParameter {
        /// Parameter path, e.g. `music.gain_db`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range, in words.
        expected: &'static str,
    },

    /// A track's samples are unusable (empty, odd length, NaN or infinite values).
    #[error("{track} track is invalid: {detail}")]
    InvalidTrack {
        /// `music` or `voice`.
        track: &'static str,
        /// What is wrong.
        detail: String,
    },

    /// The loudness meter rejected its input.
    #[error("loudness measurement failed: {0}")]
    Loudness(#[source] ebur128::Error),
}
