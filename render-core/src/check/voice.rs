//! Speaking every voice script with the worst-case values, as a render does, and comparing the
//! spoken length with the voice slot.

use std::collections::BTreeSet;

use lipsync::{Engine, VoiceParams};
use template::Bundle;

use super::{DeepReport, Progress, WorstCase};

/// Speaks the voice script of every language the built-in voice speaks (no default voice file
/// for it) with every worst case, and reports scripts longer than `audio.voice.max_duration`.
pub(super) fn check_voice(
    bundle: &Bundle,
    speech: &Engine,
    cases: &[(String, Vec<WorstCase>)],
    report: &mut DeepReport,
    progress: &Progress,
) {
    let m = &bundle.manifest;
    let Some(slot) = &m.audio.voice else { return };
    let Some(tts) = &slot.tts else { return };
    let params = VoiceParams {
        variant: tts.variant.clone(),
        rate_wpm: tts.rate,
        pitch: tts.pitch,
    };
    for (lang, lang_cases) in cases {
        // A render speaks the script only when no voice file is given: the template's default
        // file for the language is checked with the media instead.
        if slot.default.contains_key(lang) || slot.default.contains_key("*") {
            continue;
        }
        progress(&format!("speaking the voice script in `{lang}`"));
        // Cases that leave the script's tokens alone give the same script: speak it once.
        let mut spoken = BTreeSet::new();
        for case in lang_cases.iter().filter(|c| c.spoken) {
            let Ok(tokens) = template::resolve_tokens(m, lang, &case.tokens) else {
                // Reported by the text checks.
                continue;
            };
            let Ok(timeline) = template::resolve(m, lang, &tokens) else {
                continue;
            };
            let Some(script) = timeline.voice_script else {
                continue;
            };
            if !spoken.insert(script.clone()) {
                continue;
            }
            if speech.voice().is_none() {
                report.warning(
                    "audio.voice.tts",
                    "the built-in voice's helper (reelfarm-espeak) was not found, so the \
                     spoken length of the voice scripts was not checked",
                );
                return;
            }
            match speech.speak(&script, lang, &params) {
                Ok((synth, _)) => {
                    let seconds = synth.duration_ms() / 1000.0;
                    if seconds > slot.max_duration + 1e-3 {
                        report.error(
                            format!("audio.voice.script[\"{lang}\"]"),
                            format!(
                                "spoken in `{lang}` with the {} the script lasts {seconds:.2} s; \
                                 the voice slot takes at most {:.2} s (audio.voice.max_duration): \
                                 lower the token's max_length, shorten the script, raise \
                                 audio.voice.tts.rate or max_duration",
                                case.class, slot.max_duration
                            ),
                        );
                    }
                }
                Err(e) => report.error(
                    format!("audio.voice.script[\"{lang}\"]"),
                    format!(
                        "the built-in voice cannot speak the script in `{lang}` with the {}: {e}",
                        case.class
                    ),
                ),
            }
        }
    }
}
