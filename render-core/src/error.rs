//! The one error type of a render.

use std::path::PathBuf;

use crate::audio::AudioError;
use crate::gpu::GpuError;
use crate::media::MediaError;
use crate::text::TextError;

/// Why a render failed. Each variant says what to fix; none carries recipient data.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template bundle is broken.
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// A recipient's token value was rejected.
    #[error(transparent)]
    Token(#[from] template::TokenError),
    /// A text layer could not be laid out.
    #[error("text layer `{layer}`: {error}")]
    Text {
        /// The layer id.
        layer: String,
        /// What went wrong.
        error: TextError,
    },
    /// A media file could not be read or written.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// An audio file could not be decoded or mixed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The GPU failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The requested range is outside the video.
    #[error("time range [{t0}, {t1}) is not inside the video's [0, {duration})")]
    Range {
        /// Start, seconds.
        t0: f64,
        /// End, seconds.
        t1: f64,
        /// Video length, seconds.
        duration: f64,
    },
    /// The supplied voice is longer than the template's voice slot.
    #[error("voice is {seconds:.2} s long; this template's voice slot takes at most {max:.2} s")]
    VoiceTooLong {
        /// Voice length.
        seconds: f64,
        /// The slot's `max_duration`.
        max: f64,
    },
    /// The built-in voice spoke the script for longer than the voice slot allows.
    #[error("the spoken script (audio.voice.script, language `{lang}`) is {seconds:.2} s long; this template's voice slot takes at most {max:.2} s; shorten the script or raise audio.voice.tts.rate")]
    ScriptTooLong {
        /// The language spoken.
        lang: String,
        /// Length of the speech.
        seconds: f64,
        /// The slot's `max_duration`.
        max: f64,
    },
    /// The built-in voice could not speak the voice slot's script.
    #[error("audio.voice.tts: cannot speak the script in language `{lang}`: {error}")]
    Speech {
        /// The language asked for.
        lang: String,
        /// What the lip-sync engine said.
        error: lipsync::LipsyncError,
    },
    /// A presenter's mouth track could not be made from the voice.
    #[error("presenter layer `{layer}`: cannot lip-sync the voice (language `{lang}`): {error}")]
    LipSync {
        /// The presenter layer's id.
        layer: String,
        /// The language of the render.
        lang: String,
        /// What the lip-sync engine said.
        error: lipsync::LipsyncError,
    },
    /// A voice was supplied for a template without a voice slot.
    #[error(
        "this template has no voice slot (audio.voice); remove the voice file from the request"
    )]
    NoVoiceSlot,
    /// The caller stopped the render ([`crate::Renderer::render_cancellable`]).
    #[error("the render was cancelled")]
    Cancelled,
    /// The encoder thread ended before the frames did.
    #[error("the encoder stopped unexpectedly")]
    EncoderStopped,
    /// A file operation failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

impl RenderError {
    /// The same error naming its files by `rename(path)` where that gives a name: media
    /// files relative to the template folder (not a worker's cache path), the output the caller
    /// asked for (not the temporary file written beside it).
    pub(crate) fn renamed(self, rename: impl Fn(&std::path::Path) -> Option<PathBuf>) -> Self {
        match self {
            RenderError::Media(e) => RenderError::Media(e.renamed(rename)),
            RenderError::Audio(AudioError::NotFound { path }) => {
                RenderError::Audio(AudioError::NotFound {
                    path: rename(&path).unwrap_or(path),
                })
            }
            RenderError::Io { path, error } => RenderError::Io {
                path: rename(&path).unwrap_or(path),
                error,
            },
            other => other,
        }
    }
}
