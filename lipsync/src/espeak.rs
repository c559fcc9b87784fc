//! The eSpeak NG voice, spoken by the separate `reelfarm-espeak` helper program.

use crate::{LipsyncError, Synthesis, VoiceParams, VoiceProvider};

/// eSpeak NG through the `reelfarm-espeak` helper.
#[derive(Debug)]
pub struct EspeakVoice {
    program: std::path::PathBuf,
}

impl EspeakVoice {
    /// Finds the helper.
    pub fn locate() -> Result<Self, LipsyncError> {
        Err(LipsyncError::NoVoice)
    }

    /// The helper at `program`.
    pub fn with_program(program: impl Into<std::path::PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }
}

impl VoiceProvider for EspeakVoice {
    fn name(&self) -> &str {
        "espeak-ng"
    }

    fn supports(&self, _lang: &str) -> bool {
        false
    }

    fn synthesize(
        &self,
        _text: &str,
        _lang: &str,
        _params: &VoiceParams,
    ) -> Result<Synthesis, LipsyncError> {
        Err(LipsyncError::Voice {
            provider: self.name().to_owned(),
            message: format!("{} not implemented yet", self.program.display()),
        })
    }
}
