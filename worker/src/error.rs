//! How an attempt can end without output, and how render errors map to failure classes.

use proto::v1::FailureClass;
use render_core::RenderError;

use crate::running::StopReason;

/// Most characters of a failure message the coordinator keeps.
const MAX_MESSAGE_CHARS: usize = 2000;

/// Why an attempt produced no output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    /// It failed; reported with Fail. The message never holds recipient data.
    #[error("{message}")]
    Failed {
        /// Decides the coordinator's retry.
        class: FailureClass,
        message: String,
    },
    /// It was stopped; neither Complete nor Fail is sent.
    #[error("stopped: {0}")]
    Stopped(StopReason),
    /// The coordinator refused a write for it (FAILED_PRECONDITION or NOT_FOUND): it is no
    /// longer this worker's. Discarded silently.
    #[error("no longer this worker's: {0}")]
    Stale(String),
}

impl AttemptError {
    pub(crate) fn failed(class: FailureClass, message: impl Into<String>) -> Self {
        AttemptError::Failed {
            class,
            message: truncate(message.into()),
        }
    }

    /// A render-core failure. [`RenderError::Cancelled`] must be mapped by the caller, who knows
    /// why it stopped.
    pub(crate) fn render(error: &RenderError) -> Self {
        AttemptError::failed(classify(error), error.to_string())
    }
}

/// The failure class of a render error: what the request asked for cannot render (never
/// retried), the worker's disk failed (infrastructure), or the render failed in a way another
/// try may not (application).
pub(crate) fn classify(error: &RenderError) -> FailureClass {
    match error {
        RenderError::Template(_)
        | RenderError::Token(_)
        | RenderError::VoiceTooLong { .. }
        | RenderError::NoVoiceSlot
        | RenderError::Range { .. }
        | RenderError::ScriptTooLong { .. } => FailureClass::InvalidInput,
        RenderError::Speech { error, .. } | RenderError::LipSync { error, .. } => {
            classify_lipsync(error)
        }
        // Writing the output in the work folder: the worker's disk, not the render.
        RenderError::Io { .. } => FailureClass::Infrastructure,
        _ => FailureClass::Application,
    }
}

/// Lip-sync failures: bad input is not retried; a worker without the text-to-speech helper is
/// an infrastructure problem (another worker may have it); a helper that failed may succeed on
/// a retry.
fn classify_lipsync(error: &lipsync::LipsyncError) -> FailureClass {
    use lipsync::LipsyncError as E;
    match error {
        E::NoVoice => FailureClass::Infrastructure,
        E::Voice { .. } | E::Resample(_) => FailureClass::Application,
        _ => FailureClass::InvalidInput,
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters, cut on a character boundary.
fn truncate(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            classify(&RenderError::NoVoiceSlot),
            FailureClass::InvalidInput
        );
        assert_eq!(
            classify(&RenderError::Range {
                t0: 0.0,
                t1: 1.0,
                duration: 0.5
            }),
            FailureClass::InvalidInput
        );
        assert_eq!(
            classify(&RenderError::ScriptTooLong {
                lang: "hi".into(),
                seconds: 6.0,
                max: 5.0
            }),
            FailureClass::InvalidInput
        );
        let lipsync = |error| RenderError::LipSync {
            layer: "presenter".into(),
            lang: "xx".into(),
            error,
        };
        assert_eq!(
            classify(&lipsync(lipsync::LipsyncError::UnsupportedLanguage {
                lang: "xx".into(),
                supported: "hi".into()
            })),
            FailureClass::InvalidInput
        );
        assert_eq!(
            classify(&lipsync(lipsync::LipsyncError::NoVoice)),
            FailureClass::Infrastructure
        );
        assert_eq!(
            classify(&RenderError::EncoderStopped),
            FailureClass::Application
        );
        assert_eq!(
            classify(&RenderError::Io {
                path: "/x".into(),
                error: std::io::Error::other("disk full"),
            }),
            FailureClass::Infrastructure
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let AttemptError::Failed { message, .. } =
            AttemptError::failed(FailureClass::Application, long)
        else {
            panic!("failed");
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
