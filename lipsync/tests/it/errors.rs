//! Bad input gets a clear error or a documented fallback with a warning.

use lipsync::{eval, Engine, LipsyncError, Method, Shape, VoiceParams};

use crate::support::engine;

#[test]
fn unsupported_or_missing_language_is_an_error_naming_it() {
    let engine = engine();
    let audio = vec![0.1f32; 16_000];
    for lang in ["xx", "", "fr"] {
        let err = engine
            .analyze(&audio, 16_000, lang, None)
            .expect_err("unsupported");
        let msg = err.to_string();
        assert!(
            matches!(err, LipsyncError::UnsupportedLanguage { .. }),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("`{lang}`")) && msg.contains("hi, ta"),
            "{msg}"
        );
        assert!(engine
            .speak("hello", lang, &VoiceParams::default())
            .is_err());
    }
}

#[test]
fn empty_corrupt_and_silent_audio() {
    let engine = engine();
    assert!(matches!(
        engine.analyze(&[], 16_000, "en", None),
        Err(LipsyncError::EmptyAudio)
    ));
    assert!(matches!(
        engine.analyze(&[0.0, f32::NAN, 0.1], 16_000, "en", None),
        Err(LipsyncError::CorruptAudio)
    ));
    assert!(matches!(
        engine.analyze(&[0.0; 100], 0, "en", None),
        Err(LipsyncError::BadSampleRate(0))
    ));
    let silent = engine
        .analyze(&vec![0.0; 48_000], 48_000, "hi", Some("नमस्ते"))
        .expect("silence");
    assert_eq!(silent.cues.len(), 1);
    assert_eq!(silent.cues[0].shape, Shape::X);
    assert_eq!(silent.duration_ms(), 1000);
    assert!(
        silent.warnings.iter().any(|w| w.contains("silent")),
        "{:?}",
        silent.warnings
    );
    // A handful of samples: too short to analyse, still a valid track.
    let tiny = engine
        .analyze(&[0.5, -0.5, 0.5], 16_000, "en", None)
        .expect("tiny");
    assert_eq!(
        tiny.cues.iter().map(|c| c.shape).collect::<Vec<_>>(),
        vec![Shape::X]
    );
    assert!(matches!(
        engine.speak("   ", "en", &VoiceParams::default()),
        Err(LipsyncError::EmptyText)
    ));
}

#[test]
fn a_transcript_that_does_not_match_falls_back_with_a_warning() {
    let engine = engine();
    let s = eval::SENTENCES;
    for (k, &(lang, text)) in s.iter().enumerate() {
        let other = s[(k + 1) % s.len()].1;
        let params = &eval::test_voices()[0].params;
        let (synth, _) = engine.speak(text, lang, params).expect("speak");
        let track = engine
            .analyze(&synth.samples, synth.sample_rate, lang, Some(other))
            .expect("fallback, not an error");
        assert_eq!(track.method, Method::Acoustic, "{lang}");
        assert!(
            track
                .warnings
                .iter()
                .any(|w| w.contains("does not appear to match")),
            "{lang}: {:?}",
            track.warnings
        );
        let good = engine
            .analyze(&synth.samples, synth.sample_rate, lang, Some(text))
            .expect("aligned");
        assert_eq!(good.method, Method::Aligned, "{lang}");
        assert!(good.warnings.is_empty(), "{lang}: {:?}", good.warnings);
    }
}

#[test]
fn without_transcript_or_voice_the_acoustic_path_warns() {
    let engine = engine();
    let (synth, _) = engine
        .speak(eval::SENTENCES[0].1, "hi", &VoiceParams::default())
        .expect("speak");
    let t = engine
        .analyze(&synth.samples, synth.sample_rate, "hi", None)
        .expect("acoustic");
    assert_eq!(t.method, Method::Acoustic);
    assert!(
        t.warnings.iter().any(|w| w.contains("no transcript")),
        "{:?}",
        t.warnings
    );
    let voiceless = Engine::new(None);
    let t = voiceless
        .analyze(
            &synth.samples,
            synth.sample_rate,
            "hi",
            Some(eval::SENTENCES[0].1),
        )
        .expect("acoustic");
    assert_eq!(t.method, Method::Acoustic);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("no text-to-speech voice")),
        "{:?}",
        t.warnings
    );
    assert!(matches!(
        voiceless.speak("hello", "en", &VoiceParams::default()),
        Err(LipsyncError::NoVoice)
    ));
}
