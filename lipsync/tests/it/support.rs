use std::sync::Arc;

use lipsync::{Engine, EspeakVoice, VoiceProvider};

/// An engine with the eSpeak NG helper; the helper is built with the workspace.
pub fn engine() -> Engine {
    let voice = EspeakVoice::locate().unwrap_or_else(|e| {
        panic!("{e}: build it first with `cargo build --release -p tts-espeak`")
    });
    Engine::new(Some(Arc::new(voice) as Arc<dyn VoiceProvider>))
}
